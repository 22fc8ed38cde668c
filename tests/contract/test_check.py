"""`emulator contract check` on a recording made through the official SDKs: clean as recorded, and
exactly the expected findings once the recording is edited to show drift."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree

from emulator.cli import main
from emulator.contract.har import read_har
from emulator.contract.replay import check_file
from emulator.testing.settings import make_settings

from .conftest import Capture
from .traffic import ACTIONS, WRONG_SECRET

HAR_SCHEMA = json.loads((Path(__file__).parents[1] / "admin" / "har-1.2.schema.json").read_text())


def _entries(capture: Capture) -> list[dict[str, Any]]:
    return read_har(capture.path).entries


def _write(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "edited.har"
    creator = {"name": "test", "version": "0"}
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": creator, "entries": entries}}))
    return path


def _edit_body(entry: dict[str, Any], edit: Any) -> None:
    content = entry["response"]["content"]
    body = json.loads(content["text"])
    edit(body)
    content["text"] = json.dumps(body)


def test_the_ready_line_names_the_proxy_and_the_upstream(capture: Capture) -> None:
    words = capture.ready_line.split()
    assert words[:3] == ["emulator", "recording", "on"] and words[3].startswith("http://127.0.0.1:")
    assert words[5].startswith("http://127.0.0.1:") and words[-1] == str(capture.path)


def test_the_recording_holds_every_call_as_sent(capture: Capture) -> None:
    # A HAR 1.2 document (the schema the journal's own HAR export is held to).
    har = json.loads(capture.path.read_text())
    jsonschema.validate(har, HAR_SCHEMA, format_checker=jsonschema.FormatChecker())
    entries = _entries(capture)
    assert len(entries) == len(ACTIONS) == len(capture.upstream)
    # Forwarded unchanged: the upstream verified every signature but the one made with a wrong secret.
    assert [e.action for e in capture.upstream] == ACTIONS
    statuses = [e.status for e in capture.upstream]
    assert statuses[WRONG_SECRET] == 400 and {s for i, s in enumerate(statuses) if i != WRONG_SECRET} == {200}
    assert [e["response"]["status"] for e in entries] == statuses
    hosts = {e["request"]["url"].split("/")[2] for e in entries}
    assert hosts == {"green.cn-shanghai.aliyuncs.com", "examplebucket-1250000000.ci.ap-beijing.myqcloud.com"}


def test_the_sdks_requests_break_no_contract(capture: Capture) -> None:
    # contract.strict_requests is "warn" by default: the SDKs' own requests have nothing to report.
    assert [e.violations for e in capture.upstream] == [None] * len(ACTIONS)


def test_a_recording_through_the_sdks_checks_clean(
    capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    report = check_file(capture.path, make_settings())
    assert report.findings == []
    assert [r.action for r in report.results] == ACTIONS
    assert {r.outcome for r in report.results} == {"compared"}
    # The test account's signatures are verified as recorded, the refused one included; calls that
    # quote a task or job id the upstream made up are replayed with the emulator's.
    verified = [r.index for r in report.results if r.verified]
    assert verified == [0, 1, 3, 5, 6, 7, 8, 9, 11]
    assert main(["contract", "check", str(capture.path)]) == 0
    out = capsys.readouterr().out
    assert "12 compared" in out and out.endswith("0 errors, 0 warnings, 0 infos\n")


def _findings(path: Path, fmt: str = "json", fail_on: str = "error") -> tuple[int, dict[str, Any] | str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        status = main(["contract", "check", str(path), "--format", fmt, "--fail-on", fail_on])
    return status, (json.loads(buf.getvalue()) if fmt == "json" else buf.getvalue())


def test_drift_gives_exactly_the_expected_findings(capture: Capture, tmp_path: Path) -> None:
    entries = copy.deepcopy(_entries(capture))

    def rename(body: Any) -> None:  # the provider renamed rate to score
        result = body["data"][0]["results"][0]
        result["score"] = result.pop("rate")

    def retype(body: Any) -> None:  # and sends a task's code as a string
        body["data"][0]["code"] = "200"

    def extra(body: Any) -> None:  # and a field the emulator does not know
        body["data"][0]["riskLevel"] = "low"

    def other_code(body: Any) -> None:  # and another code for a signature it refuses
        body["Code"] = "InvalidAccessKeyId.NotFound"

    _edit_body(entries[0], rename)
    _edit_body(entries[1], retype)
    _edit_body(entries[3], extra)
    _edit_body(entries[WRONG_SECRET], other_code)
    status, report = _findings(_write(tmp_path, entries))
    assert status == 1
    assert isinstance(report, dict)
    assert report["findings"] == [
        {
            "location": "ImageSyncScan response.body.data[0].results[0].score",
            "severity": "warn",
            "code": "provider-only-field",
            "message": "the provider sent it, the emulator does not",
        },
        {
            "location": "ImageSyncScan response.body.data[0].results[0].rate",
            "severity": "info",
            "code": "emulator-only-field",
            "message": "the emulator sends it, the provider did not",
        },
        {
            "location": "ImageAsyncScan response.body.data[0].code",
            "severity": "error",
            "code": "type",
            "message": "the provider sent string, the emulator number",
        },
        {
            "location": "TextScan response.body.data[0].riskLevel",
            "severity": "warn",
            "code": "provider-only-field",
            "message": "the provider sent it, the emulator does not",
        },
        {
            "location": "ImageScanFeedback response.code",
            "severity": "error",
            "code": "error-code",
            "message": (
                "the provider answered InvalidAccessKeyId.NotFound, the emulator SignatureDoesNotMatch"
            ),
        },
    ]
    assert report["totals"] == {"info": 1, "warn": 2, "error": 2}


def test_the_exit_status_follows_fail_on(capture: Capture, tmp_path: Path) -> None:
    entries = copy.deepcopy(_entries(capture))
    _edit_body(entries[3], lambda body: body["data"][0].update(riskLevel="low"))
    path = _write(tmp_path, entries)
    assert [_findings(path, "text", level)[0] for level in ("error", "warn", "info")] == [0, 1, 1]
    entries[3] = copy.deepcopy(_entries(capture)[3])
    _edit_body(entries[3], lambda body: body["data"][0].pop("code"))
    path = _write(tmp_path, entries)
    # A field only the emulator sends is info: it fails only --fail-on info.
    assert [_findings(path, "text", level)[0] for level in ("error", "warn", "info")] == [0, 0, 1]


def test_junit_has_a_case_per_entry_failed_by_its_findings(capture: Capture, tmp_path: Path) -> None:
    entries = copy.deepcopy(_entries(capture))
    _edit_body(entries[1], lambda body: body["data"][0].update(code="200"))
    status, text = _findings(_write(tmp_path, entries), "junit")
    assert status == 1 and isinstance(text, str)
    suite = etree.fromstring(text.encode())
    cases = suite.findall("testcase")
    assert len(cases) == len(ACTIONS) and suite.get("failures") == "1"
    (failed,) = [c for c in cases if c.find("failure") is not None]
    assert failed.get("name") == "#1 ImageAsyncScan"
    failure = failed.find("failure")
    assert failure is not None and "ImageAsyncScan response.body.data[0].code" in (failure.text or "")


def test_unserved_actions_other_hosts_and_foreign_keys(capture: Capture, tmp_path: Path) -> None:
    entries = copy.deepcopy(_entries(capture))
    unserved = copy.deepcopy(entries[5])
    url = unserved["request"]["url"]
    unserved["request"]["url"] = url.replace("/green/text/feedback", "/green/video/feedback")
    other = copy.deepcopy(entries[5])
    other["request"]["url"] = "http://example.com/"
    other["request"]["headers"] = [h for h in other["request"]["headers"] if h["name"].lower() != "host"]
    foreign = copy.deepcopy(entries[WRONG_SECRET])
    for header in foreign["request"]["headers"]:
        if header["name"].lower() == "authorization":
            header["value"] = header["value"].replace("testAccessKeyId", "LTAIsomeoneElse")
    status, report = _findings(_write(tmp_path, [unserved, other, foreign, entries[0]]))
    assert status == 0 and isinstance(report, dict)
    assert report["ignored"] == 1
    assert [(e["action"], e["outcome"]) for e in report["entries"]] == [
        (None, "not-emulated"),
        (None, "not-comparable"),
        ("ImageSyncScan", "compared"),
    ]
    assert "SignatureDoesNotMatch" in report["entries"][1]["note"]
    assert report["findings"] == []


def test_an_interrupted_recording_is_still_read(capture: Capture, tmp_path: Path) -> None:
    text = capture.path.read_text()
    # Killed while writing the last entry: its end and the document's tail never made it.
    cut = tmp_path / "cut.har"
    cut.write_text(text[: text.rindex('"response"')])
    har = read_har(cut)
    assert not har.complete and len(har.entries) == len(ACTIONS) - 1
    report = check_file(cut, make_settings())
    assert report.findings == [] and len(report.results) == len(ACTIONS) - 1


def test_a_file_that_is_no_recording_is_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text('{"log": {"entries": [{"request": {}}]}}')
    assert main(["contract", "check", str(bad)]) == 2
    assert "entry 0 is not a HAR entry" in capsys.readouterr().err
    bad.write_text("not json at all")
    assert main(["contract", "check", str(bad)]) == 2
