"""Fault schedules counted in Redis (ScheduleCounters): every replica's calls count, exactly one
replica fires the nth, and each decision is the one Schedule.decide makes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from emulator.core.faults import parse_schedule
from emulator.core.replicas import ScheduleCounters, draw

Clients = Callable[[], aioredis.Redis]


def replicas(clients: Clients, prefix: str, n: int = 3) -> list[ScheduleCounters]:
    return [ScheduleCounters(clients(), prefix=prefix) for _ in range(n)]


async def test_first_1_fires_exactly_once_across_three_replicas(clients: Clients, prefix: str) -> None:
    counters = replicas(clients, prefix)
    schedule = parse_schedule({"first": 1})
    await counters[0].register("f1")
    decided = await asyncio.gather(*(counters[i % 3].decide("f1", schedule) for i in range(60)))
    assert sum(d.fire for d in decided) == 1
    assert sorted(d.matched for d in decided) == list(range(1, 61))
    assert next(d for d in decided if d.fire).matched == 1
    assert await counters[2].counts("f1") == (60, 1)


async def test_nth_5_fires_on_the_fifth_call_overall(clients: Clients, prefix: str) -> None:
    counters = replicas(clients, prefix)
    schedule = parse_schedule({"nth": 5})
    fired_on = [i + 1 for i in range(12) if (await counters[i % 3].decide("f2", schedule)).fire]
    assert fired_on == [5]


async def test_decisions_match_schedule_decide(clients: Clients, prefix: str) -> None:
    """The script's decisions over 40 calls, call by call, against the Python schedule's."""
    counters = replicas(clients, prefix)
    specs: list[dict[str, Any]] = [
        {"always": True},
        {"every": 3},
        {"after": 2},
        {"first": 4, "every": 2},
        {"every": 2, "times": 3},
        {"after": 5, "times": 2},
        {"nth": 7},
    ]
    for n, spec in enumerate(specs):
        python = parse_schedule(spec)
        matched = fired = 0
        expected, got = [], []
        for i in range(40):
            matched += 1
            fire = python.decide(matched, fired, age=0.0)
            fired += fire
            expected.append(fire)
            got.append((await counters[i % 3].decide(f"r{n}", parse_schedule(spec), age=0.0)).fire)
        assert got == expected, spec


async def test_window_by_age(clients: Clients, prefix: str) -> None:
    counters = ScheduleCounters(clients(), prefix=prefix)
    schedule = parse_schedule({"window": {"from": 1.0, "until": 2.0}})
    ages = [0.0, 0.99, 1.0, 1.5, 1.999, 2.0, 5.0]
    assert [(await counters.decide("w", schedule, age=a)).fire for a in ages] == [
        False, False, True, True, True, False, False,
    ]  # fmt: skip
    # Without an age, the rule's age is counted in Redis from register(): just added, so too young.
    await counters.register("w2")
    assert not (await counters.decide("w2", schedule)).fire
    assert (await counters.decide("w2", parse_schedule({"window": {"until": 60}}))).fire


async def test_probability_draws_agree_across_replicas(clients: Clients, prefix: str) -> None:
    counters = replicas(clients, prefix)
    schedule = parse_schedule({"probability": 0.3, "seed": 2**64 - 1})
    decided = [await counters[i % 3].decide("p", schedule) for i in range(200)]
    expected = [draw(str(2**64 - 1), m) < 0.3 for m in range(1, 201)]
    assert [d.fire for d in decided] == expected
    assert 35 <= sum(expected) <= 85
    # Another seed, another sequence; no seed: the rule id is the seed, the same on every replica.
    assert [draw("1", m) < 0.3 for m in range(1, 201)] != expected
    unseeded = parse_schedule({"probability": 0.5})
    fired = [(await counters[i % 3].decide("p2", unseeded)).fire for i in range(50)]
    assert fired == [draw("p2", m) < 0.5 for m in range(1, 51)]


async def test_a_rule_of_every_namespace_counts_each_namespace_apart(clients: Clients, prefix: str) -> None:
    counters = replicas(clients, prefix)
    schedule = parse_schedule({"nth": 2})
    calls = ["a", "b", "a", "b", "a"]
    decided = [await counters[i % 3].decide("g", schedule, namespace=ns) for i, ns in enumerate(calls)]
    assert [d.fire for d in decided] == [False, False, True, True, False]
    assert [(d.matched, d.total_matched) for d in decided] == [(1, 1), (1, 2), (2, 3), (2, 4), (3, 5)]
    assert decided[-1].total_fired == 2
    assert await counters[0].counts("g", "a") == (3, 1)
    await counters[0].forget("g", "a")
    assert await counters[1].counts("g", "a") == (0, 0)
    assert await counters[1].counts("g") == (5, 2)
    await counters[1].forget("g")
    assert await counters[2].counts("g") == (0, 0)
