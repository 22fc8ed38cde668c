"""A throwaway ``redis-server`` for tests and benchmarks: a free loopback port, a temporary
directory, nothing saved (``--save '' --appendonly no``), stopped (and its directory removed) on exit.

    with redis_server() as url:   # "redis://127.0.0.1:PORT/0"
        ...

:func:`available` says whether the ``redis-server`` program is installed (tests skip without it;
``.ci/run`` installs it, so CI never skips).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import EmulatorError

#: Seconds the server may take to answer PING after it was started.
START_TIMEOUT = 10.0


class RedisServerError(EmulatorError):
    """``redis-server`` is missing, or did not start in time (its log is in the message)."""


def available() -> bool:
    return shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    """One PING in RESP, without a client library (this module is imported by the test plugin's
    users, who may not have redis-py)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(*args: str, port: int | None = None, timeout: float = START_TIMEOUT) -> Iterator[str]:
    """Run a ``redis-server`` for the block and yield its URL (database 0), on ``port`` (default: a
    free one). ``args`` are extra ``redis-server`` options (``"--maxmemory", "10mb"``)."""
    program = shutil.which("redis-server")
    if program is None:
        raise RedisServerError("redis-server is not installed (Debian: apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="emulator-redis-") as tmp:
        for _attempt in range(3):
            # A free port may be taken between choosing and binding it: then another.
            chosen = port if port is not None else _free_port()
            log_path = Path(tmp) / f"redis-{chosen}.log"
            command = [
                program,
                "--port", str(chosen),
                "--bind", "127.0.0.1",
                "--dir", tmp,
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--logfile", str(log_path),
                *args,
            ]  # fmt: skip
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + timeout
                while process.poll() is None and not _ping(chosen):
                    if time.monotonic() > deadline:
                        raise RedisServerError(
                            f"redis-server did not answer within {timeout}s: {_tail(log_path)}"
                        )
                    time.sleep(0.01)
                if process.poll() is not None:
                    if port is None and "Address already in use" in _tail(log_path):
                        continue
                    raise RedisServerError(f"redis-server exited ({process.returncode}): {_tail(log_path)}")
                yield f"redis://127.0.0.1:{chosen}/0"
                return
            finally:
                _stop(process)
        raise RedisServerError("redis-server found no free port")


#: Set (to anything) where the tests must not skip for want of redis-server (.ci/run sets it).
REQUIRE_VARIABLE = "REQUIRE_REDIS_SERVER"


@contextmanager
def server_for_tests() -> Iterator[str]:
    """:func:`redis_server` for a test fixture: skips the test when ``redis-server`` is not
    installed, unless ``REQUIRE_REDIS_SERVER`` is set (then it fails)."""
    if not available() and not os.environ.get(REQUIRE_VARIABLE):
        import pytest  # only tests call this

        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    with redis_server() as url:
        yield url


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return "(no log)"
