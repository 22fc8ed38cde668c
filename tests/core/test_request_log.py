"""The request log of ``emulator serve``: one stderr line per exchange, read from a real subprocess."""

from __future__ import annotations

import json
import logging
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.core import log
from emulator.testing.signers import cos_sdk_headers, tea_sdk_headers

from ..test_cli import CLEAN_ENV

pytest_plugins = ["pytester"]

UID = "1234567890123456"
#: Admin changes are JSON (cross-site protection), even bodiless.
JSON = {"Content-Type": "application/json"}


class Served:
    """``emulator serve`` on a free loopback port; its stderr lines arrive in :attr:`lines`."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**CLEAN_ENV, "EMULATOR_CALLBACKS__SHUTDOWN_GRACE": "0", **(env or {})},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        assert line.startswith("emulator serving on http://127.0.0.1:"), line + self.proc.stderr.read()
        self.url = line.split()[-1]
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float = 10.0) -> str:
        """The next stderr line that matches ``pattern`` (lines before it are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                saw = "\n".join(self.seen)
                raise AssertionError(f"no stderr line matched {pattern!r}; saw:\n{saw}") from None
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def stop(self) -> list[str]:
        """Stop the server; every stderr line it wrote."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    started = Served()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def served(server: Served) -> Served:
    """The module's server, reset (fault rules and deliveries gone), with the lines so far read."""
    assert post(f"{server.url}/_emulator/reset", b"{}", JSON)[0] == 200
    while not server.lines.empty():
        server.seen.append(server.lines.get())
    return server


def post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def alibaba(server: Served, body: dict[str, Any], *, secret: str = "testAccessKeySecret",
            path: str = "/green/image/feedback", action: str = "ImageScanFeedback") -> tuple[int, bytes]:
    raw = json.dumps(body).encode()
    headers = tea_sdk_headers(
        raw, time.time(), path=path, action=action, nonce=uuid.uuid4().hex, secret=secret
    )
    return post(server.url + path, raw, headers)


FEEDBACK = {"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}


def test_a_signed_call_is_one_line(served: Served) -> None:
    assert alibaba(served, FEEDBACK)[0] == 200
    line = served.expect(r" in  alibaba ImageScanFeedback ")
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z INFO    in  alibaba ImageScanFeedback account={UID} "
        r"ns=default POST /green/image/feedback -> 200 \d+\.\dms",
        line,
    ), line


def test_refused_calls_show_status_and_the_providers_error_code(served: Served) -> None:
    assert alibaba(served, FEEDBACK, secret="wrong")[0] == 400
    line = served.expect(r"ImageScanFeedback")
    assert f"account={UID} " in line and "-> 400 SignatureDoesNotMatch " in line
    # Tencent's XML error, signed with the wrong key.
    xml = b"<Request><ContentType>1</ContentType><Label>Porn</Label><Text>eA==</Text></Request>"
    headers = cos_sdk_headers(xml, time.time(), secret_key="wrong")
    assert post(served.url + "/report/badcase", xml, headers)[0] == 403
    line = served.expect(r"tencent")
    assert "in  tencent ReportBadcase account=1250000000 " in line
    assert "POST /report/badcase -> 403 SignatureDoesNotMatch " in line


def test_an_injected_fault_is_named(served: Served) -> None:
    rule = {
        "name": "down",
        "match": {"provider": "alibaba"},
        "action": {"type": "error", "code": "ServiceUnavailable"},
    }
    assert post(f"{served.url}/_emulator/faults", json.dumps(rule).encode(), JSON)[0] == 201
    assert alibaba(served, FEEDBACK)[0] == 503
    line = served.expect(r"ImageScanFeedback")
    assert "-> 503 ServiceUnavailable " in line
    assert re.search(r" fault='f\d+ \(down\)'$", line), line
    # A fault that cuts the connection: no status, and why.
    rule = {"name": "cut", "match": {"provider": "alibaba"}, "action": {"type": "reset"}, "priority": 5}
    assert post(f"{served.url}/_emulator/faults", json.dumps(rule).encode(), JSON)[0] == 201
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        alibaba(served, FEEDBACK)
    line = served.expect(r"ImageScanFeedback")
    assert "-> --- " in line and re.search(r" fault='f\d+ \(cut\)' error='no response \(reset\)'$", line)


def test_each_callback_attempt_is_a_line_with_its_outcome(served: Served) -> None:
    import http.server

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=receiver.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/notify"
        body = {"scenes": ["porn"], "tasks": [{"url": "http://a/1.jpg"}], "callback": url, "seed": "s"}
        status, _ = alibaba(served, body, path="/green/image/asyncscan", action="ImageAsyncScan")
        assert status == 200
        served.expect(r" in  alibaba ImageAsyncScan .*-> 200 ")
        line = served.expect(r" out alibaba ")
        want = (
            f"out alibaba ImageAsyncScanCallback account={UID} ns=default POST {url} "
            "attempt=1/17 -> 500 failed "
        )
        assert want in line, line
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join()


def test_json_lines_parse_and_carry_the_fields() -> None:
    server = Served("--log-format", "json")
    try:
        assert alibaba(server, FEEDBACK, secret="wrong")[0] == 400
        line = server.expect(r"ImageScanFeedback")
    finally:
        lines = server.stop()
    doc = json.loads(line)
    assert doc["level"] == "info" and doc["logger"] == "emulator.requests"
    assert {k: doc[k] for k in ("direction", "provider", "action", "account", "namespace")} == {
        "direction": "in",
        "provider": "alibaba",
        "action": "ImageScanFeedback",
        "account": UID,
        "namespace": "default",
    }
    assert (doc["method"], doc["target"], doc["status"], doc["code"]) == (
        "POST", "/green/image/feedback", 400, "SignatureDoesNotMatch"
    )
    assert doc["fault"] is None and doc["durationMs"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["time"])
    for other in lines:  # every line the server wrote is one JSON object
        if other.startswith("{"):
            json.loads(other)


def test_a_higher_level_hides_the_exchanges() -> None:
    server = Served("--log-level", "WARNING")
    try:
        # The line is written before the answer is sent: once answered, it would be there.
        assert alibaba(server, FEEDBACK)[0] == 200
        assert alibaba(server, FEEDBACK, secret="wrong")[0] == 400
    finally:
        lines = server.stop()
    assert not [line for line in lines if "ImageScanFeedback" in line], lines


def test_a_bad_log_option_names_the_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--log-level", "loud"],
        capture_output=True, text=True, timeout=30, env=CLEAN_ENV,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        'emulator: error: option --log-level: server.log_level: must be one of "debug", "info"'
    )


