"""What the providers tell the edge about the call they served (provider, action, account, ...).

The journal middleware creates one :class:`Exchange` per request and stores it on the request; the
provider code fills in what only it knows. Provider-neutral: the values are plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Exchange:
    provider: str | None = None
    action: str | None = None
    account: str | None = None
    namespace: str | None = None
    #: The body as read by the provider (raw bytes), and its parsed form (JSON value, or the XML
    #: document as nested dicts), when it could be parsed.
    request_body: bytes = b""
    #: Whether the body was read (by the fault middleware or the provider), and the error reading it
    #: raised, so a second reader gets the same outcome instead of an exhausted stream.
    body_read: bool = False
    body_error: Exception | None = None
    parsed: Any = None
    #: The fault rule that shaped the answer, if one did.
    fault: str | None = None
    correlation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


EXCHANGE = web.RequestKey("exchange", Exchange)


def exchange_of(request: web.Request) -> Exchange:
    """The request's exchange record (created on first use, e.g. outside the journal middleware)."""
    ex = request.get(EXCHANGE)
    if ex is None:
        ex = request[EXCHANGE] = Exchange()
    return ex
