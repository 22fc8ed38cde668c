"""The pytest plugin (entry point ``pytest11: emulator``), after pytest-httpserver.

Fixtures:

- ``emulator`` (alias ``moderation_emulator``, which does not shadow ``import emulator`` in a test
  module): function-scoped handle to a running emulator (a :class:`SyncEmulatorClient` with ``url``,
  ``host``, ``port``, ``accounts``, ``headers`` and, in-process, ``app``).
- ``aemulator``: the same as an async :class:`EmulatorClient` (``await aemulator.wait_for(...)``), for
  async tests (pytest-asyncio, which pytest-aiohttp brings): awaiting never blocks the test's loop.
- ``emulator_sdks``: the official SDKs' calls to provider hosts go to the emulator for the test,
  unchanged app code (see :mod:`emulator.testing.sdks`); ready SDK clients and the test accounts.
- ``emulator_namespace``: the namespace the test works in. Against a shared emulator
  (``--emulator-url``, or any with ``--emulator-namespaces=per-test``) each test gets its own (worker
  id, a per-run token and the test's node id), so xdist workers and CI jobs can share one emulator:
  the fixtures' reset, journal queries and fault rules are scoped to it, and ``emulator_sdks`` tags
  the calls it redirects with it (``emulator.headers`` is the tag for code that points an SDK at
  ``emulator.url`` itself). The private in-process server needs none: None, reset in full.
- ``emulator_server``: the session-scoped in-process server behind them.
- ``emulator_config`` (dotted-key overrides, e.g. ``{"alibaba.throttle_response": "588"}``),
  ``emulator_config_file`` and ``emulator_address``: session-scoped, override them in a conftest.py.

Marker: ``@pytest.mark.emulator(config={...}, namespace="...", scenario="...")`` gives one test a
dedicated server with those overrides, a namespace of its choosing (``namespace=None``: none, the
whole server, reset in full), and/or a fault scenario (a shipped name, a file, or an inline
``{"rules": [...]}``) for that test only.
``clock="manual"`` gives it an emulator on a manual clock (``emulator.advance(seconds)``).
``state=`` (a state document from GET /_emulator/state, or the path of a JSON file holding one)
starts the test from that state: in the test's namespace when it has one (the records moved into
it), else as the whole state.

Option: ``--emulator-log`` logs every exchange (logger ``emulator.requests``) into pytest's log capture.

Options: ``--emulator-url URL`` (or ``EMULATOR_URL``) points the fixtures at an emulator that is
already running instead of starting one; ``--emulator-namespaces auto|per-test|off`` says when each
test gets a namespace of its own (auto: with ``--emulator-url``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from ..config import Settings, load
from ..core.clock import ManualClock
from ..core.log import ROOT_LOGGER
from ..keys import CLOCK
from ..server import serve_in_thread
from .client import NAMESPACE_HEADER, EmulatorClient, SyncEmulatorClient
from .sdks import EmulatorSDKs, TestAccounts
from .sdks import emulator_sdks as redirect_sdks

try:  # pytest-aiohttp brings pytest-asyncio; without it there is no async fixture to offer.
    import pytest_asyncio

    _fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - depends on the environment
    _fixture = pytest.fixture

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(function: _F) -> _F:
    """An async fixture in pytest-asyncio's strict mode as well as in its auto mode."""
    return cast(_F, _fixture(function))


class _Located:
    """Where the emulator is, who the test accounts are and which namespace the test is in; mixed
    into the sync and the async admin client, whose constructor it calls next."""

    namespace: str | None

    def __init__(
        self,
        url: str,
        *,
        app: web.Application | None = None,
        namespace: str | None = None,
        token: str | None = None,
        accounts: TestAccounts | None = None,
    ) -> None:
        # The next class in the MRO is the admin client (SyncEmulatorClient or EmulatorClient).
        super().__init__(url, namespace=namespace, token=token)  # type: ignore[call-arg]
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        #: The in-process app (None for an external emulator), for state inspection.
        self.app = app
        #: The credentials of the first account of each provider (keys, uid, seed, APPID, a bucket).
        self.accounts = accounts if accounts is not None else TestAccounts.of(load(env={}))

    @property
    def headers(self) -> dict[str, str]:
        """The header that tags a call with this test's namespace, for code that points an SDK at
        ``url`` itself (``emulator_sdks`` adds it on its own)."""
        return {NAMESPACE_HEADER: self.namespace} if self.namespace else {}


class Emulator(_Located, SyncEmulatorClient):
    """What a test gets: where the emulator is, and the admin client to inspect and steer it."""


class AsyncEmulator(_Located, EmulatorClient):
    """The async twin of :class:`Emulator`: every call is awaited on the test's own loop."""


class ServerHandle:
    """A server the fixtures can point at: in-process (with its app) or external (URL only)."""

    def __init__(
        self, url: str, app: web.Application | None, token: str | None, settings: Settings | None = None
    ) -> None:
        self.url = url
        self.app = app
        self.token = token
        #: The settings it runs with (for an external one: those the session's config fixtures give).
        self.settings = settings


@dataclass(frozen=True)
class Target:
    """The server and namespace one test works against, reset and set up for it."""

    server: ServerHandle
    namespace: str | None
    accounts: TestAccounts

    def emulator(self) -> Emulator:
        s = self.server
        return Emulator(s.url, app=s.app, namespace=self.namespace, token=s.token, accounts=self.accounts)

    def aemulator(self) -> AsyncEmulator:
        s = self.server
        return AsyncEmulator(
            s.url, app=s.app, namespace=self.namespace, token=s.token, accounts=self.accounts
        )


