"""Checks a request against a shipped contract and lists every violation, without refusing anything
(contract.strict_requests decides what a violation costs). Provider-neutral: each provider's
``contract.py`` says which schema and which query parameters belong to which action.

- JSON bodies: a small subset of JSON Schema (``type``, ``properties``, ``additionalProperties``,
  ``items``, ``enum``, ``$ref`` into ``$defs``), walked to the end so that every unknown field at
  any depth is named, not only the first. The shipped schemas use no other keyword (a test checks
  that ``jsonschema`` agrees with this walk on them).
- XML bodies: an XSD, through xmlschema's full list of errors.
- Query parameters: a set of documented names.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

Violation = dict[str, str]

#: Violations listed per request at most (a body of a thousand unknown fields is one problem).
MAX_VIOLATIONS = 50


def violation(location: str, message: str) -> Violation:
    return {"location": location, "message": message}


@functools.cache
def load_json_schema(path: Path) -> dict[str, Any]:
    """A shipped JSON Schema file, read once."""
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def json_type(value: Any) -> str:
    """The JSON type of a parsed value: object, array, string, integer, number, boolean or null."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "null"


def _type_ok(value: Any, wanted: str | list[str]) -> bool:
    names = [wanted] if isinstance(wanted, str) else wanted
    actual = json_type(value)
    return actual in names or (actual == "integer" and "number" in names)


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` itself, or what its ``$ref`` (``#/$defs/<name>``) names in ``root``."""
    while "$ref" in schema:
        ref = str(schema["$ref"])
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    return schema


def json_violations(schema: Mapping[str, Any], value: Any, where: str = "body") -> list[Violation]:
    """Every place ``value`` breaks ``schema``: unknown fields (where additionalProperties is
    false), wrong types, values outside an enumeration."""
    out = list(_walk(schema, schema, value, where))
    return out[:MAX_VIOLATIONS]


def _walk(schema: Mapping[str, Any], root: Mapping[str, Any], value: Any, where: str) -> Iterator[Violation]:
    schema = resolve(schema, root)
    wanted = schema.get("type")
    if wanted is not None and not _type_ok(value, wanted):
        names = wanted if isinstance(wanted, str) else " or ".join(wanted)
        yield violation(where, f"must be {names}, not {json_type(value)}")
        return
    if "enum" in schema and value not in schema["enum"]:
        yield violation(where, f"must be one of {', '.join(map(json.dumps, schema['enum']))}")
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                yield from _walk(properties[key], root, item, f"{where}.{key}")
            elif schema.get("additionalProperties", True) is False:
                yield violation(f"{where}.{key}", "unknown field")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _walk(schema["items"], root, item, f"{where}[{i}]")


def summary(violations: Sequence[Mapping[str, str]]) -> str:
    """The first violation and how many more, for a provider's invalid-parameter message."""
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return f"{first['location']}: {first['message']}{more}"


def query_violations(known: Collection[str], query: Mapping[str, str]) -> list[Violation]:
    """Query parameters outside ``known``."""
    return [violation(f"query.{name}", "undocumented parameter") for name in query if name not in known]


def xml_violations(schema: Any, root: Any, where: str = "body") -> list[Violation]:
    """Every error xmlschema finds validating the lxml element ``root`` against the XMLSchema
    ``schema``, located by element path (``body.Request.Input.Foo``)."""
    out: list[Violation] = []
    for error in schema.iter_errors(root):
        elem = error.elem
        names: list[str] = []
        node = elem
        while node is not None and hasattr(node, "getparent"):
            names.append(str(node.tag))
            node = node.getparent()
        path = ".".join([where, *reversed(names)])
        child = getattr(error, "invalid_child", None)
        if child is not None:
            out.append(violation(f"{path}.{child.tag}", "unknown or misplaced element"))
        else:
            out.append(violation(path, str(error.reason or error.message)))
        if len(out) >= MAX_VIOLATIONS:
            break
    return out
