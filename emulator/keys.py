"""Typed application keys shared by the parts the app factory composes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from .config import Settings
from .core.callbacks import Dispatcher
from .core.clock import Clock
from .core.faults import FaultEngine
from .core.gateway import Gateway
from .core.journal import Journal
from .core.state import StateHub
from .core.storage import Store
from .core.throttle import SlidingWindowLimiter

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
#: One limiter for the whole app; keys are (provider, namespace, account, action): core/throttle.window_key.
LIMITER = web.AppKey("limiter", SlidingWindowLimiter)
JOURNAL = web.AppKey("journal", Journal)
#: Outbound notifications to users' servers; providers submit, the admin API lists.
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
#: Called by POST /_emulator/reset with the namespace to reset (None: everything). Each part that
#: keeps state registers one.
RESET_HOOKS = web.AppKey("reset_hooks", list[Callable[[str | None], None]])
#: Told the manual clock's new time after an admin call moved it (replicas share the move).
CLOCK_MOVED = web.AppKey("clock_moved", list[Callable[[float], None]])
FAULTS = web.AppKey("faults", FaultEngine)
#: The pipeline both providers plug their action tables into.
GATEWAY = web.AppKey("gateway", Gateway)
#: What GET /_emulator/health reports under "providers": each provider registers a function giving its
#: facts (e.g. how many accounts it serves), so the admin API names no provider.
HEALTH = web.AppKey("health", dict[str, Callable[[], dict[str, Any]]])
#: Where every change of state goes (core/storage): memory by default, SQLite with storage.path.
STORE = web.AppKey("store", Store)
#: The state's parts, the seed and snapshots (GET/PUT /_emulator/state).
STATE = web.AppKey("state", StateHub)
