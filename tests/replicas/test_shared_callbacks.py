"""Replicas sharing one Redis share the callback outbox: each delivery is attempted by exactly one
replica (the one holding its lease), every replica lists every replica's deliveries, and a replica
killed while a delivery waits for its retry has it taken over, attempt count kept."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from emulator import serve
from emulator.core.replicas import LeasedOutbox
from emulator.keys import DISPATCHER
from emulator.server import RunningServer
from emulator.testing import EmulatorClient
from emulator.testing.processes import serving
from emulator.testing.redis_server import redis_server
from emulator.testing.settings import make_settings

#: Short leases: a dead replica's deliveries are taken over within a second.
LEASE = 0.6


class Receiver:
    """A loopback receiver: answers 500 to the first ``fail_first`` requests for each task, then
    200; keeps every request's task id."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.tasks: list[str] = []
        self.arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.tasks.append(json.loads(str(form["content"]))["scanResult"]["taskId"])
        async with self.arrived:
            self.arrived.notify_all()
        return web.Response(status=500 if self.tasks.count(self.tasks[-1]) <= self.fail_first else 200)

    async def wait_received(self, count: int, timeout: float = 10.0) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.tasks) >= count), timeout)


async def start_receiver(stack: AsyncExitStack, fail_first: int = 0) -> tuple[Receiver, str]:
    receiver = Receiver(fail_first)
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return receiver, f"http://127.0.0.1:{runner.addresses[0][1]}/notify"


@pytest.fixture
def namespace() -> str:
    return f"callbacks-{uuid.uuid4().hex[:8]}"


def settings(redis_url: str, **overrides: Any) -> Any:
    return make_settings(
        **{
            "storage.url": redis_url,
            "callbacks.lease_seconds": LEASE,
            "callbacks.retry_delays": [1.0],
            "callbacks.max_retries": 3,
            "callbacks.shutdown_grace": 0,
            **overrides,
        }
    )


def outbox(server: RunningServer) -> LeasedOutbox:
    shared = server.app[DISPATCHER].shared
    assert isinstance(shared, LeasedOutbox)
    return shared


async def review(emu: EmulatorClient, task_id: str) -> str:
    answer = await emu.review(
        task_id=task_id, suggestion="block", labels=["porn"], url="http://example.com/1.jpg"
    )
    assert answer["delivery"]["state"] == "pending", answer
    correlation_id: str = answer["correlationId"]
    return correlation_id


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def test_each_delivery_is_attempted_once_and_listed_by_every_replica(
    redis_url: str, namespace: str, stack: AsyncExitStack
) -> None:
    # Attempt 1 of each fails: the deliveries wait a second for attempt 2 while every replica
    # sweeps for orphans five times.
    receiver, target = await start_receiver(stack, fail_first=1)
    replicas = [await stack.enter_async_context(serve(settings(redis_url))) for _ in range(3)]
    clients = [await stack.enter_async_context(EmulatorClient(r.url, namespace=namespace)) for r in replicas]
    await clients[0].set_callback(target)
    # One review through each replica: each queues one delivery.
    for i, emu in enumerate(clients):
        await review(emu, f"task-{i}")
    # Another replica waits for all three (a long poll that follows the others' records).
    done = await clients[2].wait_for_delivery(count=3, timeout=10)
    assert sorted(d["id"] for d in done) == sorted({d["id"] for d in done})  # unique across replicas
    for emu in clients:
        listed = await emu.deliveries()
        attempts = [[(a["number"], a["status"]) for a in d["attempts"]] for d in listed]
        assert attempts == [[(1, 500), (2, 200)]] * 3, listed
        assert {d["id"] for d in listed} == {d["id"] for d in done}
    # Past a few more sweeps: no replica attempts any of them again.
    await asyncio.sleep(2 * LEASE)
    assert sorted(receiver.tasks) == ["task-0", "task-0", "task-1", "task-1", "task-2", "task-2"]
    assert [outbox(r).taken_over for r in replicas] == [0, 0, 0]
    await clients[0].reset(namespace)
    assert await clients[1].deliveries() == []