async def test_in_process_servers_stay_quiet_unless_the_level_asks(caplog: pytest.LogCaptureFixture) -> None:
    import aiohttp

    from emulator import serve
    from emulator.testing.settings import make_settings

    async def call(url: str) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/green/image/feedback", data=b"{}") as response:
                assert response.status == 400

    caplog.set_level(logging.WARNING, logger="emulator")
    async with serve(make_settings()) as server:
        assert not log.enabled()
        await call(server.url)
        assert not [r for r in caplog.records if r.name == "emulator.requests"]
        # The pytest plugin's --emulator-log (or the application's logging) lowers the level.
        caplog.set_level(logging.INFO, logger="emulator")
        await call(server.url)
    (record,) = [r for r in caplog.records if r.name == "emulator.requests"]
    fields = record.exchange  # type: ignore[attr-defined]
    assert (fields["action"], fields["status"]) == ("ImageScanFeedback", 400)
    assert fields["code"] == "MissingAccessKeyId"


PLUGIN_TEST = """
import urllib.error
import urllib.request


def test_fails_after_a_call(emulator):
    request = urllib.request.Request(emulator.url + "/green/text/feedback", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    assert emulator.count() == 2  # one call was made: fails, so pytest shows the captured log
"""


@pytest.mark.parametrize("option", [False, True])
def test_the_pytest_plugin_logs_only_when_asked(pytester: pytest.Pytester, option: bool) -> None:
    pytester.makepyfile(test_app=PLUGIN_TEST)
    args = ["-p", "no:randomly", *(["--emulator-log"] if option else [])]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    lines = [line for line in result.outlines if "TextFeedback" in line and "MissingAccessKeyId" in line]
    if option:
        (line,) = lines
        assert "emulator.requests" in line and "in  alibaba TextFeedback account=- ns=default" in line
    else:
        assert lines == []
