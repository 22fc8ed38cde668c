"""core/callbacks.py: delivery, retries on a manual clock, concurrency, shutdown, every attempt
journaled. Provider-neutral: the payload here is a plain text body."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest

from emulator import ManualClock
from emulator.core.callbacks import (
    CallbackURLError,
    Delivery,
    DeliveryFilter,
    DeliveryTimeout,
    Dispatcher,
    OutboundFault,
    OutboundInfo,
    Payload,
    check_url,
)
from emulator.core.journal import Filter, Journal

from .conftest import Receiver

SCHEDULE = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 600.0)


@pytest.fixture
async def dispatcher(receiver: Receiver, clock: ManualClock) -> AsyncIterator[Dispatcher]:
    # Depends on the receiver so that it is closed first, while the receiver still listens.
    d = Dispatcher(Journal(), clock, max_retries=16, retry_delays=SCHEDULE, attempt_timeout=10)
    yield d
    await d.close(grace=0)


def info(url: str, correlation_id: str = "c-1", account: str = "acc") -> OutboundInfo:
    return OutboundInfo("prov", "Notify", account, "ns", url, correlation_id)


def text(body: str = "hello") -> Payload:
    return Payload(body.encode(), "text/plain; charset=utf-8", parsed=body)


def submit(d: Dispatcher, url: str, body: str = "hello", **kw: str) -> Delivery:
    return d.submit(info(url, **kw), lambda fault: text(body))


async def waiting_after(d: Dispatcher, delivery: Delivery, attempts: int) -> None:
    """Until ``delivery`` has made ``attempts`` attempts and sleeps before the next one."""
    await d.wait_for(
        lambda x: x is delivery and len(x.attempts) == attempts and x.next_attempt_at is not None, timeout=5
    )


async def test_first_attempt_delivers_and_is_journaled(dispatcher: Dispatcher, receiver: Receiver) -> None:
    d = submit(dispatcher, receiver.url)
    (done,) = await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)
    assert done is d and [a.status for a in d.attempts] == [200]
    assert receiver.received[0].body == b"hello"
    assert receiver.received[0].content_type == "text/plain; charset=utf-8"
    (entry,) = dispatcher.journal.select(Filter(direction="out"))
    assert (entry.provider, entry.action, entry.account, entry.namespace, entry.correlation_id) == (
        "prov",
        "Notify",
        "acc",
        "ns",
        "c-1",
    )
    assert entry.method == "POST" and entry.url == receiver.url and entry.path == "/notify"
    assert entry.status == 200 and entry.response_body == b"success" and entry.error is None
    assert entry.request_body == b"hello" and entry.header("Content-Type") == "text/plain; charset=utf-8"
    assert d.attempts[0].entry_id == entry.id


async def test_fails_first_k_then_delivered_once_on_attempt_k_plus_1(
    dispatcher: Dispatcher, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.fail_first = 3
    d = submit(dispatcher, receiver.url)
    for n in range(1, 4):
        await waiting_after(dispatcher, d, n)
        # The next attempt is due exactly one scheduled delay later, on the manual clock.
        assert clock.pending_sleeps()[0] == pytest.approx(clock.monotonic() + SCHEDULE[n - 1])
        clock.advance(SCHEDULE[n - 1])
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)
    assert [a.status for a in d.attempts] == [500, 500, 500, 200]
    assert [a.number for a in d.attempts] == [1, 2, 3, 4]
    assert len(receiver.received) == 4
    statuses = [e.status for e in dispatcher.journal.select(Filter(direction="out", correlation_id="c-1"))]
    assert statuses == [500, 500, 500, 200]


async def test_always_failing_receiver_gets_1_plus_16_attempts_then_exhausted(
    dispatcher: Dispatcher, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.status = 503
    t0 = time.perf_counter()
    d = submit(dispatcher, receiver.url)
    for n in range(1, 17):
        await waiting_after(dispatcher, d, n)
        clock.advance(dispatcher.delay_before_retry(n))
    await dispatcher.wait_for(DeliveryFilter(state="exhausted"), timeout=5)
    # 1+2+...+512 and 600 six times: over an hour of schedule, driven in well under a second or so.
    assert clock.monotonic() == sum(SCHEDULE) + 600 * 5
    assert time.perf_counter() - t0 < 10
    assert len(d.attempts) == 17 and len(receiver.received) == 17
    entries = dispatcher.journal.select(Filter(direction="out"))
    assert [e.status for e in entries] == [503] * 17
    assert all(e.correlation_id == "c-1" for e in entries)
    assert d.finished is not None and d.next_attempt_at is None


async def test_the_schedule_waits_for_the_clock(
    dispatcher: Dispatcher, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.fail_first = 1
    d = submit(dispatcher, receiver.url)
    await waiting_after(dispatcher, d, 1)
    clock.advance(0.999)  # not yet due
    with pytest.raises(DeliveryTimeout, match="waited 0.05s for 1 delivery matching state='delivered'"):
        await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=0.05)
    assert len(receiver.received) == 1
    clock.advance(0.001)
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)


async def test_connection_refused_is_a_failed_attempt(dispatcher: Dispatcher, clock: ManualClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = submit(dispatcher, f"http://127.0.0.1:{port}/gone")
    await waiting_after(dispatcher, d, 1)
    attempt = d.attempts[0]
    assert attempt.status is None and attempt.error and "ClientConnectorError" in attempt.error
    (entry,) = dispatcher.journal.select(Filter(direction="out"))
    assert entry.status is None and entry.error == attempt.error


async def test_slow_receiver_times_out_on_the_clock_and_holds_up_nobody(
    dispatcher: Dispatcher, receiver: Receiver, other_receiver: Receiver, clock: ManualClock
) -> None:
    receiver.hold = asyncio.Event()
    slow = submit(dispatcher, receiver.url, correlation_id="slow")
    await receiver.wait_received(1)
    fast = submit(dispatcher, other_receiver.url, correlation_id="fast")
    await dispatcher.wait_for(lambda d: d is fast and d.state == "delivered", timeout=5)
    assert slow.in_flight and not slow.attempts
    clock.advance(10)  # the attempt timeout
    await waiting_after(dispatcher, slow, 1)
    assert slow.attempts[0].error == "timed out after 10s"


async def test_redirects_are_not_followed(dispatcher: Dispatcher, receiver: Receiver) -> None:
    receiver.status = 302
    d = submit(dispatcher, receiver.url)
    await waiting_after(dispatcher, d, 1)
    assert d.attempts[0].status == 302 and len(receiver.received) == 1


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http://", "/relative", ""])
def test_only_http_and_https_receivers(url: str) -> None:
    with pytest.raises(CallbackURLError, match="http:// or https://"):
        check_url(url)


async def test_submitting_a_bad_url_is_refused(dispatcher: Dispatcher) -> None:
    with pytest.raises(CallbackURLError):
        submit(dispatcher, "gopher://x/")
    assert dispatcher.deliveries() == []


# --- faults -------------------------------------------------------------------------------------


def source(d: Dispatcher, fault: OutboundFault, when: str = "c-1") -> list[OutboundInfo]:
    seen: list[OutboundInfo] = []

    def pick(i: OutboundInfo) -> OutboundFault | None:
        seen.append(i)
        return fault if i.correlation_id == when else None

    d.fault_source = pick
    return seen


async def test_fault_delay_holds_the_first_attempt(
    dispatcher: Dispatcher, receiver: Receiver, clock: ManualClock
) -> None:
    seen = source(dispatcher, OutboundFault("delay", seconds=30, rule="r1"))
    d = submit(dispatcher, receiver.url)
    assert seen == [d.info]
    await dispatcher.wait_for(lambda x: x.next_attempt_at is not None, timeout=5)
    clock.advance(29)
    assert clock.pending_sleeps() == [30]
    clock.advance(1)
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)
    (entry,) = dispatcher.journal.select(Filter(direction="out"))
    assert entry.fault == "delay [r1]" and entry.status == 200


async def test_fault_drop_never_sends(dispatcher: Dispatcher, receiver: Receiver) -> None:
    source(dispatcher, OutboundFault("drop", rule="r2"))
    dropped = submit(dispatcher, receiver.url, "dropped")
    submit(dispatcher, receiver.url, "kept", correlation_id="c-2")
    await dispatcher.wait_for(DeliveryFilter(correlation_id="c-2", state="delivered"), timeout=5)
    assert dropped.state == "dropped" and dropped.attempts == []
    assert [r.body for r in receiver.received] == [b"kept"]
    (entry,) = dispatcher.journal.select(Filter(correlation_id="c-1"))
    assert entry.fault == "drop [r2]" and entry.status is None and "dropped" in (entry.error or "")


async def test_fault_duplicate_sends_twice(dispatcher: Dispatcher, receiver: Receiver) -> None:
    source(dispatcher, OutboundFault("duplicate"))
    d = submit(dispatcher, receiver.url)
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)
    assert [r.body for r in receiver.received] == [b"hello", b"hello"]
    assert [(a.duplicate, a.fault) for a in d.attempts] == [(False, None), (True, "duplicate")]


async def test_fault_out_of_order_lets_the_next_delivery_overtake(
    dispatcher: Dispatcher, receiver: Receiver
) -> None:
    source(dispatcher, OutboundFault("out_of_order"))
    first = submit(dispatcher, receiver.url, "first")
    await dispatcher.wait_for(lambda d: d.held, timeout=5)
    submit(dispatcher, receiver.url, "second", correlation_id="c-2")
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), count=2, timeout=5)
    assert [r.body for r in receiver.received] == [b"second", b"first"]
    assert first.attempts[0].fault == "out_of_order"


async def test_fault_out_of_order_alone_is_sent_after_its_bound(
    dispatcher: Dispatcher, receiver: Receiver, clock: ManualClock
) -> None:
    source(dispatcher, OutboundFault("out_of_order", seconds=5))
    submit(dispatcher, receiver.url)
    await dispatcher.wait_for(lambda d: d.held and d.next_attempt_at is not None, timeout=5)
    clock.advance(5)
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)


async def test_content_faults_reach_the_payload_builder(dispatcher: Dispatcher, receiver: Receiver) -> None:
    got: list[OutboundFault | None] = []
    fault = OutboundFault("wrong_checksum", rule="r9")
    dispatcher.fault_source = lambda i: fault

    def build(f: OutboundFault | None) -> Payload:
        got.append(f)
        return text("bad" if f is not None else "good")

    dispatcher.submit(info(receiver.url), build)
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), timeout=5)
    assert got == [fault] and receiver.received[0].body == b"bad"
    assert dispatcher.journal.select(Filter(direction="out"))[0].fault == "wrong_checksum [r9]"


def test_fault_specs() -> None:
    assert OutboundFault.from_spec({"type": "delay", "seconds": 3}, rule="x") == OutboundFault(
        "delay", 3.0, "x"
    )
    with pytest.raises(ValueError, match="type must be one of"):
        OutboundFault.from_spec({"type": "explode"})
    with pytest.raises(ValueError, match="seconds must be"):
        OutboundFault.from_spec({"type": "delay", "seconds": -1})
    with pytest.raises(ValueError, match="unknown field 'colour'"):
        OutboundFault.from_spec({"type": "drop", "colour": "red"})


# --- lifecycle ----------------------------------------------------------------------------------


async def test_reset_cancels_pending_deliveries(
    dispatcher: Dispatcher, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.status = 500
    d = submit(dispatcher, receiver.url)
    await waiting_after(dispatcher, d, 1)
    dispatcher.reset("other-namespace")
    assert dispatcher.deliveries() == [d]
    dispatcher.reset()
    assert dispatcher.deliveries() == []
    clock.advance(1000)
    assert len(receiver.received) == 1


async def test_shutdown_waits_then_reports_what_is_pending(
    receiver: Receiver, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    d = Dispatcher(Journal(), clock, retry_delays=(60,))
    receiver.status = 500
    pending = submit(d, receiver.url, correlation_id="left-behind")
    await waiting_after(d, pending, 1)
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="emulator.callbacks"):
        left = await d.close(grace=0.05)
    assert time.perf_counter() - t0 < 2
    assert left == [pending] and d.abandoned == [pending]
    assert "1 callback delivery still pending" in caplog.text and "left-behind" in caplog.text
    # Calls still being answered during shutdown may cause notifications: refused, not a crash.
    late = submit(d, receiver.url)
    assert (late.state, late.refusal) == ("refused", "the emulator is shutting down")


async def test_shutdown_lets_deliveries_in_flight_finish_within_the_grace(
    receiver: Receiver, clock: ManualClock
) -> None:
    d = Dispatcher(Journal(), clock)
    receiver.hold = asyncio.Event()
    delivery = submit(d, receiver.url)
    await receiver.wait_received(1)
    closing = asyncio.create_task(d.close(grace=5))
    receiver.hold.set()
    assert await closing == []
    assert delivery.state == "delivered"


async def test_deliveries_run_concurrently_up_to_the_limit_per_receiver(
    dispatcher: Dispatcher, receiver: Receiver, other_receiver: Receiver
) -> None:
    assert dispatcher.max_concurrent_per_receiver == 4
    receiver.hold = asyncio.Event()
    other_receiver.hold = asyncio.Event()
    sent = [submit(dispatcher, receiver.url, f"n{i}", correlation_id=f"c{i}") for i in range(20)]
    sent += [submit(dispatcher, other_receiver.url, f"o{i}", correlation_id=f"o{i}") for i in range(20)]
    # Four reach each receiver while none has been answered; the rest wait for a free slot.
    await receiver.wait_received(4)
    await other_receiver.wait_received(4)
    assert sum(d.in_flight for d in sent) == 8
    assert (len(receiver.received), len(other_receiver.received)) == (4, 4)
    receiver.hold.set()
    other_receiver.hold.set()
    await dispatcher.wait_for(DeliveryFilter(state="delivered"), count=40, timeout=10)
    assert (len(receiver.received), len(other_receiver.received)) == (20, 20)
