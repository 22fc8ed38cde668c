"""Namespaces isolate: two namespaces sharing one running emulator never see or change each other's
journal, fault rules and their counts, throttle windows, console settings, verdicts, libraries,
feedback, scan tasks, badcases or jobs; admin calls without a namespace act on the default one and
``*`` on all. Every call is signed (emulator/testing/signers.py) and goes over loopback."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from emulator import ManualClock, RunningServer, serve
from emulator.testing.payloads import b64, request_xml, text_auditing_xml
from emulator.testing.settings import make_settings
from emulator.testing.signers import ACCESS_KEY_ID, ACCESS_KEY_SECRET, cos_sdk_headers, tea_sdk_headers

UID = "1234567890123456"
NS = "X-Emulator-Namespace"
A, B = "team-a", "team-b"
PORN_URL = "http://example.com/porn.jpg"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def server(clock: ManualClock) -> AsyncIterator[RunningServer]:
    account = {
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "uid": UID,
        "seed": "configSeed",
        "rate_limits": {"ImageScanFeedback": 2},
    }
    settings = make_settings(**{"alibaba.accounts": [account], "tencent.confirm_after_seconds": None})
    async with serve(settings, clock=clock) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Api:
    """Signed provider calls and admin calls against one server, in a namespace or none."""

    def __init__(self, http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock) -> None:
        self.http, self.url, self.clock = http, server.url, clock

    async def alibaba(self, path: str, action: str, body: Any, ns: str | None) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        extra = {NS: ns} if ns else None
        headers = tea_sdk_headers(
            raw, self.clock.time(), path=path, action=action, nonce=uuid.uuid4().hex, extra=extra
        )
        async with self.http.post(self.url + path, data=raw, headers=headers) as response:
            return response.status, await response.json()

    async def feedback(self, ns: str | None, url: str = PORN_URL) -> int:
        body = {"url": url, "suggestion": "block", "scenes": ["porn"], "label": "porn"}
        status, doc = await self.alibaba("/green/image/feedback", "ImageScanFeedback", body, ns)
        return status if status != 200 else int(doc["code"])

    async def image_label(self, ns: str | None, url: str = PORN_URL) -> str:
        body = {"scenes": ["porn"], "tasks": [{"url": url}]}
        _, doc = await self.alibaba("/green/image/scan", "ImageSyncScan", body, ns)
        return str(doc["data"][0]["results"][0]["label"])

    async def text_label(self, ns: str | None, text: str) -> str:
        body = {"scenes": ["antispam"], "tasks": [{"content": text}]}
        _, doc = await self.alibaba("/green/text/scan", "TextScan", body, ns)
        return str(doc["data"][0]["results"][0]["label"])

    async def tencent(self, method: str, path: str, body: bytes, ns: str | None) -> etree._Element:
        extra = {NS: ns} if ns else None
        headers = cos_sdk_headers(body, self.clock.time(), path=path, method=method, extra=extra)
        url = self.url + path
        async with self.http.request(method, url, data=body, headers=headers) as response:
            return etree.fromstring(await response.read())

    async def admin(
        self, method: str, path: str, ns: str | None = None, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        if ns is not None:
            params["namespace"] = ns
        async with self.http.request(
            method,
            f"{self.url}/_emulator{path}",
            params=params,
            # A change to the admin API is JSON, even bodiless (cross-site protection).
            json=body if body is not None or method in ("GET", "DELETE") else {},
        ) as response:
            return response.status, await response.json()


@pytest.fixture
def api(http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock) -> Api:
    return Api(http, server, clock)


async def test_journal_default_and_star(api: Api) -> None:
    assert await api.feedback(A) == 200
    assert await api.feedback(B) == 200
    assert await api.feedback(None) == 200

    async def namespaces(ns: str | None) -> list[str]:
        _, data = await api.admin("GET", "/requests", ns)
        return [e["namespace"] for e in data["entries"]]

    # No namespace named: the default one, shown by its name.
    assert await namespaces(None) == ["default"]
    assert await namespaces(A) == [A]
    assert sorted(await namespaces("*")) == sorted([A, B, "default"])
    # The header names it as well as the query.
    async with api.http.get(f"{api.url}/_emulator/requests/count", headers={NS: "*"}) as response:
        assert (await response.json())["count"] == 3
    assert (await api.admin("DELETE", "/requests", A))[1] == {"deleted": 1}
    assert (await api.admin("DELETE", "/requests"))[1] == {"deleted": 1}
    assert await namespaces("*") == [B]
    assert (await api.admin("DELETE", "/requests", "*"))[1] == {"deleted": 1}


async def test_reset_of_one_namespace_resets_all_of_it(api: Api) -> None:
    assert await api.feedback(A) == 200
    assert await api.feedback(B) == 200
    assert await api.image_label(A) == "porn" and await api.image_label(B) == "porn"
    # Without a namespace, a reset is the default namespace's: A and B keep everything.
    assert (await api.admin("POST", "/reset"))[1] == {"reset": True, "namespace": "default"}
    assert await api.image_label(A) == "porn"
    assert (await api.admin("POST", "/reset", A))[1] == {"reset": True, "namespace": A}
    assert (await api.admin("GET", "/requests/count", A))[1]["count"] == 0
    assert await api.image_label(A) == "normal"
    assert await api.image_label(B) == "porn"
    assert (await api.admin("POST", "/reset", "*"))[1] == {"reset": True, "namespace": "*"}
    assert (await api.admin("GET", "/requests/count", "*"))[1]["count"] == 0
    assert await api.image_label(B) == "normal"


async def test_feedback_libraries_are_per_namespace(api: Api) -> None:
    assert await api.feedback(A) == 200
    assert await api.image_label(A) == "porn"
    assert await api.image_label(B) == "normal"
    assert await api.image_label(None) == "normal"
    body = {"taskId": "t", "content": "a spam sentence", "label": "spam"}
    assert (await api.alibaba("/green/text/feedback", "TextFeedback", body, B))[0] == 200
    assert await api.text_label(B, "a spam sentence") == "spam"
    assert await api.text_label(A, "a spam sentence") == "normal"
    # The console shows each namespace its own feedback-based libraries.
    _, libs = await api.admin("GET", "/alibaba/libraries", A)
    counts = {lib["code"]: lib["count"] for lib in libs["libraries"]}
    assert counts == {"feedback-image": 1, "feedback-text": 0}


async def test_custom_text_libraries_and_verdicts_are_per_namespace(api: Api) -> None:
    body = {"name": "words", "kind": "term", "listType": "blacklist", "items": ["违禁词"]}
    assert (await api.admin("POST", "/alibaba/libraries", A, body))[0] == 201
    assert await api.text_label(A, "a 违禁词 word") == "customized"
    assert await api.text_label(B, "a 违禁词 word") == "normal"
    verdict = {"scene": "porn", "label": "sexy", "suggestion": "review", "url": "http://example.com/v.jpg"}
    assert (await api.admin("POST", "/alibaba/verdicts", B, verdict))[0] == 201
    assert await api.image_label(B, "http://example.com/v.jpg") == "sexy"
    assert await api.image_label(A, "http://example.com/v.jpg") == "normal"
    assert (await api.admin("GET", "/alibaba/verdicts", A))[1] == {"verdicts": []}
    assert len((await api.admin("GET", "/alibaba/verdicts", B))[1]["verdicts"]) == 1
    # '*' is no one namespace: a console call that changes state refuses it.
    status, problem = await api.admin("POST", "/alibaba/verdicts", "*", verdict)
    assert status == 400 and "one namespace" in problem["message"]
    assert (await api.admin("POST", "/reset", B))[0] == 200
    assert await api.image_label(B, "http://example.com/v.jpg") == "normal"


async def test_throttle_windows_are_per_namespace(api: Api, clock: ManualClock) -> None:
    # ImageScanFeedback is limited to 2 calls a second for the account.
    assert [await api.feedback(A) for _ in range(3)] == [200, 200, 429]
    assert [await api.feedback(B) for _ in range(2)] == [200, 200]
    assert await api.feedback(None) == 200
    # A reset of A frees A's window only.
    assert (await api.admin("POST", "/reset", A))[0] == 200
    assert await api.feedback(A) == 200
    assert await api.feedback(B) == 429
    clock.advance(1.0)
    assert await api.feedback(B) == 200


async def test_fault_rules_and_their_counts_are_per_namespace(api: Api) -> None:
    rule = {
        "match": {"provider": "alibaba", "action": "ImageScanFeedback"},
        "action": {"type": "error", "code": "ServiceUnavailable"},
        "schedule": {"first": 1},
    }
    _, added = await api.admin("POST", "/faults", A, rule)
    (rule_id,) = [r["id"] for r in added["rules"]]
    assert added["rules"][0]["namespace"] == A
    assert await api.feedback(B) == 200
    assert await api.feedback(None) == 200
    assert await api.feedback(A) == 503
    assert await api.feedback(A) == 200
    assert (await api.admin("GET", "/faults"))[1] == {"rules": []}
    assert [r["id"] for r in (await api.admin("GET", "/faults", "*"))[1]["rules"]] == [rule_id]
    (listed,) = (await api.admin("GET", "/faults", A))[1]["rules"]
    assert listed["stats"] == {"matched": 2, "fired": 1}
    # Another namespace can neither see nor remove it.
    assert (await api.admin("DELETE", f"/faults/{rule_id}", B))[0] == 404
    assert (await api.admin("DELETE", "/faults", B))[1] == {"deleted": 0}
    assert (await api.admin("DELETE", "/faults", A))[1] == {"deleted": 1}


async def test_a_rule_of_every_namespace_counts_each_apart(api: Api) -> None:
    rule = {
        "match": {"provider": "alibaba", "action": "ImageScanFeedback"},
        "action": {"type": "error", "code": "ServiceUnavailable"},
        "schedule": {"first": 1},
    }
    # Added with '*': a rule of every namespace, as start-up scenarios are.
    _, added = await api.admin("POST", "/faults", "*", rule)
    assert added["rules"][0]["namespace"] is None
    assert [await api.feedback(A) for _ in range(2)] == [503, 200]
    assert [await api.feedback(B) for _ in range(2)] == [503, 200]
    assert await api.feedback(A) == 200
    stats = {ns: (await api.admin("GET", "/faults", ns))[1]["rules"][0]["stats"] for ns in (A, B, "*")}
    assert stats == {
        A: {"matched": 3, "fired": 1},
        B: {"matched": 2, "fired": 1},
        "*": {"matched": 5, "fired": 2},
    }
    # A reset of A starts A's counts afresh; the rule stays, B's counts too.
    assert (await api.admin("POST", "/reset", A))[0] == 200
    assert await api.feedback(A) == 503
    assert await api.feedback(B) == 200


async def test_console_callback_url_and_seed_are_per_namespace(api: Api) -> None:
    received: list[tuple[str, dict[str, str]]] = []

    async def notify(request: web.Request) -> web.Response:
        received.append((request.path, dict(await request.post())))  # type: ignore[arg-type]
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", notify)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for ns in (A, B):
            url = f"http://127.0.0.1:{port}/{ns}"
            _, set_to = await api.admin("PUT", "/alibaba/callback", ns, {"url": url, "seed": f"seed-{ns}"})
            assert set_to["url"] == url
        _, review = await api.admin("POST", "/alibaba/reviews", A, {"taskId": "t", "suggestion": "pass"})
        assert review["delivery"]["url"].endswith(f"/{A}")
        # The default namespace still has the config's setting: no callback URL, nothing sent.
        _, review = await api.admin("POST", "/alibaba/reviews", None, {"taskId": "t", "suggestion": "pass"})
        assert review["delivery"] is None
        _, review = await api.admin("POST", "/alibaba/reviews", B, {"taskId": "t", "suggestion": "pass"})
        _, waited = await api.admin("GET", "/callbacks/wait", "*", count="2", state="delivered")
        assert sorted(d["namespace"] for d in waited["deliveries"]) == [A, B]
        assert (await api.admin("GET", "/callbacks", B))[1]["count"] == 1
        assert (await api.admin("GET", "/callbacks"))[1]["count"] == 0
    finally:
        await runner.cleanup()
    # Each notification was signed with its namespace's seed.
    for path, form in received:
        seed = f"seed-{path.strip('/')}"
        assert form["checksum"] == hashlib.sha256((UID + seed + form["content"]).encode()).hexdigest()
    assert sorted(path for path, _ in received) == [f"/{A}", f"/{B}"]


async def test_scan_tasks_are_per_namespace(api: Api) -> None:
    body = {"scenes": ["porn"], "tasks": [{"url": "http://example.com/a.jpg"}]}
    _, doc = await api.alibaba("/green/image/asyncscan", "ImageAsyncScan", body, A)
    task_id = doc["data"][0]["taskId"]
    _, mine = await api.alibaba("/green/image/results", "ImageAsyncScanResults", [task_id], A)
    _, theirs = await api.alibaba("/green/image/results", "ImageAsyncScanResults", [task_id], B)
    assert mine["data"][0]["code"] == 200
    assert theirs["data"][0]["code"] == 404


TEXT = "一个坏句子"


async def test_badcases_and_text_jobs_are_per_namespace(api: Api) -> None:
    badcase = request_xml(ContentType=1, Text=b64(TEXT), Label="Normal", SuggestedLabel="Porn")
    doc = await api.tencent("POST", "/report/badcase", badcase, A)
    request_id = doc.findtext("RequestId")
    assert request_id
    # Confirming is the namespace's own business too.
    assert (await api.admin("POST", f"/tencent/badcases/{request_id}/confirm", B))[0] == 404
    assert (await api.admin("POST", f"/tencent/badcases/{request_id}/confirm"))[0] == 404
    status, confirmed = await api.admin("POST", f"/tencent/badcases/{request_id}/confirm", A)
    assert status == 200 and confirmed["namespace"] == A
    audit_a = await api.tencent("POST", "/text/auditing", text_auditing_xml(TEXT), A)
    audit_b = await api.tencent("POST", "/text/auditing", text_auditing_xml(TEXT), B)
    assert audit_a.findtext("JobsDetail/Label") == "Porn"
    assert audit_b.findtext("JobsDetail/Label") == "Normal"
    assert [b["requestId"] for b in (await api.admin("GET", "/tencent/badcases", A))[1]["badcases"]] == [
        request_id
    ]
    assert (await api.admin("GET", "/tencent/badcases", B))[1]["count"] == 0
    assert (await api.admin("GET", "/tencent/badcases", "*"))[1]["count"] == 1
    job = f"/text/auditing/{audit_a.findtext('JobsDetail/JobId')}"
    assert (await api.tencent("GET", job, b"", A)).findtext("JobsDetail/Label") == "Porn"
    assert (await api.tencent("GET", job, b"", B)).findtext("Code") == "InvalidArgument"
    # The account has no configured namespace: a reset of A still forgets A's badcases and jobs.
    assert (await api.admin("POST", "/reset", A))[0] == 200
    assert (await api.admin("GET", "/tencent/badcases", "*"))[1]["count"] == 0
    assert (await api.tencent("GET", job, b"", A)).findtext("Code") == "InvalidArgument"
