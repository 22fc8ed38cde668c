"""The app factory: composes core machinery, the providers and the admin API into one app."""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import admin
from .config import Settings, load
from .core.call import view_of
from .core.callbacks import AllowedHosts, Delivery, Dispatcher
from .core.clock import Clock, ManualClock, RealClock
from .core.fault_actions import inbound_checker, outbound_faults, setup_hang_release, shared_outbound_faults
from .core.faults import FaultEngine, RuleError
from .core.gateway import Gateway
from .core.journal import Journal
from .core.scenarios import ScenarioError, load_scenario
from .core.state import StateDocumentError, StateHub, read_document
from .core.storage import MemoryStore, SQLiteStore, StorageError, Store, StoreUnavailable
from .core.throttle import SlidingWindowLimiter
from .errors import ConfigError
from .keys import (
    CLOCK,
    CLOCK_MOVED,
    DISPATCHER,
    FAULTS,
    GATEWAY,
    HEALTH,
    JOURNAL,
    LIMITER,
    RESET_HOOKS,
    SETTINGS,
    STATE,
    STORE,
)
from .providers.alibaba import routes as alibaba_routes
from .providers.tencent import routes as tencent_routes


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, store: Store | None = None
) -> web.Application:
    """Build the emulator app. ``settings`` defaults to the built-in default config (plus
    ``EMULATOR_*`` variables); ``clock`` to the one ``server.clock`` names (the system clocks, or a
    ManualClock started at the real time now); ``store`` to the one ``storage.path`` names (memory
    when it names none). The app closes the store at cleanup."""
    settings = settings if settings is not None else load()
    if clock is None:
        clock = ManualClock() if settings.server.clock == "manual" else RealClock()
    if store is None:
        store = open_store(settings)
    journal = Journal(
        capacity=settings.journal.capacity,
        max_bytes=settings.journal.max_bytes,
        max_body_bytes=settings.journal.max_body_bytes,
        secret=settings.admin.token or None,
        store=store,
    )
    faults = FaultEngine(clock, settings.faults.max_rules, store)
    faults.action_checkers["in"] = inbound_checker(faults)
    limiter = SlidingWindowLimiter(clock)
    # Providers read bodies themselves, bounded by server.max_body_bytes, so that an oversized body
    # gets the provider's own error; aiohttp's own limit stays as a backstop.
    app = web.Application(client_max_size=settings.server.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[JOURNAL] = journal
    app[FAULTS] = faults
    app[LIMITER] = limiter
    app[RESET_HOOKS] = []
    app[CLOCK_MOVED] = []
    app[STORE] = store
    hub = app[STATE] = StateHub(store)
    setup_hang_release(app)
    gateway = app[GATEWAY] = Gateway(
        journal,
        clock,
        limiter,
        faults,
        reserved_prefixes=(admin.PREFIX,),
        store=store,
        strict_requests=settings.contract.strict_requests,
    )
    app[HEALTH] = {}
    _setup_callbacks(app, settings, journal, clock)
    # Callback deliveries ask the same engine, for rules with "direction": "out".
    app[DISPATCHER].fault_source = outbound_faults(faults)
    admin.setup(app)
    alibaba_routes.setup(app)
    tencent_routes.setup(app)
    # The app owns every path no provider action serves (core/gateway.py says who answers it).
    gateway.route_rest(app)
    for provider in gateway.providers.values():
        journal.views[provider.name] = view_of(provider)
        app[RESET_HOOKS].append(provider.reset)
        app[HEALTH][provider.name] = provider.health
    app[RESET_HOOKS].append(faults.reset)
    hub.register(faults)
    for ref in settings.scenarios:
        scenario = load_scenario(ref)
        try:
            faults.load_initial(scenario.rules, "rules")
        except RuleError as exc:
            raise ScenarioError(f"{scenario.source}: {exc}") from None
    _setup_state(app, hub, faults, journal, settings)
    return app


def open_store(settings: Settings) -> Store:
    """The store ``storage.url`` names (Redis, shared with other replicas), else the one
    ``storage.path`` names (SQLite in that directory), else memory."""
    if settings.storage.url and settings.storage.path:
        raise StorageError(
            settings.origin("storage.path"),
            "storage.path",
            "cannot be used with storage.url: state is kept in one store (a shared Redis or a data "
            "directory)",
        )
    if settings.storage.url:
        # Imported here: redis-py is an optional dependency (the redis extra).
        from .core.storage.redis import RedisStore

        return RedisStore(settings.storage.url, journal_capacity=settings.journal.capacity)
    if not settings.storage.path:
        return MemoryStore()
    return SQLiteStore(settings.storage.path, synchronous=settings.storage.synchronous)


def _setup_state(
    app: web.Application,
    hub: StateHub,
    faults: FaultEngine,
    journal: Journal,
    settings: Settings,
) -> None:
    """The seed (``storage.state``), what the store held at the last stop, and closing the store."""
    if settings.storage.state:
        try:
            records = read_document(settings.storage.state, hub.kinds)
        except StateDocumentError as exc:
            raise ConfigError(settings.origin("storage.state"), "storage.state", str(exc)) from None
        hub.set_seed(records)
    try:
        faults.restore(hub.seed_records(faults.prefix))
        journal.restore()
    except StoreUnavailable as exc:  # a shared store (Redis) that does not answer
        from .core.storage.redis import unreachable

        raise unreachable(settings.storage.url, exc.__cause__ or exc) from None
    except RuleError as exc:
        raise StorageError(
            settings.storage.path,
            "storage.path",
            f"the stored fault rules do not load ({exc}); move the data directory away to start afresh",
        ) from None
    store = app[STORE]

    async def start(app: web.Application) -> None:
        await store.start()
        app[DISPATCHER].resume()

    app.on_startup.append(start)  # the store first: the replicas' start reads it
    if settings.storage.url:
        _setup_replicas(app, hub, faults)

    async def close(app: web.Application) -> None:
        journal.write_pending()
        await store.close()

    # After the dispatcher's own cleanup (registered earlier): its last changes are written too.
    app.on_cleanup.append(close)


def _setup_replicas(app: web.Application, hub: StateHub, faults: FaultEngine) -> None:
    """What replicas sharing the Redis store decide together (core/replicas.py): the throttle's
    windows, the fault rules' counts and numbers, and the working set kept in step with theirs."""
    from .core.replicas import Follower, LeasedOutbox, RedisLimiter, ScheduleCounters, SeenOnce, SharedClock
    from .core.shared_journal import SharedJournal
    from .core.storage.redis import RedisStore

    store = app[STORE]
    assert isinstance(store, RedisStore)
    clock = app[CLOCK]
    manual = isinstance(clock, ManualClock)
    follower = Follower(store, hub.parts)
    if manual:
        assert isinstance(clock, ManualClock)
        shared_clock = SharedClock(clock, store)
        follower.parts.append(shared_clock)
        app[CLOCK_MOVED].append(shared_clock.moved)
    faults.counters = ScheduleCounters(store.client, prefix=store.prefix)
    faults.allocate = lambda count: store.allocate("rules", count)
    faults.ages_from_clock = manual
    gateway = app[GATEWAY]
    gateway.shared_limiter = RedisLimiter(store.client, clock=clock if manual else None, prefix=store.prefix)
    gateway.follower = follower
    gateway.seen_once = SeenOnce(store.client, prefix=store.prefix)
    # Outbound rules too count every replica's deliveries (decided by each delivery's own task).
    app[DISPATCHER].shared_fault_source = shared_outbound_faults(faults)
    # One journal for all the replicas (core/shared_journal.py).
    journal = SharedJournal(app[JOURNAL], store, follower)
    follower.parts.append(journal)

    def touch(namespace: str) -> None:
        # A delivery taken over needs its namespace's state here (the receiver its console allows).
        for part in hub.parts:
            part.touch(namespace)

    # Deliveries leased: one replica attempts each, another takes it over when that one is gone.
    lease = app[SETTINGS].callbacks.lease_seconds
    outbox = LeasedOutbox(store, follower, app[DISPATCHER], lease, prepare=touch)
    follower.parts.append(outbox)

    async def start(app: web.Application) -> None:
        await follower.start()
        await journal.start()
        await outbox.start()

    async def close(app: web.Application) -> None:
        await outbox.close()  # after the dispatcher's own close, before the store's
        await journal.close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)


