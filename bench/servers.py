"""The servers under load, each in its own process: ``python -m bench.servers emulator|bare``.

``bare`` is the baseline: a plain aiohttp app answering the same paths with the same bodies and
headers as the emulator's success answers, doing nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import uuid
from collections.abc import Callable, Hashable
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator import load
from emulator.core.clock import RealClock
from emulator.keys import LIMITER
from emulator.server import start


def bare_app() -> web.Application:
    async def image(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4()).upper()
        body = f'{{"code":200,"msg":"OK","requestId":"{request_id}"}}'.encode()
        return web.Response(
            body=body,
            headers={"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id},
        )

    async def badcase(request: web.Request) -> web.Response:
        request_id = uuid.uuid4().hex
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

    app = web.Application()
    app.router.add_post("/green/image/feedback", image)
    app.router.add_post("/report/badcase", badcase)
    app.router.add_get("/_emulator/health", health)
    return app


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
        runner = web.AppRunner(bare_app(), access_log=None, handle_signals=False)
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
    parser.add_argument("kind", choices=["emulator", "bare"])
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
