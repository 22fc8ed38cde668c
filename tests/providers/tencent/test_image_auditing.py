"""POST /image/auditing (BatchImageAuditing) over HTTP: one result per image, and how reported image
badcases change it once confirmed (by time on the app clock, or by the admin action)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from aiohttp import ClientResponse
from lxml import etree

from emulator import ManualClock
from emulator.core.journal import Filter
from emulator.keys import FAULTS, JOURNAL
from emulator.providers.tencent import protocol
from emulator.providers.tencent.routes import BATCH_IMAGE_AUDITING
from emulator.testing.payloads import b64, request_xml, text_auditing_xml
from emulator.testing.signers import APPID, cos_sdk_headers

from .conftest import PATH, TEXT_AUDITING_PATH, AppClient, Client, make_client, post

IMAGE_PATH = "/image/auditing"
URL = "https://example.com/cat.jpg"
OTHER_URL = "https://example.com/dog.jpg"
GIF = base64.b64encode(b"GIF89a\x01\x00\x01\x00").decode()


def image_xml(*inputs: str, conf: str | None = "<Async>0</Async>") -> bytes:
    """A batch <Request> as cos-python-sdk-v5 builds it (ci_auditing_image_batch): one <Input> per
    image, then <Conf> (the SDK always sends Async 0 unless told Async=1)."""
    body = "".join(f"<Input>{inp}</Input>" for inp in inputs)
    if conf is not None:
        body += f"<Conf>{conf}</Conf>"
    return f"<Request>{body}</Request>".encode()


def url_input(url: str = URL, extra: str = "") -> str:
    return f"<Url>{url}</Url>{extra}"


def summary(detail: etree._Element) -> dict[str, Any]:
    return {
        "Label": detail.findtext("Label"),
        "Result": detail.findtext("Result"),
        "Score": detail.findtext("Score"),
        "scenes": {
            el.tag: (el.findtext("HitFlag"), el.findtext("Score"), el.findtext("Label"))
            for el in detail
            if el.tag.endswith("Info")
        },
        "detail": detail,
    }


async def audit_all(client: Client, clock: ManualClock, body: bytes) -> list[dict[str, Any]]:
    """Every JobsDetail of a successful batch, after checking the body against the published schema."""
    response = await post(client, IMAGE_PATH, body, clock)
    raw = await response.read()
    assert response.status == 200, raw
    assert response.headers["Content-Type"] == "application/xml"
    root = etree.fromstring(raw)
    protocol.schema("image-auditing-response").validate(root)
    assert root.findtext("RequestId") == response.headers["x-ci-request-id"]
    return [summary(detail) for detail in root.iterfind("JobsDetail")]


async def audit(client: Client, clock: ManualClock, url: str = URL, conf: str = "") -> dict[str, Any]:
    (result,) = await audit_all(client, clock, image_xml(url_input(url), conf=f"<Async>0</Async>{conf}"))
    return result


async def report(client: Client, clock: ManualClock, url: str, label: str, suggested: str) -> str:
    body = request_xml(ContentType=2, Label=label, SuggestedLabel=suggested, Url=url)
    response = await post(client, PATH, body, clock)
    assert response.status == 200, await response.text()
    request_id = etree.fromstring(await response.read()).findtext("RequestId")
    assert request_id
    return request_id


async def test_any_image_is_normal_by_default(client: Client, clock: ManualClock) -> None:
    result = await audit_all(client, clock, image_xml(url_input(extra="<DataId>d-1</DataId>")))
    (only,) = result
    assert (only["Label"], only["Result"], only["Score"]) == ("Normal", "0", "0")
    # No DetectType: Porn and Ads, as the documented query response shows.
    assert only["scenes"] == {"PornInfo": ("0", "0", None), "AdsInfo": ("0", "0", None)}
    detail = only["detail"]
    assert (detail.findtext("Code"), detail.findtext("State")) == ("Success", "Success")
    assert (detail.findtext("DataId"), detail.findtext("Url")) == ("d-1", URL)
    assert detail.find("Object") is None
    assert detail.findtext("CompressionResult") == "0"
    job_id = detail.findtext("JobId")
    assert job_id is not None and re.fullmatch(r"si[0-9a-f]{32}", job_id)


async def test_one_result_per_input_in_order(client: Client, clock: ManualClock) -> None:
    body = image_xml(
        url_input(extra="<DataId>1</DataId>"),
        "<Object>photos/a.png</Object><DataId>2</DataId>",
        f"<Content>{GIF}</Content><DataId>3</DataId><UserInfo><TokenId>u1</TokenId></UserInfo>",
        url_input(OTHER_URL, "<DataId>4</DataId><Interval>5</Interval><MaxFrames>5</MaxFrames>"),
    )
    results = await audit_all(client, clock, body)
    details = [r["detail"] for r in results]
    assert [d.findtext("DataId") for d in details] == ["1", "2", "3", "4"]
    assert [(d.findtext("Url"), d.findtext("Object")) for d in details] == [
        (URL, None),
        (None, "photos/a.png"),
        (None, None),  # Content: neither is echoed
        (OTHER_URL, None),
    ]
    assert {el.tag: el.text for el in details[2].find("UserInfo")} == {"TokenId": "u1"}
    assert len({d.findtext("JobId") for d in details}) == 4
    assert {r["Label"] for r in results} == {"Normal"}


async def test_detect_type_chooses_the_scenes(client: Client, clock: ManualClock) -> None:
    result = await audit(client, clock, conf="<DetectType>Terrorism,Teenager</DetectType>")
    assert list(result["scenes"]) == ["TerrorismInfo", "TeenagerInfo"]
    result = await audit(client, clock, conf="<DetectType>all</DetectType>")
    assert list(result["scenes"]) == ["PornInfo", "TerrorismInfo", "PoliticsInfo", "AdsInfo", "TeenagerInfo"]


async def test_a_badcase_changes_the_verdict_only_once_confirmed_by_time(
    client: Client, clock: ManualClock
) -> None:
    assert (await audit(client, clock))["Label"] == "Normal"
    await report(client, clock, URL, "Normal", "Porn")
    clock.advance(3599)  # the default confirm_after_seconds is 3600
    assert (await audit(client, clock))["Label"] == "Normal"
    clock.advance(1)
    result = await audit(client, clock)
    assert (result["Label"], result["Result"], result["Score"]) == ("Porn", "1", "100")
    assert result["scenes"] == {"PornInfo": ("1", "100", "Porn"), "AdsInfo": ("0", "0", None)}
    # Only the same URL, and only in the images that name it.
    results = await audit_all(client, clock, image_xml(url_input(OTHER_URL), url_input(URL)))
    assert [r["Label"] for r in results] == ["Normal", "Porn"]


async def test_the_admin_action_confirms(aiohttp_client: AppClient, clock: ManualClock) -> None:
    client = await make_client(aiohttp_client, clock, **{"tencent.confirm_after_seconds": None})
    request_id = await report(client, clock, URL, "Normal", "Ads")
    clock.advance(10 * 365 * 86400)
    assert (await audit(client, clock))["Label"] == "Normal"
    assert (await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})).status == 200
    result = await audit(client, clock)
    assert (result["Label"], result["scenes"]["AdsInfo"]) == ("Ads", ("1", "100", "Ads"))


async def test_the_verdict_scene_is_reported_even_when_not_asked_for(
    client: Client, clock: ManualClock
) -> None:
    request_id = await report(client, clock, URL, "Normal", "Politics")
    await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})
    result = await audit(client, clock, conf="<DetectType>Porn</DetectType>")
    assert result["Label"] == "Politics"
    assert result["scenes"] == {"PornInfo": ("0", "0", None), "PoliticsInfo": ("1", "100", "Politics")}


async def test_a_label_without_an_image_scene_still_blocks(client: Client, clock: ManualClock) -> None:
    # CI documents no IllegalInfo for images: the verdict shows in Label and Result only.
    request_id = await report(client, clock, URL, "Normal", "Illegal")
    await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})
    result = await audit(client, clock)
    assert (result["Label"], result["Result"]) == ("Illegal", "1")
    assert {flag for flag, _, _ in result["scenes"].values()} == {"0"}


async def test_content_wins_over_url_and_object_over_url(client: Client, clock: ManualClock) -> None:
    # "传入多个时仅一个生效，按 Content，Object， Url 顺序": the URL's confirmed badcase does not apply
    # when Content or Object is what is audited.
    request_id = await report(client, clock, URL, "Normal", "Porn")
    await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})
    body = image_xml(
        f"<Content>{GIF}</Content>{url_input()}",
        f"<Object>a.png</Object>{url_input()}",
        url_input(),
    )
    results = await audit_all(client, clock, body)
    assert [r["Label"] for r in results] == ["Normal", "Normal", "Porn"]
    first, second, _ = (r["detail"] for r in results)
    assert (first.findtext("Url"), first.findtext("Object")) == (None, None)
    assert (second.findtext("Url"), second.findtext("Object")) == (None, "a.png")


async def test_text_and_image_badcases_do_not_mix(client: Client, clock: ManualClock) -> None:
    body = request_xml(ContentType=1, Label="Normal", SuggestedLabel="Porn", Text=b64(URL))
    assert (await post(client, PATH, body, clock)).status == 200
    await report(client, clock, URL, "Normal", "Ads")
    clock.advance(3600)  # both confirmed
    assert (await audit(client, clock))["Label"] == "Ads"
    response = await post(client, TEXT_AUDITING_PATH, text_auditing_xml(URL), clock)
    assert etree.fromstring(await response.read()).findtext("JobsDetail/Label") == "Porn"


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
    request_id = await report(client, clock, URL, "Normal", "Porn")
    confirm = f"/_emulator/tencent/badcases/{request_id}/confirm"
    await client.post(confirm, params={"namespace": "alpha"}, json={})
    assert (await audit(client, clock))["Label"] == "Porn"
    assert (await client.post("/_emulator/reset", params={"namespace": "beta"}, json={})).status == 200
    assert (await audit(client, clock))["Label"] == "Porn"
    assert (await client.post("/_emulator/reset", params={"namespace": "alpha"}, json={})).status == 200
    assert (await audit(client, clock))["Label"] == "Normal"


async def error_of(response: ClientResponse) -> dict[str, str]:
    root = etree.fromstring(await response.read())
    protocol.schema("report-badcase-response").validate(root)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"", 400, "MissingRequestBodyError", "Request body is empty."),
        (b"<Request><Input>", 400, "MalformedXML", "not well-formed"),
        (b'<!DOCTYPE r [<!ENTITY x "y">]><Request/>', 400, "MalformedXML", "DTD"),
        (b"<Batch><Input/></Batch>", 400, "MalformedXML", "The root element must be Request, not Batch."),
        (b"<Request/>", 400, "InvalidArgument", "Invalid argument Input: is required"),
        (image_xml(), 400, "InvalidArgument", "Invalid argument Input: is required"),
        (
            image_xml(url_input(), "<DataId>x</DataId>"),
            400,
            "InvalidArgument",
            "Invalid argument Input[2]: needs one of Object, Url or Content",
        ),
        (
            image_xml(url_input("ftp://example.com/a.jpg")),
            400,
            "InvalidArgument",
            "Invalid argument Input[1].Url: must be an http(s) URL, not 'ftp://example.com/a.jpg'",
        ),
        (
            image_xml(url_input(), "<Content>%%%</Content>"),
            400,
            "InvalidArgument",
            "Invalid argument Input[2].Content: must be base64 of the image",
        ),
        (
            image_xml(url_input(extra=f"<DataId>{'x' * 513}</DataId>")),
            400,
            "InvalidArgument",
            "Invalid argument Input[1].DataId: must be at most 512 bytes",
        ),
        (
            image_xml(*[url_input()] * 101),
            400,
            "InvalidArgument",
            "Invalid argument Input: takes at most 100 images a request, not 101",
        ),
        (
            image_xml(url_input(), conf="<Async>0</Async></Conf><Conf>"),
            400,
            "MalformedXML",
            "Element Conf appears more than once in Request.",
        ),
        (
            image_xml(url_input(extra="<Url>x</Url>")),
            400,
            "MalformedXML",
            "Element Url appears more than once in Input.",
        ),
        (image_xml(url_input(extra="<Bogus/>")), 400, "MalformedXML", "Element Bogus is not part of Input."),
        (
            image_xml(url_input(extra="<MaxFrames>0</MaxFrames>")),
            400,
            "InvalidArgument",
            "Invalid argument Input.MaxFrames:",
        ),
        (
            image_xml(url_input(), conf="<Async>2</Async>"),
            400,
            "InvalidArgument",
            "Invalid argument Conf.Async:",
        ),
        (
            image_xml(url_input(), conf="<Freeze><PornScore>101</PornScore></Freeze>"),
            400,
            "InvalidArgument",
            "Invalid argument Conf.Freeze.PornScore:",
        ),
        (
            image_xml(url_input(), conf="<Async>1</Async><Callback>http://example.com/cb</Callback>"),
            501,
            "NotImplemented",
            "Conf.Async 1 (results by callback or query) is not emulated.",
        ),
    ],
)
async def test_invalid_bodies(
    client: Client, clock: ManualClock, body: bytes, status: int, code: str, message: str
) -> None:
    response = await post(client, IMAGE_PATH, body, clock)
    assert response.status == status
    error = await error_of(response)
    assert error["Code"] == code
    assert message in error["Message"]
    assert error["Resource"].endswith(IMAGE_PATH)


async def test_conf_may_come_first(client: Client, clock: ManualClock) -> None:
    body = f"<Request><Conf><DetectType>Ads</DetectType></Conf><Input>{url_input()}</Input></Request>"
    (result,) = await audit_all(client, clock, body.encode())
    assert list(result["scenes"]) == ["AdsInfo"]


async def test_gateway_rules_apply(client: Client, clock: ManualClock) -> None:
    body = image_xml(url_input())
    response = await client.post(IMAGE_PATH, data=body, headers={"Content-Type": "application/xml"})
    assert (response.status, (await error_of(response))["Code"]) == (403, "AccessDenied")
    headers = cos_sdk_headers(body, clock.time(), path=PATH)  # signed for another path
    response = await client.post(IMAGE_PATH, data=body, headers=headers)
    assert (response.status, (await error_of(response))["Code"]) == (403, "SignatureDoesNotMatch")
    response = await client.get(IMAGE_PATH)
    assert (response.status, (await error_of(response))["Code"]) == (405, "MethodNotAllowed")


async def test_body_size_is_bounded(aiohttp_client: AppClient, clock: ManualClock) -> None:
    client = await make_client(aiohttp_client, clock, **{"tencent.max_body_bytes": 1024})
    body = image_xml(f"<Content>{'A' * 2048}</Content>")
    response = await post(client, IMAGE_PATH, body, clock)
    assert (response.status, (await error_of(response))["Code"]) == (400, "XMLSizeLimit")


async def test_rate_limit_is_per_action(aiohttp_client: AppClient, clock: ManualClock) -> None:
    account = {
        "secret_id": "AKIDtestSecretId",
        "secret_key": "testSecretKey",
        "appid": APPID,
        "rate_limit": 1,
    }
    client = await make_client(aiohttp_client, clock, **{"tencent.accounts": [account]})
    body = image_xml(url_input())
    assert (await post(client, IMAGE_PATH, body, clock)).status == 200
    response = await post(client, IMAGE_PATH, body, clock)
    assert (response.status, (await error_of(response))["Code"]) == (503, "SlowDown")
    await report(client, clock, URL, "Normal", "Porn")  # another action, another window


async def test_journaled_as_batch_image_auditing(client: Client, clock: ManualClock) -> None:
    await audit_all(
        client, clock, image_xml(url_input(), "<Object>a.png</Object>", conf="<DetectType>Porn</DetectType>")
    )
    assert client.app is not None
    (entry,) = client.app[JOURNAL].select(Filter(action=BATCH_IMAGE_AUDITING))
    assert (entry.provider, entry.account) == ("tencent", APPID)
    assert entry.parsed == {
        "Request": {"Input": [{"Url": URL}, {"Object": "a.png"}], "Conf": {"DetectType": "Porn"}}
    }


async def test_fault_rules_match_the_action_and_a_batch_item(client: Client, clock: ManualClock) -> None:
    assert client.app is not None
    client.app[FAULTS].add(
        {
            "match": {
                "provider": "tencent",
                "action": BATCH_IMAGE_AUDITING,
                # Repeated Inputs are a list: the second image, by index.
                "body": {"path": "Request.Input.1.Url", "equals": OTHER_URL},
            },
            "action": {"type": "error", "code": "InternalError"},
        },
        None,
    )
    assert len(await audit_all(client, clock, image_xml(url_input(), url_input()))) == 2
    response = await post(client, IMAGE_PATH, image_xml(url_input(), url_input(OTHER_URL)), clock)
    assert (response.status, (await error_of(response))["Code"]) == (500, "InternalError")
    # Badcases are another action: untouched.
    await report(client, clock, OTHER_URL, "Normal", "Porn")


@pytest.mark.parametrize("strict", [True, False])
async def test_undocumented_elements_refused_or_ignored_as_configured(
    aiohttp_client: AppClient, clock: ManualClock, strict: bool
) -> None:
    client = await make_client(aiohttp_client, clock, **{"tencent.strict_elements": strict})
    body = image_xml(url_input(extra="<Unknown>x</Unknown>"), conf="<Async>0</Async><Other/>")
    response = await post(client, IMAGE_PATH, body, clock)
    raw = await response.read()
    if strict:
        assert response.status == 400 and b"<Code>MalformedXML</Code>" in raw
    else:
        assert response.status == 200, raw
        assert raw.count(b"<JobsDetail>") == 1 and URL.encode() in raw
