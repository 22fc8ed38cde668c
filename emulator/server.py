"""Running the app: in-process (async or in a background thread) and for the CLI."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from aiohttp import web

from .app import create_app
from .config import Settings, load
from .core.clock import Clock
from .errors import ServerStartError

#: Seconds an idle keep-alive connection is kept open. AppRunner's default is 3630; 75 is what
#: web.run_app (and nginx) use, so idle clients do not hold sockets for an hour. aiohttp has no
#: timeout for reading a request's head or body: a client trickling bytes holds its own connection,
#: never the event loop (tests/hardening/test_load.py).
KEEPALIVE_TIMEOUT = 75.0


@dataclass(frozen=True)
class RunningServer:
    """A started emulator: where it listens and the app it serves (for state inspection)."""

    app: web.Application
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


async def start(
    settings: Settings,
    *,
    clock: Clock | None = None,
    host: str | None = None,
    port: int | None = None,
) -> tuple[web.AppRunner, RunningServer]:
    app = create_app(settings, clock=clock)
    host = settings.server.host if host is None else host
    port = settings.server.port if port is None else port
    # shutdown_timeout: how long a shutdown waits for calls in progress before it cancels them
    # (aiohttp's default is 60 s); hung calls are released at once (core/fault_actions.py).
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        shutdown_timeout=settings.server.shutdown_grace,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound_port = runner.addresses[0][1]
    return runner, RunningServer(app=app, host=host, port=bound_port)


@asynccontextmanager
async def serve(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[RunningServer]:
    """Serve the emulator on ``host:port`` (a free loopback port by default) for the block.

    >>> async with serve() as server:
    ...     print(server.url)
    """
    runner, server = await start(
        settings if settings is not None else load(), clock=clock, host=host, port=port
    )
    try:
        yield server
    finally:
        await runner.cleanup()


@contextmanager
def serve_in_thread(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[RunningServer]:
    """Serve the emulator from a background thread with its own event loop, for synchronous
    code such as the official SDKs (which block on HTTP and so cannot share the test's loop)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    result: list[RunningServer] = []
    failure: list[BaseException] = []
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            runner, server = await start(
                settings if settings is not None else load(), clock=clock, host=host, port=port
            )
        except BaseException as exc:  # reported to the caller's thread below
            failure.append(exc)
            started.set()
            return
        result.append(server)
        started.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), name="emulator", daemon=True)
    thread.start()
    started.wait()
    if failure:
        thread.join()
        loop.close()
        raise failure[0]
    try:
        yield result[0]
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        loop.close()
