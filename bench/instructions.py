"""Instructions per request: each server run under valgrind's callgrind, instrumented only while a
fixed number of signed calls is served (after a warm-up), so the count is the same from run to run
and does not move with the load of a shared machine, as wall-clock throughput does.

``python -m bench instructions`` (needs valgrind; skipped with a note without it). Ratios of
instructions per request stand in for ratios of throughput: the same program on the same data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from .common import (
    PYTHON,
    ROOT,
    Connection,
    Target,
    badcase_target,
    bench_config,
    free_port,
    image_target,
    stop,
    table,
    tempdir,
    wait_healthy,
)

KINDS = ("bare", "floor", "emulator")


async def _drive(port: int, raw: bytes, count: int, connections: int = 4) -> None:
    conns = [await Connection.open(port) for _ in range(connections)]

    async def work(conn: Connection) -> None:
        for _ in range(count // connections):
            status = await conn.call(raw)
            if status != 200:
                raise RuntimeError(f"the server answered {status}")

    try:
        await asyncio.gather(*(work(c) for c in conns))
    finally:
        for c in conns:
            c.close()


def count(
    kind: str,
    target: Target,
    *,
    calls: int,
    work: Path,
    config: Path,
    during: Callable[[int], AbstractContextManager[object]] | None = None,
) -> float:
    """Instructions the ``kind`` server executes per call of ``target``; ``during(port)``, if given,
    is entered while the counted calls are made (bench/ui.py: a dashboard stream open)."""
    port = free_port()
    out = work / f"callgrind-{kind}-{target.name}.out"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        PYTHON,
        "-m",
        "bench.servers",
        kind,
        "--port",
        str(port),
    ]
    if kind == "emulator":
        cmd += ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_emulator/health", proc, timeout=300)
        raw = target.raw("127.0.0.1")
        asyncio.run(_drive(port, raw, 200))
        with during(port) if during is not None else nullcontext():
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
            asyncio.run(_drive(port, raw, calls))
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
    finally:
        # Valgrind writes its counts at exit, slowly.
        stop(proc, timeout=300)
    totals = [
        int(line.split()[1])
        for line in out.read_text(errors="replace").splitlines()
        if line.startswith(("summary:", "totals:"))
    ]
    if not totals or totals[-1] == 0:
        raise RuntimeError(f"no instructions counted in {out}")
    return totals[-1] / calls


def main(calls: int = 1000) -> dict[str, float]:
    print(f"\n## Instructions per request (callgrind, {calls} calls after a warm-up of 200)\n")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("(valgrind is not installed: apt-get install -y valgrind)")
        return {}
    work = tempdir()
    config = bench_config(work / "config.json")
    results: dict[str, float] = {}
    rows = []
    for make in (image_target, badcase_target):
        target = make()
        got = {kind: count(kind, target, calls=calls, work=work, config=config) for kind in KINDS}
        results.update({f"{target.name}/{kind}": n for kind, n in got.items()})
        rows.append(
            [
                target.name,
                *(f"{got[k]:,.0f}" for k in KINDS),
                f"{got['bare'] / got['floor']:.2f}",
                f"{got['bare'] / got['emulator']:.2f}",
                f"{got['floor'] / got['emulator']:.2f}",
            ]
        )
    header = ["API", "bare", "floor", "emulator", "floor/bare", "emulator/bare", "emulator/floor"]
    print(table(rows, header))
    print("\n(ratios are of calls per instruction, as throughput ratios are of calls per second)")
    return results
