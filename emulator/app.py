"""The app factory: composes core machinery, the providers and the admin API into one app."""

from __future__ import annotations

from aiohttp import web

from . import admin
from .config import Settings, load
from .core.clock import Clock, RealClock
from .core.journal import Journal
from .core.recording import journal_middleware
from .core.throttle import SlidingWindowLimiter
from .keys import CLOCK, JOURNAL, LIMITER, RESET_HOOKS, SETTINGS
from .providers.alibaba import routes as alibaba_routes
from .providers.tencent import routes as tencent_routes


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> web.Application:
    """Build the emulator app. ``settings`` defaults to the built-in default config (plus
    ``EMULATOR_*`` variables); ``clock`` to the system clocks (pass a ManualClock in tests)."""
    settings = settings if settings is not None else load()
    clock = clock if clock is not None else RealClock()
    # Providers read bodies themselves, bounded by server.max_body_bytes, so that an oversized body
    # gets the provider's own error; aiohttp's own limit stays as a backstop.
    journal = Journal(capacity=settings.journal.capacity)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes + 1,
        middlewares=[journal_middleware(journal, clock, skip_prefix=admin.PREFIX)],
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[JOURNAL] = journal
    app[LIMITER] = SlidingWindowLimiter(clock)
    app[RESET_HOOKS] = []
    admin.setup(app)
    alibaba_routes.setup(app)
    tencent_routes.setup(app)
    return app
