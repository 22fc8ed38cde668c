"""Bounded shutdown: SIGTERM ends ``emulator serve`` within ``server.shutdown_grace`` whatever
faults are active (issue table: with a ``hang`` fault, SIGTERM took 121 s; Docker kills at 10 s).

The emulator runs as a real subprocess on 127.0.0.1; hung calls are released (their connection
closed), deliveries still pending are logged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: A correctness bound, not a benchmark: the default grace is 5 s.
BOUND = 15.0


class Emulator:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)

    def admin(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + "/_emulator" + path,
            data=data,
            method="GET" if body is None else ("PUT" if path.endswith("/callback") else "POST"),
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def terminate(self) -> tuple[float, str]:
        """SIGTERM; (seconds until the process ended, what it wrote to stderr)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return time.monotonic() - t0, err


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    started: list[Emulator] = []

    def start(rules: list[dict[str, Any]], **env: str) -> Emulator:
        scenario = tmp_path / "faults.json"
        scenario.write_text(json.dumps({"name": "faults", "description": "test", "rules": rules}))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
        environ.update(env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "serve", "--port", "0", "--scenario", str(scenario)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("emulator serving on "), (line, proc.stderr.read() if proc.stderr else "")
        emu = Emulator(proc, line.split()[-1])
        started.append(emu)
        return emu

    yield start
    for emu in started:
        if emu.proc.poll() is None:
            emu.proc.kill()
            emu.proc.communicate()


def held_call(emu: Emulator, path: str = "/green/image/feedback", rule: int = 0) -> socket.socket:
    """A call that fault rule ``rule`` holds; returns once the emulator has it (the rule counted it)."""
    fired = emu.admin("/faults")["rules"][rule]["stats"]["fired"]
    sock = socket.create_connection((emu.host, emu.port), timeout=30)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        + b"Content-Length: 2\r\n\r\n{}"
    )
    deadline = time.monotonic() + 10
    while emu.admin("/faults")["rules"][rule]["stats"]["fired"] <= fired:
        assert time.monotonic() < deadline, "the rule never fired"
        time.sleep(0.02)
    return sock


HANG = {"match": {"provider": "alibaba"}, "action": {"type": "hang", "max": 600}}


def test_sigterm_with_a_hung_call_ends_within_the_grace(emulator: Any) -> None:
    emu = emulator([HANG])
    held = [held_call(emu) for _ in range(3)]
    took, err = emu.terminate()
    assert emu.proc.returncode == 0, err
    assert took < BOUND, (took, err)
    assert "emulator stopped" in err
    # The hung calls were released: their connections were closed, not left open.
    for sock in held:
        with sock:
            sock.settimeout(5)
            assert sock.recv(100) == b""


def test_a_short_grace_is_kept_and_pending_deliveries_are_logged(emulator: Any) -> None:
    # A receiver that accepts connections and never answers: the delivery stays in flight.
    with socket.socket() as sink:
        sink.bind(("127.0.0.1", 0))
        sink.listen()
        url = f"http://127.0.0.1:{sink.getsockname()[1]}/cb"
        # A call delayed for a minute: cut when the grace is spent.
        slow = {"match": {"provider": "tencent"}, "action": {"type": "latency", "fixed": 60}}
        env = {"EMULATOR_SERVER__SHUTDOWN_GRACE": "1", "EMULATOR_CALLBACKS__ATTEMPT_TIMEOUT": "60"}
        emu = emulator([HANG, slow], **env)
        emu.admin("/alibaba/callback", {"url": url})
        emu.admin("/alibaba/reviews", {"taskId": "t-1", "suggestion": "block"})
        held = [held_call(emu), held_call(emu, "/report/badcase", rule=1)]
        took, err = emu.terminate()
        for sock in held:
            sock.close()
    assert took < 1 + 5, (took, err)  # a second of grace, plus start-up slack of the process
    assert "1 callback delivery still pending, abandoned" in err, err
    assert "pending alibaba/ImageScanNotification" in err, err
