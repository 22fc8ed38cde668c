"""The shipped contracts: a schema for every served action's request and response (and the
errors), valid as schemas, met by the official SDKs' requests and by the emulator's own answers,
and written out by `emulator contracts export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from lxml import etree

from emulator.cli import main
from emulator.contract.har import read_har
from emulator.contract.strict import json_violations
from emulator.providers.alibaba import contract as alibaba
from emulator.providers.alibaba.routes import ACTIONS as ALIBABA_ACTIONS
from emulator.providers.tencent import contract as tencent
from emulator.providers.tencent.routes import ACTIONS as TENCENT_ACTIONS

from .conftest import Capture
from .traffic import ACTIONS

#: Tencent's response schema of each action (the query answers what the submit answered).
TENCENT_RESPONSES = {
    "ReportBadcase": "report-badcase-response",
    "CreateAuditingTextJob": "text-auditing-response",
    "DescribeAuditingTextJob": "text-auditing-response",
    "BatchImageAuditing": "image-auditing-response",
}


def _json(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((alibaba.SCHEMAS / f"{name}.json").read_text())
    return schema


def _xsd(name: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(tencent.SCHEMAS / f"{name}.xsd"))


def test_every_served_action_has_its_schemas() -> None:
    assert set(alibaba.FILES) == {a.name for a in ALIBABA_ACTIONS}
    for stem in alibaba.FILES.values():
        for side in ("request", "response"):
            jsonschema.Draft202012Validator.check_schema(_json(f"{stem}-{side}"))
    jsonschema.Draft202012Validator.check_schema(_json("error"))
    posts = {a.name for a in TENCENT_ACTIONS if a.parses_body}
    assert set(tencent.REQUESTS) == posts
    assert set(TENCENT_RESPONSES) == {a.name for a in TENCENT_ACTIONS}
    for name in [*tencent.REQUESTS.values(), *TENCENT_RESPONSES.values(), "error"]:
        assert _xsd(name).elements


def _body(part: dict[str, Any]) -> bytes:
    return str(part.get("text") or "").encode()


def test_the_sdks_requests_and_the_emulators_answers_meet_the_contract(capture: Capture) -> None:
    entries = read_har(capture.path).entries
    checked = 0
    for action, entry in zip(ACTIONS, entries, strict=True):
        request = _body(entry["request"].get("postData") or {})
        response = _body(entry["response"]["content"])
        failed = entry["response"]["status"] != 200
        if action in alibaba.FILES:
            stem = alibaba.FILES[action]
            tree = json.loads(request) if request.strip() else {}
            jsonschema.validate(tree, _json(f"{stem}-request"))
            # The strict-mode walk agrees with jsonschema on them.
            assert json_violations(_json(f"{stem}-request"), tree) == []
            jsonschema.validate(json.loads(response), _json("error" if failed else f"{stem}-response"))
        else:
            if action in tencent.REQUESTS:
                _xsd(tencent.REQUESTS[action]).validate(etree.fromstring(request))
            _xsd("error" if failed else TENCENT_RESPONSES[action]).validate(etree.fromstring(response))
        checked += 1
    assert checked == len(ACTIONS)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"scenes": ["porn"], "tasks": [{"url": "u", "colour": "red"}]}, "body.tasks[0].colour"),
        ({"scenes": ["porn"], "tasks": [{"url": 1}]}, "body.tasks[0].url"),
        ({"scenes": ["video"], "tasks": []}, "body.scenes[0]"),
    ],
)
def test_the_walk_and_jsonschema_refuse_the_same_bodies(body: Any, where: str) -> None:
    schema = _json("image-sync-scan-request")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema)
    assert [v["location"] for v in json_violations(schema, body)] == [where]


def test_contracts_export_writes_every_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "export", str(tmp_path)]) == 0
    for name, folder in (("alibaba", alibaba.SCHEMAS), ("tencent", tencent.SCHEMAS)):
        shipped = sorted(p.name for p in folder.iterdir() if p.suffix in (".json", ".xsd"))
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == shipped
        for file in shipped:
            assert (tmp_path / name / file).read_bytes() == (folder / file).read_bytes()
    assert len(capsys.readouterr().out.splitlines()) == 13 + 7
    # The exported XSDs stand alone (report-badcase-response includes error.xsd beside it).
    assert xmlschema.XMLSchema(str(tmp_path / "tencent" / "report-badcase-response.xsd")).elements
