"""Shared fixtures: settings independent of the caller's environment, a manual clock, servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import ManualClock, RunningServer, Settings, serve_in_thread
from emulator.testing.settings import make_settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def threaded_server(settings: Settings, clock: ManualClock) -> Iterator[RunningServer]:
    """A real server on a loopback port, run from a thread so blocking SDKs can call it."""
    with serve_in_thread(settings, clock=clock) as server:
        yield server


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every name looked up and every address connected to from this process during the test, to
    show that a refused host was never contacted."""
    seen: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        seen.append(f"lookup {host}")
        return real_getaddrinfo(host, *args, **kw)

    def connect(self: socket.socket, address: Any) -> Any:
        seen.append(f"connect {address[0]}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield seen
