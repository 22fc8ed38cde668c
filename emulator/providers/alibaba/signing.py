"""Verification of the two request-signing schemes the official Alibaba SDKs use.

1. ``acs`` HMAC-SHA1 (aliyunsdkcore's ``roa_signature_composer``; the Tea SDK with
   ``signature_algorithm='v2'``): ``Authorization: acs <AK>:<base64 signature>``.
2. ``ACS3-HMAC-SHA256`` (the Tea SDK's default, ``alibabacloud_tea_openapi.utils.get_authorization``).

Pure functions over a :class:`SignedRequest`; no aiohttp here, so the recipes are testable with the
captured SDK vectors and a pinned clock.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import heapq
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from ...core.headers import HeaderLists
from . import errors


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    #: The path as sent (still percent-encoded), without the query.
    raw_path: str
    #: Query pairs, URL-decoded, in the order sent.
    query: Sequence[tuple[str, str]]
    #: Header name (any case) -> every value sent under that name.
    headers: Mapping[str, Sequence[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Authorization:
    scheme: str  # "acs" or "ACS3-HMAC-SHA256"
    access_key_id: str
    signature: str
    signed_headers: tuple[str, ...] = ()


ACS3 = "ACS3-HMAC-SHA256"


def parse_authorization(value: str | None) -> Authorization:
    if value is None or not value.strip():
        raise errors.MissingAccessKeyId()
    return _parse_authorization(value)


@functools.lru_cache(maxsize=256)
def _parse_authorization(value: str) -> Authorization:
    # Cached: the result is immutable, and identical headers recur (retries, load tests).
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if scheme == "acs":
        ak, sep, sig = rest.partition(":")
        if not sep or not ak or not sig:
            raise errors.IncompleteSignature()
        return Authorization("acs", ak, sig)
    if scheme == ACS3:
        parts: dict[str, str] = {}
        for item in rest.split(","):
            key, sep, val = item.strip().partition("=")
            if not sep:
                raise errors.IncompleteSignature()
            parts[key] = val
        ak, signed, sig = (parts.get(k, "") for k in ("Credential", "SignedHeaders", "Signature"))
        if not ak:
            raise errors.MissingAccessKeyId()
        if not signed or not sig:
            raise errors.IncompleteSignature()
        return Authorization(ACS3, ak, sig, tuple(signed.split(";")))
    raise errors.IncompleteSignature()


# --- acs / HMAC-SHA1 ---------------------------------------------------------------------------


def acs_string_to_sign(req: SignedRequest, *, bare_empty_values: bool = True) -> str:
    """METHOD, Accept, Content-MD5, Content-Type, Date, x-acs-* headers, canonical resource.

    ``bare_empty_values``: the Tea SDK signs a query key with an empty value as ``k``; aliyunsdkcore
    signs it as ``k=``. Both are tried.
    """
    lines = [
        req.method,
        req.header("accept") or "",
        req.header("content-md5") or "",
        req.header("content-type") or "",
        req.header("date") or "",
    ]
    acs_headers = sorted(
        (name.lower(), values[0]) for name, values in req.headers.items() if name.lower().startswith("x-acs-")
    )
    canon_headers = "".join(f"{name}:{value}\n" for name, value in acs_headers)
    resource = req.raw_path
    if req.query:
        pairs = []
        for key, value in sorted(req.query, key=lambda kv: kv[0]):
            pairs.append(key if value == "" and bare_empty_values else f"{key}={value}")
        resource += "?" + "&".join(pairs)
    return "\n".join(lines) + "\n" + canon_headers + resource


def acs_signature(string_to_sign: str, secret: str) -> str:
    # surrogateescape: a header's bytes that are not UTF-8, as they were sent (aiohttp kept them so).
    data = string_to_sign.encode("utf-8", "surrogateescape")
    return base64.b64encode(hmac.digest(secret.encode(), data, "sha1")).decode()


# --- ACS3-HMAC-SHA256 ---------------------------------------------------------------------------


def acs3_string_to_sign(req: SignedRequest, signed_headers: Sequence[str]) -> str:
    query = ""
    if req.query:
        query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(req.query))
    names = _canonical_names(tuple(signed_headers))
    lines = []
    headers = req.headers
    # The request's own header map when it is one (one C call a header), else the Mapping.
    get = headers.proxy.getall if isinstance(headers, HeaderLists) else headers.get
    for name in names:
        values = get(name, None) or ()
        # One value is the rule; only several need sorting and joining.
        value = values[0].strip() if len(values) == 1 else ",".join(sorted(v.strip() for v in values))
        lines.append(f"{name}:{value}\n")
    canon_headers = "".join(lines)
    # The payload hash is computed from the body actually received: a wrong x-acs-content-sha256
    # header then fails as a signature mismatch, as it does at the gateway.
    payload = hashlib.sha256(req.body).hexdigest()
    canonical = "\n".join([req.method, req.raw_path or "/", query, canon_headers, ";".join(names), payload])
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ACS3}\n{digest}"


@functools.lru_cache(maxsize=256)
def _canonical_names(signed_headers: tuple[str, ...]) -> tuple[str, ...]:
    # The same SignedHeaders list arrives on every call a client signs.
    return tuple(sorted(h.lower() for h in signed_headers))


def acs3_signature(string_to_sign: str, secret: str) -> str:
    # hmac.digest: OpenSSL's one-shot HMAC, without hmac.HMAC's Python-level set-up.
    return hmac.digest(secret.encode(), string_to_sign.encode(), "sha256").hex()


# --- the whole check -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _iso_z_timestamp(raw: str) -> float:
    """:func:`_iso_z` as a Unix time, cached: calls signed in the same second carry the same value."""
    return _iso_z(raw).timestamp()


def _iso_z(raw: str) -> datetime:
    """``%Y-%m-%dT%H:%M:%SZ`` in UTC. strptime took a seventh of a signed call's time under load;
    the SDKs' fixed-width form is read directly, anything else still goes through strptime."""
    if len(raw) == 20 and raw.isascii() and raw[4::3] == "--T::Z":
        y, mo, d, h, mi, s = raw[0:4], raw[5:7], raw[8:10], raw[11:13], raw[14:16], raw[17:19]
        if (y + mo + d + h + mi + s).isdigit():
            # ValueError when out of range, as strptime raises.
            return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def request_time(req: SignedRequest, auth: Authorization) -> float:
    """The request's own timestamp: x-acs-date (ISO 8601 Z) for ACS3, else the Date header."""
    raw = req.header("x-acs-date") if auth.scheme == ACS3 else None
    if raw is not None:
        try:
            return _iso_z_timestamp(raw)
        except ValueError:
            raise errors.InvalidTimeStampFormat() from None
    date = req.header("date")
    if date is None:
        raise errors.InvalidTimeStampFormat()
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        raise errors.InvalidTimeStampFormat() from None