_RUN_TOKEN = pytest.StashKey[str]()
_MARKER_KEYS = {"config", "namespace", "scenario", "clock", "state"}


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
    group.addoption(
        "--emulator-namespaces",
        choices=("auto", "per-test", "off"),
        default="auto",
        help="give each test a namespace of its own on the emulator: auto (default) when it may be "
        "shared (--emulator-url), per-test always, off never",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "emulator(config=None, namespace=None, scenario=None, clock=None, state=None): run this test "
        "against a dedicated emulator with these dotted-key config overrides or clock (\"manual\": "
        "moved by emulator.advance), in a namespace of its choosing (None: the whole "
        "server) instead of its own, and/or load a fault scenario (shipped name, file or inline rules) "
        "or a state document (from GET /_emulator/state, or a file) for this test only",
    )
    if config.getoption("emulator_log", False):
        # Quiet unless asked: the records then reach pytest's own log capture.
        logging.getLogger(ROOT_LOGGER).setLevel(logging.INFO)
    # Tells this run's namespaces from those of other runs (CI jobs) sharing one emulator.
    config.stash[_RUN_TOKEN] = secrets.token_hex(3)


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("emulator")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    unknown = set(kwargs) - _MARKER_KEYS
    if unknown or (marker and marker.args):
        raise pytest.UsageError(
            "@pytest.mark.emulator takes config=, namespace=, scenario=, clock= and state= only, "
            f"not {sorted(unknown)}"
        )
    return kwargs


def auto_namespace(worker: str, run_token: str, nodeid: str) -> str:
    """A namespace of its own for one test: readable, header-safe, unique per worker, run and test."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_.:/-]+", "_", nodeid)[-60:]
    return f"{worker}-{run_token}-{digest}-{slug}"


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
        # Only the accounts are read from these settings; EMULATOR_URL and EMULATOR_ADMIN_TOKEN are
        # this plugin's variables, not config keys, so the environment stays out of it.
        settings = load(emulator_config_file, env={}, overrides=emulator_config)
        yield ServerHandle(url, None, os.environ.get("EMULATOR_ADMIN_TOKEN"), settings)
        return
    settings = load(emulator_config_file, overrides=emulator_config)
    host, port = emulator_address
    with serve_in_thread(settings, host=host, port=port) as server:
        yield ServerHandle(server.url, server.app, settings.admin.token, settings)


@pytest.fixture
def emulator_namespace(request: pytest.FixtureRequest, emulator_server: ServerHandle) -> str | None:
    """The namespace this test works in: the marker's; else, when the emulator may be shared (an
    external one, or ``--emulator-namespaces=per-test``), one of its own; else None (the whole
    private server, reset in full before each test)."""
    kwargs = _marker_kwargs(request)
    if "namespace" in kwargs:
        return kwargs["namespace"]  # type: ignore[no-any-return]
    mode = request.config.getoption("emulator_namespaces")
    if mode == "off" or (mode == "auto" and emulator_server.app is not None):
        return None
    # xdist gives each worker process its id; PYTEST_XDIST_WORKER in the environment could be
    # inherited from an outer run.
    worker = str(getattr(request.config, "workerinput", {}).get("workerid", "main"))
    return auto_namespace(worker, request.config.stash[_RUN_TOKEN], request.node.nodeid)


@pytest.fixture
def emulator_target(
    request: pytest.FixtureRequest,
    emulator_server: ServerHandle,
    emulator_namespace: str | None,
    emulator_config: Mapping[str, Any],
    emulator_config_file: str | None,
) -> Iterator[Target]:
    """The server and namespace of this test (a dedicated server for a marker's config), reset in
    that namespace and with the marker's scenario loaded; every emulator fixture builds on it."""
    kwargs = _marker_kwargs(request)
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
            handle = ServerHandle(server.url, server.app, settings.admin.token, settings)
        accounts = TestAccounts.of(handle.settings if handle.settings is not None else load(env={}))
        target = Target(handle, emulator_namespace, accounts)
        with target.emulator() as admin:
            if clock is not None and handle.app is None and admin.clock()["mode"] != clock:
                needs = f"an emulator on the {clock} clock (emulator serve --clock {clock})"
                pytest.skip(f"this test needs {needs}")
            # Scoped to the test's namespace when it has one: parallel tests never wipe each other;
            # without one, the whole emulator ("*").
            admin.reset(None if target.namespace else "*")
            if kwargs.get("state") is not None:
                # The test's namespace only (the client names it), or the whole private server.
                admin.put_state(kwargs["state"])
            if kwargs.get("scenario") is not None:
                # The reset before the next test removes them again.
                admin.add_faults(scenario=kwargs["scenario"])
        yield target


@pytest.fixture
def emulator(emulator_target: Target) -> Iterator[Emulator]:
    with emulator_target.emulator() as emu:
        yield emu


@pytest.fixture
def moderation_emulator(emulator: Emulator) -> Emulator:
    """The ``emulator`` fixture under a name that leaves ``import emulator`` usable in the module."""
    return emulator


@_async_fixture
async def aemulator(emulator_target: Target) -> AsyncIterator[AsyncEmulator]:
    """The ``emulator`` fixture for async tests: ``await aemulator.wait_for_delivery(...)`` lets the
    test's own loop (and a receiver running on it) go on while it waits."""
    async with emulator_target.aemulator() as emu:
        yield emu


@pytest.fixture
def emulator_sdks(emulator_target: Target) -> Iterator[EmulatorSDKs]:
    """The official SDKs' calls to provider hosts go to this test's emulator, tagged with its
    namespace, until the test ends; ready clients with the test accounts."""
    target = emulator_target
    with redirect_sdks(target.server.url, namespace=target.namespace, accounts=target.accounts) as sdks:
        yield sdks