async def test_a_killed_replicas_delivery_is_completed_by_another_with_its_attempt_count(
    redis_url: str, namespace: str, stack: AsyncExitStack
) -> None:
    receiver, target = await start_receiver(stack, fail_first=1)
    env = {
        "EMULATOR_CALLBACKS__LEASE_SECONDS": str(LEASE),
        "EMULATOR_CALLBACKS__RETRY_DELAYS": "[1.0]",
        "EMULATOR_CALLBACKS__MAX_RETRIES": "3",
        # The receiver's host is allowed only while the console names it (the survivor must read
        # the namespace's console setting before it attempts).
        "EMULATOR_CALLBACKS__ALLOWED_HOSTS": '["localhost"]',
    }
    doomed, doomed_url = stack.enter_context(serving("--store", redis_url, env=env))
    survivor = await stack.enter_async_context(
        serve(settings(redis_url, **{"callbacks.allowed_hosts": ["localhost"]}))
    )
    emu = await stack.enter_async_context(EmulatorClient(survivor.url, namespace=namespace))
    async with EmulatorClient(doomed_url, namespace=namespace) as via_doomed:
        await via_doomed.set_callback(target)
        correlation_id = await review(via_doomed, "task-k")
    # Attempt 1 fails (500): the doomed replica schedules attempt 2 a second later, and the survivor
    # sees the delivery waiting for it.
    await receiver.wait_received(1)
    for _ in range(250):
        [waiting] = await emu.deliveries(correlation_id=correlation_id)
        if waiting["attempts"] and waiting["nextAttemptAt"]:
            break
        await asyncio.sleep(0.02)
    assert [a["status"] for a in waiting["attempts"]] == [500] and waiting["state"] == "pending", waiting
    assert not waiting["id"].startswith(outbox(survivor).dispatcher.id_prefix)  # the doomed one's
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    # Its lease expires; the survivor takes the delivery over and makes attempt 2 when it is due.
    [done] = await emu.wait_for_delivery(correlation_id=correlation_id, timeout=10)
    assert done["id"] == waiting["id"]
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, 500), (2, 200)]
    assert outbox(survivor).taken_over == 1
    await asyncio.sleep(2 * LEASE)
    assert receiver.tasks == ["task-k", "task-k"]  # no attempt made twice
    await emu.reset(namespace)


async def test_a_delivery_due_while_redis_is_away_is_kept_and_completed_once_it_is_back(
    tmp_path: Path, namespace: str, stack: AsyncExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    receiver, target = await start_receiver(stack, fail_first=1)
    # Redis keeps its data across the restart (an append-only file in tmp_path).
    persistent = ("--dir", str(tmp_path), "--appendonly", "yes")
    first, again = ExitStack(), stack.enter_context(ExitStack())  # again: stopped after the emulator
    url = first.enter_context(redis_server(*persistent))
    try:
        server = await stack.enter_async_context(serve(settings(url, **{"callbacks.retry_delays": [0.5]})))
        emu = await stack.enter_async_context(EmulatorClient(server.url, namespace=namespace))
        await emu.set_callback(target)
        correlation_id = await review(emu, "task-r")
        await receiver.wait_received(1)
    finally:
        first.close()  # attempt 2 falls due while Redis is away, and the lease expires meanwhile
    dispatcher = server.app[DISPATCHER]
    [waiting] = dispatcher.deliveries()
    await asyncio.sleep(2 * LEASE)
    assert len(receiver.tasks) == 1 and waiting.state == "pending"
    again.enter_context(redis_server(*persistent, port=int(url.rsplit(":", 1)[1].split("/")[0])))
    [done] = await emu.wait_for_delivery(correlation_id=correlation_id, timeout=10)
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, 500), (2, 200)]
    assert receiver.tasks == ["task-r", "task-r"]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_replica_whose_lease_is_taken_stops_and_makes_no_attempt_until_it_holds_it_again(
    redis_url: str, namespace: str, stack: AsyncExitStack
) -> None:
    receiver, target = await start_receiver(stack, fail_first=1)
    server = await stack.enter_async_context(serve(settings(redis_url, **{"callbacks.retry_delays": [0.3]})))
    emu = await stack.enter_async_context(EmulatorClient(server.url, namespace=namespace))
    await emu.set_callback(target)
    correlation_id = await review(emu, "task-t")
    await receiver.wait_received(1)
    shared = outbox(server)
    [delivery] = server.app[DISPATCHER].deliveries()
    # Another holder takes the lease (as a replica would once this one's had expired).
    lease = shared.leases.key_name(delivery.id)
    await shared.store.client.set(lease, "another replica")
    await asyncio.sleep(3 * LEASE)  # attempt 2 falls due meanwhile, and several renewals
    assert receiver.tasks == ["task-t"] and shared.lost == 1
    assert not server.app[DISPATCHER].working_on(delivery.id)
    # The other holder lets it go without finishing it: this replica takes it over again.
    await shared.store.client.delete(lease)
    [done] = await emu.wait_for_delivery(correlation_id=correlation_id, timeout=10)
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, 500), (2, 200)]
    assert receiver.tasks == ["task-t", "task-t"] and shared.taken_over == 1


