"""The whole state but the journal as one document: snapshots, the seed, and what reset returns to.

Each stateful part (a provider's accounts, its console, the fault rules) registers a :class:`Part`:
records of its kinds in and out. ``GET /_emulator/state`` is every part's records; ``PUT`` resets
every part and loads the document's; ``emulator serve --state FILE`` makes a document the *seed*: a
namespace made afresh (first use, after a reset) gets the seed's records for it, on top of the
config. The document's JSON Schema is ``state.schema.json`` beside this module.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from .. import documents
from ..errors import InvalidInput
from .storage import Record, Store

#: The document's version; a document of another version is refused.
STATE_VERSION = 1
_FIELDS = ("kind", "namespace", "account", "key")


class StateDocumentError(InvalidInput):
    """A state document that is not one (its message names the place and the problem)."""


class Part(Protocol):
    #: Every kind of record the part keeps starts with it.
    prefix: str

    def dump(self, namespace: str | None = None) -> Iterator[Record]: ...

    def load(self, records: Iterable[Record]) -> None: ...

    def reset(self, namespace: str | None = None) -> None: ...

    def touch(self, namespace: str) -> None:
        """Make the namespace's state if it has none yet (a snapshot shows seeded namespaces)."""

    def follow(self, change: tuple[str, Any]) -> None:
        """Another replica's committed change (core/replicas.Follower)."""


def schema() -> dict[str, Any]:
    """The JSON Schema of a state document."""
    text = resources.files(__package__).joinpath("state.schema.json").read_text(encoding="utf-8")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def parse_document(doc: Any, known: Sequence[str]) -> list[Record]:
    """The records of a state document, checked: its version, and each record's fields and kind."""
    if not isinstance(doc, Mapping):
        raise StateDocumentError("a state document is a JSON object")
    unknown = sorted(set(doc) - {"version", "records"})
    if unknown:
        raise StateDocumentError(f"unknown field {unknown[0]!r} (known: version, records)")
    if doc.get("version") != STATE_VERSION:
        raise StateDocumentError(
            f"version must be {STATE_VERSION}, not {json.dumps(doc.get('version'))}: "
            "this emulator reads state documents of that version only"
        )
    raw = doc.get("records", [])
    if not isinstance(raw, list):
        raise StateDocumentError("records must be a list")
    records = []
    for i, item in enumerate(raw):
        where = f"records[{i}]"
        if not isinstance(item, Mapping) or set(item) != {*_FIELDS, "value"}:
            raise StateDocumentError(f"{where} must be an object with exactly: {', '.join(_FIELDS)}, value")
        for name in _FIELDS:
            if not isinstance(item[name], str):
                raise StateDocumentError(f"{where}.{name} must be a string")
        if not any(item["kind"].startswith(prefix) for prefix in known):
            raise StateDocumentError(
                f"{where}.kind {item['kind']!r} is no kind this emulator keeps (kinds start with: "
                f"{', '.join(known)})"
            )
        records.append(Record(item["kind"], item["namespace"], item["account"], item["key"], item["value"]))
    return records


def read_document(path: str | Path, known: Sequence[str]) -> list[Record]:
    """The records of a state document file (``--state``); StateDocumentError naming the file."""
    try:
        doc = documents.read_document(Path(path))
    except documents.DocumentError as exc:
        raise StateDocumentError(f"{path}: {exc}") from None
    try:
        return parse_document(doc, known)
    except StateDocumentError as exc:
        raise StateDocumentError(f"{path}: {exc}") from None


class StateHub:
    """The registered parts, the seed, and snapshots of them all."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.parts: list[Part] = []
        self._seed: dict[str, list[Record]] = {}

    def register(self, part: Part) -> None:
        self.parts.append(part)

    @property
    def kinds(self) -> list[str]:
        return [p.prefix for p in self.parts]

    def set_seed(self, records: Iterable[Record]) -> None:
        """What a namespace made afresh starts from, besides the config (``--state``)."""
        self._seed = {}
        for r in records:
            self._seed.setdefault(r.namespace, []).append(r)

    def seed(self, namespace: str, prefix: str) -> list[Record]:
        """The seed's records of ``namespace`` whose kind starts with ``prefix``."""
        return [r for r in self._seed.get(namespace, ()) if r.kind.startswith(prefix)]

    def seed_records(self, prefix: str) -> list[Record]:
        """The seed's records of every namespace whose kind starts with ``prefix``."""
        return [r for records in self._seed.values() for r in records if r.kind.startswith(prefix)]

    def document(self, namespace: str | None = None) -> dict[str, Any]:
        """Every part's records (of one namespace, or of all)."""
        for seeded in self._seed:
            if namespace in (None, seeded):
                for part in self.parts:
                    part.touch(seeded)
        records = [
            {"kind": r.kind, "namespace": r.namespace, "account": r.account, "key": r.key, "value": r.value}
            for part in self.parts
            for r in part.dump(namespace)
        ]
        return {"version": STATE_VERSION, "records": records}

    def replace(self, doc: Any, namespace: str | None = None) -> int:
        """Reset every part, then load the document's records; returns how many. With
        ``namespace``, only that namespace is reset and every record is moved into it. A document
        whose records do not fit leaves the state reset and raises StateDocumentError."""
        records = parse_document(doc, self.kinds)
        if namespace is not None:
            records = [dataclasses.replace(r, namespace=namespace) for r in records]
        for part in self.parts:
            part.reset(namespace)
        try:
            for part in self.parts:
                part.load([r for r in records if r.kind.startswith(part.prefix)])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            for part in self.parts:
                part.reset(namespace)
            raise StateDocumentError(f"a record does not fit its kind: {type(exc).__name__}: {exc}") from None
        return len(records)
