"""GET /text/auditing/<jobId> (DescribeAuditingTextJob) over HTTP: the stored answer of a submitted
job, through the same gateway steps as the other CI actions."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse
from lxml import etree

from emulator import ManualClock
from emulator.core.journal import Filter
from emulator.keys import FAULTS, JOURNAL
from emulator.providers.tencent import models, protocol
from emulator.providers.tencent.routes import DESCRIBE_AUDITING_TEXT_JOB, TENCENT_BACKEND
from emulator.testing.payloads import b64, request_xml, text_auditing_xml
from emulator.testing.signers import APPID, cos_sdk_headers

from .conftest import NOW, PATH, TEXT_AUDITING_PATH, AppClient, Client, make_client

TEXT = "这是一个测试"


async def submit(client: Client, clock: ManualClock, text: str = TEXT) -> etree._Element:
    body = text_auditing_xml(text)
    headers = cos_sdk_headers(body, clock.time(), path=TEXT_AUDITING_PATH)
    response = await client.post(TEXT_AUDITING_PATH, data=body, headers=headers)
    assert response.status == 200, await response.text()
    root = etree.fromstring(await response.read())
    detail = root.find("JobsDetail")
    assert detail is not None
    return detail


async def query(client: Client, clock: ManualClock, job_id: str, **signing: Any) -> ClientResponse:
    path = f"{TEXT_AUDITING_PATH}/{job_id}"
    headers = cos_sdk_headers(b"", clock.time(), method="GET", path=path, **signing)
    return await client.get(path, headers=headers)


async def queried(client: Client, clock: ManualClock, job_id: str) -> etree._Element:
    """The JobsDetail of a successful query, after checking the body against the published schema."""
    response = await query(client, clock, job_id)
    raw = await response.read()
    assert response.status == 200, raw
    assert response.headers["Content-Type"] == "application/xml"
    root = etree.fromstring(raw)
    protocol.schema("text-auditing-response").validate(root)
    assert root.findtext("RequestId") == response.headers["x-ci-request-id"]
    detail = root.find("JobsDetail")
    assert detail is not None
    return detail


async def error_of(response: ClientResponse) -> dict[str, str]:
    root = etree.fromstring(await response.read())
    protocol.schema("report-badcase-response").validate(root)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


async def report(client: Client, clock: ManualClock, text: str, suggested: str) -> str:
    body = request_xml(ContentType=1, Label="Normal", SuggestedLabel=suggested, Text=b64(text))
    response = await client.post(PATH, data=body, headers=cos_sdk_headers(body, clock.time(), path=PATH))
    assert response.status == 200, await response.text()
    request_id = etree.fromstring(await response.read()).findtext("RequestId")
    assert request_id
    return request_id


async def test_the_query_answers_what_the_submit_answered(client: Client, clock: ManualClock) -> None:
    submitted = await submit(client, clock)
    job_id = submitted.findtext("JobId")
    assert job_id is not None
    clock.advance(60)
    detail = await queried(client, clock, job_id)
    assert etree.tostring(detail) == etree.tostring(submitted)
    assert detail.findtext("CreationTime") == protocol.job_time(NOW)  # when submitted, not queried


async def test_a_later_confirmation_changes_new_jobs_not_finished_ones(
    client: Client, clock: ManualClock
) -> None:
    before = (await submit(client, clock)).findtext("JobId")
    assert before is not None
    request_id = await report(client, clock, TEXT, "Porn")
    assert (await client.post(f"/_emulator/tencent/badcases/{request_id}/confirm", json={})).status == 200
    after = await submit(client, clock)
    assert after.findtext("Label") == "Porn"
    assert (await queried(client, clock, before)).findtext("Label") == "Normal"
    after_id = after.findtext("JobId")
    assert after_id is not None
    assert (await queried(client, clock, after_id)).findtext("Label") == "Porn"


async def test_an_unknown_job_is_an_invalid_argument(client: Client, clock: ManualClock) -> None:
    response = await query(client, clock, "st00000000000000000000000000000000")
    assert response.status == 400
    error = await error_of(response)
    assert error["Code"] == "InvalidArgument"
    assert (
        "Invalid argument JobId: no text auditing job 'st00000000000000000000000000000000'"
        in error["Message"]
    )
    assert error["Resource"].endswith("/text/auditing/st00000000000000000000000000000000")


async def test_jobs_belong_to_their_account(aiohttp_client: AppClient, clock: ManualClock) -> None:
    other = {"secret_id": "AKIDother", "secret_key": "otherKey", "appid": "1250000001"}
    accounts = [{"secret_id": "AKIDtestSecretId", "secret_key": "testSecretKey", "appid": APPID}, other]
    client = await make_client(aiohttp_client, clock, **{"tencent.accounts": accounts})
    job_id = (await submit(client, clock)).findtext("JobId")
    assert job_id is not None
    response = await query(
        client,
        clock,
        job_id,
        host="examplebucket-1250000001.ci.ap-beijing.myqcloud.com",
        secret_id="AKIDother",
        secret_key="otherKey",
    )
    assert (response.status, (await error_of(response))["Code"]) == (400, "InvalidArgument")


async def test_the_newest_jobs_are_kept(
    client: Client, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "MAX_TEXT_JOBS", 2)
    ids = [(await submit(client, clock, f"text {i}")).findtext("JobId") for i in range(3)]
    assert client.app is not None
    assert list(client.app[TENCENT_BACKEND].states[APPID].text_jobs) == ids[1:]
    assert (await query(client, clock, str(ids[0]))).status == 400
    assert (await queried(client, clock, str(ids[2]))).findtext("Content") == b64("text 2")


async def test_reset_forgets_the_jobs(client: Client, clock: ManualClock) -> None:
    job_id = (await submit(client, clock)).findtext("JobId")
    assert (await client.post("/_emulator/reset", json={})).status == 200
    assert (await query(client, clock, str(job_id))).status == 400


async def test_gateway_rules_apply(client: Client, clock: ManualClock) -> None:
    job_id = str((await submit(client, clock)).findtext("JobId"))
    path = f"{TEXT_AUDITING_PATH}/{job_id}"
    response = await client.get(path)
    assert (response.status, (await error_of(response))["Code"]) == (403, "AccessDenied")
    # Signed for POST: the method is part of what is signed.
    response = await client.get(path, headers=cos_sdk_headers(b"", clock.time(), path=path))
    assert (response.status, (await error_of(response))["Code"]) == (403, "SignatureDoesNotMatch")
    for method in ("POST", "DELETE", "HEAD"):
        response = await client.request(method, path)
        assert response.status == 405
        if method != "HEAD":
            error = await error_of(response)
            assert (error["Code"], error["Message"]) == (
                "MethodNotAllowed",
                f"The specified method is not allowed against this resource. {method} is not GET.",
            )


async def test_rate_limit_is_its_own(aiohttp_client: AppClient, clock: ManualClock) -> None:
    account = {
        "secret_id": "AKIDtestSecretId",
        "secret_key": "testSecretKey",
        "appid": APPID,
        "rate_limit": 1,
    }
    client = await make_client(aiohttp_client, clock, **{"tencent.accounts": [account]})
    job_id = str((await submit(client, clock)).findtext("JobId"))
    assert (await query(client, clock, job_id)).status == 200  # another action than the submit
    response = await query(client, clock, job_id)
    assert (response.status, (await error_of(response))["Code"]) == (503, "SlowDown")


async def test_journaled_and_matched_by_fault_rules_as_describe_auditing_text_job(
    client: Client, clock: ManualClock
) -> None:
    job_id = str((await submit(client, clock)).findtext("JobId"))
    await queried(client, clock, job_id)
    assert client.app is not None
    (entry,) = client.app[JOURNAL].select(Filter(action=DESCRIBE_AUDITING_TEXT_JOB))
    assert (entry.provider, entry.account, entry.method, entry.status) == ("tencent", APPID, "GET", 200)
    client.app[FAULTS].add(
        {
            "match": {"provider": "tencent", "action": DESCRIBE_AUDITING_TEXT_JOB},
            "action": {"type": "error", "code": "InternalError"},
        },
        None,
    )
    response = await query(client, clock, job_id)
    assert (response.status, (await error_of(response))["Code"]) == (500, "InternalError")
    await submit(client, clock)  # the submit is another action: untouched
    # Only one segment after /text/auditing/ is a job.
    response = await client.get(
        f"{TEXT_AUDITING_PATH}/{job_id}/x", headers={"Host": "a-1250000000.ci.r.myqcloud.com"}
    )
    assert (response.status, (await error_of(response))["Code"]) == (404, "NoSuchKey")
