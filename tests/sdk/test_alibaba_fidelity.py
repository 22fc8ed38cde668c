"""What documents 000, 001 and 003 say, checked through aliyunsdkcore and a loopback receiver:
notifications carry the machine's result beside the person's, terms break words, feedback takes
effect only in the account's reflux scenes, documented labels go in any scene, libraries name their
TextScan scenes and can be disabled, a lightly edited text hits a pattern; and each undocumented
strictness can be relaxed."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import (
    ImageScanFeedbackRequest,
    ImageSyncScanRequest,
    TextFeedbackRequest,
    TextScanRequest,
)

from emulator import ManualClock, RunningServer, serve_in_thread
from emulator.testing import SyncEmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings

UID = "1234567890123456"
PORN_URL = "http://cdn.example.com/porn/1.jpg"
VERDICTS = [{"url_pattern": "/porn/", "scene": "porn", "label": "porn", "suggestion": "block"}]


class FormReceiver:
    """A loopback server that keeps the form fields of every POST and answers 200."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fields = parse_qs(body.decode("ascii"), strict_parsing=True)
                receiver.forms.append({k: v[0] for k, v in fields.items()})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def contents(self) -> list[dict[str, Any]]:
        return [json.loads(form["content"]) for form in self.forms]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[FormReceiver]:
    got = FormReceiver()
    yield got
    got.close()


def running(**overrides: Any) -> Any:
    settings = make_settings(**{"callbacks.shutdown_grace": 0, **overrides})
    return serve_in_thread(settings, clock=ManualClock())


def acs(server: RunningServer, request: Any, body: Any, **query: str) -> dict[str, Any]:
    """The whole answer of one call through aliyunsdkcore."""
    client = AcsClient("testAccessKeyId", "testAccessKeySecret", "cn-shanghai", auto_retry=False)
    request.set_endpoint(f"{server.host}:{server.port}")
    request.set_protocol_type("http")
    request.set_content(json.dumps(body).encode())
    for name, value in query.items():
        request.add_query_param(name, value)
    try:
        answer: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    finally:
        client.session.close()
    return answer


def scan_image(server: RunningServer, url: str, scenes: list[str], data_id: str = "d1") -> dict[str, Any]:
    answer = acs(
        server,
        ImageSyncScanRequest.ImageSyncScanRequest(),
        {"scenes": scenes, "tasks": [{"dataId": data_id, "url": url}]},
    )
    assert answer["code"] == 200, answer
    task: dict[str, Any] = answer["data"][0]
    return task


def verdicts_of(task: dict[str, Any]) -> dict[str, str]:
    return {r["scene"]: f"{r['label']}/{r['suggestion']}" for r in task["results"]}


def scan_text(server: RunningServer, content: str, scenes: list[str]) -> dict[str, Any]:
    answer = acs(
        server,
        TextScanRequest.TextScanRequest(),
        {"scenes": scenes, "tasks": [{"dataId": "t1", "content": content}]},
    )
    assert answer["code"] == 200, answer
    task: dict[str, Any] = answer["data"][0]
    return task


def image_feedback(server: RunningServer, body: dict[str, Any], **query: str) -> dict[str, Any]:
    return acs(server, ImageScanFeedbackRequest.ImageScanFeedbackRequest(), body, **query)


# --- 1. notifications: scanResult is the machine's, auditResult the person's (document 000) ----------


def test_a_review_notifies_the_scan_the_machine_gave_and_the_persons_verdict(receiver: FormReceiver) -> None:
    with running(**{"alibaba.verdicts": VERDICTS}) as server, SyncEmulatorClient(server.url) as emu:
        emu.set_callback(receiver.url)
        scanned = scan_image(server, PORN_URL, ["porn", "ad"], data_id="photo-7")
        assert verdicts_of(scanned) == {"porn": "porn/block", "ad": "normal/pass"}
        # The person disagrees: the image is fine.
        emu.review(task_id=scanned["taskId"], url=PORN_URL, suggestion="pass", labels=["normal"])
        emu.wait_for_delivery(action="ImageScanNotification")
        assert verdicts_of(scan_image(server, PORN_URL, ["porn"])) == {"porn": "normal/pass"}
    (content,) = receiver.contents()
    machine, person = content["scanResult"], content["auditResult"]
    # The receiver compares the two: the machine blocked, the person passed.
    assert machine == scanned
    assert (machine["taskId"], machine["dataId"]) == (scanned["taskId"], "photo-7")
    assert [r["suggestion"] for r in machine["results"]] == ["block", "pass"]
    assert person == {"suggestion": "pass", "labels": ["normal"]}


