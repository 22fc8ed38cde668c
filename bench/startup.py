"""Start-up: in-process start + stop, and the CLI from process start to the first healthy answer."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time

from emulator import load
from emulator.server import start

from .common import PYTHON, ROOT, free_port, table, wait_healthy


async def _in_process(n: int) -> list[float]:
    settings = load(env={})
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        runner, _server = await start(settings, host="127.0.0.1", port=0)
        await runner.cleanup()
        times.append(time.perf_counter() - t0)
    return times


def _cli(n: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    times = []
    for _ in range(n):
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [PYTHON, "-m", "emulator", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/_emulator/health", proc)
            times.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(30)
    return times


def main(n_in_process: int = 50, n_cli: int = 5) -> dict[str, float]:
    print("\n## Start-up\n")
    asyncio.run(_in_process(3))  # imports and caches warm, as in a test session
    inproc = asyncio.run(_in_process(n_in_process))
    cli = _cli(n_cli)
    rows = [
        [
            "in-process start + stop (create_app, bind, cleanup)",
            n_in_process,
            f"{statistics.median(inproc) * 1000:.1f}",
            f"{max(inproc) * 1000:.1f}",
        ],
        [
            "CLI: process start to first 200 from /_emulator/health",
            n_cli,
            f"{statistics.median(cli) * 1000:.0f}",
            f"{max(cli) * 1000:.0f}",
        ],
    ]
    print(table(rows, ["what", "runs", "median ms", "max ms"]))
    return {"inprocess_ms": statistics.median(inproc) * 1000, "cli_ms": statistics.median(cli) * 1000}
