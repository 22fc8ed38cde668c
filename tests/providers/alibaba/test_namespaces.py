"""aliyunsdkcore + aliyunsdkgreen, unchanged, in two namespaces of one running emulator: what one
namespace feeds back, and the console verdicts it sets, change only its own scans. The namespace
travels as an extra header (``request.add_header``); acs signing covers only the x-acs-* headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import ImageScanFeedbackRequest, ImageSyncScanRequest

from emulator import ManualClock, RunningServer
from emulator.testing import SyncEmulatorClient
from emulator.testing.signers import ACCESS_KEY_ID, ACCESS_KEY_SECRET

URL = "http://example.com/ns.jpg"


@pytest.fixture
def clock() -> ManualClock:
    # The SDK signs with the real time: the server's clock starts from it.
    return ManualClock()


def call(server: RunningServer, request: Any, body: dict[str, Any], namespace: str) -> dict[str, Any]:
    client = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "cn-shanghai", auto_retry=False)
    request.set_endpoint(f"{server.host}:{server.port}")
    request.set_protocol_type("http")
    request.add_header("X-Emulator-Namespace", namespace)
    request.set_content(json.dumps(body).encode())
    try:
        result: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    finally:
        client.session.close()
    return result


def label(server: RunningServer, namespace: str, url: str = URL) -> str:
    body = {"scenes": ["porn"], "tasks": [{"url": url}]}
    result = call(server, ImageSyncScanRequest.ImageSyncScanRequest(), body, namespace)
    return str(result["data"][0]["results"][0]["label"])


def test_feedback_and_verdicts_change_only_their_namespace(threaded_server: RunningServer) -> None:
    feedback = {"url": URL, "suggestion": "block", "scenes": ["porn"], "label": "porn"}
    assert (
        call(threaded_server, ImageScanFeedbackRequest.ImageScanFeedbackRequest(), feedback, "a")["code"]
        == 200
    )
    assert label(threaded_server, "a") == "porn"
    assert label(threaded_server, "b") == "normal"
    other = "http://example.com/other.jpg"
    with SyncEmulatorClient(threaded_server.url, namespace="b") as in_b:
        in_b.add_verdicts({"scene": "porn", "label": "sexy", "suggestion": "review", "url": other})
    assert label(threaded_server, "b", other) == "sexy"
    assert label(threaded_server, "a", other) == "normal"
    with SyncEmulatorClient(threaded_server.url, namespace="*") as everyone:
        assert (
            sorted(e.namespace or "" for e in everyone.requests(provider="alibaba")) == ["a"] * 3 + ["b"] * 2
        )
