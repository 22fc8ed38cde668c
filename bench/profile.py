"""Where the time goes: the emulator server under wrk (or the raw client) load, profiled by
pyinstrument in its own process; prints the heaviest frames."""

from __future__ import annotations

import asyncio
import shutil

from .common import Target, badcase_target, bench_config, closed_loop, image_target, server_process, tempdir
from .throughput import run_wrk


def profile(target: Target, duration: float, lines: int) -> str:
    work = tempdir()
    config = bench_config(work / "config.json")
    out = work / f"{target.name}.txt"
    with server_process("emulator", config=config, profile=out) as server:
        if shutil.which("wrk"):
            run_wrk(server.url, target, duration, work)
        else:
            asyncio.run(closed_loop(server.port, target.raw("127.0.0.1"), connections=50, duration=duration))
    text = out.read_text().splitlines()
    return "\n".join(text[:lines])


def main(duration: float = 5.0, lines: int = 70) -> None:
    for make in (image_target, badcase_target):
        target = make()
        print(f"\n## Profile: emulator serving {target.name} under load ({duration:g} s, pyinstrument)\n")
        print(profile(target, duration, lines))
