"""A local, faithful emulator of the Alibaba Cloud Green and Tencent CI content-moderation
feedback APIs."""

from __future__ import annotations

from ._version import __version__
from .app import create_app
from .config import Settings, load
from .core.clock import ManualClock, RealClock
from .errors import ConfigError, EmulatorError, ServerStartError
from .server import RunningServer, serve, serve_in_thread

__all__ = [
    "ConfigError",
    "EmulatorError",
    "ManualClock",
    "RealClock",
    "RunningServer",
    "ServerStartError",
    "Settings",
    "__version__",
    "create_app",
    "load",
    "serve",
    "serve_in_thread",
]
