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
from collections.abc import Collection, Mapping, Sequence
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


_KINDS: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """The JSON type of a parsed value: object, array, string, integer, number, boolean or null."""
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    # Subclasses (a bool is an int: the exact types above come first).
    for cls, name in _KINDS.items():
        if isinstance(value, cls):
            return name
    return "null"


class Node:
    """A schema compiled for the walk: what one place of the body may hold. Built once per schema
    (every call of an action walks the same one): the walk itself is then a few dict lookups per
    field, and a location is only spelled out for a violation."""

    __slots__ = ("closed", "enum", "items", "leaf", "props", "types", "wanted")

    def __init__(self) -> None:
        self.types: frozenset[str] | None = None
        self.wanted = ""
        self.enum: tuple[Any, ...] | None = None
        self.props: dict[str, Node] = {}
        self.closed = False
        self.items: Node | None = None
        #: Only a type and/or an enumeration to check: done inline by the walk.
        self.leaf = False


def compile_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Node:
    root = schema if root is None else root
    schema = resolve(schema, root)
    node = Node()
    wanted = schema.get("type")
    if wanted is not None:
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        node.wanted = " or ".join(names)
        # An integer is a number too.
        node.types = frozenset(names + (["integer"] if "number" in names else []))
    if "enum" in schema:
        node.enum = tuple(schema["enum"])
    node.props = {k: compile_schema(v, root) for k, v in schema.get("properties", {}).items()}
    node.closed = schema.get("additionalProperties", True) is False
    if "items" in schema:
        node.items = compile_schema(schema["items"], root)
    node.leaf = not node.props and node.items is None and not node.closed
    return node



def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` itself, or what its ``$ref`` (``#/$defs/<name>``) names in ``root``."""
    while "$ref" in schema:
        ref = str(schema["$ref"])
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    return schema


def json_violations(schema: Mapping[str, Any] | Node, value: Any, where: str = "body") -> list[Violation]:
    """Every place ``value`` breaks ``schema`` (a JSON Schema, or one compiled by
    :func:`compile_schema`): unknown fields (where additionalProperties is false), wrong types,
    values outside an enumeration."""
    node = schema if isinstance(schema, Node) else compile_schema(schema)
    out: list[Violation] = []
    _walk(node, value, [where], out)
    return out if len(out) <= MAX_VIOLATIONS else out[:MAX_VIOLATIONS]


def _location(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _walk(node: Node, value: Any, path: list[str | int], out: list[Violation]) -> None:
    if len(out) >= MAX_VIOLATIONS:
        return
    kind = _KINDS.get(type(value)) or json_type(value)
    if node.types is not None and kind not in node.types:
        out.append(violation(_location(path), f"must be {node.wanted}, not {kind}"))
        return
    if node.enum is not None and value not in node.enum:
        out.append(violation(_location(path), f"must be one of {', '.join(map(json.dumps, node.enum))}"))
    if kind == "object":
        props = node.props
        for key, item in value.items():
            child = props.get(key)
            if child is None:
                if node.closed:
                    out.append(violation(_location([*path, key]), "unknown field"))
                    if len(out) >= MAX_VIOLATIONS:
                        return
                continue
            # A leaf that holds: checked here, without a call (most fields of most bodies).
            if child.leaf and (child.types is None or _KINDS.get(type(item)) in child.types):
                if child.enum is None or item in child.enum:
                    continue
            path.append(key)
            _walk(child, item, path, out)
            path.pop()
    elif kind == "array" and node.items is not None:
        items = node.items
        types, enum = items.types, items.enum
        for i, item in enumerate(value):
            if items.leaf and (types is None or _KINDS.get(type(item)) in types):
                if enum is None or item in enum:
                    continue
            path.append(i)
            _walk(node.items, item, path, out)
            path.pop()


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