def _same(expected: str, given: str) -> bool:
    # compare_digest raises TypeError for a str that is not ASCII: such a signature is just wrong.
    return given.isascii() and hmac.compare_digest(expected, given)


def verify(
    req: SignedRequest,
    auth: Authorization,
    secret: str,
    *,
    now: float,
    max_skew: float,
) -> None:
    """Raise the gateway's error if the request is not properly signed by ``secret`` at ``now``."""
    if abs(now - request_time(req, auth)) > max_skew:
        raise errors.InvalidTimeStampExpired()
    md5 = req.header("content-md5")
    if md5 is not None and md5 != binascii.b2a_base64(hashlib.md5(req.body).digest(), newline=False).decode():
        raise errors.ContentMD5NotMatched()
    if auth.scheme == ACS3:
        sts = acs3_string_to_sign(req, auth.signed_headers)
        if not _same(acs3_signature(sts, secret), auth.signature):
            raise errors.SignatureDoesNotMatch.for_acs3(sts)
        return
    sts = acs_string_to_sign(req)
    if _same(acs_signature(sts, secret), auth.signature):
        return
    if any(v == "" for _, v in req.query):
        alt = acs_string_to_sign(req, bare_empty_values=False)
        if _same(acs_signature(alt, secret), auth.signature):
            return
    raise errors.SignatureDoesNotMatch.for_acs(sts)


NONCE_HEADER = "x-acs-signature-nonce"


class NonceCache:
    """The signature nonces seen, per AccessKeyId, while a replay of their request could still pass
    the clock check: a request stamped ``t`` is accepted until ``t + max_skew``, so its nonce is
    remembered until then and forgotten after. At most ``capacity`` are kept; past that the one
    that would expire first is forgotten early (a replay of it would then pass, as it would past its
    window anyway)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def use(self, access_key_id: str, nonce: str, *, until: float, now: float) -> bool:
        """Remember ``nonce`` until ``until``; False when it is remembered already (a replay)."""
        self._expire(now)
        key = (access_key_id, nonce)
        if key in self._expiry:
            return False
        if self.capacity <= 0:
            return True
        while len(self._expiry) >= self.capacity:
            self._pop()
        self._expiry[key] = until
        heapq.heappush(self._heap, (until, key))
        return True

    def _expire(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            self._pop()

    def _pop(self) -> None:
        _, key = heapq.heappop(self._heap)
        del self._expiry[key]


def authenticate(
    req: SignedRequest,
    secret_for: Callable[[str], str | None],
    *,
    now: float,
    max_skew: float,
    auth: Authorization | None = None,
    nonces: NonceCache | None = None,
) -> str:
    """Check the request's signature; return the AccessKeyId it was signed with. ``auth``: its
    Authorization header already parsed, if it was. ``nonces``: refuse a signature nonce seen
    before (SignatureNonceUsed), when given."""
    if auth is None:
        auth = parse_authorization(req.header("authorization"))
    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise errors.InvalidAccessKeyIdNotFound()
    verify(req, auth, secret, now=now, max_skew=max_skew)
    # Only a request that verified may spend a nonce: otherwise anyone could burn the nonces of
    # requests they cannot sign.
    if nonces is not None and (window := nonce_window(req, auth, max_skew)) is not None:
        nonce, until = window
        if not nonces.use(auth.access_key_id, nonce, until=until, now=now):
            raise errors.SignatureNonceUsed()
    return auth.access_key_id


def nonce_window(req: SignedRequest, auth: Authorization | None, max_skew: float) -> tuple[str, float] | None:
    """The request's signature nonce and the moment a replay of it stops passing the clock check
    (its time plus ``max_skew``); None without one (aliyunsdkcore sends none: the reference sheet)."""
    nonce = req.header(NONCE_HEADER)
    if nonce is None:
        return None
    if auth is None:
        auth = parse_authorization(req.header("authorization"))
    return nonce, request_time(req, auth) + max_skew
