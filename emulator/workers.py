"""``emulator serve --workers N``: N processes serving one port, for more than one core.

Each worker is a whole emulator (its own event loop and app) listening with ``SO_REUSEPORT``; the
kernel spreads new connections over them. They are forked from the command's process, which waits
until every worker listens, prints the one "serving on" line, and on SIGINT or SIGTERM stops them
all; if one worker dies the others are stopped too (a half-served port would throttle and journal
unevenly). State is shared through the store, so more than one worker needs a shared one
(``--store redis://...``): the caller refuses N > 1 without it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any, cast

from .config import Settings
from .errors import EmulatorError

#: Seconds every worker may take to listen.
START_TIMEOUT = 60.0

#: What a worker runs: serve ``settings`` on ``port`` with SO_REUSEPORT, call ``ready`` once
#: listening, and stop when the file descriptor ``lifeline`` reads end-of-file (the command's
#: process is gone, even killed). Errors it raises are reported by the command.
Worker = Callable[[Settings, int, Callable[[], None], int], None]


def check_store(url: str) -> None:
    """Refuse a store URL that is no Redis URL or whose Redis does not answer (StorageError, a
    sentence); the ``redis`` extra is needed."""
    try:
        from .core.storage.redis import RedisStore
    except ImportError:
        raise EmulatorError(
            "--store needs the redis client: pip install 'cloud-moderation-emulator[redis]'"
        ) from None

    async def ping() -> None:
        store = RedisStore(url)
        await store.start()
        await store.close()

    asyncio.run(ping())


def _child(
    worker: Worker, settings: Settings, port: int, conn: Connection, lifeline: tuple[int, int]
) -> None:
    os.close(lifeline[1])  # only the command holds the writing end: its exit closes the pipe

    def ready() -> None:
        conn.send(("ready", os.getpid()))

    try:
        worker(settings, port, ready, lifeline[0])
    except EmulatorError as exc:
        conn.send(("error", str(exc)))
        sys.exit(1)


def _reserve(host: str) -> socket.socket:
    """A socket bound with SO_REUSEPORT to a free port of ``host`` and not listening (so it takes
    no connections): the workers bind the same port beside it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


def run(count: int, settings: Settings, worker: Worker) -> int:
    """Run ``count`` workers until a signal (0) or a failure (1, with its message on stderr)."""
    host, port = settings.server.host, settings.server.port
    reserved = _reserve(host) if port == 0 else None
    if reserved is not None:
        port = reserved.getsockname()[1]
    context = multiprocessing.get_context("fork")
    processes: list[Any] = []
    pipes: dict[Any, Any] = {}
    # A worker whose command is gone (killed, say) stops too: it reads end-of-file here.
    lifeline = os.pipe()
    try:
        for n in range(count):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_child,
                args=(worker, settings, port, send, lifeline),
                name=f"emulator-worker-{n + 1}",
            )
            process.start()
            send.close()
            processes.append(process)
            pipes[receive] = process
        os.close(lifeline[0])
        failure = _await_ready(pipes)
    except KeyboardInterrupt:  # Ctrl-C before every worker listened (they got it too)
        failure = "interrupted before every worker listened"
    finally:
        if reserved is not None:
            reserved.close()
    if failure is not None:
        _stop(processes, settings)
        print(f"emulator: error: {failure}", file=sys.stderr)
        return 1
    display = f"[{host}]" if ":" in host else host
    print(f"emulator serving on http://{display}:{port}", flush=True)
    pids = ", ".join(str(p.pid) for p in processes)
    print(f"emulator: {count} workers on port {port} (pids {pids})", file=sys.stderr, flush=True)

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:  # each worker is told once; _stop does not tell them again
            return
        stopping = True
        _terminate(processes)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    ended = wait([p.sentinel for p in processes])
    died = [p for p in processes if p.sentinel in ended] if not stopping else []
    for process in died:
        # Its sentinel closes as it exits, a moment before it can be reaped for its exit code.
        process.join(5)
    _stop(processes, settings, signalled=stopping)
    if died:
        codes = ", ".join(f"{p.pid} exited {p.exitcode}" for p in died)
        print(f"emulator: error: a worker stopped ({codes}); stopped the others", file=sys.stderr)
        return 1
    print("emulator stopped", file=sys.stderr, flush=True)
    return 0


def _await_ready(pipes: dict[Any, Any]) -> str | None:
    """None once every worker said it listens, else the first failure."""
    waiting = dict(pipes)
    deadline = time.monotonic() + START_TIMEOUT
    while waiting:
        ready = wait(list(waiting), timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            return f"the workers did not listen within {START_TIMEOUT:g} s"
        for item in ready:
            conn = cast(Connection, item)
            process = waiting.pop(conn)
            try:
                what, detail = conn.recv()
            except EOFError:
                process.join(5)
                return f"worker {process.pid} exited ({process.exitcode}) before listening"
            if what != "ready":
                return str(detail)
    return None


def _terminate(processes: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)


def _stop(processes: list[Any], settings: Settings, signalled: bool = False) -> None:
    """SIGTERM every worker still running (unless ``signalled`` already); SIGKILL those not gone
    after the shutdown grace."""
    if not signalled:
        _terminate(processes)
    for process in processes:
        process.join(settings.server.shutdown_grace + 5)
        if process.is_alive():
            process.kill()
            process.join()
