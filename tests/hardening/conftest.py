"""Helpers for the hardening tests: signed requests for both providers, and checks that an answer
has the provider's own shape (never aiohttp's plain-text 500)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

from hypothesis import settings as hypothesis_settings
from lxml import etree

from emulator import Settings
from emulator.providers.alibaba import signing as ali

from ..conftest import make_settings
from ..tencent.conftest import HOST, signed_headers

__all__ = ["HOST", "signed_headers"]

# The suite is a gate: the same generated inputs on every run, so CI cannot fail on a draw no one
# has seen. To hunt for new failures, run with HYPOTHESIS_PROFILE=explore (fresh draws, more of them).
hypothesis_settings.register_profile("gate", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False, max_examples=2_000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

ACCESS_KEY_ID = "testAccessKeyId"
ACCESS_KEY_SECRET = "testAccessKeySecret"
IMAGE = "/green/image/feedback"
TEXT = "/green/text/feedback"
BADCASE = "/report/badcase"
GATEWAY_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}
BUSINESS_KEYS = {"code", "msg", "requestId"}
TENCENT_ERROR_FIELDS = ("Code", "Message", "Resource", "RequestId", "TraceId")


def hardening_settings(**overrides: Any) -> Settings:
    """The default config with rate limits no test here will reach (the throttle still runs)."""
    accounts = [
        {
            "access_key_id": ACCESS_KEY_ID,
            "access_key_secret": ACCESS_KEY_SECRET,
            "uid": "1234567890123456",
            "rate_limits": {"ImageScanFeedback": 1_000_000, "TextFeedback": 1_000_000},
        }
    ]
    return make_settings(**{"alibaba.accounts": accounts, **overrides})


def acs3_headers(
    body: bytes, now: float, *, path: str = IMAGE, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Headers the Tea SDK sends (ACS3-HMAC-SHA256), signed over ``body`` at ``now``."""
    headers = {
        "accept": "application/json",
        "content-type": "application/json; charset=utf-8",
        "x-acs-action": "ImageScanFeedback",
        "x-acs-version": "2018-05-09",
        "x-acs-date": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": "nonce",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        **(extra or {}),
    }
    signed = sorted(headers)
    req = ali.SignedRequest(
        method="POST", raw_path=path, query=[], headers={k: [v] for k, v in headers.items()}, body=body
    )
    sig = ali.acs3_signature(ali.acs3_string_to_sign(req, signed), ACCESS_KEY_SECRET)
    headers["authorization"] = (
        f"{ali.ACS3} Credential={ACCESS_KEY_ID},SignedHeaders={';'.join(signed)},Signature={sig}"
    )
    return headers


def alibaba_shape(status: int, body: bytes) -> dict[str, Any]:
    """The answer as JSON, checked to be the gateway's error (4xx) or the business envelope (200)."""
    assert status < 500, (status, body[:300])
    doc = json.loads(body)
    assert isinstance(doc, dict), body[:300]
    if status == 200:
        assert BUSINESS_KEYS <= set(doc) <= BUSINESS_KEYS | {"data"}, doc
        assert isinstance(doc["code"], int) and doc["msg"] and doc["requestId"], doc
    else:
        assert 400 <= status < 500, status
        assert set(doc) == GATEWAY_KEYS, doc
        assert all(isinstance(doc[k], str) and doc[k] for k in GATEWAY_KEYS), doc
    return doc


def tencent_shape(status: int, body: bytes) -> dict[str, str]:
    """The answer's fields, checked to be <Response> (200) or CI's <Error> with every field set."""
    assert status < 500, (status, body[:300])
    root = etree.fromstring(body)
    fields = {child.tag: child.text or "" for child in root}
    if status == 200:
        assert root.tag == "Response" and fields.get("RequestId"), body[:300]
    else:
        assert 400 <= status < 500, status
        assert root.tag == "Error", body[:300]
        for name in TENCENT_ERROR_FIELDS:
            assert fields.get(name), (name, body[:300])
    return fields


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
