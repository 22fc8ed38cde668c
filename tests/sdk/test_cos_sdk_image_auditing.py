"""The Tencent image feedback loop through cos-python-sdk-v5 against a real running server: audit an
image URL with ``ci_auditing_image_batch``, report an image badcase (ContentType 2, Url), see it take
effect only once confirmed (by time on the manual clock, or by the admin action), audit again.

``ci_auditing_image_batch`` sends one ``<Input>`` per dict of ``Input`` and ``<Conf><Async>0</Async>``
by default, and returns the body as a dict of strings (``xml_to_dict``) with ``JobsDetail`` made a
list (cos_client.py).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import pytest
from qcloud_cos import CosS3Client
from qcloud_cos.cos_comm import CiDetectType
from qcloud_cos.cos_exception import CosServiceError

from emulator import ManualClock, RunningServer
from emulator.testing import SyncEmulatorClient

from .conftest import BUCKET

URL = "https://example.com/images/cat.jpg"
OTHER_URL = "https://example.com/images/dog.jpg"


@pytest.fixture
def client(cos_client: CosS3Client) -> CosS3Client:
    return cos_client


def audit(client: CosS3Client, *inputs: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    result: dict[str, Any] = client.ci_auditing_image_batch(
        Bucket=BUCKET, Input=list(inputs) or [{"Url": URL}], **options
    )
    assert result["RequestId"]
    details: list[dict[str, Any]] = result["JobsDetail"]
    return details


def verdict(client: CosS3Client, url: str = URL) -> tuple[str, str]:
    (detail,) = audit(client, {"Url": url})
    return detail["Label"], detail["Result"]


def report(client: CosS3Client, url: str = URL, suggested: str = "Porn") -> str:
    result = client.ci_auditing_report_badcase(
        Bucket=BUCKET, ContentType=2, Url=url, Label="Normal", SuggestedLabel=suggested
    )
    request_id: str = result["RequestId"]
    return request_id


def admin_confirm(server: RunningServer, request_id: str) -> dict[str, Any]:
    with SyncEmulatorClient(server.url) as emu:
        return emu.confirm_badcase(request_id)


def test_audit_reads_like_the_provider(client: CosS3Client) -> None:
    gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00").decode()
    details = audit(
        client,
        {"Url": URL, "DataId": "biz-1", "UserInfo": {"TokenId": "user-1"}},
        {"Object": "photos/a.png", "DataId": "biz-2"},
        {"Content": gif, "DataId": "biz-3"},
        DetectType=CiDetectType.PORN | CiDetectType.ADS,
        BizType="b81d45f94b91a683255e9a9506f45a11",
    )
    assert [d["DataId"] for d in details] == ["biz-1", "biz-2", "biz-3"]
    first, second, third = details
    assert (first["State"], first["Label"], first["Result"], first["Score"]) == (
        "Success",
        "Normal",
        "0",
        "0",
    )
    assert re.fullmatch(r"si[0-9a-f]{32}", first["JobId"])
    assert first["Url"] == URL
    assert first["UserInfo"] == {"TokenId": "user-1"}
    assert first["PornInfo"] == {"HitFlag": "0", "Score": "0"}
    assert first["AdsInfo"] == {"HitFlag": "0", "Score": "0"}
    # Object and Content: the emulator reads no image, so Normal (see batch_image_auditing).
    assert (second["Object"], second["Label"]) == ("photos/a.png", "Normal")
    assert "Url" not in third and "Object" not in third and third["Label"] == "Normal"


def test_feedback_takes_effect_after_the_review_delay(client: CosS3Client, clock: ManualClock) -> None:
    assert verdict(client) == ("Normal", "0")
    report(client)
    assert verdict(client) == ("Normal", "0")  # reported, not yet confirmed
    clock.advance(3600)  # tencent.confirm_after_seconds
    (detail,) = audit(client, DetectType=CiDetectType.PORN)
    assert (detail["Label"], detail["Result"], detail["Score"]) == ("Porn", "1", "100")
    assert detail["PornInfo"] == {"HitFlag": "1", "Score": "100", "Label": "Porn"}
    assert verdict(client, OTHER_URL) == ("Normal", "0")


def test_feedback_takes_effect_once_confirmed_by_the_admin(
    client: CosS3Client, threaded_server: RunningServer
) -> None:
    request_id = report(client)
    assert verdict(client) == ("Normal", "0")
    assert admin_confirm(threaded_server, request_id)["state"] == "confirmed"
    assert verdict(client) == ("Porn", "1")
    details = audit(client, {"Url": OTHER_URL}, {"Url": URL})
    assert [(d["Url"], d["Label"]) for d in details] == [(OTHER_URL, "Normal"), (URL, "Porn")]


InvalidCall = Callable[[CosS3Client], object]


@pytest.mark.parametrize(
    ("call", "status", "code", "message"),
    [
        (
            lambda c: c.ci_auditing_image_batch(Bucket=BUCKET, Input=[{"DataId": "x"}]),
            400,
            "InvalidArgument",
            "Invalid argument Input[1]: needs one of Object, Url or Content",
        ),
        (
            lambda c: c.ci_auditing_image_batch(Bucket=BUCKET, Input=[{"Url": "example.com/a.jpg"}]),
            400,
            "InvalidArgument",
            "Invalid argument Input[1].Url: must be an http(s) URL",
        ),
        (
            lambda c: c.ci_auditing_image_batch(Bucket=BUCKET, Input=[{"Url": URL}] * 101),
            400,
            "InvalidArgument",
            "Invalid argument Input: takes at most 100 images a request, not 101",
        ),
        (
            lambda c: c.ci_auditing_image_batch(
                Bucket=BUCKET, Input=[{"Url": URL}], Freeze={"PornScore": 101}
            ),
            400,
            "InvalidArgument",
            "Invalid argument Conf.Freeze.PornScore:",
        ),
    ],
)
def test_invalid_audits_get_ci_errors(
    client: CosS3Client, call: InvalidCall, status: int, code: str, message: str
) -> None:
    with pytest.raises(CosServiceError) as info:
        call(client)
    error = info.value
    assert (error.get_status_code(), error.get_error_code()) == (status, code)
    assert message in error.get_error_msg()
    assert error.get_resource_location().endswith("/image/auditing")
    assert error.get_request_id() != "Unknown"


def test_async_one_is_sent_as_a_synchronous_audit(client: CosS3Client) -> None:
    # cos_client.py sends <Async> only when Async == 0, so Async=1 reaches CI as the default
    # (synchronous) and the SDK caller gets results, not job ids: an SDK quirk, reproduced.
    (detail,) = audit(client, Async=1, Callback="http://example.com/callback")
    assert (detail["State"], detail["Label"]) == ("Success", "Normal")
