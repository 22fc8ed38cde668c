"""The Tencent CI error catalogue as it appears on the wire.

Every error is rendered by ``protocol.py`` as one XML body,
``<Error><Code/><Message/><Resource/><RequestId/><TraceId/></Error>``, with its HTTP status::

    TencentError                       code, status, message (class level)
     +-- InvalidArgument               400  a field has a wrong or missing value (message names it)
     +-- MalformedXML                  400  not well-formed, a DTD, or not the published schema
     +-- MissingRequestBodyError       400
     +-- XMLSizeLimit                  400  body over the size limit
     +-- AccessDenied                  403  no/unreadable Authorization, "Request has expired",
     |                                      key of another account
     +-- InvalidAccessKeyId            403  SecretId of no configured account
     +-- RequestTimeTooSkewed          403  q-sign-time starts too far in the future
     +-- SignatureDoesNotMatch         403  body also carries StringToSign and FormatString
     +-- NoSuchBucket                  404  the APPID in Host is no configured account's
     +-- NoSuchKey                     404  a path (or method) on a CI/COS host the emulator does not serve
     +-- MethodNotAllowed              405
     +-- NotImplemented                501  asynchronous audits (Input.Object / Input.Url of the text
     |                                      audit, Conf.Async 1 of the image audit)
     +-- SlowDown                      503  the account's rate limit
     +-- InvalidRequest 400, ExpiredToken 403, InternalError 500,
         ServiceUnavailable 503        (raised only by fault rules)

Codes and statuses are COS's documented list (CI publishes none of its own, see the reference
sheet); the messages are COS's wording where known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.catalogue import by_code
from ...core.faults import RuleError
from ...errors import WireError


class TencentError(WireError):
    """An answer the provider gives instead of a success."""

    code: ClassVar[str]
    status: ClassVar[int]
    message: ClassVar[str]

    def __init__(self, message: str | None = None) -> None:
        self.text = message if message is not None else self.message
        super().__init__(f"{self.code}: {self.text}")


class InvalidArgument(TencentError):
    code = "InvalidArgument"
    status = 400
    message = "Invalid Argument"

    @classmethod
    def field(cls, name: str, problem: str) -> InvalidArgument:
        return cls(f"Invalid argument {name}: {problem}")


class MalformedXML(TencentError):
    code = "MalformedXML"
    status = 400
    message = "The XML you provided was not well-formed or did not validate against our published schema."

    @classmethod
    def because(cls, why: str) -> MalformedXML:
        return cls(f"{cls.message} {why}")


class MissingRequestBodyError(TencentError):
    code = "MissingRequestBodyError"
    status = 400
    message = "Request body is empty."


class XMLSizeLimit(TencentError):
    code = "XMLSizeLimit"
    status = 400
    message = "The XML you provided was larger than the maximum size allowed."


class AccessDenied(TencentError):
    code = "AccessDenied"
    status = 403
    message = "Access Denied."


def request_expired() -> AccessDenied:
    return AccessDenied("Request has expired")


class InvalidAccessKeyId(TencentError):
    code = "InvalidAccessKeyId"
    status = 403
    message = "The access key Id format you provided is invalid, please check."


class RequestTimeTooSkewed(TencentError):
    code = "RequestTimeTooSkewed"
    status = 403
    message = "The difference between the request time and the server's time is too large."


class SignatureDoesNotMatch(TencentError):
    code = "SignatureDoesNotMatch"
    status = 403
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )

    def __init__(self, string_to_sign: str, format_string: str) -> None:
        super().__init__()
        # What the server computed, so a client can diff it against its own (as real COS does).
        self.string_to_sign = string_to_sign
        self.format_string = format_string


class NoSuchBucket(TencentError):
    code = "NoSuchBucket"
    status = 404
    message = "The specified bucket does not exist."


class NoSuchKey(TencentError):
    # What COS answers for a key its bucket does not hold; for an API that CI does not serve on its
    # own host the real code is UNCONFIRMED(tencent-no-such-key) (the documents list none), so the
    # emulator uses this one.
    code = "NoSuchKey"
    status = 404
    message = "The specified key does not exist."


class MethodNotAllowed(TencentError):
    code = "MethodNotAllowed"
    status = 405
    message = "The specified method is not allowed against this resource."


class SlowDown(TencentError):
    code = "SlowDown"
    status = 503
    message = "Please reduce your request rate."


class InvalidRequest(TencentError):
    code = "InvalidRequest"
    status = 400
    message = "The request is invalid."


class ExpiredToken(TencentError):
    code = "ExpiredToken"
    status = 403
    message = "The provided token has expired."


class InternalError(TencentError):
    code = "InternalError"
    status = 500
    message = "We encountered an internal error. Please try again."


class NotImplementedError_(TencentError):
    code = "NotImplemented"
    status = 501
    message = "A header you provided implies functionality that is not implemented."


class ServiceUnavailable(TencentError):
    code = "ServiceUnavailable"
    status = 503
    message = "Service is unavailable now. Please retry later."


#: Every error class by its code, for fault rules.
ERROR_CODES: Mapping[str, type[TencentError]] = by_code(TencentError)


def check_fault_code(spec: Mapping[str, Any], where: str) -> None:
    """Raise RuleError unless an ``error`` fault rule names a code of this catalogue."""
    if spec.get("code") not in ERROR_CODES:
        known = ", ".join(sorted(ERROR_CODES))
        raise RuleError(f"{where}.code", f"{spec.get('code')!r} is not in the Tencent CI catalogue ({known})")
