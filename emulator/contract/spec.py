"""What the contract tools need to know of a provider, given by each provider's ``contract.py``
(so that nothing here names one)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProviderContract:
    #: The provider's name, as the gateway and the journal know it.
    name: str
    #: The folder of its shipped schema files (JSON Schema, XSD).
    schemas: Path
    #: The access key a request's headers name (lower-case names), or None.
    key_id: Callable[[Mapping[str, str]], str | None]
    #: Whether a key belongs to one of the accounts of the settings (an emulator Settings).
    known_key: Callable[[Any, str], bool]
    #: A response body as a tree of dicts, lists and leaves (raises ValueError when unreadable).
    parse_body: Callable[[bytes], Any]
    #: The provider's error code in a parsed response body, or None (a success).
    error_code: Callable[[Any], str | None]
    #: The error codes that refuse a request's credentials or signature.
    auth_codes: frozenset[str] = frozenset()
    #: Fields holding ids the provider makes up (a task's, a job's): a later request that quotes a
    #: recorded one is replayed with the emulator's instead.
    id_fields: frozenset[str] = frozenset()
    #: Fields whose value must be one of a set, by field name.
    enumerations: Mapping[str, frozenset[str]] = field(default_factory=dict)
