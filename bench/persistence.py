"""Persistence: signed calls per second with ``--data`` (SQLite) against memory mode, in the same
run, and start-up with a data directory holding 10,000 journal entries and 10 custom libraries of
10,000 terms each.

    .venv/bin/python -m bench.persistence [--duration 5] [--rounds 3]

Throughput uses the same server processes, load generator and signed requests as ``throughput``
(wrk when installed); rounds alternate memory and SQLite and the median of each is printed with
their ratio. Start-up is timed from process start to (a) the first 200 of ``/_emulator/health``
and (b) the first TextScan answer that hits one of the stored libraries: the account's state, its
libraries and their matcher are made from the stored records when the namespace is first used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from emulator import load
from emulator.core.journal import Entry
from emulator.keys import JOURNAL, STORE
from emulator.providers.alibaba.routes import ALIBABA_BACKEND
from emulator.server import start
from emulator.testing.signers import tea_sdk_headers

from .common import (
    PYTHON,
    ROOT,
    badcase_target,
    bench_config,
    free_port,
    image_target,
    table,
    tempdir,
    wait_healthy,
)
from .throughput import measure

LIBRARIES = 10
TERMS = 10_000
ENTRIES = 10_000


def _with_data(config: Path, data: Path, out: Path) -> Path:
    doc = json.loads(config.read_text())
    doc["storage"] = {"path": str(data)}
    out.write_text(json.dumps(doc))
    return out


def throughput(duration: float, rounds: int) -> list[list[str]]:
    work = tempdir()
    memory = bench_config(work / "memory.json")
    rows = []
    for make in (image_target, badcase_target):
        target = make()
        runs: dict[str, list[float]] = {"memory": [], "sqlite": []}
        for i in range(rounds):
            data = work / f"data-{target.name}-{i}"
            sqlite = _with_data(memory, data, work / f"sqlite-{i}.json")
            for kind, config in (("memory", memory), ("sqlite", sqlite)):
                run = measure("emulator", target, uvloop=False, duration=duration, config=config, work=work)
                if run.errors:
                    raise RuntimeError(f"{run.errors} failed calls with {kind}")
                runs[kind].append(run.rps)
            shutil.rmtree(data, ignore_errors=True)
        mem, sql = statistics.median(runs["memory"]), statistics.median(runs["sqlite"])
        rows.append([target.name, f"{mem:,.0f}", f"{sql:,.0f}", f"{sql / mem:.2f}"])
    return rows


def _term(lib: int, i: int) -> str:
    # Terms of Chinese characters (a term of English letters alone is refused), all distinct.
    digits = f"{lib:02d}{i:05d}"
    return "词" + "".join(chr(0x4E00 + int(d) * 37 + k) for k, d in enumerate(digits))


async def _fill(data: Path) -> None:
    """A data directory with ENTRIES journal entries and LIBRARIES x TERMS terms, written through
    the store as the running emulator writes them."""
    settings = load(env={}, overrides={"storage.path": str(data)})
    runner, server = await start(settings, host="127.0.0.1", port=0)
    try:
        backend = server.app[ALIBABA_BACKEND]
        libraries = backend.state(backend.accounts[0]).text_libraries
        for lib in range(LIBRARIES):
            code = libraries.create(f"lib{lib}", "term", "blacklist").code
            libraries.add(code, [_term(lib, i) for i in range(TERMS)])
        journal = server.app[JOURNAL]
        body = b'{"url": "http://example.com/1.jpg", "suggestion": "block"}'
        for i in range(ENTRIES):
            journal.record(
                Entry(
                    id=0,
                    time=time.time(),
                    direction="in",
                    method="POST",
                    url=f"http://127.0.0.1/green/image/feedback?{i}",
                    path="/green/image/feedback",
                    query=(),
                    request_headers=(("Content-Type", "application/json"),),
                    request_body=body,
                    provider="alibaba",
                    action="ImageScanFeedback",
                    account="1234567890123456",
                    namespace="default",
                    status=200,
                    response_body=b'{"code":200,"msg":"OK"}',
                )
            )
        await server.app[STORE].commit()
    finally:
        await runner.cleanup()


def _scan(url: str) -> float:
    body = json.dumps(
        {"scenes": ["antispam"], "tasks": [{"content": "前缀" + _term(3, 4242) + "后缀"}]}
    ).encode()
    headers = tea_sdk_headers(
        body, time.time(), path="/green/text/scan", action="TextScan", nonce=uuid.uuid4().hex
    )
    request = urllib.request.Request(url + "/green/text/scan", data=body, headers=headers, method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    suggestion = answer["data"][0]["results"][0]["suggestion"]
    if suggestion != "block":
        raise RuntimeError(f"the stored library did not apply: {answer}")
    return time.perf_counter() - t0


def _start(args: list[str], env: dict[str, str], scan: bool) -> tuple[float, float, float]:
    """Seconds from process start to the first healthy answer, and (with ``scan``) to the first
    TextScan answer and of that call alone."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, "-m", "emulator", "serve", "--port", str(port), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url + "/_emulator/health", proc)
        healthy = time.perf_counter() - t0
        alone = _scan(url) if scan else 0.0
        return healthy, time.perf_counter() - t0, alone
    finally:
        proc.terminate()
        proc.wait(30)


