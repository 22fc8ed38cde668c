"""Which path goes to which Tencent CI handler, and the gateway steps every call goes through:
Host (bucket, APPID, region) -> signature -> throttle -> body (bounded) -> XML -> handler -> protocol."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ...config import TencentAccount, TencentSettings
from ...core.exchange import Exchange, exchange_of
from ...core.http import BodyTooLarge, read_body
from ...core.throttle import windows_of
from ...keys import CLOCK, FAULTS, HEALTH, LIMITER, RESET_HOOKS, SETTINGS
from . import handlers, protocol, signing
from .errors import (
    AccessDenied,
    InvalidAccessKeyId,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchKey,
    SlowDown,
    TencentError,
    XMLSizeLimit,
)
from .faults import TencentFaults
from .models import TencentBackend

TENCENT_BACKEND = web.AppKey("tencent_backend", TencentBackend)

REPORT_BADCASE_PATH = "/report/badcase"
REPORT_BADCASE = "ReportBadcase"
TEXT_AUDITING_PATH = "/text/auditing"
#: The action's name in CI's permission list (ci:CreateAuditingTextJob).
CREATE_AUDITING_TEXT_JOB = "CreateAuditingTextJob"
TEXT_AUDITING_JOB_PATH = "/text/auditing/{jobId}"
DESCRIBE_AUDITING_TEXT_JOB = "DescribeAuditingTextJob"
IMAGE_AUDITING_PATH = "/image/auditing"
#: Named as cos-go-sdk-v5 names the call (ci.go, BatchImageAuditing): CI's permission for it,
#: ci:CreateAuditingPictureJob, also covers the single-image API, so it would not tell them apart.
BATCH_IMAGE_AUDITING = "BatchImageAuditing"
#: Every fixed path served, and the action journal entries, throttle windows and fault rules name it by.
ACTIONS = {
    REPORT_BADCASE_PATH: REPORT_BADCASE,
    TEXT_AUDITING_PATH: CREATE_AUDITING_TEXT_JOB,
    IMAGE_AUDITING_PATH: BATCH_IMAGE_AUDITING,
}
#: Paths with one variable segment after the prefix (the route's ``{jobId}``), by the same names.
PREFIX_ACTIONS = {TEXT_AUDITING_PATH + "/": DESCRIBE_AUDITING_TEXT_JOB}


def action_of(path: str) -> str | None:
    """The action a path is served by, or None when the emulator serves none there."""
    action = ACTIONS.get(path)
    if action is not None:
        return action
    for prefix, action in PREFIX_ACTIONS.items():
        rest = path[len(prefix) :] if path.startswith(prefix) else ""
        if rest and "/" not in rest:
            return action
    return None


# <bucket>-<appid>.ci.<region>.myqcloud.com. The SDK sends .cos. instead of .ci. when configured
# with IP/Port (cos_client.py, send_request: Host = conf.get_host(), built on the COS endpoint), and
# .tencentcos.cn when the COS endpoint uses the new domain (EnableOldDomain=False).
_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-(?P<appid>\d+)"
    r"\.(?:ci|cos)\.(?P<region>[a-z0-9-]+)\.(?:myqcloud\.com|tencentcos\.cn)(?::\d+)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Target:
    bucket: str
    appid: str
    region: str


def parse_host(host: str) -> Target | None:
    """Bucket, APPID and region from a CI/COS host name, or None for an IP or custom domain."""
    match = _HOST.match(host.strip())
    if match is None:
        return None
    return Target(match["bucket"].lower(), match["appid"], match["region"].lower())


def setup(app: web.Application) -> None:
    backend = app[TENCENT_BACKEND] = TencentBackend(app[SETTINGS].tencent.accounts)
    app.router.add_post(REPORT_BADCASE_PATH, report_badcase)
    app.router.add_post(TEXT_AUDITING_PATH, create_auditing_text_job)
    app.router.add_post(IMAGE_AUDITING_PATH, batch_image_auditing)
    # No HEAD: CI documents GET only, so HEAD is answered like any other method.
    app.router.add_get(TEXT_AUDITING_JOB_PATH, describe_auditing_text_job, allow_head=False)
    for path, action in ACTIONS.items():
        app.router.add_route("*", path, _method_not_allowed(action, "POST"))
    app.router.add_route("*", TEXT_AUDITING_JOB_PATH, _method_not_allowed(DESCRIBE_AUDITING_TEXT_JOB, "GET"))
    # aiohttp indexes routes by their fixed prefix and tries the longest first, so this one (prefix
    # "/") comes after every other; it answers only for a CI/COS host and leaves the rest (other
    # providers, the admin API) as they were.
    app.router.add_route("*", "/{tail:.*}", unknown_path)

    def reset(namespace: str | None) -> None:
        appids = {a.appid for a in backend.accounts if namespace is None or a.namespace == namespace}
        backend.reset(appids)
        app[LIMITER].reset(windows_of("tencent", appids))

    app[RESET_HOOKS].append(reset)
    app[FAULTS].register(
        TencentFaults(
            action_of,
            backend,
            app[CLOCK],
            _resource,
            lambda host: target.appid if (target := parse_host(host)) else None,
        )
    )
    app[HEALTH]["tencent"] = lambda: {"accounts": len(backend.accounts)}


#: What an action does once the gateway steps passed: decode the body, run the handler, answer.
Serve = Callable[[handlers.Call, bytes, Exchange], web.Response]


async def report_badcase(request: web.Request) -> web.StreamResponse:
    def serve(call: handlers.Call, body: bytes, exchange: Exchange) -> web.Response:
        fields = protocol.decode_request(body)
        exchange.parsed = {"Request": fields}
        handlers.report_badcase(call, fields)
        return protocol.success(call.request_id, call.received_at)

    return await _gateway(request, REPORT_BADCASE, serve)


async def create_auditing_text_job(request: web.Request) -> web.StreamResponse:
    def serve(call: handlers.Call, body: bytes, exchange: Exchange) -> web.Response:
        fields = protocol.decode_text_auditing(body)
        exchange.parsed = {"Request": fields}
        audit = handlers.create_auditing_text_job(call, fields)
        return protocol.text_auditing_success(audit, call.request_id, call.received_at)

    return await _gateway(request, CREATE_AUDITING_TEXT_JOB, serve)


async def describe_auditing_text_job(request: web.Request) -> web.StreamResponse:
    job_id = request.match_info["jobId"]

    def serve(call: handlers.Call, body: bytes, exchange: Exchange) -> web.Response:
        del body, exchange  # CI documents no request body; one sent anyway is ignored
        audit = handlers.describe_auditing_text_job(call, job_id)
        # The query answers the JobsDetail the submit answered (DescribeAuditingTextJob documents the
        # same fields); only RequestId is the query's own.
        return protocol.text_auditing_success(audit, call.request_id, call.received_at)

    return await _gateway(request, DESCRIBE_AUDITING_TEXT_JOB, serve)


async def batch_image_auditing(request: web.Request) -> web.StreamResponse:
    def serve(call: handlers.Call, body: bytes, exchange: Exchange) -> web.Response:
        fields = protocol.decode_image_auditing(body)
        exchange.parsed = {"Request": fields}
        audits = handlers.batch_image_auditing(call, fields)
        return protocol.image_auditing_success(audits, call.request_id, call.received_at)

    return await _gateway(request, BATCH_IMAGE_AUDITING, serve)


async def _gateway(request: web.Request, action: str, serve: Serve) -> web.StreamResponse:
    """Host -> signature -> throttle -> bounded body, then the action; any CI error is answered."""
    app = request.app
    settings = app[SETTINGS]
    cfg = settings.tencent
    now = app[CLOCK].time()
    request_id = protocol.new_request_id(now)
    exchange = exchange_of(request)
    exchange.provider, exchange.action = "tencent", action
    try:
        target = parse_host(request.host)
        account = _authenticate(request, target, cfg, app[TENCENT_BACKEND], now)
        exchange.account = account.appid
        if exchange.namespace is None:
            exchange.namespace = account.namespace
        _throttle(app, account, action)
        limit = min(settings.server.max_body_bytes, cfg.max_body_bytes)
        try:
            body = await read_body(request, limit)
        except BodyTooLarge as exc:
            raise XMLSizeLimit(f"{XMLSizeLimit.message} ({exc})") from None
        call = handlers.Call(
            account=account,
            state=app[TENCENT_BACKEND].state(account),
            request_id=request_id,
            received_at=now,
            bucket=target.bucket if target else "",
            region=target.region if target else "",
            strict_labels=cfg.strict_labels,
            confirm_after=cfg.confirm_after_seconds,
            text_labels=cfg.text_labels,
        )
        return serve(call, body, exchange)
    except TencentError as exc:
        return protocol.error(exc, request_id=request_id, resource=_resource(request), now=now)


def _method_not_allowed(action: str, allowed: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def method_not_allowed(request: web.Request) -> web.StreamResponse:
        exchange = exchange_of(request)
        exchange.provider, exchange.action = "tencent", action
        err = MethodNotAllowed(f"{MethodNotAllowed.message} {request.method} is not {allowed}.")
        return _error(request, err)

    return method_not_allowed


async def unknown_path(request: web.Request) -> web.StreamResponse:
    """A path or method nothing serves. On a CI/COS host CI answers with its XML error (as the SDK
    expects of that host); anywhere else, aiohttp's own 404 or 405 as before this route existed."""
    from ...admin import PREFIX  # at call time: the admin package imports this module

    if parse_host(request.host) is None or request.path.startswith(PREFIX):
        raise await _without_catch_all(request)
    exchange_of(request).provider = "tencent"
    return _error(
        request,
        NoSuchKey(f"{NoSuchKey.message} The emulator serves no CI API at {request.method} {request.path}."),
    )


