"""The Alibaba Green error catalogue as it appears on the wire.

Two families, rendered differently by ``protocol.py``::

    AlibabaError
     +-- GatewayError            before the API runs; HTTP 4xx, PascalCase JSON
     |    +-- MissingAccessKeyId           400
     |    +-- IncompleteSignature          400  (malformed Authorization)
     |    +-- SignatureDoesNotMatch        400  (message carries the server's string-to-sign)
     |    +-- ContentMD5NotMatched         400
     |    +-- InvalidAccessKeyIdNotFound   404  InvalidAccessKeyId.NotFound
     |    +-- InvalidTimeStampFormat       400  InvalidTimeStamp.Format
     |    +-- InvalidTimeStampExpired      400  InvalidTimeStamp.Expired
     |    +-- SignatureNonceUsed           400
     |    +-- ThrottlingUser               429 (configurable)  Throttling.User
     |    +-- InvalidActionNotFound        404  InvalidAction.NotFound (no such API / method)
     |    +-- InternalError                500
     |    +-- ServiceUnavailable           503
     +-- BusinessError           the API answered; HTTP 200, {"code": <int>, "msg": ...}

Gateway codes and wording from the reference sheet and the provider's public error pages; the ones
the sheet does not list (MissingAccessKeyId, IncompleteSignature, InvalidTimeStamp.Format,
SignatureNonceUsed, ContentMD5NotMatched) are the POP gateway's codes for those cases, chosen by
analogy: UNCONFIRMED(alibaba-gateway-codes) for Green (alibaba.verify_signatures: false relaxes every
check that raises them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.catalogue import by_code
from ...core.faults import RuleError
from ...errors import WireError

#: Business codes (HTTP 200 envelope) and their ``msg`` words, from the reference sheet.
BUSINESS_CODES: dict[int, str] = {
    200: "OK",
    280: "PROCESSING",
    400: "BAD_REQUEST",
    401: "NOT_ALLOWED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    480: "DOWNLOAD_FAILED",
    500: "GENERAL_ERROR",
    503: "ServiceUnavailable",
    580: "DB_FAILED",
    581: "TIMEOUT",
    585: "CACHE_FAILED",
    586: "ALGO_FAILED",
    587: "MQ_FAILED",
    588: "EXCEED_QUOTA",
    589: "TOO_LARGE",
    590: "BAD_FORMAT",
    591: "CONNECTION_POOL_FULL",
    592: "DOWNLOAD_TIMEOUT",
    594: "EXPIRED",
    595: "UNKNOWN_ERROR",
    596: "PERMISSION_DENY",
}


class AlibabaError(WireError):
    """An answer the provider gives instead of a success."""


class GatewayError(AlibabaError):
    code: ClassVar[str]
    status: ClassVar[int]
    message: ClassVar[str]

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        self.text = message if message is not None else self.message
        self.http_status = status if status is not None else self.status
        super().__init__(f"{self.code}: {self.text}")


class MissingAccessKeyId(GatewayError):
    code = "MissingAccessKeyId"
    status = 400
    message = "AccessKeyId is mandatory for this action."


class IncompleteSignature(GatewayError):
    code = "IncompleteSignature"
    status = 400
    message = "The request signature does not conform to Aliyun standards."


class SignatureDoesNotMatch(GatewayError):
    code = "SignatureDoesNotMatch"
    status = 400
    message = "Specified signature is not matched with our calculation."

    @classmethod
    def for_acs(cls, string_to_sign: str) -> SignatureDoesNotMatch:
        # Exactly this wording: aliyunsdkcore compares message.split(':')[1] with its own
        # string-to-sign to tell a wrong secret from a wrong recipe (client.py).
        return cls(f"{cls.message} server string to sign is:{string_to_sign}")

    @classmethod
    def for_acs3(cls, string_to_sign: str) -> SignatureDoesNotMatch:
        # The V3 gateway's wording, as seen in a public SDK issue (aliyun/alibabacloud-csharp-sdk#40).
        return cls(
            f"Specified signature does not match our calculation. server StringToSign is [{string_to_sign}]"
        )


class ContentMD5NotMatched(GatewayError):
    code = "ContentMD5NotMatched"
    status = 400
    message = "Specified content md5 is not matched with your request body."


class InvalidAccessKeyIdNotFound(GatewayError):
    code = "InvalidAccessKeyId.NotFound"
    status = 404
    message = "Specified access key is not found."


class InvalidTimeStampFormat(GatewayError):
    code = "InvalidTimeStamp.Format"
    status = 400
    message = "Specified time stamp or date value is not well formatted."


class InvalidTimeStampExpired(GatewayError):
    code = "InvalidTimeStamp.Expired"
    status = 400
    message = "Specified time stamp or date value is expired."


class SignatureNonceUsed(GatewayError):
    code = "SignatureNonceUsed"
    status = 400
    message = "Specified signature nonce was used already."


class ThrottlingUser(GatewayError):
    code = "Throttling.User"
    status = 429
    message = "Request was denied due to user flow control."

    def __init__(
        self, message: str | None = None, *, status: int | None = None, retry_after: float = 0.0
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class InvalidActionNotFound(GatewayError):
    # UNCONFIRMED(alibaba-invalid-action): what the gateway answers for a path or method under
    # /green/ that no API serves.
    code = "InvalidAction.NotFound"
    status = 404
    message = "Specified api is not found, please check your url and method."


class InternalError(GatewayError):
    code = "InternalError"
    status = 500
    message = "The request processing has failed due to some unknown error, exception or failure."


class ServiceUnavailable(GatewayError):
    code = "ServiceUnavailable"
    status = 503
    message = "The request has failed due to a temporary failure of the server."


class BusinessError(AlibabaError):
    """An error in the HTTP 200 envelope: ``{"code": code, "msg": msg, "requestId": ...}``."""

    def __init__(self, code: int, msg: str | None = None) -> None:
        if code not in BUSINESS_CODES or code == 200:
            raise ValueError(f"{code} is not an Alibaba Green business error code")
        self.code = code
        self.msg = msg if msg is not None else BUSINESS_CODES[code]
        super().__init__(f"{code}: {self.msg}")


def bad_request(msg: str) -> BusinessError:
    """Invalid parameters: business code 400, a message naming the field."""
    # UNCONFIRMED(alibaba-bad-request-msg): the code is the sheet's; the wording of msg is ours.
    return BusinessError(400, msg)


def throttled(response: str, retry_after: float = 0.0) -> AlibabaError:
    """What an account over its quota gets, by the configured ``throttle_response``: the gateway's
    Throttling.User with HTTP 429 or 400, or the business envelope's 588 EXCEED_QUOTA."""
    # UNCONFIRMED(alibaba-throttle-response): which of them Green sends (alibaba.throttle_response);
    # UNCONFIRMED(alibaba-throttle-retry-after): whether it adds x-acs-retry-after
    # (alibaba.throttle_retry_after_header).
    if response == "588":
        return BusinessError(588, "EXCEED_QUOTA: request rate is over the quota")
    return ThrottlingUser(status=int(response), retry_after=retry_after)


#: Every gateway error class by its code, for fault rules.
GATEWAY_CODES: Mapping[str, type[GatewayError]] = by_code(GatewayError)


def check_fault_code(spec: Mapping[str, Any], where: str) -> None:
    """Raise RuleError unless an ``error`` fault rule names a business code (an integer) or a
    gateway code of this catalogue."""
    code = spec.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        if code == 200 or code not in BUSINESS_CODES:
            known = ", ".join(str(c) for c in BUSINESS_CODES if c != 200)
            raise RuleError(f"{where}.code", f"{code} is not an Alibaba business error code ({known})")
        return
    if code not in GATEWAY_CODES:
        raise RuleError(
            f"{where}.code",
            f"{code!r} is not in the Alibaba catalogue: a gateway code "
            f"({', '.join(sorted(GATEWAY_CODES))}) or a business code (an integer, e.g. 500)",
        )
