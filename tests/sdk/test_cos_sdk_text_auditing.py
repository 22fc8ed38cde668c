"""The Tencent feedback loop through cos-python-sdk-v5 against a real running server: audit a text,
report a badcase, see it take effect only once confirmed (by time on the manual clock, or by the
admin action), audit again; query a submitted job (``ci_auditing_text_query``); and what the SDK
reads from an API the emulator does not serve.

``ci_auditing_text_submit`` base64-encodes ``Content`` itself, so it takes bytes
(cos_client.py: ``base64.b64encode(Content)``), and returns the body as a dict of strings
(``xml_to_dict``) with ``Section`` made a list.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests
from qcloud_cos import CosS3Client
from qcloud_cos.cos_comm import CiDetectType
from qcloud_cos.cos_exception import CosServiceError

from emulator import ManualClock, RunningServer
from emulator.testing import SyncEmulatorClient

from .conftest import BUCKET

TEXT = "这是一个测试"


@pytest.fixture
def client(cos_client: CosS3Client) -> CosS3Client:
    return cos_client


def audit(client: CosS3Client, text: str = TEXT, **options: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.ci_auditing_text_submit(Bucket=BUCKET, Content=text.encode(), **options)
    return result


def verdict(result: dict[str, Any]) -> tuple[str, str]:
    detail = result["JobsDetail"]
    return detail["Label"], detail["Result"]


def report(client: CosS3Client, text: str = TEXT, label: str = "Normal", suggested: str = "Porn") -> str:
    result = client.ci_auditing_report_badcase(
        Bucket=BUCKET,
        ContentType=1,
        Label=label,
        SuggestedLabel=suggested,
        Text=base64.b64encode(text.encode()).decode(),
    )
    request_id: str = result["RequestId"]
    return request_id


def admin_confirm(server: RunningServer, request_id: str) -> dict[str, Any]:
    with SyncEmulatorClient(server.url) as emu:
        return emu.confirm_badcase(request_id)


def test_audit_reads_like_the_provider(client: CosS3Client) -> None:
    result = audit(client, DataId="biz-1", UserInfo={"TokenId": "user-1"}, DetectType=CiDetectType.PORN)
    detail = result["JobsDetail"]
    assert result["RequestId"]
    assert (detail["State"], detail["Label"], detail["Result"]) == ("Success", "Normal", "0")
    assert detail["JobId"].startswith("st")
    assert detail["DataId"] == "biz-1"
    assert detail["UserInfo"] == {"TokenId": "user-1"}
    assert detail["PornInfo"] == {"HitFlag": "0", "Count": "0"}
    assert detail["Section"] == [
        {"StartByte": "0", "Label": "Normal", "Result": "0", "PornInfo": {"HitFlag": "0", "Score": "0"}}
    ]


def test_feedback_takes_effect_after_the_review_delay(client: CosS3Client, clock: ManualClock) -> None:
    assert verdict(audit(client)) == ("Normal", "0")
    report(client)
    assert verdict(audit(client)) == ("Normal", "0")  # reported, not yet confirmed
    clock.advance(3600)  # tencent.confirm_after_seconds
    result = audit(client)
    assert verdict(result) == ("Porn", "1")
    assert result["JobsDetail"]["PornInfo"] == {"HitFlag": "1", "Count": "1"}
    assert result["JobsDetail"]["Section"][0]["PornInfo"] == {"HitFlag": "1", "Score": "100"}
    assert verdict(audit(client, TEXT + "。")) == ("Normal", "0")


def test_feedback_takes_effect_once_confirmed_by_the_admin(
    client: CosS3Client, threaded_server: RunningServer
) -> None:
    request_id = report(client, suggested="Ads")
    assert verdict(audit(client)) == ("Normal", "0")
    assert admin_confirm(threaded_server, request_id)["state"] == "confirmed"
    assert verdict(audit(client)) == ("Ads", "1")


InvalidCall = Callable[[CosS3Client], object]


@pytest.mark.parametrize(
    ("call", "status", "code", "message"),
    [
        (
            lambda c: c.ci_auditing_text_submit(Bucket=BUCKET),
            400,
            "InvalidArgument",
            "Invalid argument Input: needs one of Object, Url or Content",
        ),
        (
            lambda c: c.ci_auditing_text_submit(Bucket=BUCKET, Key="a.txt", Content=b"x"),
            400,
            "InvalidArgument",
            "Invalid argument Input: takes one of Object, Url and Content, not Object and Content",
        ),
        (
            lambda c: c.ci_auditing_text_submit(Bucket=BUCKET, Content=("字" * 10_001).encode()),
            400,
            "InvalidArgument",
            "Invalid argument Input.Content: must be at most 10000 characters before encoding, not 10001",
        ),
        (
            lambda c: c.ci_auditing_text_submit(Bucket=BUCKET, Content=b"x", CallbackType=3),
            400,
            "InvalidArgument",
            "Invalid argument Conf.CallbackType:",
        ),
        (
            lambda c: c.ci_auditing_text_submit(Bucket=BUCKET, Key="a.txt"),
            501,
            "NotImplemented",
            "Input.Object (an asynchronous job on a stored or fetched file) is not emulated.",
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
    assert error.get_resource_location().endswith("/text/auditing")
    assert error.get_request_id() != "Unknown"


# --- ci_auditing_text_query: GET /text/auditing/<JobId> (DescribeAuditingTextJob) ------------------


def query(client: CosS3Client, job_id: str) -> dict[str, Any]:
    result: dict[str, Any] = client.ci_auditing_text_query(Bucket=BUCKET, JobID=job_id)
    return result


def test_query_answers_the_submitted_job(client: CosS3Client) -> None:
    submitted = audit(client, DataId="biz-2", UserInfo={"TokenId": "user-2"})
    queried = query(client, submitted["JobsDetail"]["JobId"])
    assert queried["JobsDetail"] == submitted["JobsDetail"]
    assert verdict(queried) == ("Normal", "0")
    assert queried["RequestId"] and queried["RequestId"] != submitted["RequestId"]


def test_a_confirmed_badcase_changes_new_jobs_and_leaves_finished_ones(
    client: CosS3Client, threaded_server: RunningServer
) -> None:
    # What the emulator chose: a finished job keeps the result it was answered with; only jobs
    # submitted after the confirmation see the badcase's SuggestedLabel.
    old = audit(client)["JobsDetail"]["JobId"]
    admin_confirm(threaded_server, report(client, suggested="Porn"))
    new = audit(client)["JobsDetail"]["JobId"]
    assert verdict(query(client, new)) == ("Porn", "1")
    assert verdict(query(client, old)) == ("Normal", "0")


def test_query_of_an_unknown_job_is_a_ci_error(client: CosS3Client) -> None:
    job_id = "st" + "0" * 32
    with pytest.raises(CosServiceError) as info:
        query(client, job_id)
    error = info.value
    assert (error.get_status_code(), error.get_error_code()) == (400, "InvalidArgument")
    assert f"no text auditing job {job_id!r}" in error.get_error_msg()
    assert error.get_resource_location().endswith(f"/text/auditing/{job_id}")
    assert error.get_request_id() != "Unknown"


def test_an_api_the_emulator_does_not_serve_is_a_ci_error(client: CosS3Client) -> None:
    with pytest.raises(CosServiceError) as info:
        client.ci_auditing_image_query(Bucket=BUCKET, JobID="si" + "0" * 32)
    error = info.value
    assert (error.get_status_code(), error.get_error_code()) == (404, "NoSuchKey")
    assert "The emulator serves no CI API at GET /image/auditing/si" in error.get_error_msg()
    assert error.get_request_id() != "Unknown"


def test_unknown_paths_elsewhere_are_unaffected(threaded_server: RunningServer) -> None:
    # The same server, asked directly (Host 127.0.0.1): Alibaba's and the admin API's own answers.
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(f"{threaded_server.url}/green/image/nowhere", timeout=5)
        assert (response.status_code, response.json()["Code"]) == (404, "InvalidAction.NotFound")
        response = session.get(f"{threaded_server.url}/_emulator/nowhere", timeout=5)
        assert (response.status_code, response.json()["error"]) == (404, "not_found")
        response = session.get(f"{threaded_server.url}/image/auditing/si1", timeout=5)
        assert (response.status_code, response.text) == (404, "404: Not Found")
