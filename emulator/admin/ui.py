"""The dashboard: ``GET /_emulator/ui``, its assets, and what it reads beyond the admin API.

- ``GET /_emulator/ui``                   the page (plain HTML, JS and CSS shipped in ``static/``)
- ``GET /_emulator/ui/static/{name}``     its script and style sheet
- ``GET /_emulator/ui/events``            the journal live, as Server-Sent Events
- ``GET /_emulator/ui/exchanges/{id}``    one exchange with what explains it: the signature verdict,
  the fault rule that fired, and the deliveries and exchanges of its correlation id
- ``GET /_emulator/ui/scenarios``         the shipped fault scenarios, to add from the page
- ``GET /_emulator/ui/console``           the accounts, and each Alibaba account's console callback

The page and its assets hold no data, so they are served without the admin token (the page asks for
it once and sends it as ``Authorization: Bearer`` on every call, the event stream's included, which
is why the page reads the stream with ``fetch`` rather than ``EventSource``: that cannot send a
header). Everything else here needs the token as every admin route does.

The event stream costs a provider call nothing while no page listens (the journal's one truth test,
:meth:`Journal.subscribe`) and one append to a bounded buffer while one does: rows are summarised
and sent from the stream's own task, which looks at the buffer each :data:`BATCH_SECONDS` and
sends what it holds as one ``rows`` event. A page
that reads slowly loses the oldest rows of a batch past :data:`BUFFER_ROWS`, counted in the event's
``dropped``; the server's memory stays bounded whatever the page does.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from ..core.callbacks import DeliveryFilter
from ..core.journal import Entry, Filter, Item, Raw
from ..core.scenarios import ScenarioError, available, load_scenario
from ..errors import AdminError
from ..keys import DISPATCHER, FAULTS, SETTINGS
from ..providers.alibaba import errors as alibaba_errors
from ..providers.alibaba.routes import ALIBABA_BACKEND
from ..providers.tencent import errors as tencent_errors
from .common import account_namespace, bad_request
from .journal import caught_up

STATIC = Path(__file__).with_name("static")
#: The only files served from :data:`STATIC`, with their types (nothing else is reachable).
ASSETS = {"ui.js": "text/javascript", "ui.css": "text/css"}
#: The page may load only its own assets and call only its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

#: Seconds a stream gathers rows before it sends them as one event.
BATCH_SECONDS = 0.2
#: Rows a stream holds between two events; older ones are dropped (and counted) past it.
BUFFER_ROWS = 1000
#: Rows the first event carries (the newest ones already recorded) unless ``?backlog=`` asks fewer.
BACKLOG_ROWS = 500
#: Seconds between keep-alive comments on a quiet stream (also how soon a closed one is noticed).
HEARTBEAT_SECONDS = 10.0
#: Event streams open at once; more are refused (503) until one closes.
MAX_STREAMS = 16
#: Characters of a request body a row carries, for the page's free-text filter.
SNIPPET_CHARS = 120

#: The providers' refusals of a request's credentials or signature (their error catalogues), by
#: which the detail view tells a refused signature from any other error.
SIGNATURE_ERRORS = frozenset(
    cls.code
    for cls in (
        alibaba_errors.MissingAccessKeyId,
        alibaba_errors.IncompleteSignature,
        alibaba_errors.SignatureDoesNotMatch,
        alibaba_errors.ContentMD5NotMatched,
        alibaba_errors.InvalidAccessKeyIdNotFound,
        alibaba_errors.InvalidTimeStampFormat,
        alibaba_errors.InvalidTimeStampExpired,
        alibaba_errors.SignatureNonceUsed,
        tencent_errors.AccessDenied,
        tencent_errors.InvalidAccessKeyId,
        tencent_errors.RequestTimeTooSkewed,
        tencent_errors.SignatureDoesNotMatch,
        tencent_errors.ExpiredToken,
    )
)
#: Where the console's own journaled actions (a review) were called: the admin API, unsigned.
ADMIN_PATHS = "/_emulator/"
_XML_CODE = re.compile(rb"<Code>([^<]{1,200})</Code>")
_XML_MESSAGE = re.compile(rb"<Message>([^<]{0,2000})</Message>")


def is_public(subpath: str) -> bool:
    """Whether a path under the admin prefix is the page or one of its assets (no token needed)."""
    return subpath == "/ui" or subpath.startswith("/ui/static/")


# -- the page --------------------------------------------------------------------------------------


async def page(request: web.Request) -> web.Response:
    del request
    html = (STATIC / "ui.html").read_bytes()
    return web.Response(body=html, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise AdminError(404, "not_found", f"no dashboard asset {name!r}")
    body = (STATIC / name).read_bytes()
    return web.Response(body=body, content_type=ASSETS[name], charset="utf-8", headers=SECURITY_HEADERS)


# -- the live feed ---------------------------------------------------------------------------------


class Feed:
    """One page's subscription to the journal: a bounded buffer that recording appends to, and that
    the stream takes from once each :data:`BATCH_SECONDS` (no wake-up per call)."""

    def __init__(self, size: int = BUFFER_ROWS) -> None:
        self.items: deque[Item] = deque(maxlen=size)
        self.dropped = 0
        self._closed = False

    def __call__(self, item: Item) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append(item)

    def take(self) -> tuple[list[Item], int]:
        """What arrived since the last take, oldest first, and how many were dropped meanwhile."""
        items, dropped = list(self.items), self.dropped
        self.items.clear()
        self.dropped = 0
        return items, dropped

    def close(self) -> None:
        self._closed = True

    def is_open(self) -> bool:
        return not self._closed


FEEDS: web.AppKey[set[Feed]] = web.AppKey("ui_feeds")
#: Names this server's run in the snapshot: a page that reconnects to a restarted emulator (whose
#: entry ids start again at 1) forgets the rows of the last run.
INSTANCE = web.AppKey("ui_instance", str)


#: The fields of a row, in the order :func:`row` gives them (the events send rows as arrays, which
#: JSON encodes in a third of the time objects take: bench/RESULTS.md).
COLUMNS = (
    "id",
    "time",
    "direction",
    "method",
    "path",
    "provider",
    "action",
    "account",
    "namespace",
    "status",
    "fault",
    "durationMs",
    "correlationId",
    "error",
    "snippet",
)


def row(item: Item) -> list[Any]:
    """What the traffic table shows of an exchange (the detail view asks for the rest): the values
    of :data:`COLUMNS`, the request body's first characters last, for the page's free-text filter."""
    if not isinstance(item, Entry | Raw):
        item = item.entry()  # read back from the store at start
    return [
        item.id,
        item.time,
        item.direction if isinstance(item, Entry) else "in",
        item.method,
        item.path,
        item.provider,
        item.action,
        item.account,
        item.namespace,
        item.status,
        item.fault,
        round(item.duration * 1000, 3),
        item.correlation_id,
        item.error,
        item.request_body[: SNIPPET_CHARS * 4].decode("utf-8", "replace")[:SNIPPET_CHARS],
    ]


def _event(name: str, data: dict[str, Any]) -> bytes:
    # One line of JSON: a data field may not hold a newline, and json.dumps writes none.
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """The journal as it grows: a ``snapshot`` event with the newest rows already recorded (newest
    first) and the ``columns`` they have, then a ``rows`` event (oldest first) whenever calls
    arrived, at most one each :data:`BATCH_SECONDS`; each carries the journal's stats, and ``rows``
    the rows ``dropped``."""
    try:
        backlog = int(request.query.get("backlog", str(BACKLOG_ROWS)))
    except ValueError:
        raise bad_request("backlog must be an integer") from None
    if not 0 <= backlog <= BUFFER_ROWS:
        raise bad_request(f"backlog must be within 0..{BUFFER_ROWS}")
    feeds = request.config_dict[FEEDS]
    if len(feeds) >= MAX_STREAMS:
        raise AdminError(
            503, "too_many_streams", f"{MAX_STREAMS} dashboard streams are open already; close one"
        )
    journal = await caught_up(request)
    feed = Feed()
    # Subscribed and read with no await between: every row is in the snapshot or in a later event.
    unsubscribe = journal.subscribe(feed)
    feeds.add(feed)
    try:
        rows = [row(e) for e in journal.stream(Filter(order="desc", limit=backlog), with_view=False)]
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)
        instance = request.config_dict[INSTANCE]
        snapshot = {"columns": COLUMNS, "instance": instance, "rows": rows, "journal": journal.stats()}
        await response.write(_event("snapshot", snapshot))
        quiet = 0.0
        while feed.is_open():
            await asyncio.sleep(BATCH_SECONDS)  # let a batch gather
            items, dropped = feed.take()
            if items or dropped:
                data = {"rows": [row(i) for i in items], "dropped": dropped, "journal": journal.stats()}
                await response.write(_event("rows", data))
                quiet = 0.0
            elif (quiet := quiet + BATCH_SECONDS) >= HEARTBEAT_SECONDS:
                await response.write(b": keep-alive\n\n")
                quiet = 0.0
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        unsubscribe()
        feeds.discard(feed)
    return response


async def _close_feeds(admin: web.Application) -> None:
    """At shutdown, end every stream, so that no open page holds the server up."""
    feeds = admin[FEEDS]
    for feed in list(feeds):
        feed.close()


# -- one exchange ----------------------------------------------------------------------------------


def _error_of(body: bytes) -> tuple[str | None, str | None]:
    """The provider error code and message an answer carries (JSON ``Code``/``Message``, or XML)."""
    if body[:1] == b"{":
        try:
            doc = json.loads(body)
        except ValueError:
            return None, None
        if isinstance(doc, dict) and isinstance(doc.get("Code"), str):
            message = doc.get("Message")
            return doc["Code"], message if isinstance(message, str) else None
        return None, None
    code = _XML_CODE.search(body)
    if code is None:
        return None, None
    message = _XML_MESSAGE.search(body)
    return _text(code[1]), None if message is None else _text(message[1])


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def signature(entry: Entry) -> dict[str, Any]:
    """What the answer says of the request's signature: ``verified``, ``refused`` (with the
    provider's code and message), ``not refused`` (another error), or why it is not known."""
    if entry.direction == "out":
        return {"verdict": "not applicable", "reason": "an outbound callback attempt"}
    if entry.provider is None:
        return {"verdict": "not applicable", "reason": "no provider serves this path"}
    if entry.path.startswith(ADMIN_PATHS):
        return {"verdict": "not applicable", "reason": "an action of the emulated console, not a signed call"}
    if entry.status is None:
        return {"verdict": "unknown", "reason": "no answer was sent (the connection was cut)"}
    if entry.fault is not None and entry.status >= 400:
        return {"verdict": "unknown", "reason": f"fault rule {entry.fault} answered instead"}
    code, message = _error_of(entry.response_body)
    if code in SIGNATURE_ERRORS:
        return {"verdict": "refused", "code": code, "reason": message}
    if entry.status >= 400:
        return {"verdict": "not refused", "code": code, "reason": "the call failed for another reason"}
    return {"verdict": "verified", "reason": "the call was answered"}


