"""The one typed record of a call: who it is, what happened to it, and its body, read and parsed once.

The gateway makes one :class:`Call` per request from the request's head (the provider's
``identify``); fault matching, throttling, the handler's context and the journal all read that same
record. Provider-neutral: the values are plain strings and bytes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import ClientError, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import InvalidInput

#: Scopes a call (and what it records or changes) to a namespace instead of its account's.
NAMESPACE_HEADER = "X-Emulator-Namespace"
#: The namespace of a call that names none and whose account has none configured; admin calls that
#: name none act on it too. A plain name, so the journal and the admin API show it as it is.
DEFAULT_NAMESPACE = "default"
#: In an admin call's ``?namespace=`` (or header): every namespace at once.
ALL_NAMESPACES = "*"


def namespace_for(named: str | None, configured: str | None) -> str:
    """A call's namespace: the one it names (the header), else its account's, else the default."""
    return named or configured or DEFAULT_NAMESPACE

#: Real seconds a refused call's answer waits for the body it keeps for the journal (a client that
#: announces a body and never sends it must not hold the answer).
KEEP_BODY_WAIT = 2.0


class BodyTooLarge(InvalidInput):
    """The request body is over the configured limit; it was not read in full."""

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        size = f"{declared} bytes" if declared is not None else "more"
        super().__init__(f"request body is {size}, over the limit of {limit} bytes")


class Parser(Protocol):
    """The part of a provider that reads bodies (see core/gateway.py, Provider)."""

    def parse(self, body: bytes) -> Any:
        """Request bytes to a tree (JSON value, XML element); raises the provider's error."""
        ...

    def view(self, tree: Any) -> Any:
        """The tree as the journal shows it and body matchers read it (nested dicts and lists)."""
        ...


_UNSET: Any = object()


@dataclass(slots=True, eq=False)
class Call:
    provider: str | None = None
    action: str | None = None
    account: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    correlation_id: str | None = None
    request_id: str = ""
    #: On the injected clock.
    received_at: float = 0.0
    #: The most bytes of body read (0: no limit is applied).
    body_limit: int = 0
    #: Turns an oversized body into the provider's own error (the gateway sets it).
    too_large: Callable[[BodyTooLarge], Exception] | None = None
    #: The body as read; the parsed body as the journal shows it, once parsed.
    body: bytes = b""
    #: When ``body`` holds only the body's first bytes (:meth:`keep_body`): its real length, -1
    #: when unknown. None: ``body`` is the whole body.
    body_size: int | None = None
    parsed: Any = None
    #: The fault rule that shaped the answer, if one did; how it closed the connection; and the
    #: bytes it let through when it sent only part of, or a garbled, answer.
    fault: str | None = None
    cut: str | None = None
    sent_body: bytes | None = None
    #: The request's contract violations (contract.strict_requests), as the journal shows them.
    violations: list[dict[str, str]] | None = None
    #: Whether the call's body is still unread (also when it was refused by its declared length
    #: before a byte was read): :meth:`keep_body` may then read some of it for the journal.
    body_unread: bool = True
    _read: bool = False
    _body_error: Exception | None = None
    _tree: Any = _UNSET
    _tree_error: Exception | None = None
    _parser: Parser | None = None

    async def read_body(self, request: web.Request) -> bytes:
        """The whole body, read once: refused early (by Content-Length, else while reading) past
        :attr:`body_limit`. A second reader gets the same bytes, or the same error."""
        if self._read:
            if self._body_error is not None:
                raise self._body_error
            return self.body
        self._read = True
        self.body_unread = False
        try:
            self.body = await _read(request, self.body_limit)
        except BodyTooLarge as exc:
            err = self.too_large(exc) if self.too_large is not None else exc
            self._body_error = err
            # Only a body without a declared length is refused while it is being read.
            self.body_unread = exc.declared is not None
            raise err from None
        return self.body

    async def keep_body(self, request: web.Request, bound: int) -> None:
        """For the journal, when the call was answered without reading its body: the body's first
        ``bound`` bytes (never more read into memory; the rest is left to aiohttp, which discards
        it) and its real length when the head declares it or the body ends within the bound."""
        if not self.body_unread or bound <= 0 or not request.body_exists:
            return
        self._read = True
        self.body_unread = False
        content = request.content
        chunks: list[bytes] = []
        got = 0
        try:
            async with asyncio.timeout(KEEP_BODY_WAIT):
                while got < bound:
                    chunk = await content.read(bound - got)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
        except (TimeoutError, OSError, ClientError, HttpProcessingError):
            pass  # kept as far as it came; the answer is what matters, and it is decided
        self.body = b"".join(chunks)
        declared = request.content_length
        if declared is not None:
            size = declared
        elif content.at_eof():
            size = got
        else:
            size = -1
        self.body_size = None if size == got else size

    def tree(self, parser: Parser) -> Any:
        """The body parsed, once (the body must have been read); the provider's error otherwise,
        the same each time it is asked."""
        if self._tree is _UNSET and self._tree_error is None:
            try:
                self._tree = parser.parse(self.body)
            except Exception as exc:
                self._tree_error = exc
                raise
            self._parser = parser
        if self._tree_error is not None:
            raise self._tree_error
        return self._tree

    def view(self, parser: Parser) -> Any:
        """The parsed body as matchers read it (nested dicts and lists), None when it does not
        parse; worked out once."""
        if self.parsed is None:
            try:
                tree = self.tree(parser)
            except Exception:  # the pipeline meets the same error and answers it
                return None
            self.parsed = parser.view(tree)
        return self.parsed

    def journal_view(self) -> Callable[[bytes], Any] | None:
        """For the journal, when the body parsed but nobody needed its view during the call: how to
        make the view from the body later, if the journal is read (None otherwise)."""
        if self.parsed is not None or self._parser is None:
            return None
        return functools.partial(_view_of, self._parser)


def view_of(parser: Parser) -> Callable[[bytes], Any]:
    """The journal's view of a body of ``parser``'s provider (the parsed form an entry shows)."""
    return functools.partial(_view_of, parser)


def _view_of(parser: Parser, body: bytes) -> Any:
    try:
        return parser.view(parser.parse(body))
    except Exception:  # it parsed during the call; reading the journal must not fail
        return None


async def _read(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if limit and declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    content = request.content
    if declared is not None and content.is_eof():
        # A small body arrives with the head: it is all buffered already, nothing to wait for.
        return content.read_nowait(-1)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if limit and size > limit:
            raise BodyTooLarge(limit, declared)
        chunks.append(chunk)
    return b"".join(chunks)
