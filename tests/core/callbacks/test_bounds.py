"""What the dispatcher keeps and where it may send: finished deliveries pruned to the newest N,
pending ones capped, waiters that cost one check per change, and the host allow-list decided
from the URL alone (no lookup, no connection for a host it refuses)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator import ManualClock
from emulator.core.callbacks import AllowedHosts, Delivery, DeliveryFilter, Dispatcher, OutboundInfo, Payload
from emulator.core.journal import Filter, Journal

from .conftest import Receiver


def submit(d: Dispatcher, url: str, n: int = 0) -> Delivery:
    info = OutboundInfo("prov", "Notify", "acc", "ns", url, f"c-{n}")
    return d.submit(info, lambda fault: Payload(b"hello", "text/plain"))


@pytest.fixture
async def make(receiver: Receiver, clock: ManualClock) -> AsyncIterator[Any]:
    made: list[Dispatcher] = []

    def factory(**kw: Any) -> Dispatcher:
        d = Dispatcher(Journal(), clock, max_retries=0, **kw)
        made.append(d)
        return d

    yield factory
    for d in made:
        await d.close(grace=0)


# --- the allow-list --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("example.invalid", False),
        ("192.0.2.1", False),
        ("::2", False),
        ("localhost.example.invalid", False),
        ("2130706433", False),  # 127.0.0.1 as one number: a resolver would take it; not a name here
        ("127.1", False),
    ],
)
def test_default_allow_list_is_loopback(host: str, allowed: bool) -> None:
    assert AllowedHosts().allows(host) is allowed


def test_console_hosts_come_and_go() -> None:
    hosts = AllowedHosts(["10.0.0.0/8", "receiver"])
    assert hosts.allows("10.1.2.3") and hosts.allows("Receiver") and not hosts.allows("localhost")
    hosts.set_console("acct", "http://hooks.example.invalid:9000/x", "ns")
    assert hosts.refusal("https://hooks.example.invalid/y") is None
    hosts.set_console("acct", "http://other.example.invalid/x", "ns")
    assert hosts.refusal("https://hooks.example.invalid/y") == (
        "host 'hooks.example.invalid' is not in callbacks.allowed_hosts"
    )
    hosts.reset("another-namespace")
    assert hosts.allows("other.example.invalid")
    hosts.reset("ns")
    assert not hosts.allows("other.example.invalid")
    assert AllowedHosts(["*"]).allows("anything.example.invalid")


@pytest.mark.parametrize("url", ["http://example.invalid/notify", "http://192.0.2.1:8080/notify"])
async def test_a_host_not_allowed_is_refused_without_lookup_or_connection(
    make: Any, network_calls: list[str], url: str
) -> None:
    d = make()
    delivery = submit(d, url)
    assert delivery.state == "refused" and delivery.attempts == []
    host = url.split("/")[2].split(":")[0]
    assert delivery.refusal == f"host {host!r} is not in callbacks.allowed_hosts"
    (entry,) = d.journal.select(Filter(direction="out"))
    assert entry.status is None and entry.error == f"not sent: {delivery.refusal}"
    await asyncio.sleep(0)  # nothing was scheduled that could still try
    assert not [call for call in network_calls if host in call]


async def test_a_host_removed_while_retrying_is_refused_at_the_next_attempt(
    receiver: Receiver, clock: ManualClock, network_calls: list[str]
) -> None:
    receiver.status = 500
    hosts = AllowedHosts([])
    hosts.set_console("acct", receiver.url)
    d = Dispatcher(Journal(), clock, max_retries=3, retry_delays=(1.0,), allowed_hosts=hosts)
    try:
        delivery = submit(d, receiver.url)
        await d.wait_for(lambda x: len(x.attempts) == 1 and x.next_attempt_at is not None, timeout=5)
        hosts.set_console("acct", None)
        network_calls.clear()
        clock.advance(1.0)
        await d.wait_for(DeliveryFilter(state="refused"), timeout=5)
        assert len(receiver.received) == 1 and len(delivery.attempts) == 1
        assert network_calls == []
        first, second = d.journal.select(Filter(direction="out"))
        assert (first.status, second.status) == (500, None)
        assert second.error == "not sent: host '127.0.0.1' is not in callbacks.allowed_hosts"
    finally:
        await d.close(grace=0)


# --- bounded ----------------------------------------------------------------------------------------


async def test_finished_deliveries_are_pruned_to_the_newest(make: Any, receiver: Receiver) -> None:
    d = make(max_deliveries=5)
    sent = [submit(d, receiver.url, i) for i in range(20)]
    await d.wait_for(lambda x: x is sent[-1] and x.state == "delivered", timeout=10)
    await asyncio.gather(*(d.wait_for(lambda x, s=s: x is s and x.done, timeout=10) for s in sent[-5:]))
    kept = d.deliveries()
    assert len(kept) == 5 and all(x.state == "delivered" for x in kept)
    assert d.get(sent[0].id) is None
    assert len(receiver.received) == 20


async def test_pending_deliveries_are_capped(make: Any, receiver: Receiver) -> None:
    receiver.hold = asyncio.Event()
    d = make(max_pending=3)
    sent = [submit(d, receiver.url, i) for i in range(5)]
    assert [x.state for x in sent] == ["pending"] * 3 + ["refused"] * 2
    assert sent[3].refusal == "3 deliveries pending already (callbacks.max_pending)"
    receiver.hold.set()
    await d.wait_for(DeliveryFilter(state="delivered"), count=3, timeout=5)
    assert submit(d, receiver.url, 9).state == "pending"


async def test_an_open_wait_costs_one_check_per_change_not_a_scan(make: Any, receiver: Receiver) -> None:
    d = make()
    earlier = [submit(d, receiver.url, i) for i in range(300)]
    await d.wait_for(DeliveryFilter(state="delivered"), count=300, timeout=20)
    assert len(earlier) == 300
    checks = 0

    def never(x: Delivery) -> bool:
        nonlocal checks
        checks += 1
        return x.info.correlation_id == "never"

    waiting = asyncio.ensure_future(d.wait_for(never, 1, timeout=60))
    await asyncio.sleep(0)
    assert checks == 300  # one scan to start with
    later = [submit(d, receiver.url, 1000 + i) for i in range(20)]
    await d.wait_for(lambda x: x in later and x.state == "delivered", count=20, timeout=10)
    # Each of the 20 changed a few times (submitted, in flight, attempted, delivered): a handful of
    # checks each. A scan per change would have been 300+ checks per change.
    assert 300 + 20 <= checks <= 300 + 20 * 6
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
