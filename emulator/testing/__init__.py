"""Test tooling: a client for the admin API, the official SDKs redirected to the emulator
(:func:`emulator_sdks`) and the pytest plugin (``pytest11`` entry point)."""

from __future__ import annotations

from .client import EmulatorClient, RecordedExchange, SyncEmulatorClient
from .sdks import EmulatorSDKs, TestAccounts, emulator_sdks

__all__ = [
    "EmulatorClient",
    "EmulatorSDKs",
    "RecordedExchange",
    "SyncEmulatorClient",
    "TestAccounts",
    "emulator_sdks",
]
