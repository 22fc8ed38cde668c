"""Request bodies for the Tencent CI APIs, built as cos-python-sdk-v5 builds them."""

from __future__ import annotations

import base64

__all__ = ["IMAGE_BADCASE", "TEXT_BADCASE", "b64", "request_xml", "text_auditing_xml"]


def b64(text: str) -> str:
    """Base64 of the UTF-8 text (how CI carries text in XML)."""
    return base64.b64encode(text.encode()).decode()


def request_xml(**fields: str | int) -> bytes:
    """A <Request> body with the fields in the order given."""
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f"<Request>{inner}</Request>".encode()


def text_auditing_xml(text: str | None = None, *, input_extra: str = "", conf: str = "") -> bytes:
    """A text auditing <Request> as cos-python-sdk-v5 builds it (ci_auditing_text_submit)."""
    content = "" if text is None else f"<Content>{b64(text)}</Content>"
    return f"<Request><Input>{content}{input_extra}</Input><Conf>{conf}</Conf></Request>".encode()


#: A text badcase and an image badcase for /report/badcase.
TEXT_BADCASE = request_xml(ContentType=1, Label="Porn", SuggestedLabel="Normal", Text=b64("你好, world"))
IMAGE_BADCASE = request_xml(
    ContentType=2, Label="Ads", SuggestedLabel="Normal", Url="http://example.com/1.jpg"
)