async def test_a_replica_stopped_hands_its_waiting_deliveries_over_at_once(
    redis_url: str, namespace: str, stack: AsyncExitStack
) -> None:
    receiver, target = await start_receiver(stack, fail_first=1)
    survivor = await stack.enter_async_context(serve(settings(redis_url)))
    emu = await stack.enter_async_context(EmulatorClient(survivor.url, namespace=namespace))
    async with AsyncExitStack() as leaving_stack:
        # Its leases last 5 s: a takeover sooner than that is the hand-over, not an expiry.
        leaving = await leaving_stack.enter_async_context(
            serve(settings(redis_url, **{"callbacks.lease_seconds": 5.0}))
        )
        async with EmulatorClient(leaving.url, namespace=namespace) as via_leaving:
            await via_leaving.set_callback(target)
            correlation_id = await review(via_leaving, "task-h")
        # Attempt 1 failed (500) and attempt 2 waits a second: then the replica stops.
        [waiting] = await leaving.app[DISPATCHER].wait_for(lambda d: d.next_attempt_at is not None)
        assert len(waiting.attempts) == 1 and leaving.app[DISPATCHER].working_on(waiting.id)
    [done] = await emu.wait_for_delivery(correlation_id=correlation_id, timeout=3)
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, 500), (2, 200)]
    assert receiver.tasks == ["task-h", "task-h"] and outbox(survivor).taken_over == 1


async def test_an_outbound_first_rule_fires_once_across_replicas(
    redis_url: str, namespace: str, stack: AsyncExitStack
) -> None:
    receiver, target = await start_receiver(stack)
    servers = [await stack.enter_async_context(serve(settings(redis_url))) for _ in range(3)]
    emus = [await stack.enter_async_context(EmulatorClient(s.url, namespace=namespace)) for s in servers]
    await emus[0].set_callback(target)
    await emus[1].add_faults({"direction": "out", "action": {"type": "drop"}, "schedule": {"first": 1}})
    for i, emu in enumerate(emus):  # one review through each replica
        await review(emu, f"task-{i}")
    delivered = await emus[0].wait_for_delivery(count=2, timeout=10)
    dropped = await emus[1].wait_for_delivery(state="dropped", timeout=10)
    assert len(delivered) == 2 and len(dropped) == 1
    assert len({d["id"] for d in delivered + dropped}) == 3
    await receiver.wait_received(2)
    [rule] = await emus[2].faults()
    assert rule["stats"] == {"matched": 3, "fired": 1}
