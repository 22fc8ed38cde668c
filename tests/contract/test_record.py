"""The recording proxy in-process: redaction (and how check treats a redacted entry), the Host of a
client pointed at the proxy by address, an unreachable upstream."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from emulator import serve
from emulator.contract.har import HarWriter, read_har
from emulator.contract.proxy import DEFAULT_REDACTED, Recorder
from emulator.contract.replay import replay
from emulator.keys import JOURNAL
from emulator.testing.payloads import TEXT_BADCASE
from emulator.testing.settings import make_settings
from emulator.testing.signers import COS_HOST, cos_sdk_headers, tea_sdk_headers

GREEN_HOST = "green.cn-shanghai.aliyuncs.com"


@asynccontextmanager
async def proxy(upstream: str, out: Path, redact: tuple[str, ...] = ()) -> AsyncIterator[str]:
    recorder = Recorder(upstream, HarWriter(out), redact)
    runner = web.AppRunner(recorder.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recorder.port = port
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_redacted_secrets_never_reach_the_file_and_the_entry_is_replayed_relaxed(
    tmp_path: Path,
) -> None:
    out = tmp_path / "redacted.har"
    body = json.dumps({"scenes": ["porn"], "seed": "s3cret-seed", "tasks": [{"url": "http://a.example/1.jpg"}]})
    async with serve(make_settings()) as upstream, proxy(upstream.url, out, DEFAULT_REDACTED) as url:
        headers = tea_sdk_headers(
            body.encode(), time.time(), path="/green/image/asyncscan", action="ImageAsyncScan"
        )
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/green/image/asyncscan", data=body, headers={**headers, "Host": GREEN_HOST}
            ) as resp:
                answer = await resp.json()
        # Forwarded unchanged: the upstream verified the signature over headers and body.
        assert answer["code"] == 200 and answer["data"][0]["code"] == 200
        (seen,) = upstream.app[JOURNAL].select()
        assert seen.header("authorization") == headers["authorization"] and seen.url.startswith(f"http://{GREEN_HOST}/")
    text = out.read_text()
    assert "s3cret-seed" not in text and headers["authorization"] not in text
    (entry,) = read_har(out).entries
    assert entry["_redacted"] == ["authorization", "seed"]
    sent = {h["name"].lower(): h["value"] for h in entry["request"]["headers"]}
    assert sent["authorization"] == "[redacted]"
    assert json.loads(entry["request"]["postData"]["text"])["seed"] == "[redacted]"
    report = await replay([entry], make_settings())
    (result,) = report.results
    assert (result.action, result.outcome, result.verified) == ("ImageAsyncScan", "compared", False)
    assert result.findings == []


async def test_a_host_naming_the_proxy_becomes_the_upstreams(tmp_path: Path) -> None:
    out = tmp_path / "host.har"
    async with serve(make_settings()) as upstream, proxy(upstream.url, out) as url:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/health") as resp:
            assert resp.status == 200
        (entry,) = read_har(out).entries
    upstream_host = upstream.url.removeprefix("http://")
    assert entry["request"]["url"] == f"http://{upstream_host}/_emulator/health"
    assert {h["name"]: h["value"] for h in entry["request"]["headers"]}["Host"] == upstream_host


async def test_an_unreachable_upstream_is_a_502_and_an_entry_without_response(tmp_path: Path) -> None:
    out = tmp_path / "down.har"
    async with serve(make_settings()) as gone:
        address = gone.url  # a port nothing listens on once the block ends
    async with proxy(address, out) as url:
        async with aiohttp.ClientSession() as session, session.post(
            f"{url}/green/text/scan", data=b"{}", headers={"Host": GREEN_HOST}
        ) as resp:
            assert resp.status == 502
    (entry,) = read_har(out).entries
    assert entry["response"]["status"] == 0
    report = await replay([entry], make_settings())
    assert [(r.outcome, r.findings) for r in report.results] == [("no-response", [])]




async def test_a_client_using_it_as_an_http_proxy_is_forwarded_to_the_upstream(tmp_path: Path) -> None:
    # cos-python-sdk-v5 with Proxies sends absolute-form targets ("POST http://<bucket host>/...").
    out = tmp_path / "proxied.har"
    async with serve(make_settings()) as upstream, proxy(upstream.url, out) as url:
        headers = cos_sdk_headers(TEXT_BADCASE, time.time())
        async with aiohttp.ClientSession() as session, session.post(
            f"http://{COS_HOST}/report/badcase", data=TEXT_BADCASE, headers=headers, proxy=url
        ) as resp:
            assert resp.status == 200 and b"<Response>" in await resp.read()
        (seen,) = upstream.app[JOURNAL].select()
        assert seen.action == "ReportBadcase"
    (entry,) = read_har(out).entries
    assert entry["request"]["url"] == f"http://{COS_HOST}/report/badcase"
