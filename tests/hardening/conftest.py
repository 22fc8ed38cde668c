"""Helpers for the hardening tests: settings, and checks that an answer
has the provider's own shape (never aiohttp's plain-text 500)."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import settings as hypothesis_settings
from lxml import etree

from emulator import Settings
from emulator.testing.settings import make_settings
from emulator.testing.signers import ACCESS_KEY_ID, ACCESS_KEY_SECRET

# The suite is a gate: the same generated inputs on every run, so CI cannot fail on a draw no one
# has seen. To hunt for new failures, run with HYPOTHESIS_PROFILE=explore (fresh draws, more of them).
hypothesis_settings.register_profile("gate", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False, max_examples=2_000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

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
