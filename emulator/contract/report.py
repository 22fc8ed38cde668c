"""The drift report of ``contract check`` as text, JSON or JUnit XML, and the exit status."""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from .compare import SEVERITIES, Finding, Severity
from .replay import Report

__all__ = ["exit_status", "render", "to_json", "to_junit", "to_text"]


def _at_least(finding: Finding, level: Severity) -> bool:
    return SEVERITIES.index(finding.severity) >= SEVERITIES.index(level)


def exit_status(report: Report, fail_on: Severity) -> int:
    """1 when a finding is at least ``fail_on`` severe, else 0."""
    return 1 if any(_at_least(f, fail_on) for f in report.findings) else 0


def _totals(report: Report) -> dict[str, int]:
    return {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITIES}


def to_text(report: Report) -> str:
    totals = _totals(report)
    lines = [
        f"{report.source or 'recording'}: {len(report.results) + report.ignored} entries; "
        f"{report.count('compared')} compared, {report.count('not-emulated')} not emulated, "
        f"{report.count('not-comparable')} not comparable, {report.ignored} for other hosts ignored"
    ]
    if not report.complete:
        lines.append("note: the recording's tail is missing (interrupted); every complete entry was read")
    for result in report.results:
        if result.outcome == "not-emulated":
            lines.append(f"not emulated     {result.name}: {result.method} {result.url}")
        elif result.outcome in ("not-comparable", "no-response"):
            lines.append(f"{result.outcome:<16} {result.name}: {result.note}")
        for f in result.findings:
            lines.append(f"{f.severity:<5} {f.location}: {f.message} [{f.code}]")
    lines.append(f"{totals['error']} errors, {totals['warn']} warnings, {totals['info']} infos")
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    doc: dict[str, Any] = {
        "source": report.source,
        "complete": report.complete,
        "ignored": report.ignored,
        "totals": _totals(report),
        "findings": [f.to_dict() for f in report.findings],
        "entries": [
            {
                "index": r.index,
                "method": r.method,
                "url": r.url,
                "outcome": r.outcome,
                "provider": r.provider,
                "action": r.action,
                "verified": r.verified,
                "note": r.note,
                "findings": [f.to_dict() for f in r.findings],
            }
            for r in report.results
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def to_junit(report: Report, fail_on: Severity = "error") -> str:
    """One test case per entry: failed by findings at least ``fail_on`` severe (the others go to its
    system-out), skipped when not emulated or not comparable."""
    suite = etree.Element("testsuite", name="contract", tests=str(len(report.results)))
    failures = skipped = 0
    for result in report.results:
        case = etree.SubElement(
            suite, "testcase", classname=f"contract.{result.provider or 'unknown'}", name=result.name
        )
        if result.outcome != "compared":
            skipped += 1
            etree.SubElement(case, "skipped", message=result.outcome.replace("-", " ")).text = (
                result.note or f"{result.method} {result.url}"
            )
            continue
        failing = [f for f in result.findings if _at_least(f, fail_on)]
        if failing:
            failures += 1
            failure = etree.SubElement(
                case, "failure", message=f"{len(failing)} finding(s) at or above {fail_on}", type="drift"
            )
            failure.text = "\n".join(f"{f.severity} {f.location}: {f.message} [{f.code}]" for f in failing)
        others = [f for f in result.findings if f not in failing]
        if others:
            etree.SubElement(case, "system-out").text = "\n".join(
                f"{f.severity} {f.location}: {f.message} [{f.code}]" for f in others
            )
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    return etree.tostring(suite, encoding="unicode", pretty_print=True)


def render(report: Report, fmt: str, fail_on: Severity) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "junit":
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + to_junit(report, fail_on)
    return to_text(report)
