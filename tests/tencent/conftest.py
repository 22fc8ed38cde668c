"""Helpers for the Tencent CI tests: request bodies, COS-signed headers, and an app on a pinned
clock behind aiohttp's test client."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from emulator import ManualClock, create_app
from emulator.providers.tencent import signing

from ..conftest import make_settings

Client = TestClient[Any, Any]
AppClient = Callable[..., Awaitable[Client]]
#: The pinned time the HTTP-level tests sign at and the app's clock starts from.
NOW = 1_795_600_000.0

SECRET_ID = "AKIDtestSecretId"
SECRET_KEY = "testSecretKey"
APPID = "1250000000"
HOST = f"examplebucket-{APPID}.ci.ap-beijing.myqcloud.com"
PATH = "/report/badcase"
TEXT_AUDITING_PATH = "/text/auditing"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def request_xml(**fields: str | int) -> bytes:
    """A <Request> body with the fields in the order given."""
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f"<Request>{inner}</Request>".encode()


TEXT_BODY = request_xml(ContentType=1, Label="Porn", SuggestedLabel="Normal", Text=b64("你好, world"))
IMAGE_BODY = request_xml(ContentType=2, Label="Ads", SuggestedLabel="Normal", Url="http://example.com/1.jpg")


def text_auditing_xml(text: str | None = None, *, input_extra: str = "", conf: str = "") -> bytes:
    """A text auditing <Request> as cos-python-sdk-v5 builds it (ci_auditing_text_submit)."""
    content = "" if text is None else f"<Content>{b64(text)}</Content>"
    return f"<Request><Input>{content}{input_extra}</Input><Conf>{conf}</Conf></Request>".encode()


def signed_headers(
    body: bytes,
    now: float,
    *,
    host: str = HOST,
    secret_id: str = SECRET_ID,
    secret_key: str = SECRET_KEY,
    method: str = "POST",
    path: str = PATH,
    start: int | None = None,
    end: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers a COS client sends, signed as cos-python-sdk-v5 signs them (valid from a minute
    before ``now``)."""
    headers = {
        "Host": host,
        "Content-Type": "application/xml",
        "Content-Length": str(len(body)),
        **(extra or {}),
    }
    req = signing.SignedRequest(
        method=method,
        path=path,
        query=[],
        headers={k.lower(): [v] for k, v in headers.items()},
    )
    headers["Authorization"] = signing.sign(
        req,
        secret_id=secret_id,
        secret_key=secret_key,
        start=int(now) - 60 if start is None else start,
        end=int(now) + 3600 if end is None else end,
    )
    return headers


@pytest.fixture
def clock() -> ManualClock:
    """Pinned at NOW (these tests sign with it; none of them drives a real SDK)."""
    return ManualClock(start=NOW)


async def make_client(aiohttp_client: AppClient, clock: ManualClock, **overrides: Any) -> Client:
    return await aiohttp_client(create_app(make_settings(**overrides), clock=clock))


@pytest.fixture
async def client(aiohttp_client: AppClient, clock: ManualClock) -> Client:
    return await make_client(aiohttp_client, clock)


async def post(client: Client, path: str, body: bytes, clock: ManualClock) -> ClientResponse:
    """A signed POST at the clock's time."""
    return await client.post(path, data=body, headers=signed_headers(body, clock.time(), path=path))
