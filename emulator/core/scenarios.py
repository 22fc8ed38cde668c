"""Scenario files: named sets of fault rules, ``{"name", "description", "rules": [...]}``.

A scenario is named by a path to a JSON (or, with PyYAML, YAML) file, or by the name of one shipped in
``fixtures/scenarios/`` (``flaky``, ``outage``, ...).

The operator (command line, config) may name any file: :func:`load_scenario`. An admin call may not:
:func:`load_requested` takes a shipped name, or a relative path to a file inside the one folder the
operator allowed (``faults.scenarios_dir``), decided on the name and the file system's metadata alone,
so a refused file is never opened and the answer is the same whether it exists or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
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


def _shipped(name: str) -> Path | None:
    if name not in available():
        return None
    files = (scenarios_dir() / f"{name}{ext}" for ext in (".json", *YAML_SUFFIXES))
    return next(p for p in files if p.is_file())


def load_scenario(ref: str) -> Scenario:
    path = Path(ref)
    if not path.is_file():
        found = _shipped(ref)
        if found is None:
            raise ScenarioError(
                f"scenario {ref!r}: no such file, and no shipped scenario of that name "
                f"(shipped: {', '.join(available())})"
            )
        path = found
    return _read(path, str(path))


def _read(path: Path, source: str) -> Scenario:
    try:
        data = read_document(path)
    except DocumentError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return parse_scenario(data, source)


def load_requested(ref: str, folder: str | None, max_bytes: int) -> Scenario:
    """The scenario an admin call names: a shipped one, or a file inside ``folder`` (a relative path,
    with or without its suffix) of at most ``max_bytes``. Anything else is refused unopened."""
    shipped = _shipped(ref)
    if shipped is not None:
        return _read(shipped, str(shipped))
    path = _inside(ref, folder) if folder is not None else None
    try:
        size = path.stat().st_size if path is not None else -1
    except OSError:  # gone since it was found
        size = -1
    if path is None or size < 0:
        shown = ref if len(ref) <= 200 else f"{ref[:200]}..."
        where = "a file inside faults.scenarios_dir" if folder else "a file (faults.scenarios_dir is not set)"
        raise ScenarioError(
            f"scenario {shown!r}: neither a shipped scenario ({', '.join(available())}) nor {where}"
        )
    if size > max_bytes:
        raise ScenarioError(f"scenario {ref!r}: {size} bytes, over faults.scenario_max_bytes ({max_bytes})")
    return _read(path, ref)


def _inside(ref: str, folder: str) -> Path | None:
    """The regular file ``ref`` names inside ``folder`` (symbolic links resolved), or None."""
    relative = PurePath(ref)
    if not ref or "\x00" in ref or relative.is_absolute() or ".." in relative.parts:
        return None
    root = Path(folder).resolve()
    suffixes = (".json", *YAML_SUFFIXES)
    names = [ref] if relative.suffix.lower() in suffixes else [ref + ext for ext in suffixes]
    for name in names:
        # resolve() and is_file() read links and metadata only: nothing is opened before the
        # resolved path is known to be inside the folder.
        path = (root / name).resolve()
        if path.is_relative_to(root) and path.is_file():
            return path
    return None


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
