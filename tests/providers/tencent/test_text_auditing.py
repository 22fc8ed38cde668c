"""POST /text/auditing (CreateAuditingTextJob) over HTTP, and how reported badcases change it once
confirmed (by time on the app clock, or by the admin action)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import ClientResponse
from lxml import etree

from emulator import ManualClock
from emulator.core.journal import Filter
from emulator.keys import FAULTS, JOURNAL
from emulator.providers.tencent import protocol
from emulator.providers.tencent.routes import CREATE_AUDITING_TEXT_JOB, TENCENT_BACKEND
from emulator.testing.payloads import b64, request_xml, text_auditing_xml
from emulator.testing.signers import APPID, cos_sdk_headers

from .conftest import NOW, PATH, TEXT_AUDITING_PATH, AppClient, Client, make_client, post

TEXT = "这是一个测试"


async def audit(client: Client, clock: ManualClock, body: bytes) -> dict[str, Any]:
    """The JobsDetail of a successful audit, after checking the body against the published schema."""
    response = await post(client, TEXT_AUDITING_PATH, body, clock)
    raw = await response.read()
    assert response.status == 200, raw
    assert response.headers["Content-Type"] == "application/xml"
    root = etree.fromstring(raw)
    protocol.schema("text-auditing-response").validate(root)
    assert root.findtext("RequestId") == response.headers["x-ci-request-id"]
    detail = root.find("JobsDetail")
    assert detail is not None
    return {
        "Label": detail.findtext("Label"),
        "Result": detail.findtext("Result"),
        "Score": detail.findtext("Score"),
        "scenes": {el.tag: el.findtext("HitFlag") for el in detail if el.tag.endswith("Info")},
        "section": {
            el.tag: (el.findtext("HitFlag"), el.findtext("Score"), el.findtext("Keywords"))
            for el in detail.iterfind("Section/*")
            if el.tag.endswith("Info")
        },
        "detail": detail,
    }


async def report(client: Client, clock: ManualClock, text: str, label: str, suggested: str) -> str:
    body = request_xml(ContentType=1, Label=label, SuggestedLabel=suggested, Text=b64(text))
    response = await post(client, PATH, body, clock)
    assert response.status == 200, await response.text()
    request_id = etree.fromstring(await response.read()).findtext("RequestId")
    assert request_id
    return request_id


async def test_any_text_is_normal_by_default(client: Client, clock: ManualClock) -> None:
    result = await audit(client, clock, text_auditing_xml(TEXT, input_extra="<DataId>d-1</DataId>"))
    assert (result["Label"], result["Result"], result["Score"]) == ("Normal", "0", "0")
    # No DetectType: the documented sample's scenes.
    assert result["scenes"] == {"PornInfo": "0", "AdsInfo": "0", "IllegalInfo": "0", "AbuseInfo": "0"}
    detail = result["detail"]
    assert detail.findtext("State") == "Success"
    assert detail.findtext("DataId") == "d-1"
    assert detail.findtext("Content") == b64(TEXT)
    assert detail.findtext("SectionCount") == "1"
    job_id = detail.findtext("JobId")
    assert job_id is not None and job_id.startswith("st") and len(job_id) == 34
    assert detail.findtext("CreationTime") == protocol.job_time(NOW)


async def test_detect_type_chooses_the_scenes(client: Client, clock: ManualClock) -> None:
    result = await audit(client, clock, text_auditing_xml(TEXT, conf="<DetectType>Ads,Politics</DetectType>"))
    assert result["scenes"] == {"AdsInfo": "0", "PoliticsInfo": "0"}
    result = await audit(client, clock, text_auditing_xml(TEXT, conf="<DetectType>all</DetectType>"))
    assert len(result["scenes"]) == 7


async def test_user_info_is_echoed(client: Client, clock: ManualClock) -> None:
    body = text_auditing_xml(TEXT, input_extra="<UserInfo><TokenId>u1</TokenId><IP>1.2.3.4</IP></UserInfo>")
    detail = (await audit(client, clock, body))["detail"]
    assert {el.tag: el.text for el in detail.find("UserInfo")} == {"TokenId": "u1", "IP": "1.2.3.4"}


async def test_a_badcase_changes_the_verdict_only_once_confirmed_by_time(
    client: Client, clock: ManualClock
) -> None:
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Normal"
    await report(client, clock, TEXT, "Normal", "Porn")
    clock.advance(3599)  # the default confirm_after_seconds is 3600
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Normal"
    clock.advance(1)
    result = await audit(client, clock, text_auditing_xml(TEXT))
    assert (result["Label"], result["Result"], result["Score"]) == ("Porn", "1", "100")
    assert result["scenes"]["PornInfo"] == "1"
    assert result["section"]["PornInfo"] == ("1", "100", None)
    # Only the same text is affected.
    assert (await audit(client, clock, text_auditing_xml(TEXT + "!")))["Label"] == "Normal"
    assert client.app is not None
    (badcase,) = client.app[TENCENT_BACKEND].states[APPID].badcases
    assert (badcase.state, badcase.confirmed_at) == ("confirmed", NOW + 3600)


async def test_the_verdict_scene_is_reported_even_when_not_asked_for(
    client: Client, clock: ManualClock
) -> None:
    request_id = await report(client, clock, TEXT, "Normal", "Politics")
    assert client.app is not None
    client.app[TENCENT_BACKEND].states[APPID].confirm(request_id, at=clock.time())
    result = await audit(client, clock, text_auditing_xml(TEXT, conf="<DetectType>Porn</DetectType>"))
    assert result["Label"] == "Politics"
    assert result["scenes"] == {"PornInfo": "0", "PoliticsInfo": "1"}


async def test_without_a_delay_only_the_admin_action_confirms(
    aiohttp_client: AppClient, clock: ManualClock
) -> None:
    client = await make_client(aiohttp_client, clock, **{"tencent.confirm_after_seconds": None})
    request_id = await report(client, clock, TEXT, "Normal", "Ads")
    clock.advance(10 * 365 * 86400)
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Normal"
    response = await client.get("/_emulator/tencent/badcases")
    data = await response.json()
    assert [(b["requestId"], b["state"], b["text"]) for b in data["badcases"]] == [
        (request_id, "reported", TEXT)
    ]
    response = await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})
    assert response.status == 200
    confirmed = await response.json()
    assert (confirmed["state"], confirmed["confirmedAt"]) == ("confirmed", clock.time())
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Ads"


async def test_configured_text_labels_and_a_normal_badcase(
    aiohttp_client: AppClient, clock: ManualClock
) -> None:
    client = await make_client(aiohttp_client, clock, **{"tencent.text_labels": {"违规": "Illegal"}})
    text = "这段文字违规了"
    result = await audit(client, clock, text_auditing_xml(text))
    assert (result["Label"], result["Result"]) == ("Illegal", "1")
    assert result["section"]["IllegalInfo"] == ("1", "100", "违规")
    request_id = await report(client, clock, text, "Illegal", "Normal")
    assert (await audit(client, clock, text_auditing_xml(text)))["Label"] == "Illegal"
    assert (await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})).status == 200
    result = await audit(client, clock, text_auditing_xml(text))
    assert (result["Label"], result["Result"], result["scenes"]["IllegalInfo"]) == ("Normal", "0", "0")


async def test_the_latest_confirmation_wins(client: Client, clock: ManualClock) -> None:
    first = await report(client, clock, TEXT, "Normal", "Porn")
    second = await report(client, clock, TEXT, "Porn", "Ads")
    await client.post(f"/_emulator/tencent/badcases/{second}/confirm", json={})
    clock.advance(1)
    await client.post(f"/_emulator/tencent/badcases/{first}/confirm", json={})
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Porn"


async def test_admin_list_filters_and_unknown_ids(client: Client, clock: ManualClock) -> None:
    old = await report(client, clock, "a", "Normal", "Porn")
    clock.advance(3600)
    new = await report(client, clock, "b", "Normal", "Porn")
    # Listing applies the lazy confirmation too.
    data = await (await client.get("/_emulator/tencent/badcases", params={"state": "confirmed"})).json()
    assert [b["requestId"] for b in data["badcases"]] == [old]
    data = await (await client.get("/_emulator/tencent/badcases", params={"state": "reported"})).json()
    assert [b["requestId"] for b in data["badcases"]] == [new]
    data = await (await client.get("/_emulator/tencent/badcases", params={"appid": "1"})).json()
    assert data == {"badcases": [], "count": 0}
    response = await client.get("/_emulator/tencent/badcases", params={"state": "pending"})
    assert response.status == 400 and (await response.json())["error"] == "bad_request"
    response = await client.post("/_emulator/tencent/badcases/nope/confirm", json={})
    assert response.status == 404 and (await response.json())["error"] == "not_found"


async def test_namespaced_reset_clears_the_badcases(aiohttp_client: AppClient, clock: ManualClock) -> None:
    accounts = [
        {
            "secret_id": "AKIDtestSecretId",
            "secret_key": "testSecretKey",
            "appid": APPID,
            "namespace": "alpha",
        },
        {"secret_id": "AKIDother", "secret_key": "otherKey", "appid": "1250000001", "namespace": "beta"},
    ]
    client = await make_client(aiohttp_client, clock, **{"tencent.accounts": accounts})
    request_id = await report(client, clock, TEXT, "Normal", "Porn")
    # The badcase is in the account's namespace: the default one has no such badcase.
    assert (await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})).status == 404
    confirm = f"/_emulator/tencent/badcases/{request_id}/confirm"
    await client.post(confirm, params={"namespace": "alpha"}, json={})
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Porn"
    data = await (await client.get("/_emulator/tencent/badcases", params={"namespace": "beta"})).json()
    assert data["count"] == 0
    assert (await client.post("/_emulator/reset", params={"namespace": "beta"}, json={})).status == 200
    data = await (await client.get("/_emulator/tencent/badcases", params={"namespace": "alpha"})).json()
    assert data["count"] == 1
    assert (await client.post("/_emulator/reset", params={"namespace": "alpha"}, json={})).status == 200
    everywhere = {"namespace": "*"}
    assert (await (await client.get("/_emulator/tencent/badcases", params=everywhere)).json())["count"] == 0
    assert (await audit(client, clock, text_auditing_xml(TEXT)))["Label"] == "Normal"


async def error_of(response: ClientResponse) -> dict[str, str]:
    root = etree.fromstring(await response.read())
    protocol.schema("report-badcase-response").validate(root)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


LONG = "字" * 10_001


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"", 400, "MissingRequestBodyError", "Request body is empty."),
        (b"<Request><Input>", 400, "MalformedXML", "not well-formed"),
        (b'<!DOCTYPE r [<!ENTITY x "y">]><Request/>', 400, "MalformedXML", "DTD"),
        (b"<Job><Input/></Job>", 400, "MalformedXML", "The root element must be Request, not Job."),
        (b"<Request><Conf/></Request>", 400, "InvalidArgument", "Invalid argument Input: is required"),
        (text_auditing_xml(), 400, "InvalidArgument", "Input: needs one of Object, Url or Content"),
        (
            text_auditing_xml(TEXT, input_extra="<Object>a.txt</Object>"),
            400,
            "InvalidArgument",
            "Input: takes one of Object, Url and Content, not Object and Content",
        ),
        (
            b"<Request><Input><Content>%%%</Content></Input></Request>",
            400,
            "InvalidArgument",
            "Invalid argument Input.Content: must be base64 of UTF-8 text",
        ),
        (
            b"<Request><Input><Content>" + base64.b64encode(b"\xff\xfe") + b"</Content></Input></Request>",
            400,
            "InvalidArgument",
            "Input.Content: must be base64 of UTF-8 text",
        ),
        (text_auditing_xml(LONG), 400, "InvalidArgument", "Input.Content: must be at most 10000 characters"),
        (
            text_auditing_xml(TEXT, input_extra=f"<DataId>{'x' * 513}</DataId>"),
            400,
            "InvalidArgument",
            "Input.DataId: must be at most 512 bytes",
        ),
        (
            text_auditing_xml(TEXT, input_extra="<Content>eA==</Content>"),
            400,
            "MalformedXML",
            "Element Content appears more than once in Input.",
        ),
        (
            text_auditing_xml(TEXT, input_extra="<Bogus/>"),
            400,
            "MalformedXML",
            "Element Bogus is not part of Input.",
        ),
        (
            text_auditing_xml(TEXT, conf="<CallbackType>3</CallbackType>"),
            400,
            "InvalidArgument",
            "Invalid argument Conf.CallbackType:",
        ),
        (
            text_auditing_xml(TEXT, conf="<Freeze><PornScore>101</PornScore></Freeze>"),
            400,
            "InvalidArgument",
            "Invalid argument Conf.Freeze.PornScore:",
        ),
        (
            b"<Request><Input><Object>a.txt</Object></Input></Request>",
            501,
            "NotImplemented",
            "Input.Object (an asynchronous job",
        ),
        (
            b"<Request><Input><Url>https://example.com/a.txt</Url></Input></Request>",
            501,
            "NotImplemented",
            "Input.Url",
        ),
    ],
)
async def test_invalid_bodies(
    client: Client, clock: ManualClock, body: bytes, status: int, code: str, message: str
) -> None:
    response = await post(client, TEXT_AUDITING_PATH, body, clock)
    assert response.status == status
    error = await error_of(response)
    assert error["Code"] == code
    assert message in error["Message"]
    assert error["Resource"].endswith(TEXT_AUDITING_PATH)


async def test_gateway_rules_apply(client: Client, clock: ManualClock) -> None:
    body = text_auditing_xml(TEXT)
    response = await client.post(TEXT_AUDITING_PATH, data=body, headers={"Content-Type": "application/xml"})
    assert (response.status, (await error_of(response))["Code"]) == (403, "AccessDenied")
    headers = cos_sdk_headers(body, clock.time(), path=PATH)  # signed for another path
    response = await client.post(TEXT_AUDITING_PATH, data=body, headers=headers)
    assert (response.status, (await error_of(response))["Code"]) == (403, "SignatureDoesNotMatch")
    response = await client.get(TEXT_AUDITING_PATH)
    assert (response.status, (await error_of(response))["Code"]) == (405, "MethodNotAllowed")


async def test_rate_limit_is_per_action(aiohttp_client: AppClient, clock: ManualClock) -> None:
    account = {
        "secret_id": "AKIDtestSecretId",
        "secret_key": "testSecretKey",
        "appid": APPID,
        "rate_limit": 1,
    }
    client = await make_client(aiohttp_client, clock, **{"tencent.accounts": [account]})
    body = text_auditing_xml(TEXT)
    assert (await post(client, TEXT_AUDITING_PATH, body, clock)).status == 200
    response = await post(client, TEXT_AUDITING_PATH, body, clock)
    assert (response.status, (await error_of(response))["Code"]) == (503, "SlowDown")
    await report(client, clock, TEXT, "Normal", "Porn")  # another action, another window


async def test_journaled_as_create_auditing_text_job(client: Client, clock: ManualClock) -> None:
    await audit(client, clock, text_auditing_xml(TEXT, conf="<DetectType>Porn</DetectType>"))
    assert client.app is not None
    (entry,) = client.app[JOURNAL].select(Filter(action=CREATE_AUDITING_TEXT_JOB))
    assert (entry.provider, entry.account) == ("tencent", APPID)
    assert entry.parsed == {"Request": {"Input": {"Content": b64(TEXT)}, "Conf": {"DetectType": "Porn"}}}


async def test_fault_rules_match_the_action(client: Client, clock: ManualClock) -> None:
    assert client.app is not None
    client.app[FAULTS].add(
        {
            "match": {"provider": "tencent", "action": CREATE_AUDITING_TEXT_JOB},
            "action": {"type": "error", "code": "InternalError"},
        },
        None,
    )
    response = await post(client, TEXT_AUDITING_PATH, text_auditing_xml(TEXT), clock)
    assert (response.status, (await error_of(response))["Code"]) == (500, "InternalError")
    # Badcases are another action: untouched.
    await report(client, clock, TEXT, "Normal", "Porn")


async def test_several_inputs_are_refused_unless_relaxed(
    aiohttp_client: AppClient, clock: ManualClock
) -> None:
    body = text_auditing_xml(TEXT, input_extra="<Object>a.txt</Object>")
    client = await make_client(aiohttp_client, clock, **{"tencent.strict_text_input": False})
    # Relaxed, the image audit's documented order decides: Content wins over Object.
    got = await audit(client, clock, body)
    assert got["Label"] == "Normal" and got["detail"].findtext("Content") == b64(TEXT)


@pytest.mark.parametrize("strict", [True, False])
async def test_undocumented_elements_refused_or_ignored_as_configured(
    aiohttp_client: AppClient, clock: ManualClock, strict: bool
) -> None:
    client = await make_client(aiohttp_client, clock, **{"tencent.strict_elements": strict})
    body = text_auditing_xml(TEXT, input_extra="<Extra><Deep>1</Deep></Extra>", conf="<Other/>")
    response = await post(client, TEXT_AUDITING_PATH, body, clock)
    raw = await response.read()
    if strict:
        assert response.status == 400 and b"<Code>MalformedXML</Code>" in raw
    else:
        assert response.status == 200, raw
        assert b"<Label>Normal</Label>" in raw