async def exchange(request: web.Request) -> web.Response:
    raw_id = request.match_info["id"]
    if not raw_id.isdigit() or len(raw_id) > 18:
        raise bad_request(f"an exchange id is a positive integer, not {raw_id!r}")
    wanted = int(raw_id)
    app = request.config_dict
    journal = await caught_up(request)
    # Without the parsed view: making it for every newer entry on the way could take the loop for a
    # while (an entry kept as received has ``request.parsed`` null here; the page parses the body).
    entry = next((e for e in journal.stream(Filter(order="desc"), with_view=False) if e.id == wanted), None)
    if entry is None:
        message = f"no exchange #{wanted} in the journal (never recorded, or evicted)"
        raise AdminError(404, "not_found", message)
    rule = None
    if entry.fault is not None:
        found = app[FAULTS].get(entry.fault.split(" ", 1)[0])
        rule = None if found is None else found.to_dict(entry.namespace)
    related: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    cid = entry.correlation_id
    if cid is not None:
        linked = journal.stream(Filter(correlation_id=cid), with_view=False)
        related = [dict(zip(COLUMNS, row(e), strict=True)) for e in linked if e.id != wanted]
        deliveries = [d.to_dict() for d in app[DISPATCHER].deliveries(DeliveryFilter(correlation_id=cid))]
    return web.json_response(
        {
            "entry": entry.to_dict(),
            "signature": signature(entry),
            "rule": rule,
            "related": related,
            "deliveries": deliveries,
        }
    )