async def _without_catch_all(request: web.Request) -> web.HTTPException:
    """What aiohttp answers when no route matches: 405 naming the methods another route allows for
    this path (the catch-all took the call from them), else 404."""
    allowed: set[str] = set()
    own = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not own:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        return web.HTTPMethodNotAllowed(request.method, allowed)
    return web.HTTPNotFound()


def _error(request: web.Request, err: TencentError) -> web.Response:
    now = request.app[CLOCK].time()
    return protocol.error(err, request_id=protocol.new_request_id(now), resource=_resource(request), now=now)


def _resource(request: web.Request) -> str:
    # COS names the bucket host and key, e.g. examplebucket-1250000000.ci.ap-beijing.myqcloud.com/...
    return f"{request.host}{request.path}" if request.host else request.path


def _signed_request(request: web.Request) -> signing.SignedRequest:
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    return signing.SignedRequest(
        method=request.method,
        # Decoded, as signed; for a proxy's absolute-form target this is still only the path.
        path=request.path,
        query=list(request.query.items()),
        headers=headers,
    )


def _authenticate(
    request: web.Request,
    target: Target | None,
    cfg: TencentSettings,
    backend: TencentBackend,
    now: float,
) -> TencentAccount:
    owner = None
    if target is not None:
        owner = backend.by_appid(target.appid)
        if owner is None:
            raise NoSuchBucket()
    signed = _signed_request(request)
    if cfg.verify_signatures:
        secret_id = signing.authenticate(
            signed,
            lambda key: a.secret_key if (a := backend.by_secret_id(key)) else None,
            now=now,
            max_skew=cfg.max_clock_skew_seconds,
        )
        account = backend.by_secret_id(secret_id)
        assert account is not None  # authenticate() found its key
        if owner is not None and owner is not account:
            raise AccessDenied(f"{AccessDenied.message} The key does not belong to APPID {owner.appid}.")
        return account
    # Relaxed: any signature goes; the Host's APPID, else a known SecretId, else the first account.
    if owner is not None:
        return owner
    try:
        key = signing.parse_authorization(signed.header("authorization")).secret_id
    except TencentError:
        key = ""
    account = backend.by_secret_id(key) or (backend.accounts[0] if backend.accounts else None)
    if account is None:
        raise InvalidAccessKeyId()
    return account


def _throttle(app: web.Application, account: TencentAccount, action: str) -> None:
    if account.rate_limit is None:
        return
    if not app[LIMITER].try_acquire(("tencent", account.appid, action), account.rate_limit):
        raise SlowDown()
