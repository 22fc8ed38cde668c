"""Running the app: in-process (async or in a background thread) and for the CLI."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from .app import create_app
from .config import Settings, load
from .core.clock import Clock
from .errors import ServerStartError

log = logging.getLogger("emulator.server")

#: Seconds an idle keep-alive connection is kept open. AppRunner's default is 3630; 75 is what
#: web.run_app (and nginx) use, so idle clients do not hold sockets for an hour.
KEEPALIVE_TIMEOUT = 75.0
#: At most one log line per this many seconds about connections that cannot be accepted (the
#: open-file limit): the loop retries every second, each with a traceback.
ACCEPT_ERROR_LOG_INTERVAL = 10.0


class ReadTimeout(asyncio.CancelledError):
    """Put into a request body the client did not send in time: the call ends as if the client had
    gone away (journaled without an answer), and the connection is closed."""


class _TimedReads(RequestHandler):
    """aiohttp's connection handler with read deadlines, which aiohttp (3.14) does not have: its
    keepalive_timeout closes only connections waiting for a request, counted from the last answer
    and not moved by data, and a body may take forever. Here a request head must be complete
    ``read_timeout`` seconds after its first byte arrives, and its body ``read_timeout`` seconds
    after the head. Relies on RequestHandler's ``_request_count`` (heads parsed), ``_messages``
    (parsed requests not yet handled) and ``_request_in_progress``; tests/hardening/
    test_slow_clients.py fails if they change."""

    __slots__ = ("_read_timeout", "_read_timer", "_read_body")

    def __init__(self, manager: web.Server, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._read_timeout = read_timeout
        self._read_timer: asyncio.TimerHandle | None = None
        #: The body the timer waits for (None: a head).
        self._read_body: StreamReader | None = None

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if not self._read_timeout or self.transport is None:
            return
        if self._request_count != heads:
            # A head is complete: its body, unless all here already, gets its own deadline.
            payload = self._messages[-1][1] if self._messages else None
            self._arm(payload if payload is not None and not payload.is_eof() else None, heads=None)
        elif not self._request_in_progress and (
            self._read_timer is None or (self._read_body is not None and self._read_body.is_eof())
        ):
            self._arm(None, heads=self._request_count)  # the first bytes of a head

    def _arm(self, payload: StreamReader | None, *, heads: int | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._read_body = payload
        if payload is None and heads is None:
            return
        self._read_timer = self._loop.call_later(self._read_timeout, self._expired, payload, heads)

    def _expired(self, payload: StreamReader | None, heads: int | None) -> None:
        self._read_timer = None
        self._read_body = None
        if payload is not None:
            if payload.is_eof():
                return
            what = "body"
            payload.set_exception(ReadTimeout())
        elif heads == self._request_count and not self._request_in_progress:
            what = "head"
        else:
            return  # the head arrived; its request is being answered
        log.debug("closing a connection: request %s not received within %gs", what, self._read_timeout)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        super().connection_lost(exc)


class _Site(web.BaseSite):
    """A TCP site whose connections are :class:`_TimedReads` (web.TCPSite serves aiohttp's own)."""

    __slots__ = ("_host", "_port", "_factory", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        factory: Callable[[], Any],
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._factory = factory
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory,
            self._host,
            self._port,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
            backlog=self._backlog,
        )


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, interval: float = ACCEPT_ERROR_LOG_INTERVAL) -> None:
    """Log the loop's "cannot accept" errors (out of file descriptors) at most once per
    ``interval`` seconds, with a count of those left out; every other error as before."""
    previous = loop.get_exception_handler()
    if getattr(previous, "quiet_accept_errors", False):
        return
    next_log = 0.0
    left_out = 0

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal next_log, left_out
        if not str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = loop.time()
        if now < next_log:
            left_out += 1
            return
        log.error(
            "cannot accept connections: %s (%d more since the last message; the next in %gs at the earliest)",
            context.get("exception"),
            left_out,
            interval,
        )
        next_log = now + interval
        left_out = 0

    handler.quiet_accept_errors = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


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
    reuse_port: bool = False,
) -> tuple[web.AppRunner, RunningServer]:
    """Serve ``settings`` until the runner is cleaned up. ``reuse_port``: SO_REUSEPORT, so that
    several processes (serve --workers N) listen on one port and the kernel spreads connections."""
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
    quiet_accept_errors(asyncio.get_running_loop())
    server = runner.server
    assert server is not None
    loop = asyncio.get_running_loop()
    read_timeout = settings.server.read_timeout

    def connection() -> _TimedReads:
        return _TimedReads(
            server, loop=loop, read_timeout=read_timeout, keepalive_timeout=KEEPALIVE_TIMEOUT, access_log=None
        )

    site = _Site(runner, host, port, connection, reuse_port)
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
