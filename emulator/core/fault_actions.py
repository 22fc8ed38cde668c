"""What inbound fault actions do on the wire, and the one middleware that applies the rules.

Actions (``{"type": ...}``):

- ``error``: a provider error (``code``; optional ``status``, ``message``, ``retryAfter`` seconds),
  rendered by the provider in its own shape.
- ``throttle``: what the provider answers to an account over its quota.
- ``latency``: ``fixed`` seconds, ``uniform: [low, high]`` or ``lognormal: {median, sigma}``,
  at most ``cap`` (default 60) seconds, optional ``seed``; then the call goes through.
- ``hang``: hold the connection without answering until the client gives up, at most ``max``
  seconds (default 30, at most 600), then close it.
- ``reset``: a TCP RST before any byte. ``empty``: close with no bytes.
- ``truncate``: the real answer's status line and headers (with the full Content-Length), then only
  ``bytes`` of the body (default half) and a close. ``corrupt``: the real answer with its body
  garbled (not JSON or XML any more). ``drip``: the real answer, its body sent in ``chunks``
  (default 10) spread over ``duration`` seconds.
- ``modify``: the real answer with body fields removed (``remove: [path, ...]``) or set
  (``set: {path: value}``), for contract-drift tests.

Waiting here is real time (the client is measuring it), not the injected clock.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from yarl import URL

from .call import Call
from .callbacks import FaultSource, OutboundFault, OutboundInfo, SharedFaultSource
from .faults import CallView, FaultEngine, Rule, RuleError, finite_number, seed_value

HANG_MAX = 600.0
LATENCY_CAP = 60.0
#: The widest log-normal spread taken: exp(10 sigma) already spans e^±30 around the median.
SIGMA_MAX = 10.0
#: The longest retry hint an error action may give, in seconds (a day).
RETRY_AFTER_MAX = 86400.0
#: The most body bytes a truncate action may keep.
TRUNCATE_MAX = 2**31


def _number(
    action: Mapping[str, Any],
    key: str,
    where: str,
    *,
    default: float | None = None,
    low: float = 0.0,
    high: float,
) -> float:
    value = action.get(key, default)
    if value is None:
        raise RuleError(f"{where}.{key}", "is required")
    return finite_number(value, f"{where}.{key}", low, high)


def _only(action: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(action) - allowed - {"type"})
    if extra:
        raise RuleError(
            f"{where}.{extra[0]}",
            f"unknown field for a {action['type']!r} action (known: {', '.join(sorted(allowed)) or 'none'})",
        )


def inbound_checker(engine: FaultEngine) -> Callable[[Mapping[str, Any], str], None]:
    """The engine's validation of inbound actions (``error`` codes checked against the provider's
    catalogue, as registered with the engine)."""

    def check(action: Mapping[str, Any], where: str) -> None:
        check_action(engine.error_checkers, action, where)

    return check


def check_action(
    error_checkers: Mapping[str, Callable[[Mapping[str, Any], str], None]],
    action: Mapping[str, Any],
    where: str,
) -> None:
    kind = action["type"]
    if kind == "error":
        _only(action, {"provider", "code", "status", "message", "retryAfter"}, where)
        if "status" in action:
            _number(action, "status", where, low=100, high=599)
        if "retryAfter" in action:
            _number(action, "retryAfter", where, high=RETRY_AFTER_MAX)
        if "message" in action and not isinstance(action["message"], str):
            raise RuleError(f"{where}.message", "must be a string")
        error_checkers[action["provider"]](action, where)
    elif kind in ("throttle", "reset", "empty", "corrupt"):
        _only(action, {"provider"}, where)
    elif kind == "latency":
        _only(action, {"provider", "fixed", "uniform", "lognormal", "cap", "seed"}, where)
        shapes = [k for k in ("fixed", "uniform", "lognormal") if k in action]
        if len(shapes) != 1:
            raise RuleError(where, "a latency action needs exactly one of fixed, uniform, lognormal")
        if "fixed" in action:
            _number(action, "fixed", where, high=LATENCY_CAP)
        elif "uniform" in action:
            bounds = action["uniform"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise RuleError(f"{where}.uniform", "must be [low, high] seconds with 0 <= low <= high")
            low, high = (
                finite_number(b, f"{where}.uniform[{i}]", 0, LATENCY_CAP) for i, b in enumerate(bounds)
            )
            if low > high:
                raise RuleError(f"{where}.uniform", "must be [low, high] seconds with 0 <= low <= high")
        else:
            shape = action["lognormal"]
            if not isinstance(shape, dict) or set(shape) != {"median", "sigma"}:
                raise RuleError(f"{where}.lognormal", 'must be {"median": seconds, "sigma": number}')
            _number(shape, "median", f"{where}.lognormal", high=LATENCY_CAP)
            _number(shape, "sigma", f"{where}.lognormal", high=SIGMA_MAX)
        _number(action, "cap", where, default=LATENCY_CAP, high=LATENCY_CAP)
        if "seed" in action:
            seed_value(action["seed"], f"{where}.seed")
    elif kind == "hang":
        _only(action, {"provider", "max"}, where)
        _number(action, "max", where, default=30.0, high=HANG_MAX)
    elif kind == "truncate":
        _only(action, {"provider", "bytes"}, where)
        if "bytes" in action:
            _number(action, "bytes", where, high=TRUNCATE_MAX)
    elif kind == "drip":
        _only(action, {"provider", "duration", "chunks"}, where)
        _number(action, "duration", where, high=HANG_MAX)
        if "chunks" in action:
            _number(action, "chunks", where, low=1, high=10_000)
    elif kind == "modify":
        _only(action, {"provider", "remove", "set"}, where)
        remove = action.get("remove", [])
        if not isinstance(remove, list) or not all(isinstance(p, str) and p for p in remove):
            raise RuleError(f"{where}.remove", "must be a list of field paths")
        if not isinstance(action.get("set", {}), dict):
            raise RuleError(f"{where}.set", "must be an object of field path -> value")
        if not remove and not action.get("set"):
            raise RuleError(where, "a modify action needs remove or set")
        # The paths name fields of the provider's wire format: the provider checks them.
        error_checkers[action["provider"]](action, where)
    else:
        raise RuleError(
            f"{where}.type",
            f"unknown action {kind!r} (known: error, throttle, latency, hang, "
            "reset, empty, truncate, corrupt, drip, modify)",
        )


class FaultRenderer(Protocol):
    """What a provider renders for the rules that answer in its name."""

    def fault_response(self, spec: Mapping[str, Any], request: web.Request, call: Call) -> web.StreamResponse:
        """The provider error of an ``error`` action, or its throttling answer for ``throttle``."""
        ...

    def modify_body(self, body: bytes, edit: Mapping[str, Any]) -> bytes:
        """A success body with fields removed or set (``{"remove": [...], "set": {...}}``)."""
        ...


class _Latency:
    """Delay draws, seeded per rule so a scenario replays the same delays."""

    def __init__(self) -> None:
        self._rngs: dict[str, random.Random] = {}

    def draw(self, rule: Rule) -> float:
        action = rule.action
        rng = self._rngs.setdefault(rule.id, random.Random(action.get("seed")))
        if "fixed" in action:
            delay = float(action["fixed"])
        elif "uniform" in action:
            low, high = action["uniform"]
            delay = rng.uniform(low, high)
        else:
            shape = action["lognormal"]
            # Capped in log space: exp() of a far draw would overflow before min() could cap it.
            exponent = min(shape["sigma"] * rng.gauss(0.0, 1.0), math.log(LATENCY_CAP) + 50.0)
            delay = shape["median"] * math.exp(exponent)
        return min(delay, float(action.get("cap", LATENCY_CAP)))


def _cut(request: web.Request, call: Call, how: str) -> None:
    transport = request.transport
    call.cut = how
    if transport is None:
        return
    if how == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


class ConnectionCut(asyncio.CancelledError):
    """Raised after a fault closed the connection: aiohttp then ends the request silently."""


async def _stream(
    request: web.Request, call: Call, response: web.Response, rule: Rule
) -> web.StreamResponse:
    body = response.body if isinstance(response.body, bytes) else b""
    kind = rule.action["type"]
    out = web.StreamResponse(status=response.status, reason=response.reason)
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            out.headers.add(name, value)
    if kind == "truncate":
        keep = int(rule.action.get("bytes", len(body) // 2))
        out.content_length = len(body)
        await out.prepare(request)
        await out.write(body[:keep])
        call.sent_body = body[:keep]
        _cut(request, call, "truncated")
        return out
    if kind == "corrupt":
        garbled = bytes((b ^ 0xA5) for b in body) or b"\xa5"
        out.content_length = len(garbled)
        await out.prepare(request)
        await out.write(garbled)
        call.sent_body = garbled
        return out
    # drip
    chunks = max(1, int(rule.action.get("chunks", 10)))
    pause = float(rule.action["duration"]) / chunks
    size = max(1, math.ceil(len(body) / chunks))
    out.content_length = len(body)
    await out.prepare(request)
    for i in range(chunks):
        await asyncio.sleep(pause)
        await out.write(body[i * size : (i + 1) * size])
    call.sent_body = body
    return out


class FaultApplier:
    """Carries out the inbound rule the engine picked for a call (the gateway asks it)."""

    def __init__(self) -> None:
        self._latency = _Latency()

    async def apply(
        self,
        rule: Rule,
        request: web.Request,
        call: Call,
        provider: FaultRenderer | None,
        answer: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """The answer ``rule`` makes of the call; ``answer`` runs the call as it would have gone."""
        kind = rule.action["type"]
        if kind == "latency":
            await asyncio.sleep(self._latency.draw(rule))
            return await answer()
        if kind in ("reset", "empty"):
            _cut(request, call, kind)
            raise ConnectionCut()
        if kind == "hang":
            await _hang(request, float(rule.action.get("max", 30.0)))
            _cut(request, call, "hang")
            raise ConnectionCut()
        if provider is None:
            # Not a provider path: provider-shaped actions cannot apply; let it through.
            return await answer()
        if kind in ("error", "throttle"):
            return provider.fault_response(rule.action, request, call)
        response = await answer()
        if not isinstance(response, web.Response):
            return response
        if kind == "modify":
            if response.status == 200 and isinstance(response.body, bytes):
                response.body = provider.modify_body(response.body, rule.action)
            return response
        return await _stream(request, call, response, rule)


#: Set when the server begins to shut down: hung calls end at once instead of holding the
#: shutdown (server.shutdown_grace bounds every other call).
RELEASE_HANGS = web.AppKey("release_hangs", asyncio.Event)


def setup_hang_release(app: web.Application) -> None:
    app[RELEASE_HANGS] = release = asyncio.Event()

    async def on_shutdown(app: web.Application) -> None:
        del app
        release.set()

    app.on_shutdown.append(on_shutdown)


async def _hang(request: web.Request, limit: float) -> None:
    """Wait until the client goes away, the server shuts down, or ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    release = request.config_dict.get(RELEASE_HANGS)
    while (remaining := deadline - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing() or (release is not None and release.is_set()):
            return
        await asyncio.sleep(min(0.05, remaining))


def check_outbound(action: Mapping[str, Any], where: str) -> None:
    """Outbound (callback) actions: delay, drop, duplicate, wrong_checksum, out_of_order,
    misspelled_audit_key (core/callbacks.py says what each does)."""
    try:
        OutboundFault.from_spec({k: v for k, v in action.items() if k != "provider"})
    except ValueError as exc:
        raise RuleError(where, str(exc)) from None


def outbound_faults(engine: FaultEngine) -> FaultSource:
    """The dispatcher's fault source: rules with ``"direction": "out"``, matched on deliveries."""
    engine.action_checkers["out"] = check_outbound

    def source(info: OutboundInfo) -> OutboundFault | None:
        if not engine.has_rules("out"):
            return None
        return _outbound_fault(engine.pick(_outbound_view(info)))

    return source


def shared_outbound_faults(engine: FaultEngine) -> SharedFaultSource:
    """:func:`outbound_faults` deciding with the counts every process sharing the store keeps
    (:meth:`FaultEngine.pick_shared`)."""

    async def source(info: OutboundInfo) -> OutboundFault | None:
        if not engine.has_rules("out"):
            return None
        return _outbound_fault(await engine.pick_shared(_outbound_view(info)))

    return source


def _outbound_view(info: OutboundInfo) -> CallView:
    return CallView(
        direction="out", provider=info.provider, action=info.action, method="POST",
        path=URL(info.url).path, account=info.account, namespace=info.namespace, headers={},
    )


def _outbound_fault(rule: Rule | None) -> OutboundFault | None:
    if rule is None:
        return None
    spec = {k: v for k, v in rule.action.items() if k != "provider"}
    return OutboundFault.from_spec(spec, rule=rule.label)
