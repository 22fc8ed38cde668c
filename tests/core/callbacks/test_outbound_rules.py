"""Callback faults as fault-engine rules (``"direction": "out"``), through the admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from emulator import ManualClock, RunningServer, serve
from emulator.testing import EmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings

from .conftest import Receiver

UID = "1234567890123456"
SEED = "testSeed"


@pytest.fixture
async def server(receiver: Receiver) -> AsyncIterator[RunningServer]:
    settings = make_settings(**{"alibaba.verify_signatures": False, "callbacks.shutdown_grace": 0})
    async with serve(settings, clock=ManualClock()) as running:
        yield running


async def review(emu: EmulatorClient, task: str) -> None:
    await emu.review(url="http://example.com/1.jpg", task_id=task, suggestion="block", labels=["porn"])


async def test_out_rule_with_schedule_and_matcher(emu: EmulatorClient, receiver: Receiver) -> None:
    rule = {
        "name": "bad checksum once",
        "direction": "out",
        "match": {"provider": "alibaba", "account": UID},
        "action": {"type": "wrong_checksum"},
        "schedule": {"nth": 2},
    }
    async with emu.fault(rule):
        for task in ("t1", "t2", "t3"):
            await review(emu, task)
        await emu.wait_for_delivery(count=3)
        (listed,) = await emu.faults()
    got = {r.content["scanResult"]["taskId"]: r.checksum_ok(UID, SEED) for r in receiver.received}
    assert got == {"t1": True, "t2": False, "t3": True}
    assert listed["stats"] == {"matched": 3, "fired": 1}
    (faulty,) = [d for d in await emu.deliveries() if d["fault"]]
    assert faulty["fault"].startswith("wrong_checksum [f1 (bad checksum once)]")


async def test_out_rule_drop_and_inbound_rules_do_not_mix(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    await emu.add_faults({"direction": "out", "action": {"type": "drop"}})
    # An inbound rule matching everything leaves deliveries alone, and the other way round.
    await emu.add_faults({"match": {"provider": "tencent"}, "action": {"type": "reset"}})
    await review(emu, "t1")
    (delivery,) = await emu.wait_for_delivery(state="dropped")
    assert receiver.received == []
    assert delivery["fault"].startswith("drop")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"type": "explode"}, "rules[0].action: type must be one of"),
        ({"type": "delay", "seconds": -1}, "seconds must be a non-negative number"),
        ({"type": "drop", "max": 1}, "unknown field 'max'"),
    ],
)
async def test_bad_out_rules_are_refused(
    emu: EmulatorClient, action: dict[str, object], message: str
) -> None:
    with pytest.raises(AdminError) as info:
        await emu.add_faults({"direction": "out", "action": action})
    assert message in str(info.value)