def test_feedback_notifications_carry_the_scan_before_the_feedback(receiver: FormReceiver) -> None:
    overrides = {"alibaba.verdicts": VERDICTS, "alibaba.notify_on_feedback": True}
    with running(**overrides) as server, SyncEmulatorClient(server.url) as emu:
        emu.set_callback(receiver.url)
        scanned = scan_image(server, PORN_URL, ["porn"])
        assert (
            image_feedback(
                server,
                {"taskId": scanned["taskId"], "url": PORN_URL, "suggestion": "pass", "scenes": ["porn"]},
            )["code"]
            == 200
        )
        # Never scanned: what a scan would have answered just before the feedback.
        other = "http://cdn.example.com/porn/2.jpg"
        image_feedback(server, {"url": other, "label": "normal", "scenes": ["porn"]})
        text = scan_text(server, "你好", ["antispam"])
        acs(server, TextFeedbackRequest.TextFeedbackRequest(), {"taskId": text["taskId"], "label": "spam"})
        emu.wait_for_delivery(count=3)
    by_kind = receiver.contents()
    image_scan, unscanned, text_scan = sorted(
        by_kind, key=lambda c: ("url" not in c["scanResult"], c["scanResult"].get("url", ""))
    )
    assert image_scan["scanResult"] == scanned
    assert image_scan["auditResult"] == {"suggestion": "pass", "labels": []}
    assert unscanned["scanResult"]["url"] == other and "taskId" not in unscanned["scanResult"]
    assert verdicts_of(unscanned["scanResult"]) == {"porn": "porn/block"}
    assert unscanned["auditResult"] == {"suggestion": "pass", "labels": ["normal"]}
    assert text_scan["scanResult"] == text
    assert text_scan["auditResult"] == {"suggestion": "block", "labels": ["spam"]}


# --- 2. terms break words (document 003) --------------------------------------------------------


def test_terms_hit_whole_words_only_and_english_words_are_refused() -> None:
    with running() as server, SyncEmulatorClient(server.url) as emu:
        emu.create_library("contacts", "term", "blacklist", ["qq12345", "微信"])
        hit = scan_text(server, "加qq12345好友", ["antispam"])
        assert hit["results"][0]["suggestion"] == "block"
        assert hit["filteredContent"] == "加*******好友"
        assert scan_text(server, "加qq123456789好友", ["antispam"])["results"][0]["suggestion"] == "pass"
        assert scan_text(server, "加微信", ["antispam"])["results"][0]["suggestion"] == "block"
        with pytest.raises(AdminError) as info:
            emu.create_library("english", "term", "blacklist", ["hello"])
        assert "English words or phrases cannot be used as terms" in str(info.value)


# --- 3. reflux scenes (document 000) ------------------------------------------------------------


def reflux_account(scenes: list[str]) -> dict[str, Any]:
    return {
        "access_key_id": "testAccessKeyId",
        "access_key_secret": "testAccessKeySecret",
        "uid": UID,
        "reflux_scenes": scenes,
    }


def test_feedback_outside_the_reflux_scenes_is_recorded_but_changes_no_result() -> None:
    url = "http://cdn.example.com/cats/1.jpg"
    with (
        running(**{"alibaba.accounts": [reflux_account(["porn"])]}) as server,
        SyncEmulatorClient(server.url) as emu,
    ):
        answer = image_feedback(server, {"url": url, "suggestion": "block", "scenes": ["ad"], "label": "ad"})
        assert answer["code"] == 200
        (recorded,) = emu.assert_called(action="ImageScanFeedback", count=1)
        assert recorded.status == 200 and recorded.parsed["scenes"] == ["ad"]
        assert verdicts_of(scan_image(server, url, ["porn", "ad"])) == {
            "porn": "normal/pass",
            "ad": "normal/pass",
        }
        # Within the reflux scene it takes effect the next time the image is moderated (document 001).
        image_feedback(server, {"url": url, "suggestion": "block", "scenes": ["porn", "ad"], "label": "porn"})
        assert verdicts_of(scan_image(server, url, ["porn", "ad"])) == {
            "porn": "porn/block",
            "ad": "normal/pass",
        }


def test_every_scene_is_a_reflux_scene_by_default() -> None:
    url = "http://cdn.example.com/cats/2.jpg"
    with running() as server:
        image_feedback(server, {"url": url, "suggestion": "block", "scenes": ["ad", "terrorism"]})
        assert verdicts_of(scan_image(server, url, ["ad", "terrorism"])) == {
            "ad": "ad/block",
            "terrorism": "others/block",
        }