# -- what the forms offer --------------------------------------------------------------------------


async def scenarios(request: web.Request) -> web.Response:
    del request
    shipped = []
    for name in available():
        try:
            description = load_scenario(name).description
        except ScenarioError as exc:
            description = f"(cannot be read: {exc})"
        shipped.append({"name": name, "description": description})
    return web.json_response({"scenarios": shipped})


async def console(request: web.Request) -> web.Response:
    """The configured accounts; each Alibaba account's console callback in the namespace named (else
    the account's own, else the default)."""
    app = request.config_dict
    backend = app[ALIBABA_BACKEND]
    alibaba = []
    for account in backend.accounts:
        namespace = account_namespace(request, account.namespace)
        state = backend.state(account, namespace)
        alibaba.append(
            {
                "uid": account.uid,
                "accessKeyId": account.access_key_id,
                "namespace": namespace,
                "callback": {"url": state.callback_url, "seed": state.callback_seed},
            }
        )
    tencent = [{"appid": a.appid, "namespace": a.namespace} for a in app[SETTINGS].tencent.accounts]
    return web.json_response({"alibaba": alibaba, "tencent": tencent})


def setup(admin: web.Application) -> None:
    feeds: set[Feed] = set()
    admin[FEEDS] = feeds
    admin[INSTANCE] = secrets.token_hex(8)
    admin.on_shutdown.append(_close_feeds)
    admin.router.add_get("/ui", page)
    admin.router.add_get("/ui/static/{name}", asset)
    admin.router.add_get("/ui/events", events)
    admin.router.add_get("/ui/exchanges/{id}", exchange)
    admin.router.add_get("/ui/scenarios", scenarios)
    admin.router.add_get("/ui/console", console)
