"""The official SDKs' calls of every served action, sent wherever ``emulator_sdks`` points them (a
recording proxy in these tests)."""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_green20180509 import models as green_models
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import (
    ImageAsyncScanRequest,
    ImageAsyncScanResultsRequest,
    ImageScanFeedbackRequest,
    ImageSyncScanRequest,
    TextFeedbackRequest,
    TextScanRequest,
)

from emulator.testing.sdks import emulator_sdks

URL = "http://cdn.example.com/cats/1.jpg"
#: The actions ``drive`` calls, in order (the wrong-secret call is ImageScanFeedback's).
ACTIONS = [
    "ImageSyncScan",
    "ImageAsyncScan",
    "ImageAsyncScanResults",
    "TextScan",
    "ImageScanFeedback",
    "TextFeedback",
    "ImageScanFeedback",
    "ImageScanFeedback",
    "ReportBadcase",
    "CreateAuditingTextJob",
    "DescribeAuditingTextJob",
    "BatchImageAuditing",
]
#: The index of the call refused for its signature.
WRONG_SECRET = 7


def _acs(client: AcsClient, request: Any, body: Any) -> Any:
    request.set_protocol_type("http")
    request.set_ClientInfo(json.dumps({"userId": "u1", "ip": "1.2.3.4"}))
    request.set_content(json.dumps(body).encode())
    answer = json.loads(client.do_action_with_exception(request))
    assert answer["code"] == 200, answer
    return answer.get("data")


def _alibaba(acs: AcsClient) -> None:
    scan = {"scenes": ["porn", "ad"], "tasks": [{"dataId": "d1", "url": URL}]}
    _acs(acs, ImageSyncScanRequest.ImageSyncScanRequest(), scan)
    async_scan = {"scenes": ["porn"], "tasks": [{"dataId": "d2", "url": URL}]}
    (task,) = _acs(acs, ImageAsyncScanRequest.ImageAsyncScanRequest(), async_scan)
    _acs(acs, ImageAsyncScanResultsRequest.ImageAsyncScanResultsRequest(), [task["taskId"]])
    text = {"scenes": ["antispam"], "tasks": [{"dataId": "t1", "content": "hello there"}]}
    _acs(acs, TextScanRequest.TextScanRequest(), text)
    feedback = {"taskId": task["taskId"], "url": URL, "scenes": ["porn"], "suggestion": "block"}
    _acs(acs, ImageScanFeedbackRequest.ImageScanFeedbackRequest(), {**feedback, "label": "porn"})
    _acs(
        acs,
        TextFeedbackRequest.TextFeedbackRequest(),
        {"taskId": "txt1", "content": "hello there", "label": "spam"},
    )


def drive(url: str) -> None:
    """Every served action through the official SDKs, plus one call refused for its signature."""
    with emulator_sdks(url) as sdks:
        ak = sdks.accounts.access_key_id
        acs = AcsClient(ak, sdks.accounts.access_key_secret, "cn-shanghai", auto_retry=False)
        try:
            _alibaba(acs)
        finally:
            acs.session.close()
        tea = sdks.green_client()
        tea.image_scan_feedback(green_models.ImageScanFeedbackRequest(client_info='{"userId":"u1"}'))
        wrong = AcsClient(ak, "not-the-secret", "cn-shanghai", auto_retry=False)
        try:
            _acs(wrong, ImageScanFeedbackRequest.ImageScanFeedbackRequest(), {})
        except ServerException as exc:
            assert exc.get_error_code() == "SignatureDoesNotMatch"
        else:
            raise AssertionError("a wrong secret was accepted")
        finally:
            wrong.session.close()
        cos = sdks.cos_client(Scheme="http")
        bucket = sdks.accounts.bucket
        cos.ci_auditing_report_badcase(
            Bucket=bucket, ContentType=1, Text="aGVsbG8=", Label="Porn", SuggestedLabel="Normal"
        )
        job = cos.ci_auditing_text_submit(Bucket=bucket, Content=b"hello there")
        cos.ci_auditing_text_query(Bucket=bucket, JobID=job["JobsDetail"]["JobId"])
        cos.ci_auditing_image_batch(Bucket=bucket, Input=[{"Url": URL, "DataId": "i1"}])