def _setup_callbacks(app: web.Application, settings: Settings, journal: Journal, clock: Clock) -> None:
    cfg = settings.callbacks
    allowed = AllowedHosts(cfg.allowed_hosts)
    for account in settings.alibaba.accounts:
        if account.callback_url:
            allowed.add_url(account.callback_url)
    dispatcher = app[DISPATCHER] = Dispatcher(
        journal,
        clock,
        max_retries=cfg.max_retries,
        retry_delays=cfg.retry_delays,
        attempt_timeout=cfg.attempt_timeout,
        max_response_bytes=cfg.max_response_bytes,
        allowed_hosts=allowed,
        max_deliveries=cfg.max_deliveries,
        max_pending=cfg.max_pending,
        max_concurrent_per_receiver=cfg.max_concurrent_per_receiver,
        store=app[STORE],
    )
    app[RESET_HOOKS].append(dispatcher.reset)

    grace = min(cfg.shutdown_grace, settings.server.shutdown_grace)
    closing: list[asyncio.Task[list[Delivery]]] = []

    async def shutdown(app: web.Application) -> None:
        # Deliveries get their grace while the server drains its calls, not after: the whole
        # shutdown stays within server.shutdown_grace.
        del app
        closing.append(asyncio.ensure_future(dispatcher.close(grace)))

    async def close(app: web.Application) -> None:
        del app
        await (closing[0] if closing else dispatcher.close(grace))

    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(close)
