"""Dotted paths into parsed bodies (JSON values, or XML documents as nested dicts), shared by the
journal's ``body.<field>`` filters and the fault rules' body matchers, so both read a path alike."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

MISSING: Any = object()


def lookup(tree: Any, parts: Sequence[str]) -> Any:
    """The value at ``parts`` (dict keys, list indexes as digits), or :data:`MISSING`."""
    node = tree
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def text_forms(value: Any) -> tuple[str, ...]:
    """The texts a value is compared by: a string as it is; anything else as JSON and as Python
    prints it (so ``1``, ``true``/``True`` and ``["a"]`` all match what a test author would type)."""
    if isinstance(value, str):
        return (value,)
    return (json.dumps(value, ensure_ascii=False), str(value))
