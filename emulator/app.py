"""The app factory: composes core machinery, the providers and the admin API into one app."""

from __future__ import annotations

from aiohttp import web

from . import admin
from .config import Settings, load
from .core.clock import Clock, RealClock
from .core.throttle import SlidingWindowLimiter
from .keys import CLOCK, LIMITER, SETTINGS
from .providers.alibaba import routes as alibaba_routes
from .providers.tencent import routes as tencent_routes


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> web.Application:
    """Build the emulator app. ``settings`` defaults to the built-in default config (plus
    ``EMULATOR_*`` variables); ``clock`` to the system clocks (pass a ManualClock in tests)."""
    settings = settings if settings is not None else load()
    clock = clock if clock is not None else RealClock()
    # Providers read bodies themselves, bounded by server.max_body_bytes, so that an oversized body
    # gets the provider's own error; aiohttp's own limit stays as a backstop.
    app = web.Application(client_max_size=settings.server.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[LIMITER] = SlidingWindowLimiter(clock)
    admin.setup(app)
    alibaba_routes.setup(app)
    tencent_routes.setup(app)
    return app
