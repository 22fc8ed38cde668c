"""A path or method the emulator does not serve: on a CI/COS host, CI's XML error; on any other host,
and for Alibaba's /green/ and the admin API whatever the host, what was answered before."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from emulator import create_app
from emulator.core.journal import Filter
from emulator.keys import JOURNAL
from emulator.providers.tencent import protocol
from emulator.testing.settings import make_settings
from emulator.testing.signers import COS_HOST as CI_HOST

Client = TestClient[Any, Any]
AppClient = Callable[..., Awaitable[Client]]
COS_HOST = "examplebucket-1250000000.cos.ap-beijing.myqcloud.com"


@pytest.fixture
async def client(aiohttp_client: AppClient) -> Client:
    return await aiohttp_client(create_app(make_settings()))


@pytest.mark.parametrize("host", [CI_HOST, COS_HOST])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/image/auditing/si123"), ("POST", "/video/auditing"), ("PUT", "/"), ("GET", "/text/auditing/")],
)
async def test_on_a_ci_host_ci_answers(client: Client, host: str, method: str, path: str) -> None:
    response = await client.request(method, path, headers={"Host": host})
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["Server"] == "tencent-ci"
    root = etree.fromstring(await response.read())
    protocol.schema("report-badcase-response").validate(root)
    fields = {child.tag: child.text for child in root}
    assert fields["Code"] == "NoSuchKey"
    assert fields["Message"] == (
        f"The specified key does not exist. The emulator serves no CI API at {method} {path}."
    )
    assert fields["Resource"] == f"{host}{path}"
    assert fields["RequestId"] == response.headers["x-ci-request-id"]
    assert fields["TraceId"] == response.headers["x-ci-trace-id"]
    assert client.app is not None
    (entry,) = client.app[JOURNAL].select(Filter(path=path))
    assert (entry.provider, entry.status) == ("tencent", 404)


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "example.com", "bucket.ci.ap-beijing.myqcloud.com"])
async def test_elsewhere_aiohttp_answers_as_before(client: Client, host: str) -> None:
    response = await client.get("/image/auditing/si123", headers={"Host": host})
    assert (response.status, await response.text()) == (404, "404: Not Found")


@pytest.mark.parametrize("host", [CI_HOST, "127.0.0.1"])
async def test_the_admin_api_and_alibaba_keep_their_answers(client: Client, host: str) -> None:
    # The admin API's own answers (problem details), not the catch-all's NoSuchKey.
    response = await client.get("/_emulator/nowhere", headers={"Host": host})
    assert (response.status, response.content_type) == (404, "application/problem+json")
    assert (await response.json(content_type=None))["error"] == "not_found"
    # A route the catch-all would otherwise have taken for another method: still a 405.
    response = await client.get("/_emulator/reset", headers={"Host": host})
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    response = await client.post("/green/image/nowhere", headers={"Host": host})
    assert response.status == 404
    assert (await response.json())["Code"] == "InvalidAction.NotFound"
