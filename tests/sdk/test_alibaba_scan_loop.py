"""The whole loop through aliyunsdkcore: moderate, disagree, send feedback, moderate again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import (
    ImageAsyncScanRequest,
    ImageAsyncScanResultsRequest,
    ImageScanFeedbackRequest,
    ImageSyncScanRequest,
    TextFeedbackRequest,
    TextScanRequest,
)

from emulator import ManualClock, RunningServer, serve_in_thread
from emulator.testing import SyncEmulatorClient
from emulator.testing.settings import make_settings

PORN_URL = "http://cdn.example.com/porn/1.jpg"
CLEAN_URL = "http://cdn.example.com/cats/1.jpg"
VERDICTS = [
    {"url_pattern": "/porn/", "scene": "porn", "label": "porn", "suggestion": "block", "rate": 99.2},
    {"text": "cheap guns", "scene": "antispam", "label": "contraband", "suggestion": "block"},
]


@pytest.fixture
def server() -> Iterator[RunningServer]:
    settings = make_settings(**{"alibaba.verdicts": VERDICTS})
    with serve_in_thread(settings, clock=ManualClock()) as running:
        yield running


def call(server: RunningServer, request: Any, body: Any) -> Any:
    client = AcsClient("testAccessKeyId", "testAccessKeySecret", "cn-shanghai", auto_retry=False)
    request.set_endpoint(f"{server.host}:{server.port}")
    request.set_protocol_type("http")
    request.set_content(json.dumps(body).encode())
    try:
        answer = json.loads(client.do_action_with_exception(request))
    finally:
        client.session.close()
    assert answer["code"] == 200, answer
    return answer.get("data")


def scan_image(server: RunningServer, url: str, scenes: list[str]) -> dict[str, str]:
    (task,) = call(
        server,
        ImageSyncScanRequest.ImageSyncScanRequest(),
        {"scenes": scenes, "tasks": [{"dataId": "d1", "url": url}]},
    )
    assert (task["code"], task["dataId"], task["url"]) == (200, "d1", url)
    assert task["taskId"].startswith("img")
    return {r["scene"]: f"{r['label']}/{r['suggestion']}" for r in task["results"]}


def scan_text(server: RunningServer, content: str) -> dict[str, Any]:
    (task,) = call(
        server,
        TextScanRequest.TextScanRequest(),
        {"scenes": ["antispam"], "tasks": [{"dataId": "t1", "content": content}]},
    )
    assert task["code"] == 200 and task["content"] == content
    result: dict[str, Any] = task["results"][0]
    return result


def test_image_loop_a_false_positive_is_whitelisted(server: RunningServer) -> None:
    assert scan_image(server, PORN_URL, ["porn", "ad"]) == {"porn": "porn/block", "ad": "normal/pass"}
    call(
        server,
        ImageScanFeedbackRequest.ImageScanFeedbackRequest(),
        {"url": PORN_URL, "suggestion": "pass", "scenes": ["porn"], "label": "normal"},
    )
    assert scan_image(server, PORN_URL, ["porn", "ad"]) == {"porn": "normal/pass", "ad": "normal/pass"}


def test_image_loop_a_missed_ad_is_blacklisted(server: RunningServer) -> None:
    assert scan_image(server, CLEAN_URL, ["porn", "ad"]) == {"porn": "normal/pass", "ad": "normal/pass"}
    call(
        server,
        ImageScanFeedbackRequest.ImageScanFeedbackRequest(),
        {"url": CLEAN_URL, "suggestion": "block", "scenes": ["ad"], "label": "ad"},
    )
    assert scan_image(server, CLEAN_URL, ["porn", "ad"]) == {"porn": "normal/pass", "ad": "ad/block"}


def test_text_loop(server: RunningServer) -> None:
    first = scan_text(server, "selling cheap guns here")
    assert (first["label"], first["suggestion"]) == ("contraband", "block")
    call(
        server,
        TextFeedbackRequest.TextFeedbackRequest(),
        {"taskId": "t", "content": "selling cheap guns here", "label": "normal"},
    )
    again = scan_text(server, "selling cheap guns here")
    assert (again["label"], again["suggestion"]) == ("normal", "pass")
    call(
        server,
        TextFeedbackRequest.TextFeedbackRequest(),
        {"taskId": "t2", "content": "hello", "label": "abuse"},
    )
    assert scan_text(server, "hello")["suggestion"] == "block"


def test_custom_library_through_the_console_then_the_sdk(server: RunningServer) -> None:
    with SyncEmulatorClient(server.url) as emu:
        lib = emu.create_library("contraband", "term", "blacklist", ["买&枪支~玩具"])
    hit = scan_text(server, "哪里可以买到枪支")
    assert (hit["label"], hit["suggestion"]) == ("customized", "block")
    (detail,) = hit["details"]
    assert {c["context"] for c in detail["contexts"]} == {"买", "枪支"}
    assert {c["libName"] for c in detail["contexts"]} == {"contraband"}
    assert {c["libCode"] for c in detail["contexts"]} == {lib["code"]}
    assert scan_text(server, "哪里可以买到玩具枪支")["suggestion"] == "pass"


def test_async_scan_callback_and_results(server: RunningServer) -> None:
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs

    got: list[dict[str, str]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            fields = parse_qs(self.rfile.read(length).decode())
            got.append({k: v[0] for k, v in fields.items()})
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), Receiver) as receiver:
        thread = threading.Thread(target=receiver.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/cb"
            (accepted,) = call(
                server,
                ImageAsyncScanRequest.ImageAsyncScanRequest(),
                {
                    "scenes": ["porn"],
                    "tasks": [{"dataId": "a1", "url": PORN_URL}],
                    "callback": url,
                    "seed": "s33d",
                },
            )
            assert "results" not in accepted
            assert arrived.wait(10)
        finally:
            receiver.shutdown()
            thread.join()
    (form,) = got
    assert (
        form["checksum"]
        == hashlib.sha256(("1234567890123456" + "s33d" + form["content"]).encode()).hexdigest()
    )
    content = json.loads(form["content"])
    assert content["taskId"] == accepted["taskId"]
    assert content["results"][0]["label"] == "porn"
    (polled,) = call(
        server, ImageAsyncScanResultsRequest.ImageAsyncScanResultsRequest(), [accepted["taskId"]]
    )
    assert polled == content
    (missing,) = call(server, ImageAsyncScanResultsRequest.ImageAsyncScanResultsRequest(), ["img-unknown"])
    assert missing["code"] == 404
