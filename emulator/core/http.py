"""Small provider-neutral HTTP helpers."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidInput
from .exchange import exchange_of


class BodyTooLarge(InvalidInput):
    """The request body is over the configured limit; it was not read in full."""

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        size = f"{declared} bytes" if declared is not None else "more"
        super().__init__(f"request body is {size}, over the limit of {limit} bytes")


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read the whole body, refusing early (by Content-Length, else while reading) past ``limit``.

    The body read is kept on the request's exchange for the journal, and for a second reader.
    """
    exchange = exchange_of(request)
    if exchange.body_read:
        if exchange.body_error is not None:
            raise exchange.body_error
        return exchange.request_body
    exchange.body_read = True
    try:
        body = exchange.request_body = await _read(request, limit)
    except BodyTooLarge as exc:
        exchange.body_error = exc
        raise
    return body


async def _read(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, declared)
        chunks.append(chunk)
    return b"".join(chunks)
