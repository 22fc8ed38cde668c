"""The Docker image's recipe, checked without a Docker engine: the layer order, the dependency list it
builds, and its CMD and HEALTHCHECK run here as the container would run them, at a port the settings
give."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE_CONFIG = "/etc/emulator/config.json"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def index(kind: str, needle: str) -> int:
    return next(i for i, (k, rest) in enumerate(instructions()) if k == kind and needle in rest)


def test_dependencies_are_installed_in_a_layer_before_the_source() -> None:
    pyproject = index("COPY", "pyproject.toml")
    deps = index("RUN", "pip install -r")
    source = index("COPY", "emulator")
    package = index("RUN", "pip install --no-deps .")
    assert pyproject < deps < source < package
    # Nothing but pyproject.toml is copied before the dependencies are installed.
    assert [rest for k, rest in instructions()[:deps] if k == "COPY"] == ["pyproject.toml ./"]


def test_the_dependency_layer_lists_what_pyproject_declares(tmp_path: Path) -> None:
    run = instructions()[index("RUN", "pip install -r")][1]
    command = run.split(" > ", 1)[0]  # python -c "..." (the rest writes and installs the list)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    listed = subprocess.run(
        [sys.executable, "-c", argv[2]], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert listed == project["dependencies"] + project["optional-dependencies"]["yaml"]
    assert any(d.startswith("aiohttp") for d in listed)


def test_cmd_leaves_host_and_port_to_the_settings() -> None:
    cmd = json.loads(instructions()[index("CMD", "serve")][1])
    assert cmd == ["serve", "--config", IMAGE_CONFIG]
    env = instructions()[index("ENV", "EMULATOR_SERVER__HOST")][1]
    assert env == "EMULATOR_SERVER__HOST=0.0.0.0" and "EMULATOR_SERVER__PORT" not in env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthcheck(config: Path, env: dict[str, str]) -> int:
    argv = json.loads(instructions()[index("HEALTHCHECK", "CMD")][1].split(" CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"]
    code = argv[2].replace(IMAGE_CONFIG, str(config))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=30).returncode


@pytest.fixture
def image_config(tmp_path: Path) -> Path:
    """The config the image serves with: a copy of the built-in one, as the Dockerfile makes it."""
    path = tmp_path / "config.json"
    path.write_text((ROOT / "fixtures" / "default-config.json").read_text())
    return path


@pytest.fixture
def container_env() -> dict[str, str]:
    """The environment the image sets, with the port a user would give it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    env.update({"EMULATOR_SERVER__HOST": "0.0.0.0", "EMULATOR_SERVER__PORT": str(_free_port())})
    return env


def test_the_healthcheck_follows_the_port_the_settings_give(
    image_config: Path, container_env: dict[str, str]
) -> None:
    cmd = json.loads(instructions()[index("CMD", "serve")][1])
    cmd[cmd.index(IMAGE_CONFIG)] = str(image_config)
    emulator = Path(sys.executable).parent / "emulator"
    assert _healthcheck(image_config, container_env) != 0  # nothing serves yet
    server = subprocess.Popen(
        [str(emulator), *cmd], env=container_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.strip() == f"emulator serving on http://0.0.0.0:{container_env['EMULATOR_SERVER__PORT']}"
        assert _healthcheck(image_config, container_env) == 0
        # The check reads the same settings: told another port, it finds nothing there.
        other = {**container_env, "EMULATOR_SERVER__PORT": str(_free_port())}
        assert _healthcheck(image_config, other) != 0
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_dockerignore_keeps_the_build_context_to_what_the_image_needs() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "bench"} <= ignored
    copied = {rest.split()[0] for k, rest in instructions() if k == "COPY"}
    assert copied == {"pyproject.toml", "README.md", "emulator", "fixtures"}
    assert not copied & ignored


def test_compose_starts_the_app_once_the_emulator_is_healthy() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["emulator"]["build"] == "."
    assert services["app"]["depends_on"] == {"emulator": {"condition": "service_healthy"}}
    port = services["emulator"]["environment"]["EMULATOR_SERVER__PORT"]
    assert f"{port}:{port}" in services["emulator"]["ports"]
    assert f"emulator:{port}" in services["app"]["environment"]["GREEN_ENDPOINT"]