def startup(n: int) -> list[list[str]]:
    work = tempdir()
    data = work / "data"
    asyncio.run(_fill(data))
    # The same libraries preloaded from a config file, in memory mode: what a first scan costs
    # without any store (the terms are parsed and the matcher built on first use either way).
    config = json.loads((ROOT / "fixtures" / "default-config.json").read_text())
    config["alibaba"]["accounts"][0]["text_libraries"] = [
        {
            "name": f"lib{lib}",
            "kind": "term",
            "list_type": "blacklist",
            "items": [_term(lib, i) for i in range(TERMS)],
        }
        for lib in range(LIBRARIES)
    ]
    preloaded = work / "preloaded.json"
    preloaded.write_text(json.dumps(config, ensure_ascii=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    runs: dict[str, list[tuple[float, float, float]]] = {"memory": [], "data": [], "preloaded": []}
    for _ in range(n):
        runs["memory"].append(_start([], env, scan=False))
        runs["data"].append(_start(["--data", str(data)], env, scan=True))
        runs["preloaded"].append(_start(["--config", str(preloaded)], env, scan=True))

    def median(kind: str, i: int) -> str:
        return f"{statistics.median(r[i] for r in runs[kind]):.2f}"

    size = sum(f.stat().st_size for f in data.iterdir()) / 1e6
    what = f"{ENTRIES:,} entries, {LIBRARIES} x {TERMS:,} terms ({size:.0f} MB)"
    same = f"{LIBRARIES} x {TERMS:,} terms in the config"
    return [
        ["serve (memory): process start to first healthy answer", "none", median("memory", 0)],
        ["serve --data: process start to first healthy answer", what, median("data", 0)],
        ["serve --data: process start to first TextScan hit", what, median("data", 1)],
        ["  of which the first TextScan (state and matcher made)", what, median("data", 2)],
        ["serve --config: process start to first TextScan hit", same, median("preloaded", 1)],
        ["  of which the first TextScan (state and matcher made)", same, median("preloaded", 2)],
    ]


def main(duration: float = 5.0, rounds: int = 3, starts: int = 3) -> None:
    print(f"\n## Persistence: memory vs --data (SQLite), {duration:g} s per run, {rounds} rounds, median\n")
    print(table(throughput(duration, rounds), ["API", "memory req/s", "--data req/s", "--data/memory"]))
    print(f"\n## Start-up with a data directory ({starts} starts, median)\n")
    print(table(startup(starts), ["what", "data", "seconds"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.persistence")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    main(args.duration, args.rounds, args.starts)
