"""``emulator serve --workers N``, run as a real command: N processes on one port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from emulator.cli import main
from emulator.testing.processes import clean_env, serving

CLEAN_ENV = clean_env()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=CLEAN_ENV,
    )


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving("--workers", "2", "--store", redis_url) as running:  # ready once both listen
        yield running


def pids_answering(url: str) -> set[int]:
    """The pids in health answers, each on a new connection (the kernel picks a worker per
    connection), until two differ (at most 100 calls: all to one of two workers is a chance of 2**-99)."""
    pids: set[int] = set()
    for _ in range(100):
        with urllib.request.urlopen(f"{url}/_emulator/health", timeout=5) as response:
            pids.add(json.load(response)["pid"])
        if len(pids) == 2:
            break
    return pids


def test_more_than_one_worker_without_a_shared_store_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "2", "--port", "0"]) == 2
    stderr = capsys.readouterr().err
    assert "--workers 2: several workers need a shared store (--store redis://HOST:PORT/DB)" in stderr
    assert main(["serve", "--workers", "2", "--store", "redis://127.0.0.1:1/0", "--data", "/nowhere"]) == 2
    assert "storage.url and storage.path both set: state is kept in one store" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "0"])
    assert "workers must be 1..64, not 0" in capsys.readouterr().err


def test_a_wrong_or_unreachable_store_fails_the_start_clearly() -> None:
    wrong = run("--store", "http://127.0.0.1:6379/0", "--workers", "2", "--port", "0")
    assert wrong.returncode == 1
    assert "http://127.0.0.1:6379/0: storage.url: not a Redis URL" in wrong.stderr
    gone = run("--store", "redis://127.0.0.1:1/0", "--port", "0")
    assert gone.returncode == 1
    assert "redis://127.0.0.1:1/0: storage.url: cannot reach Redis" in gone.stderr
    assert "Traceback" not in wrong.stderr + gone.stderr


def test_two_workers_answer_on_one_port_and_stop_together(
    two_workers: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = two_workers
    pids = pids_answering(url)
    assert len(pids) == 2 and proc.pid not in pids
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr and "emulator stopped" in stderr
    for pid in pids:  # the workers are gone too
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_dead_worker_stops_the_others(two_workers: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = two_workers
    first, second = sorted(pids_answering(url))
    os.kill(first, signal.SIGKILL)
    code = proc.wait(timeout=15)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert code == 1, stderr
    assert f"a worker stopped ({first} exited -9); stopped the others" in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie nobody reaped counts: it serves nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_killed_command_takes_its_workers_with_it(two_workers: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = two_workers
    pids = pids_answering(url)
    proc.kill()  # SIGKILL: no chance to stop them itself
    proc.wait(timeout=15)
    deadline = time.monotonic() + 15
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in pids)
