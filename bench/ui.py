"""What an open dashboard costs the provider APIs: throughput with and without a listener.

``python -m bench.ui [--duration S] [--rounds N]``: one emulator process (bench/servers.py, the
benchmark config), signed ImageScanFeedback calls driven by the throughput section's generator (wrk
with a Lua script when installed, else the raw asyncio client), in alternating runs:

- **none**: nobody listens to ``/_emulator/ui/events`` (the journal's listener check is one truth
  test a call);
- **reader**: one stream open and read as fast as it comes, as a browser tab does; it counts the
  rows and events it got and the rows the server reported ``dropped``;
- **stalled**: one stream opened and never read (a frozen tab): the server's writes block, its
  buffer of rows stays at its bound, and the server's resident memory is shown after the run.

The median req/s of each is printed with the ratios to **none** (same process, same rounds).

With valgrind installed, instructions per call are also counted (bench/instructions.py: callgrind,
instrumented only while the calls are served) with nobody listening and with a reader, which stays
connected until it has received every counted row, so each batch it was sent is counted: a figure
that does not move with a shared machine's load, as req/s does.

With chromium and chromedriver installed, last, the page itself in headless Chromium while calls
arrive at ``--rate`` a second (open loop, bench/common.py's ``paced``): the rows it keeps, the long
tasks (over 50 ms) the browser reports, and how long a click on the newest row takes to show its
detail, clicked every half second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import instructions
from .common import (
    Paced,
    bench_config,
    check_accepted,
    image_target,
    paced,
    percentile,
    server_process,
    table,
    tempdir,
)
from .throughput import Run, run_raw, run_wrk

KINDS = ("none", "reader", "stalled")


@dataclass
class Counts:
    events: int = 0
    rows: int = 0
    dropped: int = 0


@dataclass
class Reader:
    """A thread that reads the event stream like a page does (without drawing anything)."""

    url: str
    counts: Counts = field(default_factory=Counts)
    _response: object = None

    def start(self) -> threading.Thread:
        ready = threading.Event()
        thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        thread.start()
        ready.wait(5)
        return thread

    def _run(self, ready: threading.Event) -> None:
        response = urllib.request.urlopen(self.url + "/_emulator/ui/events?backlog=0", timeout=30)
        self._response = response
        ready.set()
        buffer = b""
        try:
            while chunk := response.read1(65536):
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    self._count(event)
        except (OSError, ValueError, AttributeError):
            pass  # closed by stop() (http.client drops its file object on close)

    def _count(self, event: bytes) -> None:
        for line in event.split(b"\n"):
            if line.startswith(b"data: "):
                data = json.loads(line[6:])
                self.counts.events += 1
                self.counts.rows += len(data["rows"])
                self.counts.dropped += data.get("dropped", 0)

    def stop(self, thread: threading.Thread) -> None:
        close = getattr(self._response, "close", None)
        if close is not None:
            close()
        thread.join(5)


def stalled_stream(port: int) -> socket.socket:
    """A stream opened with a small receive buffer and then never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /_emulator/ui/events?backlog=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(duration: float = 5.0, rounds: int = 3) -> dict[str, float]:
    work = tempdir()
    config = bench_config(work / "config.json")
    target = image_target()
    use_wrk = shutil.which("wrk") is not None
    generator = "wrk -t1 -c50 (Lua script)" if use_wrk else "raw asyncio client (wrk missing)"
    print(f"\n## Dashboard stream: {generator}, {duration:g} s per run, {rounds} rounds, median\n")
    runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
    rss: dict[str, list[float]] = {kind: [] for kind in KINDS}
    counts = Counts()

    with server_process("emulator", config=config) as server:
        check_accepted(server.url, target)

        def load(seconds: float) -> Run:
            if use_wrk:
                return run_wrk(server.url, target, seconds, work)
            return run_raw(server.port, target, seconds)

        load(min(2.0, duration))  # warm up, and fill the journal to its cap
        for i in range(rounds):
            # Each round in another order, so that a drift over time hits every kind alike.
            for kind in KINDS[i % 3 :] + KINDS[: i % 3]:
                if kind == "reader":
                    reader = Reader(server.url)
                    thread = reader.start()
                    runs[kind].append(load(duration))
                    reader.stop(thread)
                    counts.events += reader.counts.events
                    counts.rows += reader.counts.rows
                    counts.dropped += reader.counts.dropped
                elif kind == "stalled":
                    sock = stalled_stream(server.port)
                    runs[kind].append(load(duration))
                    rss[kind].append(rss_mib(server.proc.pid))
                    sock.close()
                else:
                    runs[kind].append(load(duration))
                if kind != "stalled":
                    rss[kind].append(rss_mib(server.proc.pid))

    rps = {kind: statistics.median(r.rps for r in runs[kind]) for kind in KINDS}
    errors = sum(r.errors for kind in KINDS for r in runs[kind])
    rows = [
        [
            kind,
            f"{rps[kind]:,.0f}",
            f"{rps[kind] / rps['none']:.3f}",
            f"{max(rss[kind]):.1f}",
            " ".join(f"{r.rps:,.0f}" for r in runs[kind]),
        ]
        for kind in KINDS
    ]
    print(table(rows, ["listener", "req/s", "/ none", "server RSS MiB (max)", "runs"]))
    print(
        f"\nreader: {counts.events:,} events carried {counts.rows:,} rows "
        f"({counts.rows / max(1, counts.events):,.0f} a batch); {counts.dropped:,} dropped by the server "
        f"for a reader slower than the traffic; non-2xx or socket errors: {errors}"
    )
    return {f"{kind}/rps": rps[kind] for kind in KINDS}


