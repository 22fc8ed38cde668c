"""Added latency at a fixed, moderate rate: p50/p99 of the emulator against the bare baseline."""

from __future__ import annotations

import asyncio

from .common import (
    Paced,
    badcase_target,
    bench_config,
    check_accepted,
    paced,
    percentile,
    server_process,
    table,
    tempdir,
)


def main(rate: float = 500.0, duration: float = 10.0, uvloop: bool = False) -> dict[str, float]:
    work = tempdir()
    config = bench_config(work / "config.json")
    from .common import image_target

    print(f"\n## Latency at {rate:g} req/s for {duration:g} s (open loop, from the scheduled send)\n")
    rows = []
    out: dict[str, float] = {}
    for target in (image_target(), badcase_target()):
        runs: dict[str, Paced] = {}
        for kind in ("bare", "emulator"):
            with server_process(kind, uvloop=uvloop, config=config if kind == "emulator" else None) as s:
                if kind == "emulator":
                    check_accepted(s.url, target)
                raw = target.raw("127.0.0.1")
                asyncio.run(paced(s.port, raw, rate=rate, duration=1.0))  # warm up
                runs[kind] = asyncio.run(paced(s.port, raw, rate=rate, duration=duration))
        p = {(kind, q): percentile(run.latencies, q) * 1000 for kind, run in runs.items() for q in (50, 99)}
        bad = sum(1 for run in runs.values() for st in run.statuses if not 200 <= st < 300)
        for q in (50, 99):
            out[f"{target.name}/p{q}/bare"] = p["bare", q]
            out[f"{target.name}/p{q}/emulator"] = p["emulator", q]
        rows.append(
            [
                target.name,
                f"{p['bare', 50]:.2f}",
                f"{p['emulator', 50]:.2f}",
                f"{p['emulator', 50] - p['bare', 50]:+.2f}",
                f"{p['bare', 99]:.2f}",
                f"{p['emulator', 99]:.2f}",
                f"{p['emulator', 99] - p['bare', 99]:+.2f}",
                len(runs["emulator"].latencies),
                bad,
            ]
        )
    print(
        table(
            rows,
            [
                "API",
                "bare p50 ms",
                "emu p50 ms",
                "added",
                "bare p99 ms",
                "emu p99 ms",
                "added",
                "calls",
                "non-2xx",
            ],
        )
    )
    return out
