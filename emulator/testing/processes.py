"""``emulator serve`` in a process of its own, for tests that need a real one (signals, ``kill -9``,
several workers): started on a free port with a clean environment, ready once it says so."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

READY = "emulator serving on "


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without ``EMULATOR_*`` (a developer's shell must not change a test), plus
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    env.update(extra or {})
    return env


def start_serving(*args: str, env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """``python -m emulator serve --port 0 ARGS``; (the process, its URL) once it printed its ready
    line, else AssertionError with what it said on stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(env),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server says it is ready (or exits)
    if not line.startswith(READY + "http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(f"emulator serve did not start: {line!r} {proc.communicate()[1]}")
    return proc, line.split()[-1]


def stop(proc: subprocess.Popen[str], timeout: float = 15) -> None:
    """Kill it if it still runs, and collect it."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=timeout)


@contextmanager
def serving(*args: str, env: Mapping[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """:func:`start_serving` for the block, stopped after it."""
    proc, url = start_serving(*args, env=env)
    try:
        yield proc, url
    finally:
        stop(proc)