# --- 4. labels (document 000) --------------------------------------------------------------------


@pytest.mark.parametrize(("scene", "label"), [("terrorism", "terrorism"), ("porn", "ad"), ("ad", "sexy")])
def test_documented_labels_go_in_any_scene_unless_strict(scene: str, label: str) -> None:
    body = {"url": "http://a/1.jpg", "scenes": [scene], "label": label}
    with running() as server:
        assert image_feedback(server, body)["code"] == 200
        assert image_feedback(server, {**body, "label": "nonsense"})["code"] == 400
    with running(**{"alibaba.strict_labels": True}) as server:
        refused = image_feedback(server, body)
        assert refused["code"] == 400 and f"not a label of scenes {scene}" in refused["msg"]


# --- 5. libraries: scenes, enable/disable (document 003) ---------------------------------------------


def test_libraries_apply_to_the_ad_scene_and_can_be_disabled() -> None:
    with running() as server, SyncEmulatorClient(server.url) as emu:
        both = emu.create_library("both", "term", "blacklist", ["代开发票"])
        task = scan_text(server, "代开发票请联系", ["antispam", "ad"])
        assert verdicts_of(task) == {"antispam": "customized/block", "ad": "customized/block"}
        with requests.Session() as http:
            base = f"{server.url}/_emulator/alibaba/libraries"
            answer = http.patch(f"{base}/{both['code']}", json={"enabled": False})
            assert answer.status_code == 200 and answer.json()["enabled"] is False
            assert verdicts_of(scan_text(server, "代开发票请联系", ["antispam", "ad"])) == {
                "antispam": "normal/pass",
                "ad": "normal/pass",
            }
            assert http.patch(f"{base}/{both['code']}", json={"enabled": True}).json()["enabled"] is True
            refused = http.patch(f"{base}/feedback-text", json={"enabled": False})
            assert refused.status_code == 400 and refused.json()["code"] == "FeedbackLibNotDisablable"
            assert http.patch(f"{base}/nope", json={"enabled": False}).status_code == 404
            assert http.patch(f"{base}/{both['code']}", json={"enabled": "no"}).status_code == 400
            spam_only = http.post(
                base,
                json={
                    "name": "spam",
                    "kind": "term",
                    "listType": "review",
                    "items": ["刷单"],
                    "scenes": ["antispam"],
                },
            ).json()
            assert spam_only["scenes"] == ["antispam"]
        assert verdicts_of(scan_text(server, "刷单", ["antispam", "ad"])) == {
            "antispam": "customized/review",
            "ad": "normal/pass",
        }


# --- 6. similarity (document 003) ---------------------------------------------------------------


def test_a_one_character_edit_of_a_pattern_hits_and_meaningless_patterns_are_ignored() -> None:
    pattern = "加我微信领取免费礼包"
    with running() as server, SyncEmulatorClient(server.url) as emu:
        lib = emu.create_library("spam", "pattern", "blacklist", [pattern, "abc123def456"])
        assert lib["ignored"] == ["abc123def456"] and "may be ignored" in lib["note"]
        for edited in ("加我微信领取免费大礼包", "加我微x领取免费礼包", "加我微信领取免费礼"):
            result = scan_text(server, edited, ["antispam"])["results"][0]
            assert (result["label"], result["suggestion"]) == ("customized", "block"), edited
        assert scan_text(server, "abc123def456", ["antispam"])["results"][0]["suggestion"] == "pass"


# --- 7. undocumented envelope checks can be relaxed ------------------------------------------------


def test_client_info_check_can_be_relaxed() -> None:
    with running() as server:
        refused = image_feedback(server, {}, ClientInfo="not json")
        assert refused["code"] == 400 and "ClientInfo must be a JSON object" in refused["msg"]
    with running(**{"alibaba.strict_client_info": False}) as server:
        assert image_feedback(server, {}, ClientInfo="not json")["code"] == 200


def test_scan_task_limits_are_settings() -> None:
    tasks = [{"url": f"http://a/{i}.jpg"} for i in range(101)]
    body = {"scenes": ["porn"], "tasks": tasks}
    with running() as server:
        refused = acs(server, ImageSyncScanRequest.ImageSyncScanRequest(), body)
        assert refused["code"] == 400 and "over 100" in refused["msg"]
    with running(**{"alibaba.max_scan_tasks": 200}) as server:
        assert len(acs(server, ImageSyncScanRequest.ImageSyncScanRequest(), body)["data"]) == 101
