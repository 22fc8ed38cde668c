"""Alibaba result notifications end to end: console setting, reviews and feedback calls fire them; a
real receiver verifies the checksum; the journal links each delivery to its cause."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator import ManualClock, RunningServer, serve, serve_in_thread
from emulator.core.callbacks import OutboundFault, OutboundInfo
from emulator.keys import DISPATCHER
from emulator.providers.alibaba.routes import ALIBABA_BACKEND
from emulator.testing import EmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings

from ...sdk.test_alibaba_sdks import core_image_feedback
from .conftest import Receiver

UID = "1234567890123456"
SEED = "testSeed"


@pytest.fixture
async def server(receiver: Receiver) -> AsyncIterator[RunningServer]:
    # Depends on the receiver so that the emulator stops first.
    settings = make_settings(
        **{
            "alibaba.verify_signatures": False,
            "alibaba.notify_on_feedback": True,
            "callbacks.shutdown_grace": 0,
        }
    )
    async with serve(settings, clock=ManualClock()) as running:
        yield running


async def review(emu: EmulatorClient, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"task_id": "task-1", "suggestion": "block", "labels": ["porn"]}
    args.update(kw)
    return await emu.review(url="http://example.com/1.jpg", **args)


async def test_review_notifies_and_the_receiver_verifies_the_checksum(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    answer = await review(emu, data_id="d-1")
    (delivery,) = await emu.wait_for_delivery(correlation_id=answer["correlationId"])
    assert delivery["state"] == "delivered" and len(delivery["attempts"]) == 1
    (got,) = receiver.received
    assert got.content_type == "application/x-www-form-urlencoded; charset=UTF-8"
    assert got.checksum_ok(UID, SEED)
    assert not got.checksum_ok(UID, "another seed")
    assert set(got.form) == {"checksum", "content"}
    assert got.content == {
        "scanResult": {
            "code": 200,
            "msg": "OK",
            "dataId": "d-1",
            "taskId": "task-1",
            "url": "http://example.com/1.jpg",
            # The machine's result (document 000), not the person's: no scan of task-1 is known,
            # so what a scan of the image in every scene answered just before the review.
            "results": [
                {"scene": scene, "label": "normal", "suggestion": "pass", "rate": 99.9}
                for scene in ("porn", "terrorism", "ad")
            ],
        },
        "auditResult": {"suggestion": "block", "labels": ["porn"]},
    }
    # The review joined the feedback-based library.
    entry = server.app[ALIBABA_BACKEND].states[UID].image_library["http://example.com/1.jpg"]
    assert (entry.kind, entry.label) == ("blacklist", "porn")


async def test_review_and_its_delivery_share_a_correlation_id_in_the_journal(emu: EmulatorClient) -> None:
    answer = await review(emu, suggestion="pass", labels=[])
    await emu.wait_for_delivery(correlation_id=answer["correlationId"])
    cause, sent = await emu.requests(correlation_id=answer["correlationId"])
    assert (cause.direction, cause.provider, cause.action, cause.account) == (
        "in",
        "alibaba",
        "ConsoleReview",
        UID,
    )
    assert cause.parsed["taskId"] == "task-1"
    assert (sent.direction, sent.action, sent.status) == ("out", "ImageScanNotification", 200)
    assert sent.parsed["content"]["auditResult"] == {"suggestion": "pass", "labels": []}


async def test_feedback_call_notifies_linked_by_its_request_id(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    body = {
        "taskId": "t-9",
        "url": "http://example.com/9.jpg",
        "suggestion": "block",
        "scenes": ["ad"],
        "label": "ad",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/green/image/feedback", data=json.dumps(body)) as response:
            request_id = (await response.json())["requestId"]
    (delivery,) = await emu.wait_for_delivery(correlation_id=request_id)
    assert delivery["action"] == "ImageScanNotification"
    cause = await emu.last(direction="in", correlation_id=request_id)
    assert cause.action == "ImageScanFeedback"
    (got,) = receiver.received
    assert got.checksum_ok(UID, SEED)
    # The machine's result before the feedback (document 000), not the person's verdict.
    assert got.content["scanResult"]["results"] == [
        {"scene": "ad", "label": "normal", "suggestion": "pass", "rate": 99.9}
    ]
    assert got.content["auditResult"] == {"suggestion": "block", "labels": ["ad"]}


async def test_text_feedback_notifies_per_labelled_item(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    items = [{"taskId": "a", "content": "buy now", "label": "ad"}, {"taskId": "b"}]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/green/text/feedback", data=json.dumps(items)) as response:
            await response.read()
    (delivery,) = await emu.wait_for_delivery(action="TextScanNotification")
    assert receiver.received[0].content["scanResult"]["content"] == "buy now"


async def test_feedback_without_a_verdict_notifies_nobody(server: RunningServer, emu: EmulatorClient) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/green/image/feedback", data=b"{}") as response:
            await response.read()
    assert await emu.deliveries() == []
    assert (await emu.last(action="ImageScanFeedback")).raw["correlationId"] is None


async def test_feedback_through_the_official_sdk_notifies(receiver: Receiver) -> None:
    settings = make_settings(**{"alibaba.notify_on_feedback": True, "callbacks.shutdown_grace": 0})
    with serve_in_thread(settings, clock=ManualClock()) as server:
        async with EmulatorClient(server.url) as emu:
            await emu.set_callback(receiver.url, account="testAccessKeyId")
            body = {
                "taskId": "sdk-1",
                "url": "http://example.com/s.jpg",
                "suggestion": "pass",
                "scenes": ["porn"],
            }
            result = await asyncio.to_thread(core_image_feedback, server, body)
            (delivery,) = await emu.wait_for_delivery(correlation_id=result["requestId"])
            cause = await emu.last(direction="in", correlation_id=result["requestId"])
    assert cause.action == "ImageScanFeedback" and cause.status == 200
    assert delivery["attempts"][0]["status"] == 200
    (got,) = receiver.received
    assert got.checksum_ok(UID, SEED)
    assert got.content["auditResult"] == {"suggestion": "pass", "labels": []}


async def test_feedback_notifications_are_off_by_default(receiver: Receiver) -> None:
    async with serve(make_settings(**{"alibaba.verify_signatures": False})) as server:
        async with EmulatorClient(server.url) as emu:
            await emu.set_callback(receiver.url)
            async with aiohttp.ClientSession() as http:
                body = {"url": "http://a/1.jpg", "suggestion": "block", "scenes": ["ad"]}
                async with http.post(f"{server.url}/green/image/feedback", data=json.dumps(body)) as r:
                    await r.read()
            assert await emu.deliveries() == []


# --- content faults, applied by the Alibaba payload builder -------------------------------------


def fault_all(server: RunningServer, kind: str) -> list[OutboundInfo]:
    seen: list[OutboundInfo] = []

    def pick(info: OutboundInfo) -> OutboundFault:
        seen.append(info)
        return OutboundFault(kind, rule="rule-7")  # type: ignore[arg-type]

    server.app[DISPATCHER].fault_source = pick
    return seen


async def test_fault_wrong_checksum_fails_verification(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    seen = fault_all(server, "wrong_checksum")
    answer = await review(emu)
    await emu.wait_for_delivery()
    (got,) = receiver.received
    assert not got.checksum_ok(UID, SEED)
    assert len(got.form["checksum"]) == 64 and "auditResult" in got.content
    assert seen[0].provider == "alibaba" and seen[0].account == UID and seen[0].url == receiver.url
    assert seen[0].correlation_id == answer["correlationId"]
    sent = await emu.last(direction="out")
    assert sent.raw["fault"] == "wrong_checksum [rule-7]"


async def test_fault_misspelled_audit_key(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    fault_all(server, "misspelled_audit_key")
    await review(emu)
    await emu.wait_for_delivery()
    (got,) = receiver.received
    assert got.checksum_ok(UID, SEED)  # the seed's sample is misspelled, not mis-signed
    assert "auditReult" in got.content and "auditResult" not in got.content
    assert (await emu.last(direction="out")).raw["fault"] == "misspelled_audit_key [rule-7]"


@pytest.mark.parametrize("kind", ["duplicate", "drop"])
async def test_transport_faults_at_the_receiver(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver, kind: str
) -> None:
    fault_all(server, kind)
    await review(emu)
    (delivery,) = await emu.wait_for_delivery(state="dropped" if kind == "drop" else "delivered")
    server.app[DISPATCHER].fault_source = None
    await review(emu, task_id="task-2")
    await emu.wait_for_delivery(count=2 if kind == "duplicate" else 1)
    tasks = [r.content["scanResult"]["taskId"] for r in receiver.received]
    assert tasks == (["task-1", "task-1", "task-2"] if kind == "duplicate" else ["task-2"])
    assert delivery["fault"] == f"{kind} [rule-7]"


# --- the console setting and the admin routes ----------------------------------------------------


async def test_callback_setting_keeps_the_seed_and_reset_restores_the_config(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    assert await emu.set_callback(receiver.url, account=UID) == {
        "account": UID,
        "url": receiver.url,
        "seed": SEED,
    }
    assert (await emu.set_callback(receiver.url, seed="s2"))["seed"] == "s2"
    await review(emu)
    await emu.wait_for_delivery()
    assert receiver.received[0].checksum_ok(UID, "s2")
    await emu.reset()
    state = server.app[ALIBABA_BACKEND].states[UID]
    assert (state.callback_url, state.callback_seed) == (None, SEED)
    assert await emu.deliveries() == []
    assert (await review(emu))["delivery"] is None  # no URL configured: nothing to notify


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"url": "ftp://example.com/cb"}, 400, "http:// or https://"),
        ({"url": "javascript:alert(1)"}, 400, "http:// or https://"),
        ({"account": "nobody", "url": "http://a/"}, 404, "no Alibaba account"),
        ({"seed": "x"}, 400, "url is required"),
        ({"url": "http://a/", "colour": 1}, 400, "unknown field 'colour'"),
        ([], 400, "JSON object"),
    ],
)
async def test_callback_setting_rejects(server: RunningServer, body: Any, status: int, message: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{server.url}/_emulator/alibaba/callback", json=body) as response:
            data = await response.json()
    assert response.status == status and data["error"] in ("bad_request", "not_found")
    assert message in data["message"]


async def test_review_rejects_bad_bodies(emu: EmulatorClient) -> None:
    with pytest.raises(AdminError, match="suggestion must be 'block' or 'pass'"):
        await review(emu, suggestion="review")
    with pytest.raises(AdminError, match=r"labels\[0\]: 'nice' is not an image label"):
        await review(emu, labels=["nice"])


async def test_account_is_required_when_several_are_configured(receiver: Receiver) -> None:
    second = {"access_key_id": "ak2", "access_key_secret": "s2", "uid": "2222", "seed": "seed2"}
    first = {"access_key_id": "ak1", "access_key_secret": "s1", "uid": "1111", "seed": "seed1"}
    settings = make_settings(**{"alibaba.accounts": [first, second]})
    async with serve(settings) as server, EmulatorClient(server.url) as emu:
        with pytest.raises(AdminError, match="account .* is required: 2 Alibaba accounts"):
            await emu.set_callback(receiver.url)
        await emu.set_callback(receiver.url, account="ak2")
        await emu.review(account="2222", task_id="t", suggestion="pass")
        (delivery,) = await emu.wait_for_delivery(account="2222")
    assert receiver.received[0].checksum_ok("2222", "seed2")
    assert delivery["account"] == "2222"


async def test_listing_filters_and_wait_timeout(
    server: RunningServer, emu: EmulatorClient, receiver: Receiver
) -> None:
    ns = EmulatorClient(server.url, namespace="team-a")
    async with ns, EmulatorClient(server.url, namespace="*") as everyone:
        # The console's callback URL is a namespace's own: team-a has none until it sets one.
        assert (await ns.review(task_id="unheard", suggestion="pass"))["delivery"] is None
        await ns.set_callback(receiver.url)
        await ns.review(task_id="in-ns", suggestion="pass")
        await review(emu)
        await everyone.wait_for_delivery(count=2)
        assert [d["namespace"] for d in await ns.deliveries()] == ["team-a"]
        assert len(await everyone.deliveries(state="delivered")) == 2
    assert [d["namespace"] for d in await emu.deliveries(state="delivered")] == ["default"]
    assert await emu.deliveries(state="exhausted") == []
    with pytest.raises(AdminError, match="state must be one of"):
        await emu.deliveries(state="lost")
    with pytest.raises(AdminError, match="unknown filter 'colour'"):
        await emu.deliveries(colour="red")
    with pytest.raises(
        AssertionError, match=r"(?s)waited 0.05s for 1 delivery matching state='exhausted'.*delivered"
    ):
        await emu.wait_for_delivery(state="exhausted", timeout=0.05)
