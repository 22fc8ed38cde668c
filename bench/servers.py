"""The servers under load, each in its own process: ``python -m bench.servers emulator|bare|floor``.

``bare`` is the baseline: a plain aiohttp app answering the same paths with the same bodies and
headers as the emulator's success answers, doing nothing else. ``floor`` adds the work no
emulator of a signed API can skip (body read, hash, HMAC, parse, request id, a journal record),
so emulator/floor is the price of everything else.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiohttp import web
from lxml import etree

from emulator import load
from emulator.core.clock import RealClock
from emulator.keys import LIMITER
from emulator.server import start
from emulator.testing.signers import ACCESS_KEY_SECRET, SECRET_KEY

from .common import BADCASE_PATH, IMAGE_PATH


def image_answer(request_id: str) -> web.Response:
    """The emulator's ImageScanFeedback success: its body and headers."""
    body = f'{{"code":200,"msg":"OK","requestId":"{request_id}"}}'.encode()
    return web.Response(
        body=body,
        headers={"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id},
    )


def badcase_answer(request_id: str) -> web.Response:
    """The emulator's /report/badcase success: its body and headers."""
    body = f"<Response><RequestId>{request_id}</RequestId></Response>".encode()
    return web.Response(
        body=body,
        headers={
            "Content-Type": "application/xml",
            "Date": formatdate(usegmt=True),
            "Server": "tencent-ci",
            "x-ci-request-id": request_id,
        },
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def app_with(
    image: Callable[[web.Request], Awaitable[web.Response]],
    badcase: Callable[[web.Request], Awaitable[web.Response]],
) -> web.Application:
    app = web.Application()
    app.router.add_post(IMAGE_PATH, image)
    app.router.add_post(BADCASE_PATH, badcase)
    app.router.add_get("/_emulator/health", health)
    return app


def bare_app() -> web.Application:
    """The answers alone: no body read, no signature, no parsing, no record."""

    async def image(request: web.Request) -> web.Response:
        return image_answer(str(uuid.uuid4()).upper())

    async def badcase(request: web.Request) -> web.Response:
        return badcase_answer(uuid.uuid4().hex)

    return app_with(image, badcase)


def floor_app() -> web.Application:
    """The essential work of a signed call and nothing more, written as directly as aiohttp
    allows: read the body, hash it, HMAC a canonical string of method, path, a few headers and
    the body hash, parse the body, make a request id, answer, append a record to a bounded
    journal. No routing table, validation, throttle, fault matching or config: what is left
    between this and the emulator is the cost of those and of its structure."""
    journal: deque[tuple[str, str, int, bool]] = deque(maxlen=10_000)
    ali_key = ACCESS_KEY_SECRET.encode()
    cos_key = SECRET_KEY.encode()
    # Hardened as the emulator's XML parser is: no DTD, entities or network.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

    async def image(request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        canonical = "\n".join(
            (
                request.method,
                request.path,
                headers.get("x-acs-action", ""),
                headers.get("x-acs-date", ""),
                headers.get("content-type", ""),
                hashlib.sha256(body).hexdigest(),
            )
        )
        signature = hmac.new(ali_key, canonical.encode(), hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(signature, headers.get("authorization", ""))
        json.loads(body)
        request_id = str(uuid.uuid4()).upper()
        journal.append((request_id, request.path, len(body), signed))
        return image_answer(request_id)

    async def badcase(request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        canonical = "\n".join(
            (
                request.method.lower(),
                request.path,
                headers.get("host", ""),
                headers.get("content-type", ""),
                hashlib.sha256(body).hexdigest(),
            )
        )
        signature = hmac.new(cos_key, canonical.encode(), hashlib.sha1).hexdigest()
        signed = hmac.compare_digest(signature, headers.get("authorization", ""))
        etree.fromstring(body, parser)
        request_id = uuid.uuid4().hex
        journal.append((request_id, request.path, len(body), signed))
        return badcase_answer(request_id)

    return app_with(image, badcase)


APPS: dict[str, Callable[[], web.Application]] = {"bare": bare_app, "floor": floor_app}


class RecordingClock(RealClock):
    """The real clock, remembering its last monotonic reading (the instant the limiter used)."""

    last = 0.0

    def monotonic(self) -> float:
        self.last = super().monotonic()
        return self.last


def record_throttle(app: web.Application, clock: RecordingClock, log: list[tuple[float, bool]]) -> None:
    """Log every admission decision of the limiter with the instant it was made at."""
    limiter = app[LIMITER]
    decide = limiter.try_acquire

    def try_acquire(key: Hashable, limit: int) -> bool:
        admitted = decide(key, limit)
        log.append((clock.last, admitted))
        return admitted

    limiter.try_acquire = try_acquire  # type: ignore[method-assign]


async def run(kind: str, port: int, config: str | None, throttle_log: Path | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    decisions: list[tuple[float, bool]] = []
    if kind == "emulator":
        clock = RecordingClock()
        runner, server = await start(load(config, env={}), clock=clock, host="127.0.0.1", port=port)
        if throttle_log is not None:
            record_throttle(server.app, clock, decisions)
    else:
        runner = web.AppRunner(APPS[kind](), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if throttle_log is not None:
            throttle_log.write_text(json.dumps(decisions))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=["emulator", *APPS])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--throttle-log", type=Path, help="write the limiter's decisions here at exit")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument text profile here at exit")
    args = parser.parse_args()
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if args.uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    profiler: Any = None
    if args.profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(args.kind, args.port, args.config, args.throttle_log))
    if profiler is not None:
        profiler.stop()
        args.profile.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
