"""The ``emulator`` command, run as a real subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.testing.processes import clean_env, serving

CLEAN_ENV = clean_env()


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env or CLEAN_ENV,
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving() as running:
        yield running


def test_serve_prints_its_url_serves_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = served
    with urllib.request.urlopen(f"{url}/_emulator/health", timeout=5) as response:
        assert response.status == 200
        assert json.load(response)["status"] == "ok"
    # Both providers on the one port, told apart by path.
    request = urllib.request.Request(f"{url}/green/image/feedback", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert json.load(info.value)["Code"] == "MissingAccessKeyId"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_ctrl_c_stops_cleanly(served: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = served
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert proc.stderr is not None
    assert "Traceback" not in proc.stderr.read()


def test_help_explains_every_option() -> None:
    top = run("--help")
    assert top.returncode == 0 and "serve" in top.stdout
    serve = run("serve", "--help")
    assert serve.returncode == 0
    for option in ("--host", "--port", "--config", "0 picks a free port", "--clock", "--log-level"):
        assert option in serve.stdout
    assert "--log-format" in serve.stdout


def test_bad_config_fails_at_start_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"server": {"port": "x"}}))
    result = run("serve", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f'emulator: error: {path}: server.port: must be an integer, not "x"'


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        # An unknown section, and a value out of range: the variable carried them, not the file.
        ((), {"EMULATOR_SERVR__PORT": "9000"}, "environment variable EMULATOR_SERVR__PORT: servr: unknown"),
        (
            (),
            {"EMULATOR_SERVER__PORT": "70000"},
            "environment variable EMULATOR_SERVER__PORT: server.port: must be at most 65535, not 70000",
        ),
        (
            ("--clock", "fast"),
            {},
            'option --clock: server.clock: must be one of "real", "manual", not "fast"',
        ),
        (
            ("--log-format", "xml"),
            {"EMULATOR_SERVER__LOG_FORMAT": "json"},
            'option --log-format: server.log_format: must be one of "text", "json", not "xml"',
        ),
    ],
)
def test_a_bad_value_names_the_variable_or_option_that_carried_it(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    # No --port: it would override EMULATOR_SERVER__PORT.
    result = run("serve", *args, env={**CLEAN_ENV, **env})
    assert result.returncode == 2
    assert result.stderr.startswith(f"emulator: error: {message}"), result.stderr


def test_a_bad_value_in_the_file_names_the_file_beside_good_variables(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"server": {"clock": "fast"}}))
    env = {**CLEAN_ENV, "EMULATOR_SERVER__PORT": "0", "EMULATOR_URL": "http://127.0.0.1:1"}
    result = run("serve", "--config", str(path), "--log-level", "warning", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f'emulator: error: {path}: server.clock: must be one of "real", "manual", not "fast"'
    )


def test_bad_port_is_refused() -> None:
    result = run("serve", "--port", "70000")
    assert result.returncode == 2
    assert "port must be 0..65535" in result.stderr


def test_port_in_use_is_reported(served: tuple[subprocess.Popen[str], str]) -> None:
    _, url = served
    result = run("serve", "--port", url.rsplit(":", 1)[1])
    assert result.returncode == 1
    assert "emulator: error: cannot listen on 127.0.0.1:" in result.stderr