def reading(calls: int, counts: Counts) -> Callable[[int], AbstractContextManager[object]]:
    """For instructions.count: a reader connected while the calls are made, until it got them all."""

    @contextmanager
    def during(port: int) -> Iterator[Counts]:
        reader = Reader(f"http://127.0.0.1:{port}", counts)
        thread = reader.start()
        try:
            yield reader.counts
            deadline = time.monotonic() + 300
            while reader.counts.rows + reader.counts.dropped < calls and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            reader.stop(thread)

    return during


def count_instructions(calls: int = 1000) -> dict[str, float]:
    print(f"\n## Dashboard stream: instructions per call (callgrind, {calls} calls after 200)\n")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("(valgrind is not installed: apt-get install -y valgrind)")
        return {}
    work = tempdir()
    config = bench_config(work / "config.json")
    target = image_target()
    none = instructions.count("emulator", target, calls=calls, work=work, config=config)
    got = Counts()
    read = instructions.count(
        "emulator", target, calls=calls, work=work, config=config, during=reading(calls, got)
    )
    rows = [["none", f"{none:,.0f}", "1.000"], ["reader", f"{read:,.0f}", f"{none / read:.3f}"]]
    print(table(rows, ["listener", "instructions per call", "calls per instruction / none"]))
    print(f"\nreader: {got.events} events carried {got.rows} rows, {got.dropped} dropped")
    return {"none/instructions": none, "reader/instructions": read}


#: In-page probes: long tasks (over 50 ms, the browser's own measure of an unresponsive page), and
#: how long a click on the newest row takes to show its detail.
LONG_TASKS = """
window.__long = [];
new PerformanceObserver((list) => list.getEntries().forEach((e) => window.__long.push(e.duration)))
  .observe({type: "longtask", buffered: true});
"""
OPEN_DETAIL = """
const done = arguments[arguments.length - 1];
const tr = document.querySelector("#traffic-body tr[data-id]");
if (!tr) { done(null); return; }
const t0 = performance.now();
tr.click();
(function check() {
  const h = document.querySelector("#detail h2");
  if (h && h.textContent.startsWith("#" + tr.dataset.id + " ")) done(performance.now() - t0);
  else setTimeout(check, 5);
})();
"""


def browser_responsiveness(rate: float = 1000.0, duration: float = 10.0) -> dict[str, float]:
    """The page in headless Chromium while ``rate`` calls a second arrive (open loop)."""
    print(f"\n## Dashboard page under load: {rate:,.0f} calls/s for {duration:g} s, headless Chromium\n")
    chromium, chromedriver = "/usr/bin/chromium", "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(chromedriver).exists()):
        print("(chromium is not installed: apt-get install -y chromium chromium-driver)")
        return {}
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    work = tempdir()
    config = bench_config(work / "config.json")
    target = image_target()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = "headless no-sandbox disable-gpu disable-quic no-first-run disable-background-networking"
    flags += " disable-component-update disable-sync disable-dev-shm-usage window-size=1440,900"
    for flag in [*flags.split(), f"user-data-dir={work / 'profile'}"]:
        options.add_argument("--" + flag)
    with server_process("emulator", config=config) as server:
        check_accepted(server.url, target)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
        try:
            driver.get(server.url + "/_emulator/ui")
            while driver.find_element("id", "live").text != "live":
                time.sleep(0.05)
            driver.execute_script(LONG_TASKS)
            result: list[Paced] = []
            load = threading.Thread(
                target=lambda: result.append(
                    asyncio.run(paced(server.port, target.raw("127.0.0.1"), rate=rate, duration=duration))
                )
            )
            load.start()
            opens: list[float] = []
            time.sleep(1.0)
            while load.is_alive():
                took = driver.execute_async_script(OPEN_DETAIL)
                if took is not None:
                    opens.append(took)
                time.sleep(0.5)
            load.join()
            time.sleep(0.5)  # the last batch
            shown = driver.execute_script("return document.querySelectorAll('#traffic-body tr').length")
            counts = driver.find_element("id", "counts").text
            longs: list[float] = driver.execute_script("return window.__long")
        finally:
            driver.quit()
    run = result[0]
    ok = sum(1 for st in run.statuses if st == 200)
    rows = [
        ["calls answered 200", f"{ok:,} of {len(run.statuses):,} ({ok / run.elapsed:,.0f}/s)"],
        [
            "call latency p50 / p99 ms",
            f"{percentile(run.latencies, 50) * 1000:.1f} / {percentile(run.latencies, 99) * 1000:.1f}",
        ],
        ["rows in the table (cap 500)", shown],
        ["page's own count", counts],
        ["long tasks (> 50 ms)", f"{len(longs)}, longest {max(longs, default=0):.0f} ms"],
        [
            "click -> detail shown ms, p50 / max",
            f"{statistics.median(opens):.0f} / {max(opens):.0f} ({len(opens)} clicks)"
            if opens
            else "no clicks",
        ],
    ]
    print(table(rows, ["", "figure"]))
    return {"long_tasks": float(len(longs)), "detail_ms_p50": statistics.median(opens) if opens else -1.0}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of none/reader/stalled (3)")
    parser.add_argument("--calls", type=int, default=1000, help="calls counted under callgrind (1000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="calls/s offered with the page open")
    args = parser.parse_args()
    main(duration=args.duration, rounds=args.rounds)
    count_instructions(calls=args.calls)
    browser_responsiveness(rate=args.rate, duration=2 * args.duration)
