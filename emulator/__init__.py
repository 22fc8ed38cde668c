"""A local, faithful emulator of the Alibaba Cloud Green and Tencent CI content-moderation
feedback APIs."""

from __future__ import annotations

from ._version import __version__
from .app import create_app
from .config import Settings, load
from .core.clock import ManualClock, RealClock
from .errors import (
    AdminError,
    ConfigError,
    EmulatorError,
    InvalidInput,
    NotFound,
    ServerStartError,
    Timeout,
)
from .server import RunningServer, serve, serve_in_thread

__all__ = [
    "AdminError",
    "ConfigError",
    "EmulatorError",
    "InvalidInput",
    "ManualClock",
    "NotFound",
    "RealClock",
    "RunningServer",
    "ServerStartError",
    "Settings",
    "Timeout",
    "__version__",
    "create_app",
    "load",
    "serve",
    "serve_in_thread",
]
