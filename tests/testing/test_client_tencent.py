"""The clients' Tencent CI console helpers (tencent_badcases, confirm_badcase) against a real server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import requests
from lxml import etree

from emulator import ManualClock, RunningServer, serve, serve_in_thread
from emulator.testing import EmulatorClient, SyncEmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.payloads import b64, request_xml, text_auditing_xml
from emulator.testing.settings import make_settings
from emulator.testing.signers import cos_sdk_headers

PATH = "/report/badcase"
TEXT_AUDITING_PATH = "/text/auditing"

TEXT = "这是一个测试"
ACCOUNTS = [
    {"secret_id": "AKIDtestSecretId", "secret_key": "testSecretKey", "appid": "1250000000", "namespace": "a"},
    {"secret_id": "AKIDother", "secret_key": "otherKey", "appid": "1250000001", "namespace": "b"},
]
OTHER = {
    "host": "examplebucket-1250000001.ci.ap-beijing.myqcloud.com",
    "secret_id": "AKIDother",
    "secret_key": "otherKey",
}


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve(make_settings(**{"tencent.accounts": ACCOUNTS})) as running:
        yield running


async def post(server: RunningServer, path: str, body: bytes, **signing: Any) -> bytes:
    headers = cos_sdk_headers(body, time.time(), path=path, **signing)
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + path, data=body, headers=headers) as response:
            raw = await response.read()
            assert response.status == 200, raw
            return raw


async def report(server: RunningServer, text: str, suggested: str, **signing: Any) -> str:
    body = request_xml(ContentType=1, Label="Normal", SuggestedLabel=suggested, Text=b64(text))
    request_id = etree.fromstring(await post(server, PATH, body, **signing)).findtext("RequestId")
    assert request_id
    return request_id


async def label(server: RunningServer, text: str) -> str | None:
    raw = await post(server, TEXT_AUDITING_PATH, text_auditing_xml(text))
    return etree.fromstring(raw).findtext("JobsDetail/Label")


async def test_list_and_confirm(server: RunningServer) -> None:
    mine = await report(server, TEXT, "Porn")
    theirs = await report(server, "另一个", "Ads", **OTHER)
    emu = EmulatorClient(server.url, namespace="*")
    async with emu, EmulatorClient(server.url, namespace="a") as a:
        listed = await emu.tencent_badcases()
        assert [(b["requestId"], b["state"]) for b in listed] == [(mine, "reported"), (theirs, "reported")]
        assert [b["requestId"] for b in await a.tencent_badcases()] == [mine]
        assert [b["requestId"] for b in await emu.tencent_badcases(appid="1250000001")] == [theirs]
        assert await label(server, TEXT) == "Normal"
        confirmed = await a.confirm_badcase(mine)
        assert (confirmed["requestId"], confirmed["state"], confirmed["text"]) == (mine, "confirmed", TEXT)
        assert await label(server, TEXT) == "Porn"
        assert [b["requestId"] for b in await emu.tencent_badcases(state="reported")] == [theirs]
        assert [b["requestId"] for b in await emu.tencent_badcases(state="confirmed")] == [mine]
        with pytest.raises(AdminError, match="HTTP 400: state must be one of reported, confirmed"):
            await emu.tencent_badcases(state="pending")
        with pytest.raises(AdminError, match="HTTP 404: no badcase was reported with RequestId 'a/b='"):
            await emu.confirm_badcase("a/b=")


def test_sync_client_confirms_before_the_review_delay() -> None:
    clock = ManualClock(start=time.time())
    with serve_in_thread(make_settings(), clock=clock) as server, SyncEmulatorClient(server.url) as emu:
        body = request_xml(ContentType=1, Label="Normal", SuggestedLabel="Ads", Text=b64(TEXT))
        headers = cos_sdk_headers(body, clock.time(), path=PATH)
        with requests.Session() as http:
            http.trust_env = False
            response = http.post(server.url + PATH, data=body, headers=headers, timeout=5)
            assert response.status_code == 200
        (badcase,) = emu.tencent_badcases(state="reported")
        assert emu.confirm_badcase(badcase["requestId"])["confirmedAt"] == clock.time()
        assert emu.tencent_badcases(state="reported") == []
