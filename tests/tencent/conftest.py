"""Helpers for the Tencent CI tests: request bodies and COS-signed headers."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from emulator.providers.tencent import signing

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
