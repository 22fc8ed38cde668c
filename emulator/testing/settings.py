"""Settings for tests: the built-in default config, deaf to the caller's environment."""

from __future__ import annotations

from typing import Any

from emulator import Settings, load

__all__ = ["make_settings"]


def make_settings(**overrides: Any) -> Settings:
    """The built-in default config with dotted-key overrides (``make_settings(**{"journal.capacity":
    5})``), ignoring EMULATOR_* in the environment so a developer's shell cannot change a test."""
    return load(env={}, overrides=overrides)
