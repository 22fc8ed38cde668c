"""Alibaba Green in the gateway: its action table, and how its calls are identified, authenticated,
throttled, read and answered (core/gateway.py runs the steps in order)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web

from ...config import AlibabaAccount, AlibabaSettings, Settings
from ...core.call import BodyTooLarge, Call
from ...core.gateway import Action, Identity
from ...core.headers import HeaderLists, query_of
from ...core.storage import Record, Store
from ...core.storage.records import Sink, Spaces
from ...errors import ConfigError
from ...keys import DISPATCHER, GATEWAY, SETTINGS, STATE, STORE
from . import contract, handlers, moderation, notifications, protocol, signing
from .errors import (
    AlibabaError,
    BusinessError,
    GatewayError,
    InvalidAccessKeyIdNotFound,
    InvalidActionNotFound,
    SignatureNonceUsed,
    bad_request,
    check_fault_code,
    throttled,
)
from .handlers import AlibabaContext
from .models import AlibabaBackend, AlibabaState, ImageFeedback, TaskResult, TextFeedback
from .textlib import LibraryError, TextLibraries

ALIBABA_BACKEND = web.AppKey("alibaba_backend", AlibabaBackend)
#: The default verdicts in force in each namespace: the config's, until the console changes them.
#: Each namespace's default verdicts (the config's and those the admin API added).
VERDICTS: web.AppKey[VerdictSpaces] = web.AppKey("alibaba_verdicts")

#: Every path under it is Alibaba's: one no action serves is InvalidAction.NotFound.
PATH_PREFIX = "/green/"


def _json(tree: Any, params: Mapping[str, str]) -> Any:
    # The handlers validate the JSON themselves: each field's error names it.
    del params
    return tree


def _action(
    name: str, path: str, handle: Any, encode: Any = protocol.tasks, limit: int | None = None
) -> Action:
    return Action(
        name,
        "POST",
        path,
        decode=_json,
        handle=handle,
        encode=encode,
        limit=limit,
        check=contract.request_check(name),
    )


#: The actions served; paths from aliyunsdkcore's request classes (aliyunsdkgreen, 2018-05-09);
#: limits from the reference sheet (ImageScanFeedback and TextFeedback: 20 calls per second per
#: account; TextScan 100), the others unlimited unless an account's ``rate_limits`` says otherwise.
ACTIONS: tuple[Action, ...] = (
    _action(
        "ImageScanFeedback",
        "/green/image/feedback",
        handlers.image_scan_feedback,
        protocol.acknowledged,
        limit=20,
    ),
    _action("TextFeedback", "/green/text/feedback", handlers.text_feedback, protocol.acknowledged, limit=20),
    _action("ImageSyncScan", "/green/image/scan", handlers.image_sync_scan),
    _action("ImageAsyncScan", "/green/image/asyncscan", handlers.image_async_scan),
    _action("ImageAsyncScanResults", "/green/image/results", handlers.image_async_scan_results),
    _action("TextScan", "/green/text/scan", handlers.text_scan, limit=100),
)


def rate_limit(account: AlibabaAccount, action: Action) -> int | None:
    """The account's limit for ``action``: its ``rate_limits`` entry, else the provider's default."""
    return account.rate_limits.get(action.name, action.limit)


class Alibaba:
    """The Alibaba Green provider (core/gateway.py, Provider)."""

    name = "alibaba"
    wire_error: type[Exception] = AlibabaError

    def __init__(self, app: web.Application, settings: Settings, backend: AlibabaBackend) -> None:
        self._app = app
        self._settings = settings
        self._cfg: AlibabaSettings = settings.alibaba
        self._backend = backend
        self._nonces = signing.NonceCache() if self._cfg.reject_nonce_reuse else None

    def actions(self) -> Sequence[Action]:
        return ACTIONS

    def new_request_id(self, now: float) -> str:
        return protocol.new_request_id()

    def identify(self, request: web.Request) -> Identity:
        try:
            auth: signing.Authorization | None = signing.parse_authorization(
                request.headers.get("Authorization")
            )
        except GatewayError:
            auth = None
        account = self._backend.by_access_key(auth.access_key_id) if auth is not None else None
        if account is None and not self._cfg.verify_signatures:
            # Relaxed: any signature goes; an unknown key id is the first account's.
            account = self._backend.accounts[0] if self._backend.accounts else None
        if account is None:
            return Identity(None, None, None, auth)
        return Identity(account, account.uid, account.namespace, auth)

    def body_limit(self) -> int:
        return self._settings.server.max_body_bytes

    def body_too_large(self, exc: BodyTooLarge) -> Exception:
        # UNCONFIRMED(alibaba-too-large): Green's limit and answer (server.max_body_bytes).
        return BusinessError(589, f"TOO_LARGE: {exc}")

    async def authenticate(self, request: web.Request, call: Call, who: Identity) -> Identity:
        # The signature covers the body (ACS3's payload hash, Content-MD5): read it first.
        body = await call.read_body(request)
        if not self._cfg.verify_signatures:
            if who.account is None:
                raise InvalidAccessKeyIdNotFound()
            return who
        signed = signing.SignedRequest(
            method=request.method,
            raw_path=request.raw_path.partition("?")[0],
            query=list(query_of(request).items()),
            headers=HeaderLists(request.headers),
            body=body,
        )
        backend = self._backend
        shared = self._app[GATEWAY].seen_once if self._nonces is not None else None
        key = signing.authenticate(
            signed,
            lambda key: a.access_key_secret if (a := backend.by_access_key(key)) else None,
            now=call.received_at,
            max_skew=self._cfg.max_clock_skew_seconds,
            auth=who.extra,
            nonces=self._nonces if shared is None else None,
        )
        # Replicas share the nonces seen (the provider's check is fleet-wide): a replay sent to
        # another replica is refused too.
        window = signing.nonce_window(signed, who.extra, self._cfg.max_clock_skew_seconds) if shared else None
        if shared is not None and window is not None:
            nonce, until = window
            if not await shared.first(f"alibaba:nonce:{key}:{nonce}", until - call.received_at):
                raise SignatureNonceUsed()
        account = backend.by_access_key(key)
        assert account is not None  # authenticate() found its secret
        return Identity(account, account.uid, account.namespace)

    def rate_limit(self, who: Identity, action: Action) -> int | None:
        return rate_limit(who.account, action)

    def throttled(self, retry_after: float) -> Exception:
        return throttled(
            self._cfg.throttle_response, retry_after if self._cfg.throttle_retry_after_header else 0
        )

    def invalid_request(self, violations: Sequence[Mapping[str, str]]) -> Exception:
        # The business envelope's invalid-parameter answer (code 400), naming the first violation.
        return bad_request(contract.summary(violations))

    def parse(self, body: bytes) -> Any:
        return protocol.decode_json(body)

    def view(self, tree: Any) -> Any:
        return tree

    def context(self, request: web.Request, call: Call, who: Identity) -> AlibabaContext:
        account: AlibabaAccount = who.account
        state = self._backend.state(account, call.namespace)
        dispatcher = self._app[DISPATCHER]

        def notify_scan(url: str, seed: str, result: TaskResult) -> None:
            # The scan call and the callbacks it causes share one correlation id in the journal.
            call.correlation_id = call.correlation_id or call.request_id
            notifications.notify_scan(
                dispatcher,
                state,
                url,
                seed,
                result,
                namespace=call.namespace,
                correlation_id=call.correlation_id,
            )

        def notify_feedback(stored: Sequence[ImageFeedback | TextFeedback]) -> None:
            # The feedback call and the notifications it causes share one correlation id.
            correlation_id = call.correlation_id or call.request_id
            sent = notifications.notify_feedback(
                dispatcher, state, stored, namespace=call.namespace, correlation_id=correlation_id
            )
            if sent:
                call.correlation_id = correlation_id

        return AlibabaContext(
            account=account,
            state=state,
            request_id=call.request_id,
            received_at=call.received_at,
            query=query_of(request),
            verdicts=self._app[VERDICTS].get(call.namespace),
            notify_scan=notify_scan,
            callback_refusal=dispatcher.allowed.refusal,
            notify_feedback=notify_feedback if self._cfg.notify_on_feedback else None,
            settings=self._cfg,
        )

    def render_error(self, err: Exception, request: web.Request, call: Call) -> web.StreamResponse:
        assert isinstance(err, AlibabaError)
        return protocol.error(err, call.request_id, self._cfg.host_id)

    def claims(self, request: web.Request) -> bool:
        return request.path.startswith(PATH_PREFIX)

    def not_found(self, request: web.Request) -> Exception:
        return InvalidActionNotFound()

    def method_not_allowed(self, request: web.Request, action: Action) -> tuple[Exception, str | None]:
        # The POP gateway knows an API by path and method together: another method is no API.
        return InvalidActionNotFound(), None

    def check_fault_error(self, spec: Mapping[str, Any], where: str) -> None:
        if spec["type"] != "modify":  # a JSON body's fields may have any name
            check_fault_code(spec, where)

    def fault_response(self, spec: Mapping[str, Any], request: web.Request, call: Call) -> web.StreamResponse:
        if spec["type"] == "throttle":
            return self.render_error(throttled(self._cfg.throttle_response), request, call)
        return protocol.fault_error(spec, call.request_id, self._cfg.host_id)

    def modify_body(self, body: bytes, edit: Mapping[str, Any]) -> bytes:
        return protocol.modify_body(body, edit)

    def health(self) -> dict[str, Any]:
        return {"accounts": len(self._backend.accounts)}

    def reset(self, namespace: str | None) -> None:
        self._backend.reset(namespace)
        self._app[VERDICTS].reset(namespace)


def _check_config(settings: Settings) -> None:
    """What the generic loader cannot check: labels per scene, and the preloaded libraries."""
    try:
        moderation.check_verdicts(settings.alibaba.verdicts)
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(settings.origin(key), key, problem) from None
    names = [a.name for a in ACTIONS]
    for i, account in enumerate(settings.alibaba.accounts):
        for action in account.rate_limits:
            if action not in names:
                key = f"alibaba.accounts[{i}].rate_limits.{action}"
                known = ", ".join(sorted(names))
                raise ConfigError(settings.origin(key), key, f"unknown API action (known: {known})")
        libs = TextLibraries()
        for j, spec in enumerate(account.text_libraries):
            try:
                libs.add(libs.create(spec.name, spec.kind, spec.list_type, spec.scenes).code, spec.items)
            except LibraryError as exc:
                key = f"alibaba.accounts[{i}].text_libraries[{j}]"
                raise ConfigError(settings.origin(key), key, str(exc)) from None


class VerdictSpaces:
    """Each namespace's verdicts: its own copy of the config's, plus those the admin API added."""

    def __init__(
        self, settings: Settings, store: Store, seed: Callable[[str, str], Iterable[Record]]
    ) -> None:
        def make(namespace: str, owner: str, sink: Sink, from_config: bool) -> moderation.Verdicts:
            return moderation.Verdicts(settings.alibaba.verdicts, sink)

        self.spaces: Spaces[str, moderation.Verdicts] = Spaces(
            moderation.KIND_VERDICTS,
            {"": ""},
            make,
            limit=settings.server.max_namespaces,
            store=store,
            seed=seed,
        )

    def get(self, namespace: str) -> moderation.Verdicts:
        return self.spaces.get(namespace)[""]

    def reset(self, namespace: str | None = None) -> None:
        self.spaces.reset(namespace)


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    _check_config(settings)
    store, seed = app[STORE], app[STATE].seed
    app[VERDICTS] = VerdictSpaces(settings, store, seed)
    backend = app[ALIBABA_BACKEND] = AlibabaBackend(
        settings.alibaba.accounts,
        settings.alibaba.pattern_similarity,
        max_library_entries=settings.alibaba.max_library_entries,
        max_namespaces=settings.server.max_namespaces,
        store=store,
        seed=seed,
    )
    allowed = app[DISPATCHER].allowed

    def on_console(state: AlibabaState) -> None:
        # The operator named this receiver: its host joins callbacks.allowed_hosts while it is set.
        key = f"alibaba/{state.account.uid}/{state.namespace}"
        allowed.set_console(key, state.callback_url, state.namespace)

    backend.on_console = on_console
    app[STATE].register(backend.spaces)
    app[STATE].register(app[VERDICTS].spaces)
    app[GATEWAY].register(app, Alibaba(app, settings, backend))
