"""What every benchmark shares: the signed requests, the server processes and a raw HTTP client.

The load generators here write precomputed request bytes on keep-alive connections and read the
answers with a minimal parser, so the client costs far less per call than any server does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from emulator.testing.signers import (
    cos_sdk_headers,
    tea_sdk_headers,
)

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


IMAGE_PATH = "/green/image/feedback"
BADCASE_PATH = "/report/badcase"
IMAGE_BODY = json.dumps(
    {"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"], "label": "ad"}
).encode()
BADCASE_BODY = (
    b"<Request><ContentType>1</ContentType><Label>Porn</Label><SuggestedLabel>Normal</SuggestedLabel>"
    b"<Text>" + base64.b64encode("这是一个测试".encode()) + b"</Text></Request>"
)


@dataclass(frozen=True)
class Target:
    """One API call, ready to send: path, headers (signed) and body."""

    name: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def raw(self, host: str) -> bytes:
        """The whole HTTP/1.1 request. ``host`` is used only when the headers carry no Host."""
        lines = [f"POST {self.path} HTTP/1.1"]
        names = {k.lower() for k, _ in self.headers}
        if "host" not in names:
            lines.append(f"Host: {host}")
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def image_target(now: float | None = None) -> Target:
    """A signed ImageScanFeedback call (ACS3-HMAC-SHA256, the Tea SDK's default), valid for the
    15 minutes of clock skew the gateway allows around ``now``."""
    now = time.time() if now is None else now
    md5 = base64.b64encode(hashlib.md5(IMAGE_BODY).digest()).decode()
    headers = tea_sdk_headers(IMAGE_BODY, now, nonce="bench-nonce", extra={"content-md5": md5})
    return Target("ImageScanFeedback", IMAGE_PATH, tuple(headers.items()), IMAGE_BODY)


def badcase_target(now: float | None = None, *, valid_for: int = 3600) -> Target:
    """A signed /report/badcase call (COS sha1) whose q-sign-time covers the next ``valid_for`` s."""
    now = time.time() if now is None else now
    headers = cos_sdk_headers(BADCASE_BODY, now, end=int(now) + valid_for)
    del headers["Content-Length"]  # Target.raw adds it (wrk does too)
    return Target("ReportBadcase", BADCASE_PATH, tuple(headers.items()), BADCASE_BODY)


def bench_config(path: Path, *, high_limits: bool = True, capacity: int = 10_000) -> Path:
    """The default config with rate limits high enough never to throttle a benchmark (the throttle
    still runs on every call) and the journal on."""
    config: dict[str, Any] = json.loads((ROOT / "fixtures" / "default-config.json").read_text())
    config["journal"] = {"capacity": capacity}
    # A load generator sends one signed request over and over, nonce and all: a replay by design.
    config["alibaba"]["reject_nonce_reuse"] = False
    if high_limits:
        for account in config["alibaba"]["accounts"]:
            account["rate_limits"] = {"ImageScanFeedback": 10_000_000, "TextFeedback": 10_000_000}
        for account in config["tencent"]["accounts"]:
            account["rate_limit"] = 10_000_000
    path.write_text(json.dumps(config))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def server_process(
    kind: str,
    *,
    uvloop: bool = False,
    config: Path | None = None,
    profile: Path | None = None,
    throttle_log: Path | None = None,
) -> Iterator[ServerProcess]:
    """Run ``python -m bench.servers KIND`` (``emulator`` or ``bare``) until the block ends."""
    port = free_port()
    cmd = [PYTHON, "-m", "bench.servers", kind, "--port", str(port)]
    if uvloop:
        cmd.append("--uvloop")
    if config is not None:
        cmd += ["--config", str(config)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if throttle_log is not None:
        cmd += ["--throttle-log", str(throttle_log)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_emulator/health", proc)
        yield ServerProcess(kind, port, proc)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(url: str, proc: subprocess.Popen[Any], timeout: float = 20.0) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{url} not healthy after {timeout} s")


def call_once(base_url: str, target: Target) -> tuple[int, bytes]:
    """One request with urllib (for pre-flight checks)."""
    req = urllib.request.Request(base_url + target.path, data=target.body, method="POST")
    for k, v in target.headers:
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def check_accepted(base_url: str, target: Target) -> None:
    """Fail loudly unless the emulator accepts ``target`` (a benchmark of error answers is void)."""
    status, body = call_once(base_url, target)
    ok = status == 200 and (b'"code":200' in body or b"<Response>" in body)
    if not ok:
        raise RuntimeError(f"{target.name} was not accepted: {status} {body[:300]!r}")


# --- the raw client ------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a fixed request and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, raw: bytes) -> int:
        """Send ``raw``; return the status once the whole answer has been read."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, raw: bytes, *, connections: int, duration: float) -> tuple[int, int, float]:
    """As many calls as ``connections`` keep-alive connections can make in ``duration`` seconds:
    (calls, non-2xx answers, elapsed seconds)."""
    conns = [await Connection.open(port) for _ in range(connections)]
    done = bad = 0
    t0 = time.perf_counter()
    deadline = t0 + duration

    async def worker(conn: Connection) -> None:
        nonlocal done, bad
        while time.perf_counter() < deadline:
            status = await conn.call(raw)
            done += 1
            bad += not 200 <= status < 300

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return done, bad, elapsed


@dataclass
class Paced:
    """An open-loop run: what was sent, when it was meant to go, and how each answer went."""

    latencies: list[float]  # seconds from the scheduled send to the last byte of the answer
    statuses: list[int]
    sent_at: list[float]  # perf_counter of each actual send
    elapsed: float


async def paced(port: int, raw: bytes, *, rate: float, duration: float, connections: int = 32) -> Paced:
    """Offer ``rate`` calls per second for ``duration`` seconds, on schedule whatever the server
    does (no coordinated omission: latency counts from the scheduled instant)."""
    conns: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        conns.put_nowait(await Connection.open(port))
    total = int(rate * duration)
    latencies = [0.0] * total
    statuses = [0] * total
    sent_at = [0.0] * total
    t0 = time.perf_counter() + 0.05

    async def one(i: int, due: float) -> None:
        conn = await conns.get()
        sent_at[i] = time.perf_counter()
        statuses[i] = await conn.call(raw)
        latencies[i] = time.perf_counter() - due
        conns.put_nowait(conn)

    tasks = []
    for i in range(total):
        due = t0 + i / rate
        # Sleep to within a millisecond of the due time, then spin: asyncio.sleep alone is a few
        # ms late at random, which bunches calls together.
        delay = due - time.perf_counter() - 0.001
        if delay > 0:
            await asyncio.sleep(delay)
        while time.perf_counter() < due:
            pass
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    while not conns.empty():
        conns.get_nowait().close()
    return Paced(latencies, statuses, sent_at, elapsed)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- reporting ----------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import aiohttp

    return (
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"{formatdate(usegmt=True)}"
    )


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="emulator-bench-"))
