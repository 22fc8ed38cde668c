"""Other stub servers under the same load: Mountebank and WireMock, each a static stub answering
the emulator's success bodies and headers on the same paths (no signature, parsing or id).

Neither is a dependency: they are found through environment variables and skipped with a note
when absent.

- ``BENCH_MOUNTEBANK``: the ``mb`` executable (``npm install mountebank`` puts it in
  ``node_modules/.bin/mb``).
- ``BENCH_WIREMOCK_JAR``: the WireMock standalone jar (the npm package ``wiremock`` ships it in
  ``node_modules/wiremock/build/``); run with ``java`` from PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .common import BADCASE_PATH, IMAGE_PATH, ServerProcess, free_port, stop, wait_healthy

ENV = {"mountebank": "BENCH_MOUNTEBANK", "wiremock": "BENCH_WIREMOCK_JAR"}
HEALTH = "/_emulator/health"
IMAGE_ID = "5E7A3B4C-1D2F-4A6B-9C8D-0E1F2A3B4C5D"
BADCASE_ID = "5e7a3b4c1d2f4a6b9c8d0e1f2a3b4c5d"

#: (method, path, headers, body) of every stub: the emulator's success answers, with fixed ids.
STUBS: list[tuple[str, str, dict[str, str], str]] = [
    (
        "POST",
        IMAGE_PATH,
        {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": IMAGE_ID},
        f'{{"code":200,"msg":"OK","requestId":"{IMAGE_ID}"}}',
    ),
    (
        "POST",
        BADCASE_PATH,
        {
            "Content-Type": "application/xml",
            "Date": "Mon, 30 Nov 2026 00:00:00 GMT",
            "Server": "tencent-ci",
            "x-ci-request-id": BADCASE_ID,
        },
        f"<Response><RequestId>{BADCASE_ID}</RequestId></Response>",
    ),
    ("GET", HEALTH, {"Content-Type": "application/json"}, '{"status":"ok"}'),
]


def available() -> tuple[dict[str, Path], list[str]]:
    """The peers that can run here, and a note for each that cannot."""
    found: dict[str, Path] = {}
    notes: list[str] = []
    for name, var in ENV.items():
        value = os.environ.get(var)
        if not value:
            notes.append(f"{name} skipped: set {var}")
        elif not Path(value).is_file():
            notes.append(f"{name} skipped: {var}={value} is not a file")
        elif name == "wiremock" and shutil.which("java") is None:
            notes.append(f"{name} skipped: no java on PATH")
        else:
            found[name] = Path(value)
    return found, notes


def mountebank_config(port: int) -> dict[str, object]:
    stubs = [
        {
            "predicates": [{"equals": {"method": method, "path": path}}],
            "responses": [{"is": {"statusCode": 200, "headers": headers, "body": body}}],
        }
        for method, path, headers, body in STUBS
    ]
    return {"imposters": [{"protocol": "http", "port": port, "stubs": stubs}]}


def wiremock_mappings(root: Path) -> Path:
    mappings = root / "mappings"
    mappings.mkdir(parents=True, exist_ok=True)
    for i, (method, path, headers, body) in enumerate(STUBS):
        mapping = {
            "request": {"method": method, "urlPath": path},
            "response": {"status": 200, "headers": headers, "body": body},
        }
        (mappings / f"{i}.json").write_text(json.dumps(mapping))
    return root


@contextmanager
def peer_process(name: str, path: Path, work: Path) -> Iterator[ServerProcess]:
    """Run the peer with its stubs on a free port until the block ends."""
    port = free_port()
    home = work / name
    home.mkdir(parents=True, exist_ok=True)
    if name == "mountebank":
        config = home / "imposters.json"
        config.write_text(json.dumps(mountebank_config(port)))
        cmd = [str(path), "start", "--port", str(free_port()), "--configfile", str(config), "--noParse"]
        cmd += ["--nologfile", "--loglevel", "warn", "--pidfile", str(home / "mb.pid")]
    else:
        # The request journal stays on (WireMock's default), as the emulator's does.
        cmd = ["java", "-jar", str(path), "--port", str(port), "--root-dir", str(wiremock_mappings(home))]
        cmd += ["--disable-banner", "--disable-request-logging"]
    proc = subprocess.Popen(cmd, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}{HEALTH}", proc, timeout=60)
        yield ServerProcess(name, port, proc)
    finally:
        stop(proc)
