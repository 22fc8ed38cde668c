"""Which path goes to which Alibaba handler, and the gateway steps every call goes through:
body (bounded) -> signature -> throttle -> JSON -> handler -> protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ...config import AlibabaAccount, AlibabaSettings, Settings
from ...core.exchange import Exchange, exchange_of
from ...core.http import BodyTooLarge, read_body
from ...core.throttle import windows_of
from ...errors import ConfigError
from ...keys import CLOCK, DISPATCHER, FAULTS, HEALTH, LIMITER, RESET_HOOKS, SETTINGS
from . import handlers, moderation, notifications, protocol, signing
from .errors import (
    BusinessError,
    GatewayError,
    InvalidAccessKeyIdNotFound,
    InvalidActionNotFound,
    throttled,
)
from .faults import AlibabaFaults
from .models import AlibabaBackend, AlibabaState
from .textlib import LibraryError, TextLibraries

ALIBABA_BACKEND = web.AppKey("alibaba_backend", AlibabaBackend)
VERDICTS = web.AppKey("alibaba_verdicts", moderation.Verdicts)

Handler = Callable[[handlers.Call, Any], Any]

#: path -> (API action, handler)
ACTIONS: dict[str, tuple[str, Handler]] = {
    "/green/image/feedback": ("ImageScanFeedback", handlers.image_scan_feedback),
    "/green/text/feedback": ("TextFeedback", handlers.text_feedback),
    "/green/image/scan": ("ImageSyncScan", handlers.image_sync_scan),
    "/green/image/asyncscan": ("ImageAsyncScan", handlers.image_async_scan),
    "/green/image/results": ("ImageAsyncScanResults", handlers.image_async_scan_results),
    "/green/text/scan": ("TextScan", handlers.text_scan),
}


def _check_config(settings: Settings) -> moderation.Verdicts:
    """What the generic loader cannot check: labels per scene, and the preloaded libraries."""
    try:
        verdicts = moderation.Verdicts.build(settings.alibaba.verdicts)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(settings.source, key, problem) from None
    for i, account in enumerate(settings.alibaba.accounts):
        libs = TextLibraries()
        for j, spec in enumerate(account.text_libraries):
            try:
                libs.add(libs.create(spec.name, spec.kind, spec.list_type).code, spec.items)
            except LibraryError as exc:
                raise ConfigError(
                    settings.source, f"alibaba.accounts[{i}].text_libraries[{j}]", str(exc)
                ) from None
    return verdicts


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[VERDICTS] = _check_config(settings)
    backend = app[ALIBABA_BACKEND] = AlibabaBackend(
        settings.alibaba.accounts, settings.alibaba.pattern_similarity
    )
    for path, (action, handler) in ACTIONS.items():
        app.router.add_post(path, _endpoint(action, handler))
    # Anything else under /green/ (another API, another method) is what the gateway does not know.
    app.router.add_route("*", "/green/{tail:.*}", _not_found)

    def reset(namespace: str | None) -> None:
        uids = {a.uid for a in backend.accounts if namespace is None or a.namespace == namespace}
        backend.reset(uids)
        app[LIMITER].reset(windows_of("alibaba", uids))

    app[RESET_HOOKS].append(reset)
    app[FAULTS].register(
        AlibabaFaults({path: action for path, (action, _) in ACTIONS.items()}, backend, app[SETTINGS].alibaba)
    )
    app[HEALTH]["alibaba"] = lambda: {"accounts": len(backend.accounts)}


def _endpoint(action: str, handler: Handler) -> Callable[[web.Request], Any]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        app = request.app
        settings = app[SETTINGS]
        cfg = settings.alibaba
        request_id = protocol.new_request_id()
        exchange = exchange_of(request)
        exchange.provider, exchange.action = "alibaba", action
        try:
            try:
                body = await read_body(request, settings.server.max_body_bytes)
            except BodyTooLarge as exc:
                raise BusinessError(589, f"TOO_LARGE: {exc}") from None
            account = _authenticate(request, body, cfg, app[ALIBABA_BACKEND], app[CLOCK].time())
            exchange.account = account.uid
            if exchange.namespace is None:
                exchange.namespace = account.namespace
            _throttle(app, account, action, cfg)
            state = app[ALIBABA_BACKEND].state(account)
            call = handlers.Call(
                account=account,
                state=state,
                request_id=request_id,
                received_at=app[CLOCK].time(),
                query=request.query,
                verdicts=app[VERDICTS],
                notify_scan=_scan_notifier(app, state, exchange, request_id),
            )
            exchange.parsed = parsed = protocol.decode_json(body)
            result = handler(call, parsed)
            if cfg.notify_on_feedback:
                _notify(app, call, exchange)
        except GatewayError as exc:
            return protocol.gateway_error(exc, request_id, cfg.host_id)
        except BusinessError as exc:
            return protocol.business_error(exc, request_id)
        except protocol.BodyError as exc:
            return protocol.business_error(exc.business, request_id)
        return protocol.success(request_id, result)

    endpoint.__name__ = action
    return endpoint


async def _not_found(request: web.Request) -> web.StreamResponse:
    exchange_of(request).provider = "alibaba"
    err = InvalidActionNotFound()
    return protocol.gateway_error(err, protocol.new_request_id(), request.app[SETTINGS].alibaba.host_id)


def _scan_notifier(
    app: web.Application, state: AlibabaState, exchange: Exchange, request_id: str
) -> handlers.ScanNotifier:
    def notify(url: str, seed: str, result: dict[str, Any]) -> None:
        # The scan call and the callbacks it causes share one correlation id in the journal.
        exchange.correlation_id = exchange.correlation_id or request_id
        notifications.notify_scan(
            app[DISPATCHER],
            state,
            url,
            seed,
            result,
            namespace=exchange.namespace,
            correlation_id=exchange.correlation_id,
        )

    return notify


def _notify(app: web.Application, call: handlers.Call, exchange: Exchange) -> None:
    # The feedback call and the notifications it causes share one correlation id in the journal.
    correlation_id = exchange.correlation_id or call.request_id
    sent = notifications.notify_feedback(
        app[DISPATCHER],
        call.state,
        call.request_id,
        namespace=exchange.namespace,
        correlation_id=correlation_id,
    )
    if sent:
        exchange.correlation_id = correlation_id


def _authenticate(
    request: web.Request, body: bytes, cfg: AlibabaSettings, backend: AlibabaBackend, now: float
) -> AlibabaAccount:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    signed = signing.SignedRequest(
        method=request.method,
        raw_path=request.raw_path.partition("?")[0],
        query=list(request.query.items()),
        headers=headers,
        body=body,
    )
    if cfg.verify_signatures:
        ak = signing.authenticate(
            signed,
            lambda key: a.access_key_secret if (a := backend.by_access_key(key)) else None,
            now=now,
            max_skew=cfg.max_clock_skew_seconds,
        )
        account = backend.by_access_key(ak)
        assert account is not None  # authenticate() found its secret
        return account
    # Relaxed: any signature is accepted; a known key id picks its account, else the first one.
    try:
        key = signing.parse_authorization(signed.header("authorization")).access_key_id
    except GatewayError:
        key = ""
    account = backend.by_access_key(key) or (backend.accounts[0] if backend.accounts else None)
    if account is None:
        raise InvalidAccessKeyIdNotFound()
    return account


def _throttle(app: web.Application, account: AlibabaAccount, action: str, cfg: AlibabaSettings) -> None:
    limit = account.rate_limit(action)
    if limit is None:
        return
    limiter = app[LIMITER]
    key = ("alibaba", account.uid, action)
    if limiter.try_acquire(key, limit):
        return
    retry_after = limiter.retry_after(key, limit) if cfg.throttle_retry_after_header else 0.0
    raise throttled(cfg.throttle_response, retry_after)
