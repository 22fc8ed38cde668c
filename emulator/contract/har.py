"""HAR 1.2 files as the recording proxy writes them and ``contract check`` reads them.

The writer keeps the file a whole HAR document after every entry: it writes the log's head once,
then for each exchange goes back over the closing ``]}}`` and writes the entry and the closing
again, and flushes. A recording stopped any way at all (Ctrl-C, SIGTERM, SIGKILL) between two
entries is a valid HAR; one killed in the middle of writing an entry loses that entry only, which
:func:`read_har` skips (it reads every complete entry of a file whose tail is missing).

Each entry is built as the journal's HAR export builds its own (core/export.py, ``har_entry``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._version import __version__
from ..core.export import har_entry, har_pieces
from ..core.journal import Entry

__all__ = ["HarError", "HarFile", "HarWriter", "read_har", "to_har"]


class HarError(ValueError):
    """The file is no HAR document, not even the head of one."""


def to_har(entry: Entry) -> dict[str, Any]:
    """A HAR entry for an exchange the proxy saw (the journal's ``_emulator`` block left out: the
    proxy identifies nothing)."""
    har = har_entry(entry)
    del har["_emulator"]
    return har


class HarWriter:
    """Appends entries to a HAR file, leaving a whole document after each one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        head, tail = har_pieces((), __version__)
        self._tail = ("\n" + tail + "\n").encode()
        self._file: IO[bytes] = open(path, "wb")
        self._file.write(head.encode() + b"\n")
        self._end = self._file.tell()
        self._file.write(self._tail)
        self._file.flush()
        self.count = 0

    def append(self, entry: dict[str, Any]) -> None:
        piece = ("" if self.count == 0 else ",\n") + json.dumps(entry, ensure_ascii=False)
        data = piece.encode("utf-8", "backslashreplace")
        self._file.seek(self._end)
        self._file.write(data + self._tail)
        self._file.flush()
        self._end += len(data)
        self.count += 1

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class HarFile:
    entries: list[dict[str, Any]]
    #: False when the file's tail was missing (an interrupted recording): ``entries`` then holds
    #: every complete entry.
    complete: bool = True


def read_har(path: str | os.PathLike[str]) -> HarFile:
    text = Path(path).read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except ValueError:
        return HarFile(list(_complete_entries(text)), complete=False)
    try:
        entries = doc["log"]["entries"]
    except (TypeError, KeyError):
        raise HarError(f"{path}: not a HAR file (no log.entries)") from None
    if not isinstance(entries, list):
        raise HarError(f"{path}: log.entries is not a list")
    return HarFile([e for e in entries if isinstance(e, dict)])


def _complete_entries(text: str) -> Iterator[dict[str, Any]]:
    start = text.find('"entries"')
    bracket = text.find("[", start) if start >= 0 else -1
    if bracket < 0:
        raise HarError("not a HAR file (no log.entries)")
    decoder = json.JSONDecoder()
    pos = bracket + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return  # the entry being written when the recording stopped
        if isinstance(value, dict):
            yield value
