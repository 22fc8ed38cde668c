"""The one pipeline every provider call goes through, whichever provider serves it.

Each provider declares its actions as one table of :class:`Action` rows and implements
:class:`Provider`; the gateway turns every row into a route and runs each call the same way::

    identify ---------------------------------------- one Call record (provider, action, account,
       |                                              namespace, correlation id), read by all below
       +-- fault rules (inbound) -- may answer instead, or shape the answer later
       |
    authenticate -> throttle -> read body (bounded, once) -> parse (once) -> decode -> handle -> encode
       |                                                                                 |
       +-- any wire error: the provider renders it in its own shape <--------------------+
       |
    journal (one entry per call, whatever happened)

Paths no action serves go through the same steps up to the answer: the provider that claims the
path or host answers with its own "no such API" error, any other path gets aiohttp's plain 404.

Nothing here names a provider. Bytes are made only by the providers' ``protocol.py`` functions the
table points at.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from .call import NAMESPACE_HEADER, BodyTooLarge, Call, Parser, namespace_for
from .clock import Clock
from .fault_actions import FaultApplier, FaultRenderer
from .faults import CallView, FaultEngine, Rule
from .headers import query_of
from .journal import Journal
from .recording import record_call
from .storage import MemoryStore, StorageFailure, Store, StoreUnavailable
from .throttle import SharedLimiter, SlidingWindowLimiter, window_key

__all__ = ["VIOLATIONS_HEADER", "Action", "Gateway", "Identity", "Provider"]

#: The response header that lists a request's contract violations (a JSON list) under
#: contract.strict_requests "warn" and "error".
VIOLATIONS_HEADER = "x-emulator-violations"
#: The most violations the header shows, and the most bytes (the journal entry keeps them all): a
#: field name is the client's, and an HTTP client refuses a header line past 64 KiB.
MAX_VIOLATIONS_SHOWN = 20
MAX_VIOLATIONS_HEADER_BYTES = 4096


def violations_header(violations: Sequence[Mapping[str, str]]) -> str:
    """The header's JSON list: the first violations, each text cut to 200 characters, as many as
    fit in :data:`MAX_VIOLATIONS_HEADER_BYTES` (JSON's escapes keep it ASCII)."""
    shown = [{k: v if len(v) <= 200 else v[:199] + "…" for k, v in item.items()} for item in violations]
    shown = shown[:MAX_VIOLATIONS_SHOWN]
    text = json.dumps(shown)
    while len(text) > MAX_VIOLATIONS_HEADER_BYTES and shown:
        shown.pop()
        text = json.dumps(shown)
    return text

Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a call is from, as far as the request's head tells before anything is verified: the
    provider's account object (opaque here), its id as the journal shows it, and its namespace."""

    account: Any
    account_id: str | None
    namespace: str | None
    #: Whatever else the provider read from the head and wants back in its later steps.
    extra: Any = None


@dataclass(frozen=True, slots=True)
class Action:
    """One row of a provider's action table.

    ``decode`` turns the parsed body (None when ``parses_body`` is false) and the request's path
    parameters into the handler's input and may raise the provider's wire errors; ``handle`` takes the
    provider's context and that input and returns a plain result; ``encode`` turns the result into
    the answer (the provider's protocol.py)."""

    name: str
    method: str
    path: str
    decode: Callable[[Any, Mapping[str, str]], Any]
    handle: Callable[[Any, Any], Any]
    encode: Callable[[Any, Call], web.StreamResponse]
    #: Whether the body is parsed (a GET of a stored result reads none).
    parses_body: bool = True
    #: The provider's default limit in calls per second per account (None: unlimited), which an
    #: account's configuration may override.
    limit: int | None = None
    #: Checks the parsed body (None when not parsed) and the query against the action's shipped
    #: contract: one ``{"location", "message"}`` per violation (contract.strict_requests).
    check: Callable[[Any, Mapping[str, str]], list[dict[str, str]]] | None = None


class Provider(Parser, FaultRenderer, Protocol):
    """What a provider tells the gateway: besides the methods below, how it parses bodies (Parser:
    ``parse``, ``view``) and renders the rules that answer in its name (FaultRenderer:
    ``fault_response``, ``modify_body``). Every method may raise only ``wire_error`` subclasses,
    which :meth:`render_error` turns into the provider's own answer."""

    name: str
    wire_error: type[Exception]

    def actions(self) -> Sequence[Action]: ...

    def new_request_id(self, now: float) -> str: ...

    def identify(self, request: web.Request) -> Identity:
        """The caller as the request's head names it, cheaply and without verifying anything; never
        raises (a head that names nobody is an Identity of no account: authenticate refuses it)."""
        ...

    def body_limit(self) -> int: ...

    def body_too_large(self, exc: BodyTooLarge) -> Exception: ...

    async def authenticate(self, request: web.Request, call: Call, who: Identity) -> Identity:
        """Verify the request (reading the body through ``call.read_body`` if the scheme signs it);
        returns the verified identity. Raises the provider's error when refused."""
        ...

    def rate_limit(self, who: Identity, action: Action) -> int | None: ...

    def throttled(self, retry_after: float) -> Exception: ...

    def invalid_request(self, violations: Sequence[Mapping[str, str]]) -> Exception:
        """The provider's invalid-parameter error for a request that breaks the contract."""
        ...

    def context(self, request: web.Request, call: Call, who: Identity) -> Any:
        """What the handlers of this provider receive besides their input."""
        ...

    def render_error(self, err: Exception, request: web.Request, call: Call) -> web.StreamResponse: ...

    def claims(self, request: web.Request) -> bool:
        """Whether a path no action serves is this provider's to refuse (by path or by host)."""
        ...

    def not_found(self, request: web.Request) -> Exception: ...

    def method_not_allowed(self, request: web.Request, action: Action) -> tuple[Exception, str | None]:
        """The error for a served path asked with another method, and the action to journal."""
        ...

    # -- fault rules ---------------------------------------------------------------------------

    def check_fault_error(self, spec: Mapping[str, Any], where: str) -> None: ...

    # -- the rest of the app -----------------------------------------------------------------

    def health(self) -> dict[str, Any]: ...

    def reset(self, namespace: str | None) -> None: ...


class SeenOnce(Protocol):
    """Keys seen at most once across processes within their time (core/replicas.SeenOnce)."""

    async def first(self, key: str, seconds: float) -> bool: ...


class Follower(Protocol):
    """Keeps the state in memory up to date with other processes' (core/replicas.Follower)."""

    async def catch_up(self) -> None: ...


class Gateway:
    """Routes every provider's action table and runs each call through the pipeline above."""

    def __init__(
        self,
        journal: Journal,
        clock: Clock,
        limiter: SlidingWindowLimiter,
        faults: FaultEngine,
        reserved_prefixes: Sequence[str],
        store: Store | None = None,
        strict_requests: str = "off",
    ) -> None:
        self._journal = journal
        self._store = store if store is not None else MemoryStore()
        #: contract.strict_requests: "off", "warn" or "error".
        self._strict = strict_requests
        self._clock = clock
        self._limiter = limiter
        self._faults = faults
        self._reserved = tuple(reserved_prefixes)
        self._fault_applier = FaultApplier()
        self.providers: dict[str, Provider] = {}
        #: Throttle windows shared with other processes (``storage.url``); None: this process's own.
        self.shared_limiter: SharedLimiter | None = None
        #: Brings the state in memory up to date with other processes' changes before each call.
        self.follower: Follower | None = None
        #: What providers must see once across processes (signature nonces); None: per process.
        self.seen_once: SeenOnce | None = None

    def register(self, app: web.Application, provider: Provider) -> None:
        """Route ``provider``'s actions; the fault engine learns its error catalogue."""
        self.providers[provider.name] = provider
        self._faults.register(provider.name, provider.check_fault_error)
        paths: dict[str, list[Action]] = {}
        for action in provider.actions():
            app.router.add_route(action.method, action.path, self._endpoint(provider, action))
            paths.setdefault(action.path, []).append(action)
        for path, actions in paths.items():
            # Another method on a served path: the provider's own refusal, not aiohttp's 405.
            app.router.add_route("*", path, self._wrong_method(provider, actions[0]))

    def route_rest(self, app: web.Application) -> None:
        """The catch-all, added last: aiohttp tries it after every route with a longer fixed prefix
        (reserved prefixes such as the admin API's are a sub-application and never reach it)."""
        app.router.add_route("*", "/{tail:.*}", self._unrouted)

    # -- endpoints ---------------------------------------------------------------------------

    def _endpoint(self, provider: Provider, action: Action) -> Endpoint:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self._serve(
                request,
                provider,
                action.name,
                lambda call, who: self._run(request, provider, action, call, who),
            )

        endpoint.__name__ = action.name
        return endpoint

    def _wrong_method(self, provider: Provider, action: Action) -> Endpoint:
        async def wrong_method(request: web.Request) -> web.StreamResponse:
            err, journaled = provider.method_not_allowed(request, action)
            return await self._serve(request, provider, journaled, self._refuse(request, provider, err))

        return wrong_method

    async def _unrouted(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(self._reserved):
            # A sub-application's (the admin API's): it answers its own paths; this is a near miss.
            raise web.HTTPNotFound()
        for provider in self.providers.values():
            if provider.claims(request):
                err = provider.not_found(request)
                return await self._serve(request, provider, None, self._refuse(request, provider, err))

        async def not_found(call: Call, who: Identity | None) -> web.StreamResponse:
            raise web.HTTPNotFound()

        return await self._serve(request, None, None, not_found)

    @staticmethod
    def _refuse(
        request: web.Request, provider: Provider, err: Exception
    ) -> Callable[[Call, Identity | None], Awaitable[web.StreamResponse]]:
        async def refuse(call: Call, who: Identity | None) -> web.StreamResponse:
            return provider.render_error(err, request, call)

        return refuse

    # -- the pipeline ------------------------------------------------------------------------

    async def _serve(
        self,
        request: web.Request,
        provider: Provider | None,
        action: str | None,
        answer: Callable[[Call, Any], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Identify, apply the fault rules, answer, and journal whatever happened."""
        started = self._clock.time()
        t0 = time.perf_counter()
        named = request.headers.get(NAMESPACE_HEADER)
        call = Call(
            provider=provider.name if provider is not None else None,
            action=action,
            namespace=namespace_for(named, None),
            received_at=started,
            body_limit=provider.body_limit() if provider is not None else 0,
            too_large=provider.body_too_large if provider is not None else None,
        )
        response: web.StreamResponse | None = None
        try:
            who = None
            if provider is not None:
                call.request_id = provider.new_request_id(started)
                who = provider.identify(request)
                call.account = who.account_id
                if not named:
                    call.namespace = namespace_for(None, who.namespace)
            try:
                if self.follower is not None:
                    await self.follower.catch_up()
                rule = None
                if self._faults.has_rules("in"):
                    rule = await self._pick_rule(request, provider, call)
            except StoreUnavailable as exc:
                response = self._unavailable(request, provider, call, exc)
            else:
                if rule is None:
                    response = await answer(call, who)
                else:
                    response = await self._fault_applier.apply(
                        rule, request, call, provider, lambda: answer(call, who)
                    )
            if self._store.pending:
                response = await self._durable(request, provider, call, response)
            if call.violations and not response.prepared:
                response.headers[VIOLATIONS_HEADER] = violations_header(call.violations)
            if call.body_unread and provider is not None and call.cut is None:
                # Refused without reading the body (a COS signature does not cover it): the journal
                # keeps its first bytes, for whoever debugs the refusal.
                await call.keep_body(request, self._journal.max_body_bytes)
        except web.HTTPException as exc:
            self._record(request, call, t0, exc)
            raise
        except asyncio.CancelledError:
            # A fault cut the connection, or the client went away mid-request: no response.
            self._record(request, call, t0, None)
            raise
        except ConnectionResetError:
            # The client went away before its body could be read (while the call waited on the
            # shared throttle, say): nothing to answer, as when it leaves mid-request.
            self._record(request, call, t0, None)
            raise asyncio.CancelledError() from None
        except Exception as exc:
            # Not swallowed: recorded as the 500 aiohttp will send, then re-raised so it surfaces.
            self._record(request, call, t0, web.Response(status=500, text=f"{type(exc).__name__}: {exc}"))
            raise
        self._record(request, call, t0, response)
        return response

    async def _durable(
        self, request: web.Request, provider: Provider | None, call: Call, response: web.StreamResponse
    ) -> web.StreamResponse:
        """``response`` once every change the call made is stored; the provider's 503 when the
        store cannot take them (the change is then not acknowledged)."""
        try:
            await self._store.commit()
        except (StorageFailure, StoreUnavailable) as exc:
            return self._unavailable(request, provider, call, exc, "state not stored: ")
        return response

    @staticmethod
    def _unavailable(
        request: web.Request, provider: Provider | None, call: Call, exc: Exception, what: str = ""
    ) -> web.StreamResponse:
        """The provider's 503-class error for a store that cannot take or give state now."""
        if provider is None:
            raise web.HTTPServiceUnavailable(text=f"{what}{exc}") from None
        spec = {"type": "error", "code": "ServiceUnavailable", "message": f"{what}{exc}"}
        return provider.fault_response(spec, request, call)

    def _record(
        self, request: web.Request, call: Call, t0: float, response: web.StreamResponse | None
    ) -> None:
        record_call(self._journal, request, call, time.perf_counter() - t0, response)

    async def _pick_rule(self, request: web.Request, provider: Provider | None, call: Call) -> Rule | None:
        loader = None
        if provider is not None and self._faults.needs_body("in"):
            try:
                await call.read_body(request)
            except Exception:
                pass
            else:
                loader = lambda: call.view(provider)  # noqa: E731
        view = CallView(
            direction="in",
            provider=call.provider,
            action=call.action,
            method=request.method,
            path=request.path,
            account=call.account,
            namespace=call.namespace,
            headers=request.headers,
            body_loader=loader,
        )
        rule = await self._faults.pick_shared(view)
        if rule is not None:
            call.fault = rule.label
        return rule

    async def _run(
        self, request: web.Request, provider: Provider, action: Action, call: Call, who: Identity
    ) -> web.StreamResponse:
        """authenticate -> throttle -> body -> parse -> decode -> handle -> encode."""
        try:
            verified = await provider.authenticate(request, call, who)
            if verified.account_id != who.account_id:
                # The credentials proved another account than the head named.
                call.account = verified.account_id
                if not request.headers.get(NAMESPACE_HEADER):
                    call.namespace = namespace_for(None, verified.namespace)
            who = verified
            limit = provider.rate_limit(who, action)
            if limit is not None:
                key = window_key(provider.name, call.namespace, who.account_id, action.name)
                shared = self.shared_limiter
                if shared is None:
                    if not self._limiter.try_acquire(key, limit):
                        raise provider.throttled(self._limiter.retry_after(key, limit))
                elif (wait := await shared.try_acquire(key, limit)) is not None:
                    raise provider.throttled(wait)
            await call.read_body(request)
            tree = call.tree(provider) if action.parses_body else None
            if action.check is not None and self._strict != "off":
                call.violations = action.check(tree, query_of(request))
                if call.violations and self._strict == "error":
                    raise provider.invalid_request(call.violations)
            data = action.decode(tree, request.match_info)
            result = action.handle(provider.context(request, call, who), data)
            return action.encode(result, call)
        except provider.wire_error as err:
            return provider.render_error(err, request, call)
        except StoreUnavailable as exc:  # a shared store needed on the way (throttle, replay check)
            return self._unavailable(request, provider, call, exc)

