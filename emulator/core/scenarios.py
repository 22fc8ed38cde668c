"""Scenario files: named sets of fault rules, ``{"name", "description", "rules": [...]}``.

A scenario is named by a path to a JSON (or, with PyYAML, YAML) file, or by the name of one shipped in
``fixtures/scenarios/`` (``flaky``, ``outage``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..documents import YAML_SUFFIXES, DocumentError, read_document
from ..errors import InvalidInput


class ScenarioError(InvalidInput):
    """A scenario cannot be found or read, or one of its rules is wrong."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    rules: list[Any]
    source: str


def scenarios_dir() -> Path:
    """The shipped scenarios: inside the installed package, else the source tree's fixtures/."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_data" / "scenarios"
    return packaged if packaged.is_dir() else here.parent / "fixtures" / "scenarios"


def available() -> list[str]:
    folder = scenarios_dir()
    return sorted({p.stem for ext in ("json", "yaml", "yml") for p in folder.glob(f"*.{ext}")})


def load_scenario(ref: str) -> Scenario:
    path = Path(ref)
    if not path.is_file():
        found = [
            p for p in (scenarios_dir() / f"{ref}{ext}" for ext in (".json", *YAML_SUFFIXES)) if p.is_file()
        ]
        if not found:
            raise ScenarioError(
                f"scenario {ref!r}: no such file, and no shipped scenario of that name "
                f"(shipped: {', '.join(available())})"
            )
        path = found[0]
    try:
        data = read_document(path)
    except DocumentError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse_scenario(data, str(path))


def parse_scenario(data: Any, source: str) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: must hold a JSON object with a rules list")
    unknown = sorted(set(data) - {"name", "description", "rules"})
    if unknown:
        raise ScenarioError(f"{source}: {unknown[0]}: unknown key (known: name, description, rules)")
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        raise ScenarioError(f"{source}: rules: must be a non-empty list of rules")
    name = data.get("name", Path(source).stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise ScenarioError(f"{source}: name and description must be strings")
    return Scenario(name, description, rules, source)
