"""Typed application keys shared by the parts the app factory composes."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .core.clock import Clock
from .core.throttle import SlidingWindowLimiter

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
#: One limiter for the whole app; keys are namespaced by provider, account and action.
LIMITER = web.AppKey("limiter", SlidingWindowLimiter)
