"""Replay protection: a signed call whose ``x-acs-signature-nonce`` was seen before is answered
with the gateway's SignatureNonceUsed, while the official SDKs (a fresh nonce per call) never trip it.

The replayed request is a real one: the Tea SDK's call as the journal recorded it, sent again byte
for byte (same headers, same body, same signature)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from alibabacloud_green20180509 import models as green_models
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import ImageScanFeedbackRequest

from emulator import ManualClock, RunningServer, serve_in_thread
from emulator.core.journal import Entry
from emulator.keys import JOURNAL
from emulator.providers.alibaba.signing import NonceCache
from emulator.testing.settings import make_settings

from .test_alibaba_sdks import AK, SECRET, TEA_ALGORITHMS, tea_client

HOP_HEADERS = {"content-length", "connection", "accept-encoding", "transfer-encoding"}


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        yield s


def inbound(server: RunningServer) -> list[Entry]:
    return [e for e in server.app[JOURNAL].entries() if e.direction == "in"]


def replay(session: requests.Session, server: RunningServer, entry: Entry) -> requests.Response:
    headers = {k: v for k, v in entry.request_headers if k.lower() not in HOP_HEADERS}
    assert entry.url.startswith(server.url)
    return session.post(entry.url, data=entry.request_body, headers=headers, timeout=10)


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_tea_sdk_calls_never_reuse_a_nonce(threaded_server: RunningServer, algorithm: str | None) -> None:
    client = tea_client(threaded_server, algorithm)
    for _ in range(5):
        response = client.image_scan_feedback(green_models.ImageScanFeedbackRequest(client_info="{}"))
        assert response.status_code == 200
    nonces = [e.header("x-acs-signature-nonce") for e in inbound(threaded_server)]
    assert len(nonces) == 5 and None not in nonces and len(set(nonces)) == 5


def test_core_sdk_sends_no_nonce_and_is_never_refused(threaded_server: RunningServer) -> None:
    for _ in range(3):
        client = AcsClient(AK, SECRET, "cn-shanghai", auto_retry=False)
        request = ImageScanFeedbackRequest.ImageScanFeedbackRequest()
        request.set_endpoint(f"{threaded_server.host}:{threaded_server.port}")
        request.set_protocol_type("http")
        request.set_content(b"{}")
        try:
            assert json.loads(client.do_action_with_exception(request))["code"] == 200
        finally:
            client.session.close()
    assert [e.header("x-acs-signature-nonce") for e in inbound(threaded_server)] == [None] * 3


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_a_replayed_sdk_request_gets_signature_nonce_used(
    threaded_server: RunningServer, session: requests.Session, algorithm: str | None
) -> None:
    client = tea_client(threaded_server, algorithm)
    client.image_scan_feedback(green_models.ImageScanFeedbackRequest(client_info="{}"))
    (original,) = inbound(threaded_server)
    assert original.status == 200

    again = replay(session, threaded_server, original)
    assert again.status_code == 400
    doc = again.json()
    assert doc["Code"] == "SignatureNonceUsed"
    assert doc["Message"] == "Specified signature nonce was used already."
    assert set(doc) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    # The same request with a fresh nonce is a new call: its signature no longer matches.
    headers = {k: v for k, v in original.request_headers if k.lower() not in HOP_HEADERS}
    headers["x-acs-signature-nonce"] = "another-nonce"
    fresh = session.post(original.url, data=original.request_body, headers=headers)
    assert fresh.status_code == 400 and fresh.json()["Code"] == "SignatureDoesNotMatch"
    # Both refusals are journaled as the gateway answered them.
    assert [e.status for e in inbound(threaded_server)] == [200, 400, 400]


def test_a_request_that_fails_verification_does_not_spend_its_nonce(
    threaded_server: RunningServer, session: requests.Session
) -> None:
    client = tea_client(threaded_server, None)
    client.image_scan_feedback(green_models.ImageScanFeedbackRequest(client_info="{}"))
    (original,) = inbound(threaded_server)
    nonce = original.header("x-acs-signature-nonce")
    assert nonce is not None
    # Someone who cannot sign sends a new nonce first (a bad signature) ...
    forged = {k: v for k, v in original.request_headers if k.lower() not in HOP_HEADERS}
    forged["x-acs-signature-nonce"] = "future-nonce"
    forged["Authorization"] = forged["Authorization"][:-4] + "0000"
    assert session.post(original.url, data=b"", headers=forged).status_code == 400
    # ... which is no reason to refuse the owner's call carrying it: only verified calls count.
    second = tea_client(threaded_server, None)
    assert second.image_scan_feedback(green_models.ImageScanFeedbackRequest()).status_code == 200


def test_reuse_is_allowed_when_the_setting_is_off(session: requests.Session) -> None:
    settings = make_settings(**{"alibaba.reject_nonce_reuse": False})
    with serve_in_thread(settings, clock=ManualClock()) as server:
        tea_client(server, None).image_scan_feedback(green_models.ImageScanFeedbackRequest())
        (original,) = inbound(server)
        assert replay(session, server, original).status_code == 200


# --- the remembered set: bounded, and forgotten once a replay would be expired anyway ----------------


def test_nonces_expire_with_the_window_of_their_request() -> None:
    cache = NonceCache()
    assert cache.use("ak", "n1", until=1_000.0, now=100.0)
    assert not cache.use("ak", "n1", until=1_000.0, now=999.0)
    assert cache.use("other-ak", "n1", until=1_000.0, now=999.0)  # nonces are per AccessKeyId
    assert cache.use("ak", "n1", until=2_000.0, now=1_000.5)  # expired: forgotten, usable again
    assert len(cache) == 1  # the other key's n1 expired too


def test_the_remembered_set_is_bounded() -> None:
    cache = NonceCache(capacity=100)
    for i in range(1_000):
        assert cache.use("ak", f"n{i}", until=10_000.0 + i, now=0.0)
    assert len(cache) == 100
    # The newest are still refused; the oldest, forgotten early, are not.
    assert not cache.use("ak", "n999", until=20_000.0, now=0.0)
    assert cache.use("ak", "n0", until=20_000.0, now=0.0)
