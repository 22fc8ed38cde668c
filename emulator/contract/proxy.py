"""The recording proxy behind ``emulator record``: every request is forwarded unchanged (method,
target, headers, body: signatures stay valid) to the upstream, its answer is sent back unchanged,
and the exchange is appended to a HAR file (:class:`~emulator.contract.har.HarWriter`).

The only header ever changed is a ``Host`` that names the proxy itself (one with the proxy's port:
a client pointed at the proxy by address): it becomes the upstream's. The official SDKs redirected with
``emulator_sdks(proxy_url)`` send the provider's own host, which is kept, so the upstream sees what
the provider would.

``--redact`` replaces values before they are written (never before they are forwarded): headers,
query parameters, JSON fields and XML elements of the given names, at any depth. A redacted entry
is marked (``_redacted``), and ``contract check`` relaxes its signature checks.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from lxml import etree

from ..core.journal import Entry
from .har import HarWriter, to_har

__all__ = ["DEFAULT_REDACTED", "REDACTED", "Recorder"]

REDACTED = "[redacted]"
#: What ``--redact`` without names hides: the signature header (it names the key), the providers'
#: temporary-credential tokens, and the seed that signs Alibaba's callbacks.
DEFAULT_REDACTED = ("authorization", "x-acs-security-token", "x-cos-security-token", "seed")

#: Hop-by-hop headers (RFC 9110, section 7.6.1) and those aiohttp sets itself from the body.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# The most bytes of one body the proxy holds (the emulator's own limit is 1 MiB by default).
MAX_BODY = 64 * 1024 * 1024


class Recorder:
    """``handle`` forwards one request and records the exchange; ``app()`` serves it."""

    def __init__(self, upstream: str, writer: HarWriter, redact: Collection[str] = ()) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {upstream!r}")
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self._writer = writer
        self._redact = frozenset(n.lower() for n in redact)
        self._session: aiohttp.ClientSession | None = None
        #: The port the proxy listens on (set once it listens): a Host with it names the proxy.
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
        self._writer.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Bodies pass as they came (compressed or not); no proxy from the environment.
            self._session = aiohttp.ClientSession(auto_decompress=False, trust_env=False)
        return self._session

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        started = time.time()
        t0 = time.perf_counter()
        target = request.raw_path
        if "://" in target:  # absolute-form (a client using the proxy as an HTTP proxy)
            split = urlsplit(target)
            target = split.path + (f"?{split.query}" if split.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        host = request.headers.get("Host", "")
        if not host or host.rpartition(":")[2] == str(self.port):
            headers = [(k, v) for k, v in headers if k.lower() != "host"]
            headers.append(("Host", urlsplit(self.upstream).netloc))
            host = urlsplit(self.upstream).netloc
        status = 0
        response_headers: list[tuple[str, str]] = []
        response_body = b""
        error = None
        try:
            async with self._client().request(
                request.method,
                self.upstream + self._prefix + target,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            ) as upstream:
                response_body = await upstream.read()
                status = upstream.status
                response_headers = list(upstream.headers.items())
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"upstream unreachable: {exc or type(exc).__name__}"
        exchange = (status, response_headers, response_body, started, time.perf_counter() - t0)
        self._record(request, host, target, headers, body, exchange)
        if error is not None:
            return web.Response(status=502, text=error + "\n")
        out = web.Response(status=status, body=response_body)
        for k, v in response_headers:
            if k.lower() not in _HOP:
                out.headers.add(k, v)
        return out

    def _record(
        self,
        request: web.Request,
        host: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        exchange: tuple[int, list[tuple[str, str]], bytes, float, float],
    ) -> None:
        status, response_headers, response_body, started, duration = exchange
        scheme = urlsplit(self.upstream).scheme
        path, _, query = target.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        redacted: set[str] = set()
        sent = list(headers) + [(k, v) for k, v in request.headers.items() if k.lower() == "content-length"]
        if self._redact:
            sent = [(k, self._hide(k, v, redacted)) for k, v in sent]
            pairs = [(k, self._hide(k, v, redacted)) for k, v in pairs]
            query = urlencode(pairs) if redacted & {k.lower() for k, _ in pairs} else query
            body = self._redact_body(body, redacted)
        entry = Entry(
            id=0,
            time=started,
            direction="in",
            method=request.method,
            url=f"{scheme}://{host}{path}" + (f"?{query}" if query else ""),
            path=path,
            query=tuple(pairs),
            request_headers=tuple(sent),
            request_body=body,
            status=status,
            response_headers=tuple(response_headers),
            response_body=_decoded(response_body, response_headers),
            duration=duration,
        )
        har = to_har(entry)
        if redacted:
            har["_redacted"] = sorted(redacted)
        self._writer.append(har)

    def _hide(self, name: str, value: str, redacted: set[str]) -> str:
        if name.lower() in self._redact:
            redacted.add(name.lower())
            return REDACTED
        return value

    def _redact_body(self, body: bytes, redacted: set[str]) -> bytes:
        if not body.strip():
            return body
        try:
            tree = json.loads(body)
        except ValueError:
            return self._redact_xml(body, redacted)
        return json.dumps(_redact_json(tree, self._redact, redacted), ensure_ascii=False).encode()

    def _redact_xml(self, body: bytes, redacted: set[str]) -> bytes:
        try:
            root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return body
        hit = False
        for el in root.iter():
            if isinstance(el.tag, str) and el.tag.lower() in self._redact and len(el) == 0:
                el.text = REDACTED
                redacted.add(el.tag.lower())
                hit = True
        return etree.tostring(root, encoding="utf-8") if hit else body


def _redact_json(value: Any, names: Collection[str], redacted: set[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.lower() in names:
                redacted.add(k.lower())
                out[k] = REDACTED
            else:
                out[k] = _redact_json(v, names, redacted)
        return out
    if isinstance(value, list):
        return [_redact_json(v, names, redacted) for v in value]
    return value


def _decoded(body: bytes, headers: Iterable[tuple[str, str]]) -> bytes:
    """The body as the HAR shows it: decompressed (HAR's content.text is the decoded body)."""
    encoding = _header(headers, "content-encoding").lower()
    try:
        if encoding == "gzip":
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(body)
    except zlib.error:
        return body
    return body


def _header(headers: Iterable[tuple[str, str]] | Mapping[str, str], name: str) -> str:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return next((v for k, v in items if k.lower() == name), "")
