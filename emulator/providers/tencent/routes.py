"""Tencent CI in the gateway: its action table, and how its calls are identified (Host: bucket, APPID,
region), authenticated, throttled, read and answered (core/gateway.py runs the steps in order)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from ...config import Settings, TencentAccount, TencentSettings
from ...core.call import BodyTooLarge, Call
from ...core.gateway import Action, Identity
from ...core.headers import HeaderLists, query_of
from ...keys import GATEWAY, SETTINGS, STATE, STORE
from . import handlers, protocol, signing
from .errors import (
    AccessDenied,
    InvalidAccessKeyId,
    MethodNotAllowed,
    NoSuchBucket,
    NoSuchKey,
    SlowDown,
    TencentError,
    XMLSizeLimit,
    check_fault_code,
)
from .handlers import TencentContext
from .models import TencentBackend

TENCENT_BACKEND = web.AppKey("tencent_backend", TencentBackend)

REPORT_BADCASE = "ReportBadcase"
#: The action's name in CI's permission list (ci:CreateAuditingTextJob).
CREATE_AUDITING_TEXT_JOB = "CreateAuditingTextJob"
DESCRIBE_AUDITING_TEXT_JOB = "DescribeAuditingTextJob"
#: Named as cos-go-sdk-v5 names the call (ci.go, BatchImageAuditing): CI's permission for it,
#: ci:CreateAuditingPictureJob, also covers the single-image API, so it would not tell them apart.
BATCH_IMAGE_AUDITING = "BatchImageAuditing"

#: The actions served, as cos-python-sdk-v5 calls them (cos_client.py: ci_report_badcase,
#: ci_auditing_text_submit, ci_auditing_text_query, ci_auditing_image_batch).
ACTIONS: tuple[Action, ...] = (
    Action(
        REPORT_BADCASE,
        "POST",
        "/report/badcase",
        decode=lambda root, params: protocol.decode_request(root),
        handle=handlers.report_badcase,
        encode=protocol.success,
    ),
    Action(
        CREATE_AUDITING_TEXT_JOB,
        "POST",
        "/text/auditing",
        decode=lambda root, params: protocol.decode_text_auditing(root),
        handle=handlers.create_auditing_text_job,
        encode=protocol.text_auditing_success,
    ),
    Action(
        # CI documents no request body; one sent anyway is ignored. The query answers the JobsDetail
        # the submit answered (DescribeAuditingTextJob documents the same fields); only RequestId
        # is the query's own.
        DESCRIBE_AUDITING_TEXT_JOB,
        "GET",
        "/text/auditing/{jobId}",
        decode=lambda root, params: params["jobId"],
        handle=handlers.describe_auditing_text_job,
        encode=protocol.text_auditing_success,
        parses_body=False,
    ),
    Action(
        BATCH_IMAGE_AUDITING,
        "POST",
        "/image/auditing",
        decode=lambda root, params: protocol.decode_image_auditing(root),
        handle=handlers.batch_image_auditing,
        encode=protocol.image_auditing_success,
    ),
)


# <bucket>-<appid>.ci.<region>.myqcloud.com. The SDK sends .cos. instead of .ci. when configured
# with IP/Port (cos_client.py, send_request: Host = conf.get_host(), built on the COS endpoint), and
# .tencentcos.cn when the COS endpoint uses the new domain (EnableOldDomain=False).
_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-(?P<appid>\d+)"
    r"\.(?:ci|cos)\.(?P<region>[a-z0-9-]+)\.(?:myqcloud\.com|tencentcos\.cn)(?::\d+)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Target:
    bucket: str
    appid: str
    region: str


@functools.lru_cache(maxsize=256)
def parse_host(host: str) -> Target | None:
    """Bucket, APPID and region from a CI/COS host name, or None for an IP or custom domain."""
    match = _HOST.match(host.strip())
    if match is None:
        return None
    return Target(match["bucket"].lower(), match["appid"], match["region"].lower())


class Tencent:
    """The Tencent CI provider (core/gateway.py, Provider)."""

    name = "tencent"
    wire_error: type[Exception] = TencentError

    def __init__(self, app: web.Application, settings: Settings, backend: TencentBackend) -> None:
        self._settings = settings
        self._cfg: TencentSettings = settings.tencent
        self._backend = backend

    def actions(self) -> Sequence[Action]:
        if self._settings.tencent.strict_elements:
            return ACTIONS
        # Audits whose undocumented elements are ignored rather than refused.
        lenient = {
            CREATE_AUDITING_TEXT_JOB: lambda root, params: protocol.decode_text_auditing(root, strict=False),
            BATCH_IMAGE_AUDITING: lambda root, params: protocol.decode_image_auditing(root, strict=False),
        }
        return tuple(replace(a, decode=lenient[a.name]) if a.name in lenient else a for a in ACTIONS)

    def new_request_id(self, now: float) -> str:
        return protocol.new_request_id(now)

    def identify(self, request: web.Request) -> Identity:
        backend = self._backend
        target = parse_host(request.host)
        account = backend.by_appid(target.appid) if target is not None else None
        if account is None:
            try:
                key = signing.parse_authorization(request.headers.get("Authorization")).secret_id
            except TencentError:
                key = ""
            account = backend.by_secret_id(key)
            if account is None and target is None and not self._cfg.verify_signatures:
                # Relaxed: any signature goes; with neither an APPID nor a known key, the first account.
                account = backend.accounts[0] if backend.accounts else None
        if account is None:
            return Identity(None, None, None, target)
        return Identity(account, account.appid, account.namespace, target)

    def body_limit(self) -> int:
        return min(self._settings.server.max_body_bytes, self._cfg.max_body_bytes)

    def body_too_large(self, exc: BodyTooLarge) -> Exception:
        return XMLSizeLimit(f"{XMLSizeLimit.message} ({exc})")

    async def authenticate(self, request: web.Request, call: Call, who: Identity) -> Identity:
        # The COS signature does not cover the body: refused calls never read it here (the gateway
        # keeps its first bytes for the journal).
        target: Target | None = who.extra
        backend = self._backend
        owner = None
        if target is not None:
            owner = backend.by_appid(target.appid)
            if owner is None:
                raise NoSuchBucket()
        if not self._cfg.verify_signatures:
            if who.account is None:
                raise InvalidAccessKeyId()
            return who
        secret_id = signing.authenticate(
            _signed_request(request),
            lambda key: a.secret_key if (a := backend.by_secret_id(key)) else None,
            now=call.received_at,
            max_skew=self._cfg.max_clock_skew_seconds,
        )
        account = backend.by_secret_id(secret_id)
        assert account is not None  # authenticate() found its key
        if owner is not None and owner is not account:
            raise AccessDenied(f"{AccessDenied.message} The key does not belong to APPID {owner.appid}.")
        return Identity(account, account.appid, account.namespace, target)

    def rate_limit(self, who: Identity, action: Action) -> int | None:
        account: TencentAccount = who.account
        return account.rate_limit

    def throttled(self, retry_after: float) -> Exception:
        return SlowDown()

    def parse(self, body: bytes) -> Any:
        return protocol.parse_xml(body)

    def view(self, tree: Any) -> Any:
        return protocol.element_tree(tree)

    def context(self, request: web.Request, call: Call, who: Identity) -> TencentContext:
        account: TencentAccount = who.account
        target: Target | None = who.extra
        cfg = self._cfg
        return TencentContext(
            account=account,
            state=self._backend.state(account, call.namespace),
            request_id=call.request_id,
            received_at=call.received_at,
            bucket=target.bucket if target else "",
            region=target.region if target else "",
            strict_labels=cfg.strict_labels,
            confirm_after=cfg.confirm_after_seconds,
            text_labels=cfg.text_labels,
            settings=cfg,
        )

    def render_error(self, err: Exception, request: web.Request, call: Call) -> web.StreamResponse:
        assert isinstance(err, TencentError)
        return protocol.error(
            err, request_id=call.request_id, resource=_resource(request), now=call.received_at
        )

    def claims(self, request: web.Request) -> bool:
        # On a CI/COS host CI answers with its XML error, as the SDK expects of that host.
        return parse_host(request.host) is not None

    def not_found(self, request: web.Request) -> Exception:
        return NoSuchKey(
            f"{NoSuchKey.message} The emulator serves no CI API at {request.method} {request.path}."
        )

    def method_not_allowed(self, request: web.Request, action: Action) -> tuple[Exception, str | None]:
        err = MethodNotAllowed(f"{MethodNotAllowed.message} {request.method} is not {action.method}.")
        return err, action.name

    def check_fault_error(self, spec: Mapping[str, Any], where: str) -> None:
        if spec["type"] == "modify":
            protocol.check_edit(spec, where)
        else:
            check_fault_code(spec, where)

    def fault_response(self, spec: Mapping[str, Any], request: web.Request, call: Call) -> web.StreamResponse:
        if spec["type"] == "throttle":
            return self.render_error(SlowDown(), request, call)
        return protocol.fault_error(
            spec, request_id=call.request_id, resource=_resource(request), now=call.received_at
        )

    def modify_body(self, body: bytes, edit: Mapping[str, Any]) -> bytes:
        return protocol.modify_body(body, edit)

    def health(self) -> dict[str, Any]:
        return {"accounts": len(self._backend.accounts)}

    def reset(self, namespace: str | None) -> None:
        self._backend.reset(namespace)


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    backend = app[TENCENT_BACKEND] = TencentBackend(
        settings.tencent.accounts,
        max_badcases=settings.tencent.max_badcases,
        max_namespaces=settings.server.max_namespaces,
        store=app[STORE],
        seed=app[STATE].seed,
    )
    app[STATE].register(backend.spaces)
    app[GATEWAY].register(app, Tencent(app, settings, backend))


def _resource(request: web.Request) -> str:
    # COS names the bucket host and key, e.g. examplebucket-1250000000.ci.ap-beijing.myqcloud.com/...
    return f"{request.host}{request.path}" if request.host else request.path


def _signed_request(request: web.Request) -> signing.SignedRequest:
    return signing.SignedRequest(
        method=request.method,
        # Decoded, as signed; for a proxy's absolute-form target this is still only the path.
        path=request.path,
        query=list(query_of(request).items()),
        headers=HeaderLists(request.headers),
    )
