"""Compares a recorded answer with the emulator's, structurally: the HTTP status, the provider's
error code, the content type, then field names, nesting and types. Values are ignored, except
error codes (compared) and fields with an enumeration (each side's value must be one of it): a
scan's verdict depends on the image, which the emulator never sees, but its shape does not.

Severities: ``info`` a field only the emulator sends; ``warn`` a field only the provider sent;
``error`` a status, code, content type or type that differs, or a value outside an enumeration.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .spec import ProviderContract
from .strict import json_type

Severity = Literal["info", "warn", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warn", "error")


@dataclass(frozen=True)
class Finding:
    #: The action, then where: ``ImageSyncScan response.body.data[0].results[0].rate``.
    location: str
    severity: Severity
    #: What kind of difference: status, error-code, content-type, type, enumeration,
    #: provider-only-field, emulator-only-field, unreadable-body.
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "location": self.location,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def media_type(content_type: str) -> tuple[str, str]:
    """(the media type, its parameters), lower-case and without spaces."""
    media, _, params = content_type.partition(";")
    return media.strip().lower(), params.replace(" ", "").lower()


def compare(action: str, recorded: Answer, emulated: Answer, contract: ProviderContract) -> list[Finding]:
    where = f"{action} response"
    out: list[Finding] = []
    if recorded.status != emulated.status:
        out.append(
            Finding(
                f"{where}.status",
                "error",
                "status",
                f"the provider answered HTTP {recorded.status}, the emulator {emulated.status}",
            )
        )
    rec_media, rec_params = media_type(recorded.content_type)
    emu_media, emu_params = media_type(emulated.content_type)
    if rec_media != emu_media:
        out.append(
            Finding(
                f"{where}.headers.content-type",
                "error",
                "content-type",
                f"the provider sent {recorded.content_type!r}, the emulator {emulated.content_type!r}",
            )
        )
    elif rec_params != emu_params:
        out.append(
            Finding(
                f"{where}.headers.content-type",
                "warn",
                "content-type",
                f"parameters differ: the provider sent {recorded.content_type!r}, "
                f"the emulator {emulated.content_type!r}",
            )
        )
    trees = []
    for who, answer in (("provider's", recorded), ("emulator's", emulated)):
        try:
            trees.append(contract.parse_body(answer.body))
        except ValueError as exc:
            out.append(Finding(f"{where}.body", "error", "unreadable-body", f"the {who} body: {exc}"))
    if len(trees) != 2:
        return out
    rec_tree, emu_tree = trees
    rec_code, emu_code = contract.error_code(rec_tree), contract.error_code(emu_tree)
    if rec_code != emu_code:
        out.append(
            Finding(
                f"{where}.code",
                "error",
                "error-code",
                f"the provider answered {rec_code or 'success'}, the emulator {emu_code or 'success'}",
            )
        )
    if out and any(f.code in ("status", "error-code") for f in out):
        # Different answers altogether (an error for a success): their fields say nothing more.
        return out
    out.extend(diff(rec_tree, emu_tree, f"{where}.body", contract.enumerations))
    return out


def _kind(value: Any) -> str:
    kind = json_type(value)
    # 99 and 99.5 are both numbers: which one a rate happens to be is a value, not a type.
    return "number" if kind == "integer" else kind


def diff(
    recorded: Any, emulated: Any, where: str, enumerations: Mapping[str, frozenset[str]], name: str = ""
) -> Iterator[Finding]:
    """The structural differences between two parsed bodies (dicts, lists and leaves)."""
    rec_kind, emu_kind = _kind(recorded), _kind(emulated)
    if rec_kind != emu_kind:
        yield Finding(where, "error", "type", f"the provider sent {rec_kind}, the emulator {emu_kind}")
        return
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            if key not in emulated:
                yield Finding(
                    f"{where}.{key}",
                    "warn",
                    "provider-only-field",
                    "the provider sent it, the emulator does not",
                )
            else:
                yield from diff(value, emulated[key], f"{where}.{key}", enumerations, key)
        for key in emulated:
            if key not in recorded:
                yield Finding(
                    f"{where}.{key}",
                    "info",
                    "emulator-only-field",
                    "the emulator sends it, the provider did not",
                )
        return
    if isinstance(recorded, list):
        # Element by element as far as both go: how many there are is a value.
        for i, (rec, emu) in enumerate(zip(recorded, emulated, strict=False)):
            yield from diff(rec, emu, f"{where}[{i}]", enumerations, name)
        return
    allowed = enumerations.get(name)
    if allowed is not None:
        for who, value in (("provider", recorded), ("emulator", emulated)):
            if str(value) not in allowed:
                yield Finding(
                    where,
                    "error",
                    "enumeration",
                    f"the {who} sent {value!r}, not one of {', '.join(sorted(allowed))}",
                )
