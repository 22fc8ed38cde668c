"""State values to JSON and back: one cattrs converter for every typed record the models store.

Dataclasses become objects with their field names, tuples lists, bytes base64 strings; reading back
checks the types against the dataclass's annotations (a record that does not fit raises, naming it).
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import cattrs

T = TypeVar("T")

_converter = cattrs.Converter()
_converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode("ascii"))
_converter.register_structure_hook(bytes, lambda v, _: base64.b64decode(v))


def encode(value: Any) -> Any:
    """``value`` (a dataclass, tuple, ...) as JSON-ready values."""
    return _converter.unstructure(value)


def decode(raw: Any, cls: type[T]) -> T:
    """A ``cls`` from what :func:`encode` made."""
    return _converter.structure(raw, cls)
