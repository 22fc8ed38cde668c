"""The pytest plugin (entry point ``pytest11: emulator``), after pytest-httpserver.

Fixtures:

- ``emulator``: function-scoped handle to a running emulator (a :class:`SyncEmulatorClient` with
  ``url``, ``host``, ``port`` and, in-process, ``app``). Each test starts from a reset emulator.
- ``emulator_server``: the session-scoped in-process server behind it.
- ``emulator_config`` (dotted-key overrides, e.g. ``{"alibaba.throttle_response": "588"}``),
  ``emulator_config_file`` and ``emulator_address``: session-scoped, override them in a conftest.py.

Marker: ``@pytest.mark.emulator(config={...}, namespace="...", scenario="...")`` gives one test a
dedicated server with those overrides, scopes it to a namespace of the shared one, and/or loads a
fault scenario (a shipped name, a file, or an inline ``{"rules": [...]}``) for that test only;
``clock="manual"`` gives it an emulator on a manual clock (``emulator.advance(seconds)``).

Option: ``--emulator-log`` logs every exchange (logger ``emulator.requests``) into pytest's log capture.

Option: ``--emulator-url URL`` (or ``EMULATOR_URL``) points the fixtures at an emulator that is
already running instead of starting one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from ..config import load
from ..core.clock import ManualClock
from ..core.log import ROOT_LOGGER
from ..keys import CLOCK
from ..server import serve_in_thread
from .client import SyncEmulatorClient


class Emulator(SyncEmulatorClient):
    """What a test gets: where the emulator is, and the admin client to inspect and steer it."""

    def __init__(
        self,
        url: str,
        *,
        app: web.Application | None = None,
        namespace: str | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(url, namespace=namespace, token=token)
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        #: The in-process app (None for an external emulator), for state inspection.
        self.app = app


class ServerHandle:
    """A server the fixtures can point at: in-process (with its app) or external (URL only)."""

    def __init__(self, url: str, app: web.Application | None, token: str | None) -> None:
        self.url = url
        self.app = app
        self.token = token


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("emulator", "content-moderation emulator")
    group.addoption(
        "--emulator-url",
        default=os.environ.get("EMULATOR_URL"),
        help="use the emulator already running at this URL instead of starting one in-process "
        "(default: $EMULATOR_URL)",
    )
    group.addoption(
        "--emulator-log",
        action="store_true",
        help="log every exchange of the in-process emulator (logger emulator.requests, INFO): pytest "
        "shows the lines with a failed test's captured log, or live with -o log_cli=true",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "emulator(config=None, namespace=None, scenario=None, clock=None): run this test against a "
        "dedicated emulator with these dotted-key config overrides or clock (\"manual\": moved by "
        "emulator.advance), scope it to a namespace of the shared one, and/or load a fault scenario "
        "(shipped name, file or inline rules) for this test only",
    )
    if config.getoption("emulator_log", False):
        # Quiet unless asked: the records then reach pytest's own log capture.
        logging.getLogger(ROOT_LOGGER).setLevel(logging.INFO)


@pytest.fixture(scope="session")
def emulator_config() -> Mapping[str, Any]:
    """Dotted-key overrides of the session server's config. Override in conftest.py."""
    return {}


@pytest.fixture(scope="session")
def emulator_config_file() -> str | None:
    """A JSON config file for the session server (None: the built-in default). Override in conftest.py."""
    return None


@pytest.fixture(scope="session")
def emulator_address() -> tuple[str, int]:
    """Where the session server listens (port 0: a free one). Override in conftest.py."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def emulator_server(
    request: pytest.FixtureRequest,
    emulator_config: Mapping[str, Any],
    emulator_config_file: str | None,
    emulator_address: tuple[str, int],
) -> Iterator[ServerHandle]:
    url = request.config.getoption("emulator_url")
    if url:
        yield ServerHandle(url, None, os.environ.get("EMULATOR_ADMIN_TOKEN"))
        return
    settings = load(emulator_config_file, overrides=emulator_config)
    host, port = emulator_address
    with serve_in_thread(settings, host=host, port=port) as server:
        yield ServerHandle(server.url, server.app, settings.admin.token)


@pytest.fixture
def emulator(
    request: pytest.FixtureRequest,
    emulator_server: ServerHandle,
    emulator_config: Mapping[str, Any],
    emulator_config_file: str | None,
) -> Iterator[Emulator]:
    marker = request.node.get_closest_marker("emulator")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    unknown = set(kwargs) - {"config", "namespace", "scenario", "clock"}
    if unknown or (marker and marker.args):
        raise pytest.UsageError(
            "@pytest.mark.emulator takes config=, namespace=, scenario= and clock= only, "
            f"not {sorted(unknown)}"
        )
    with ExitStack() as stack:
        handle = emulator_server
        config = dict(kwargs.get("config") or {})
        clock = kwargs.get("clock")
        if clock is not None and handle.app is not None:
            if (clock == "manual") != isinstance(handle.app[CLOCK], ManualClock):
                config["server.clock"] = clock
        if config:
            if handle.app is None:
                pytest.skip("a per-test config needs an in-process emulator, not --emulator-url")
            settings = load(emulator_config_file, overrides={**emulator_config, **config})
            server = stack.enter_context(serve_in_thread(settings))
            handle = ServerHandle(server.url, server.app, settings.admin.token)
        emu = stack.enter_context(
            Emulator(handle.url, app=handle.app, namespace=kwargs.get("namespace"), token=handle.token)
        )
        if clock is not None and handle.app is None and emu.clock()["mode"] != clock:
            pytest.skip(f"this test needs an emulator on the {clock} clock (emulator serve --clock {clock})")
        # A test scoped to a namespace starts with it reset; any other with the whole emulator reset.
        emu.reset(None if kwargs.get("namespace") else "*")
        if kwargs.get("scenario") is not None:
            # The per-test reset of the next test removes them again.
            emu.add_faults(scenario=kwargs["scenario"])
        yield emu
