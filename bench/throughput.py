"""Throughput: signed calls per second, emulator vs a bare aiohttp handler and vs the essential-work
floor (bench/servers.py), with the same load generator (wrk with a Lua script when installed, else
the raw client in this process)."""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .common import (
    Target,
    badcase_target,
    bench_config,
    check_accepted,
    closed_loop,
    image_target,
    server_process,
    table,
    tempdir,
)
from .peers import available, peer_process

CONNECTIONS = 50
KINDS = ("bare", "floor", "emulator")


@dataclass
class Run:
    rps: float
    errors: int


def lua_script(target: Target, path: Path) -> Path:
    """wrk's request: method, body and the precomputed (signed) headers."""

    def lua(s: str | bytes) -> str:
        text = s.decode() if isinstance(s, bytes) else s
        assert "]==]" not in text
        return f"[==[{text}]==]"

    lines = ['wrk.method = "POST"', f"wrk.body = {lua(target.body)}"]
    lines += [f"wrk.headers[ {lua(k)} ] = {lua(v)}" for k, v in target.headers]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(url: str, target: Target, duration: float, work: Path) -> Run:
    script = lua_script(target, work / f"{target.name}.lua")
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            "-s",
            str(script),
            url + target.path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text = out.stdout
    if out.stderr.strip():
        raise RuntimeError(f"wrk complained:\n{out.stderr}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors:(.*)", text)
    errors = sum(int(n) for n in re.findall(r"\d+", socket_errors[1])) if socket_errors else 0
    return Run(float(match[1]), (int(bad[1]) if bad else 0) + errors)


def run_raw(port: int, target: Target, duration: float) -> Run:
    done, bad, elapsed = asyncio.run(
        closed_loop(port, target.raw("127.0.0.1"), connections=CONNECTIONS, duration=duration)
    )
    return Run(done / elapsed, bad)


def measure(
    kind: str,
    target: Target,
    *,
    uvloop: bool,
    duration: float,
    config: Path,
    work: Path,
    peers: dict[str, Path] | None = None,
) -> Run:
    if peers and kind in peers:
        context = peer_process(kind, peers[kind], work)
        # A JVM (and V8) needs more than a moment to compile its hot paths.
        warm = duration
    else:
        context = server_process(kind, uvloop=uvloop, config=config if kind == "emulator" else None)
        warm = min(1.0, duration / 4)
    with context as server:
        if kind != "bare":
            check_accepted(server.url, target)
        if shutil.which("wrk"):
            run_wrk(server.url, target, warm, work)
            return run_wrk(server.url, target, duration, work)
        run_raw(server.port, target, warm)
        return run_raw(server.port, target, duration)


def main(
    duration: float = 5.0, rounds: int = 2, loops: tuple[bool, ...] = (False,), peers: bool = False
) -> dict[str, float]:
    """Rounds alternate bare, floor and emulator runs (and the peers, with ``peers``), so a noisy
    neighbour hits all alike; the median of each is reported."""
    work = tempdir()
    config = bench_config(work / "config.json")
    generator = "wrk -t1 -c50 (Lua script)" if shutil.which("wrk") else "raw asyncio client (wrk missing)"
    print(f"\n## Throughput: {generator}, {duration:g} s per run, {rounds} rounds, median\n")
    found, notes = available() if peers else ({}, [])
    kinds = (*KINDS, *found)
    rows = []
    peer_rows = []
    results: dict[str, float] = {}
    for make in (image_target, badcase_target):
        target = make()
        for uv in loops:
            runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
            for _ in range(rounds):
                for kind in kinds:
                    if kind in found and uv:
                        continue  # the event loop is the emulator's concern, not a peer's
                    runs[kind].append(
                        measure(
                            kind, target, uvloop=uv, duration=duration, config=config, work=work, peers=found
                        )
                    )
            rps = {kind: statistics.median(r.rps for r in runs[kind]) for kind in kinds if runs[kind]}
            errors = sum(r.errors for kind in KINDS for r in runs[kind])
            loop = "uvloop" if uv else "asyncio"
            for kind in found:
                if kind in rps:
                    peer_errors = sum(r.errors for r in runs[kind])
                    peer_rows.append(
                        [
                            target.name,
                            kind,
                            f"{rps[kind]:,.0f}",
                            f"{rps['emulator'] / rps[kind]:.2f}",
                            peer_errors,
                        ]
                    )
            for kind in rps:
                results[f"{target.name}/{loop}/{kind}"] = rps[kind]
            bare, floor, emu = rps["bare"], rps["floor"], rps["emulator"]
            rows.append(
                [
                    target.name,
                    loop,
                    f"{bare:,.0f}",
                    f"{floor:,.0f}",
                    f"{emu:,.0f}",
                    f"{floor / bare:.2f}",
                    f"{emu / bare:.2f}",
                    f"{emu / floor:.2f}",
                    errors,
                ]
            )
    header = ["API", "loop", "bare req/s", "floor req/s", "emulator req/s"]
    header += ["floor/bare", "emulator/bare", "emulator/floor", "non-2xx"]
    print(table(rows, header))
    if peer_rows:
        print("\nPeers (static stubs of the same answers, same load generator, same rounds):\n")
        print(table(peer_rows, ["API", "peer", "req/s", "emulator/peer", "non-2xx"]))
    for note in notes:
        print(f"({note})")
    for name in ("ImageScanFeedback", "ReportBadcase"):
        if f"{name}/uvloop/emulator" in results:
            gain = results[f"{name}/uvloop/emulator"] / results[f"{name}/asyncio/emulator"]
            print(f"uvloop / asyncio, emulator, {name}: {gain:.2f}")
    return results
