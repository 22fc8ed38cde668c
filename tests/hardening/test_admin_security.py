"""The admin API against a hostile caller: scenario files outside ``faults.scenarios_dir`` refused
unopened and unechoed, other Host headers refused (DNS rebinding), and the cross-site checks that an
admin token makes unnecessary."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.core import scenarios

from .conftest import hardening_settings

JSON = {"Content-Type": "application/json"}
SECRET = "top-secret-key-material"
RULE = {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": "ServiceUnavailable"}}


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """``tmp_path/scenarios`` (the allowed folder) and, beside it, files it must not reach."""
    inside = tmp_path / "scenarios"
    inside.mkdir()
    (inside / "ok.json").write_text(json.dumps({"name": "ok", "rules": [RULE]}))
    (inside / "big.json").write_text(json.dumps({"name": "big", "rules": [RULE], "pad": "x" * 4096}))
    (tmp_path / "secret.json").write_text(json.dumps({SECRET: 1}))
    (inside / "link.json").symlink_to(tmp_path / "secret.json")
    return inside


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scenario file the server reads (the in-process server shares this module)."""
    seen: list[str] = []
    real = scenarios.read_document

    def spy(path: Any) -> Any:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(scenarios, "read_document", spy)
    return seen


@pytest.fixture
async def server(folders: Path) -> AsyncIterator[RunningServer]:
    settings = hardening_settings(
        **{"faults.scenarios_dir": str(folders), "faults.scenario_max_bytes": 1024}
    )
    async with serve(settings) as running:
        yield running


async def post_scenario(server: RunningServer, name: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/_emulator/faults"
        async with http.post(url, json={"scenario": name}) as response:
            return response.status, await response.text()


@pytest.mark.parametrize(
    "name",
    ["/etc/shadow", "/etc/passwd", "/no/such/file", "../secret", "../secret.json", "link", "a/../../secret"],
)
async def test_a_scenario_outside_the_folder_is_refused_unopened(
    server: RunningServer, folders: Path, opened: list[str], name: str
) -> None:
    status, text = await post_scenario(server, name)
    assert status == 400, text
    assert opened == []
    # The same answer whether the file exists or not, and nothing of any file's content.
    assert SECRET not in text and "JSON" not in text and "No such file" not in text
    assert "neither a shipped scenario" in json.loads(text)["detail"]


async def test_a_file_inside_the_folder_loads_and_an_oversized_one_is_refused(
    server: RunningServer, opened: list[str]
) -> None:
    status, text = await post_scenario(server, "ok")
    assert status == 201, text
    assert len(opened) == 1 and opened[0].endswith("ok.json")
    status, text = await post_scenario(server, "big")
    assert status == 400 and "over faults.scenario_max_bytes (1024)" in text
    assert len(opened) == 1  # refused on its size alone
    status, text = await post_scenario(server, "flaky")  # a shipped name still works
    assert status == 201, text


async def test_other_host_headers_are_refused_when_hosts_are_listed() -> None:
    settings = hardening_settings(**{"server.allowed_hosts": ["emulator.test", ".svc.test"]})
    async with serve(settings) as server, aiohttp.ClientSession() as http:
        for host, want in (("emulator.test", 200), ("a.svc.test:8080", 200), ("rebound.example", 403)):
            headers = {"Host": host}
            async with http.get(f"{server.url}/_emulator/health", headers=headers) as response:
                assert response.status == want, host
            async with http.post(
                f"{server.url}/_emulator/reset", data="{}", headers={**JSON, **headers}
            ) as response:
                assert response.status == want, host


async def test_with_a_token_the_token_is_the_protection() -> None:
    token = "t0ken"
    async with serve(hardening_settings(**{"admin.token": token})) as server, aiohttp.ClientSession() as http:
        url = f"{server.url}/_emulator/reset"
        plain = {"Content-Type": "text/plain"}
        async with http.post(url, data="{}", headers=plain) as response:
            assert response.status == 401  # no token: refused whatever the content type
        bearer = {"Authorization": f"Bearer {token}"}
        async with http.post(url, data="{}", headers={**plain, **bearer}) as response:
            assert response.status == 200
