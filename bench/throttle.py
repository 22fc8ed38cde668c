"""Throttle accuracy: 100 calls/s offered for 10 s from one account against the default limit of 20
calls/s. Every admission decision is logged by the server with the instant the limiter used (its
own monotonic reading), so the windows are counted on the clock that decided them, free of network
and scheduling jitter."""

from __future__ import annotations

import asyncio
import bisect
import json
import random

from emulator import ManualClock
from emulator.core.throttle import SlidingWindowLimiter

from .common import bench_config, image_target, paced, server_process, table, tempdir

LIMIT = 20


def windows(admitted: list[float], start: float, end: float) -> tuple[int, int]:
    """(most admitted in any one-second window, fewest in any full window inside [start, end]).

    The limiter's window at ``now`` is (now - 1, now]. The extremes are reached by windows that
    end at an admitted call (the most) or begin at one, excluding it (the fewest).
    """
    most = 0
    fewest = len(admitted)
    for i, t in enumerate(admitted):
        most = max(most, i + 1 - bisect.bisect_right(admitted, t - 1.0))
        if start <= t and t + 1.0 <= end:
            fewest = min(fewest, bisect.bisect_right(admitted, t + 1.0) - (i + 1))
    return most, fewest


def histogram(admitted: list[float], start: float, end: float) -> dict[int, int]:
    """How many full windows, beginning just after each admitted call, hold how many calls."""
    counts: dict[int, int] = {}
    for i, t in enumerate(admitted):
        if start <= t and t + 1.0 <= end:
            n = bisect.bisect_right(admitted, t + 1.0) - (i + 1)
            counts[n] = counts.get(n, 0) + 1
    return dict(sorted(counts.items()))


def fixed(admitted: list[float], start: float, end: float) -> list[int]:
    """Admitted calls in consecutive one-second windows [start + k, start + k + 1) inside the run."""
    out = []
    t = start
    while t + 1.0 <= end:
        out.append(bisect.bisect_left(admitted, t + 1.0) - bisect.bisect_left(admitted, t))
        t += 1.0
    return out


def simulate(rate: float, duration: float, jitter: float) -> tuple[int, int]:
    """The same offer on a manual clock: arrivals exactly every 1/rate s, each up to ``jitter`` s
    late (seeded), through the emulator's own limiter."""
    clock = ManualClock()
    limiter = SlidingWindowLimiter(clock)
    rng = random.Random(1)
    admitted: list[float] = []
    refused: list[float] = []
    base = clock.monotonic()
    for k in range(int(rate * duration)):
        at = base + k / rate + rng.uniform(0, jitter)
        clock.advance(max(0.0, at - clock.monotonic()))
        (admitted if limiter.try_acquire("key", LIMIT) else refused).append(clock.monotonic())
    return windows(admitted, refused[0] if refused else admitted[-1], clock.monotonic())


def main(rate: float = 100.0, duration: float = 10.0) -> dict[str, int]:
    work = tempdir()
    config = bench_config(work / "config.json", high_limits=False)
    log_path = work / "decisions.json"
    print(f"\n## Throttle accuracy: {rate:g} calls/s offered for {duration:g} s, limit {LIMIT}/s\n")
    target = image_target()
    with server_process("emulator", config=config, throttle_log=log_path) as server:
        run = asyncio.run(paced(server.port, target.raw("127.0.0.1"), rate=rate, duration=duration))
    decisions = [(float(t), bool(ok)) for t, ok in json.loads(log_path.read_text())]
    admitted = [t for t, ok in decisions if ok]
    refused = [t for t, ok in decisions if not ok]
    saturated = refused[0] if refused else admitted[-1]
    most, fewest = windows(admitted, saturated, decisions[-1][0])
    spread = histogram(admitted, saturated, decisions[-1][0])
    seconds = fixed(admitted, saturated, decisions[-1][0])
    statuses = {s: run.statuses.count(s) for s in sorted(set(run.statuses))}
    rows: list[list[object]] = [
        ["calls sent / limiter decisions", f"{len(run.statuses)} / {len(decisions)}"],
        ["admitted / throttled (limiter)", f"{len(admitted)} / {len(refused)}"],
        ["answers by status (client)", ", ".join(f"{k}: {v}" for k, v in statuses.items())],
        ["most admitted in any 1 s window (must be 20)", most],
        ["fewest admitted in any full 1 s window once saturated (>= 19)", fewest],
        ["full sliding windows by calls admitted", ", ".join(f"{k}: {v}" for k, v in spread.items())],
        ["consecutive 1 s windows from saturation", " ".join(map(str, seconds))],
    ]
    for jitter in (0.0, 20e-6):
        most_sim, fewest_sim = simulate(rate, duration, jitter)
        rows.append(
            [
                f"same offer simulated on a ManualClock, jitter {jitter * 1e6:g} us: most / fewest",
                f"{most_sim} / {fewest_sim}",
            ]
        )
    print(table(rows, ["measure", "value"]))
    return {"most": most, "fewest": fewest, "admitted": len(admitted), "throttled": len(refused)}
