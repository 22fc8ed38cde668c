"""Reading the documents users write: config and scenario files, JSON or (with PyYAML) YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import InvalidInput

YAML_SUFFIXES = (".yaml", ".yml")


class DocumentError(InvalidInput):
    """The file cannot be read or parsed; the message says why, with the line where known."""


def read_document(path: Path) -> Any:
    """The parsed content of a ``.json`` file, or of a ``.yaml`` / ``.yml`` one (needs PyYAML: the
    ``yaml`` extra)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"cannot be read: {exc}") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        return _yaml(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        hint = "pip install 'cloud-moderation-emulator[yaml]'"
        raise DocumentError(f"is YAML, which needs PyYAML: {hint}") from None
    try:
        # safe_load: plain data only, never Python objects from tags.
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentError(f"is not valid YAML: {problem}{where}") from None
