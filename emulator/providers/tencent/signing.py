"""Verification of the COS request signature (``q-sign-algorithm=sha1``) that CI shares with COS.

``Authorization: q-sign-algorithm=sha1&q-ak=<SecretId>&q-sign-time=<t0>;<t1>&q-key-time=<t0>;<t1>
&q-header-list=<keys>&q-url-param-list=<keys>&q-signature=<hex>``; the recipe is the reference
sheet's and cos-python-sdk-v5's (``qcloud_cos/cos_auth.py``, ``CosS3Auth.__call__``).

Pure functions over a :class:`SignedRequest`; no aiohttp here, so the recipe is testable with the
official vector and the captured SDK requests with a pinned clock. :func:`sign` is the client side,
for tests and scripts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from ...core.headers import HeaderLists
from . import errors


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    #: The URL-decoded path, without the query (what the SDK signs).
    path: str
    #: Query pairs, URL-decoded, in the order sent.
    query: Sequence[tuple[str, str]]
    #: Lower-case header name -> every value sent under that name.
    headers: Mapping[str, Sequence[str]]

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Authorization:
    secret_id: str
    sign_time: tuple[int, int]
    #: Kept as sent: it is hashed into the signing key and the string to sign verbatim.
    key_time: str
    header_list: tuple[str, ...]
    url_param_list: tuple[str, ...]
    signature: str


@functools.lru_cache(maxsize=256)
def _q(value: str) -> str:
    # Cached: header values (host, content type, lengths) recur from call to call.
    # "reserved keywords in headers urlencode are -_.~" (cos_auth.py)
    # surrogateescape: a header's bytes that are not UTF-8, as they were sent (aiohttp kept them so).
    return quote(value.encode("utf-8", "surrogateescape"), safe="-_.~")


@functools.lru_cache(maxsize=256)
def _key(name: str) -> str:
    """A header or parameter name as signed. Names recur on every request, and quoting each was a
    seventh of a badcase's signature check (bench/RESULTS.md, profile)."""
    return _q(name).lower()


def parse_authorization(value: str | None) -> Authorization:
    if value is None or not value.strip():
        raise errors.AccessDenied()
    return _parse_authorization(value)


@functools.lru_cache(maxsize=256)
def _parse_authorization(value: str) -> Authorization:
    # Cached: a client sends the same header for every call it signs in one second (the SDK's
    # q-sign-time starts at the current second), and the result is immutable.
    fields: dict[str, str] = {}
    for item in value.strip().split("&"):
        key, _, val = item.partition("=")
        fields[key.strip()] = val.strip()
    algorithm = fields.get("q-sign-algorithm")
    if algorithm != "sha1":
        raise errors.AccessDenied(f"Authorization: q-sign-algorithm must be sha1, not {algorithm!r}")
    for name in ("q-ak", "q-sign-time", "q-key-time", "q-signature"):
        if not fields.get(name):
            raise errors.AccessDenied(f"Authorization: {name} is missing")
    sign_time = _parse_time_range(fields["q-sign-time"], "q-sign-time")
    _parse_time_range(fields["q-key-time"], "q-key-time")
    return Authorization(
        secret_id=fields["q-ak"],
        sign_time=sign_time,
        key_time=fields["q-key-time"],
        header_list=_list(fields.get("q-header-list", "")),
        url_param_list=_list(fields.get("q-url-param-list", "")),
        signature=fields["q-signature"].lower(),
    )


def _parse_time_range(raw: str, name: str) -> tuple[int, int]:
    start, sep, end = raw.partition(";")
    # ASCII digits only, and few: str.isdigit() also accepts "²" and "١", which int() refuses or
    # reads, and int() refuses more than 4,300 digits; either way a ValueError was a 500.
    if not (sep and _unix_seconds(start) and _unix_seconds(end)) or int(start) > int(end):
        raise errors.AccessDenied(f"Authorization: {name} must be <start>;<end> in Unix seconds")
    return int(start), int(end)


def _unix_seconds(text: str) -> bool:
    return 0 < len(text) <= 20 and text.isascii() and text.isdigit()


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.lower() for item in raw.split(";") if item)


def format_string(req: SignedRequest, auth: Authorization, *, host: str | None = None) -> str:
    """The HttpString: method, path, signed params, signed headers (``host`` overrides Host)."""
    params = _pairs(req.query, auth.url_param_list)
    pairs = (
        req.headers.proxy.items()
        if isinstance(req.headers, HeaderLists)
        else ((name, values[0] if values else "") for name, values in req.headers.items())
    )
    headers = _pairs(
        pairs,
        auth.header_list,
        overrides={"host": host} if host is not None else {},
    )
    return f"{req.method.lower()}\n{req.path}\n{params}\n{headers}\n"


