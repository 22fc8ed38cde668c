"""Client-side request signing for tests, scripts and benchmarks.

Every function here signs with the emulator's own verifying recipes
(:mod:`emulator.providers.alibaba.signing`, :mod:`emulator.providers.tencent.signing`), so a
request signed here is, by construction, one the emulator accepts; the captured SDK vectors in
``tests/vectors`` are what keep those recipes honest against the real clients.

- :func:`sign_acs3`: ``ACS3-HMAC-SHA256`` (the Tea SDK's default).
- :func:`sign_acs`: ``acs`` HMAC-SHA1 (aliyunsdkcore's ROA requests).
- :func:`sign_cos`: the COS ``q-sign-algorithm=sha1`` Authorization that CI shares with COS.
- :func:`tea_sdk_headers` and :func:`cos_sdk_headers`: the whole header set each SDK sends, signed.

The credentials below are the default config's (``fixtures/default-config.json``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from emulator.providers.alibaba import signing as ali
from emulator.providers.tencent import signing as cos

__all__ = [
    "ACCESS_KEY_ID",
    "ACCESS_KEY_SECRET",
    "APPID",
    "COS_HOST",
    "SECRET_ID",
    "SECRET_KEY",
    "cos_sdk_headers",
    "sign_acs",
    "sign_acs3",
    "sign_cos",
    "tea_sdk_headers",
]

#: The default config's Alibaba account.
ACCESS_KEY_ID = "testAccessKeyId"
ACCESS_KEY_SECRET = "testAccessKeySecret"
#: The default config's Tencent account and a bucket host of its APPID.
SECRET_ID = "AKIDtestSecretId"
SECRET_KEY = "testSecretKey"
APPID = "1250000000"
COS_HOST = f"examplebucket-{APPID}.ci.ap-beijing.myqcloud.com"

Query = Sequence[tuple[str, str]]


def sign_acs3(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret: str,
    query: Query = (),
) -> dict[str, str]:
    """``headers`` plus an ACS3-HMAC-SHA256 ``authorization`` that signs every one of them.

    ``path`` is the path as sent (percent-encoded); ``query`` holds decoded pairs. The payload hash
    is computed from ``body``, as the SDK computes ``x-acs-content-sha256``.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = sorted(lowered)
    req = ali.SignedRequest(
        method=method,
        raw_path=path,
        query=list(query),
        headers={k: [v] for k, v in lowered.items()},
        body=body,
    )
    sig = ali.acs3_signature(ali.acs3_string_to_sign(req, signed), secret)
    return {
        **headers,
        "authorization": f"{ali.ACS3} Credential={access_key_id},SignedHeaders={';'.join(signed)},"
        f"Signature={sig}",
    }


def sign_acs(
    method: str,
    path: str,
    headers: Mapping[str, str],
    access_key_id: str,
    secret: str,
    query: Query = (),
) -> dict[str, str]:
    """``headers`` plus an ``acs <AK>:<signature>`` ``authorization`` (HMAC-SHA1 over Accept,
    Content-MD5, Content-Type, Date, the x-acs-* headers and the resource). The body is not signed
    by this scheme; send a Content-MD5 to cover it."""
    req = ali.SignedRequest(
        method=method,
        raw_path=path,
        query=list(query),
        headers={k.lower(): [v] for k, v in headers.items()},
        body=b"",
    )
    sig = ali.acs_signature(ali.acs_string_to_sign(req), secret)
    return {**headers, "authorization": f"acs {access_key_id}:{sig}"}


def sign_cos(
    method: str,
    path: str,
    headers: Mapping[str, str],
    secret_id: str,
    secret_key: str,
    start: int,
    end: int,
    query: Query = (),
    header_names: Sequence[str] | None = None,
) -> str:
    """The ``Authorization`` value a COS client sends, valid from ``start`` to ``end`` (Unix
    seconds). Every header in ``headers`` is signed unless ``header_names`` says which; ``path`` is
    the decoded path and every query parameter is signed."""
    req = cos.SignedRequest(
        method=method,
        path=path,
        query=list(query),
        headers={k.lower(): [v] for k, v in headers.items()},
    )
    return cos.sign(
        req,
        secret_id=secret_id,
        secret_key=secret_key,
        start=start,
        end=end,
        header_names=header_names,
    )


def tea_sdk_headers(
    body: bytes,
    now: float,
    *,
    path: str = "/green/image/feedback",
    action: str = "ImageScanFeedback",
    version: str = "2018-05-09",
    nonce: str | None = None,
    access_key_id: str = ACCESS_KEY_ID,
    secret: str = ACCESS_KEY_SECRET,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers the Tea SDK sends for a JSON POST at ``now``, signed (ACS3-HMAC-SHA256) over
    all of them and ``body``; ``extra`` headers are added before signing. ``nonce``: a fresh one
    unless given (a given one is refused the second time, as a replay)."""
    headers = {
        "accept": "application/json",
        "content-type": "application/json; charset=utf-8",
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # A fresh one per call, as the SDK's: the gateway refuses a nonce it has seen.
        "x-acs-signature-nonce": nonce if nonce is not None else uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        **(extra or {}),
    }
    return sign_acs3("POST", path, headers, body, access_key_id, secret)


def cos_sdk_headers(
    body: bytes,
    now: float,
    *,
    path: str = "/report/badcase",
    method: str = "POST",
    host: str = COS_HOST,
    secret_id: str = SECRET_ID,
    secret_key: str = SECRET_KEY,
    start: int | None = None,
    end: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Host, Content-Type, Content-Length (and ``extra``) as cos-python-sdk-v5 sends them, with an
    Authorization signing all of them, valid from a minute before ``now`` to an hour after unless
    ``start`` and ``end`` say otherwise."""
    headers = {
        "Host": host,
        "Content-Type": "application/xml",
        "Content-Length": str(len(body)),
        **(extra or {}),
    }
    headers["Authorization"] = sign_cos(
        method,
        path,
        headers,
        secret_id,
        secret_key,
        start=int(now) - 60 if start is None else start,
        end=int(now) + 3600 if end is None else end,
    )
    return headers
