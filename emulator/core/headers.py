"""A request's head as the signature checks and the journal read it, without copying it first."""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping, Sequence

from aiohttp import web
from multidict import CIMultiDictProxy

_NO_QUERY: Mapping[str, str] = types.MappingProxyType({})


def query_of(request: web.Request) -> Mapping[str, str]:
    """The request's query parameters. Parsing an empty query string still builds a MultiDict, and
    most calls carry none."""
    return request.query if request.query_string else _NO_QUERY


class HeaderLists(Mapping[str, Sequence[str]]):
    """A request's headers as lower-case name -> every value sent under it, read through to the
    request's own (case-insensitive) headers: building a dict of lists on every call cost more than
    a signature's arithmetic (bench/RESULTS.md, profile)."""

    __slots__ = ("_headers",)

    def __init__(self, headers: CIMultiDictProxy[str]) -> None:
        self._headers = headers

    def __getitem__(self, name: str) -> Sequence[str]:
        values = self._headers.getall(name, None)
        if values is None:
            raise KeyError(name)
        return values

    def get(self, name: str, default: Sequence[str] | None = None) -> Sequence[str] | None:  # type: ignore[override]
        return self._headers.getall(name, default)

    @property
    def proxy(self) -> CIMultiDictProxy[str]:
        """The request's own header map, for lookups in a loop without a Python call each."""
        return self._headers

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k.lower() for k in self._headers))

    def __len__(self) -> int:
        return len(dict.fromkeys(k.lower() for k in self._headers))
