"""Errors raised to people who run or script the emulator (not wire errors).

Wire errors, the ones a provider would answer with, live in each provider's ``errors.py`` and are
turned into bytes by that provider's ``protocol.py``. The tree here is for test authors and operators::

    EmulatorError
     +-- ConfigError        a config file or EMULATOR_* variable is wrong (names file, key, problem)
     +-- ServerStartError   the in-process or CLI server could not start
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base of every error the emulator raises to its users."""


class ConfigError(EmulatorError):
    """A configuration value is missing or wrong.

    The message always names where the value came from (file or environment variable), the key
    as a dotted path, and what is wrong with it.
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}")


class ServerStartError(EmulatorError):
    """The server could not be started (port in use, bad address, ...)."""