def _pairs(
    items: Iterable[tuple[str, str]],
    wanted: Sequence[str],
    overrides: Mapping[str, str] | None = None,
) -> str:
    found: dict[str, str] = {}
    for key, value in items:
        k = _key(key)
        if k in wanted and k not in found:
            found[k] = _q(value)
    for k, value in (overrides or {}).items():
        if k in wanted:
            found[k] = _q(value)
    # A listed key the request lacks is signed as empty: the signature then fails to match, which is
    # the honest answer (the client signed something it did not send).
    return "&".join(f"{k}={found.get(k, '')}" for k in _in_order(tuple(wanted)))


@functools.lru_cache(maxsize=256)
def _in_order(wanted: tuple[str, ...]) -> tuple[str, ...]:
    # The same few key lists recur on every call.
    return tuple(sorted(set(wanted)))


def string_to_sign(key_time: str, http_string: str) -> str:
    digest = hashlib.sha1(http_string.encode("utf-8", "surrogateescape")).hexdigest()
    return f"sha1\n{key_time}\n{digest}\n"


def signature(secret_key: str, key_time: str, string: str) -> str:
    # hmac.digest: OpenSSL's one-shot HMAC, without hmac.HMAC's Python-level set-up.
    data = string.encode("utf-8", "surrogateescape")
    return hmac.digest(_sign_key(secret_key, key_time), data, "sha1").hex()


@functools.lru_cache(maxsize=1024)
def _sign_key(secret_key: str, key_time: str) -> bytes:
    # The signing key is used as its hex string, not its raw digest. It depends on the key and the
    # key's validity only, the same for every call signed in that span.
    key = key_time.encode("utf-8", "surrogateescape")
    return hmac.digest(secret_key.encode(), key, "sha1").hex().encode()


def check_time(auth: Authorization, *, now: float, max_skew: float) -> None:
    """A request is valid inside q-sign-time; a start further ahead than ``max_skew`` means the
    client's clock is wrong (a start only a little ahead is tolerated as ordinary skew)."""
    start, end = auth.sign_time
    if now > end:
        raise errors.request_expired()
    if start > now + max_skew:
        raise errors.RequestTimeTooSkewed()


def host_candidates(host: str | None) -> list[str | None]:
    """The hosts the client may have signed: the Host header, and without its port, because the SDK
    signs ``urlparse(url).hostname`` when it sets no Host header itself (cos_auth.py)."""
    candidates: list[str | None] = [None]
    if host and not host.endswith("]") and ":" in host:
        candidates.append(host.rsplit(":", 1)[0])
    return candidates


def verify(req: SignedRequest, auth: Authorization, secret_key: str) -> None:
    """Raise SignatureDoesNotMatch unless ``auth`` signs ``req`` with ``secret_key``."""
    first: tuple[str, str] | None = None
    for host in host_candidates(req.header("host")):
        http_string = format_string(req, auth, host=host)
        sts = string_to_sign(auth.key_time, http_string)
        expected = signature(secret_key, auth.key_time, sts)
        # compare_digest raises TypeError for a str that is not ASCII: such a signature is just wrong.
        if auth.signature.isascii() and hmac.compare_digest(expected, auth.signature):
            return
        if first is None:
            first = (sts, http_string)
    assert first is not None
    raise errors.SignatureDoesNotMatch(*first)


def authenticate(
    req: SignedRequest,
    secret_key_for: Callable[[str], str | None],
    *,
    now: float,
    max_skew: float,
) -> str:
    """Check the request's Authorization; return the SecretId it was signed with."""
    auth = parse_authorization(req.header("authorization"))
    secret_key = secret_key_for(auth.secret_id)
    if secret_key is None:
        raise errors.InvalidAccessKeyId()
    check_time(auth, now=now, max_skew=max_skew)
    verify(req, auth, secret_key)
    return auth.secret_id


def sign(
    req: SignedRequest,
    *,
    secret_id: str,
    secret_key: str,
    start: int,
    end: int,
    header_names: Sequence[str] | None = None,
) -> str:
    """The Authorization value a COS client would send for ``req`` (every header signed unless
    ``header_names`` says which)."""
    names = tuple(sorted({_q(n).lower() for n in (header_names or req.headers)}))
    params = tuple(sorted({_q(k).lower() for k, _ in req.query}))
    key_time = f"{start};{end}"
    auth = Authorization(secret_id, (start, end), key_time, names, params, "")
    sig = signature(secret_key, key_time, string_to_sign(key_time, format_string(req, auth)))
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={key_time}&q-key-time={key_time}"
        f"&q-header-list={';'.join(names)}&q-url-param-list={';'.join(params)}&q-signature={sig}"
    )
