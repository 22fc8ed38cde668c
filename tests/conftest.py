"""Shared fixtures: settings independent of the caller's environment, a manual clock, servers."""

from __future__ import annotations

from collections.abc import Iterator

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
