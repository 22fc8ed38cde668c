"""Test tooling: a client for the admin API and the pytest plugin (``pytest11`` entry point)."""

from __future__ import annotations

from .client import EmulatorClient, RecordedExchange, SyncEmulatorClient

__all__ = ["EmulatorClient", "RecordedExchange", "SyncEmulatorClient"]
