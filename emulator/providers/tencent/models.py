"""Tencent CI state: the badcases each account reported.

Plain typed classes, keyed by APPID; no HTTP here. A reported badcase "takes effect in subsequent
moderation jobs after confirmation on the backend" (CI documentation), so each one starts as
``reported`` and moves to ``confirmed`` through :meth:`TencentState.confirm` (the admin action) or
once ``tencent.confirm_after_seconds`` have passed (:meth:`TencentState.confirm_due`); moderation
results read only confirmed ones. How long the backend takes is undocumented:
UNCONFIRMED(tencent-confirm-delay) (tencent.confirm_after_seconds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ...config import TencentAccount
from ...errors import NotFound

#: The label names CI documents; ``strict_labels`` accepts only these.
KNOWN_LABELS: frozenset[str] = frozenset(
    {"Normal", "Porn", "Ads", "Illegal", "Abuse", "Terrorism", "Politics", "Teenager"}
)

CONTENT_TEXT = 1
CONTENT_IMAGE = 2

#: The elements of a badcase: document 002's, and Url, which image badcases carry.
BADCASE_ELEMENTS = frozenset(
    {"ContentType", "Label", "SuggestedLabel", "Text", "Url", "JobId", "ModerationTime"}
)
#: ModerationTime as document 002 shows it: 2021-08-07T12:12:12+08:00 (or Z).
MODERATION_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})")


def moderation_time_ok(value: str) -> bool:
    """Shaped like 2021-08-07T12:12:12+08:00 and a real time."""
    if not MODERATION_TIME.fullmatch(value.strip()):
        return False
    try:
        datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True

#: Text audit jobs each account keeps for DescribeAuditingTextJob (GET /text/auditing/<jobId>): the
#: newest 10,000, the oldest forgotten first. CI keeps results for a month (three months, say the
#: international pages); a count rather than a time bound keeps memory flat under a long load test
#: while any test that queries what it just submitted still finds it.
MAX_TEXT_JOBS = 10_000

BadcaseState = Literal["reported", "confirmed"]
#: What an image audit's Input names: a key in the bucket, a link, or the image itself (base64).
ImageSource = Literal["Content", "Object", "Url"]


class UnknownBadcase(NotFound):
    """No badcase was reported under this RequestId."""


@dataclass(slots=True)
class Badcase:
    request_id: str
    received_at: float
    bucket: str
    region: str
    content_type: int
    label: str
    suggested_label: str
    #: The decoded text for ContentType 1.
    text: str | None = None
    url: str | None = None
    job_id: str | None = None
    #: As sent (ISO 8601 with offset).
    moderation_time: str | None = None
    state: BadcaseState = "reported"
    confirmed_at: float | None = None


@dataclass
class TencentState:
    account: TencentAccount
    badcases: list[Badcase] = field(default_factory=list)
    #: JobId -> the audit as answered, oldest first (dicts keep insertion order).
    text_jobs: dict[str, TextAudit] = field(default_factory=dict)

    def report(self, badcase: Badcase) -> None:
        self.badcases.append(badcase)

    def remember_text_job(self, audit: TextAudit) -> None:
        self.text_jobs[audit.job_id] = audit
        while len(self.text_jobs) > MAX_TEXT_JOBS:
            del self.text_jobs[next(iter(self.text_jobs))]

    def text_job(self, job_id: str) -> TextAudit | None:
        """The audit as it was answered when submitted: a badcase confirmed later does not change a
        finished job's result, only the jobs after it."""
        return self.text_jobs.get(job_id)

    def get(self, request_id: str) -> Badcase:
        for badcase in self.badcases:
            if badcase.request_id == request_id:
                return badcase
        raise UnknownBadcase(request_id)

    def confirm(self, request_id: str, *, at: float) -> Badcase:
        """What the provider's backend does after review; confirming twice keeps the first time."""
        badcase = self.get(request_id)
        if badcase.state != "confirmed":
            badcase.state = "confirmed"
            badcase.confirmed_at = at
        return badcase

    def confirmed(self) -> list[Badcase]:
        return [b for b in self.badcases if b.state == "confirmed"]

    def confirm_due(self, now: float, after: float | None) -> None:
        """Confirm every badcase reported at least ``after`` seconds before ``now``, as of the moment
        its review would have finished. Evaluated lazily by whoever reads the state, so no timer
        runs and a ManualClock decides."""
        if after is None:
            return
        for badcase in self.badcases:
            if badcase.state == "reported" and badcase.received_at + after <= now:
                self.confirm(badcase.request_id, at=badcase.received_at + after)

    def correction_for(self, content_type: int, key: str) -> Badcase | None:
        """The confirmed badcase that decides the verdict for this text (ContentType 1) or image URL
        (2): the most recently confirmed one, should several disagree."""
        found: Badcase | None = None
        for badcase in self.badcases:
            if badcase.state != "confirmed" or badcase.content_type != content_type:
                continue
            if (badcase.text if content_type == CONTENT_TEXT else badcase.url) != key:
                continue
            if found is None or (badcase.confirmed_at or 0.0) >= (found.confirmed_at or 0.0):
                found = badcase
        return found


@dataclass(frozen=True, slots=True)
class SceneResult:
    """One moderation scene of a text or image audit (``PornInfo``, ``AdsInfo``, ...)."""

    scene: str
    #: 0 normal, 1 block, 2 review.
    hit_flag: int
    score: int
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextAudit:
    """The outcome of one synchronous text audit (CreateAuditingTextJob with Input.Content)."""

    job_id: str
    created_at: float
    #: As sent: base64 of the text.
    content: str
    text: str
    data_id: str | None
    #: The verdict: Normal, or the label of the scene that hit.
    label: str
    #: 0 normal, 1 block, 2 review.
    result: int
    score: int
    scenes: tuple[SceneResult, ...]
    user_info: dict[str, str] = field(default_factory=dict)
    #: The RequestId of the confirmed badcase that decided the verdict, if one did.
    decided_by: str | None = None


@dataclass(frozen=True, slots=True)
class ImageAudit:
    """The outcome of one image of a synchronous batch image audit (POST /image/auditing)."""

    job_id: str
    created_at: float
    data_id: str | None
    #: The input that was audited: ``Object`` (a key in the bucket), ``Url`` or ``Content``.
    source: ImageSource
    #: The key or URL as sent; None for Content (CI echoes only Object and Url).
    target: str | None
    label: str
    #: 0 normal, 1 block, 2 review.
    result: int
    score: int
    scenes: tuple[SceneResult, ...]
    user_info: dict[str, str] = field(default_factory=dict)
    #: The RequestId of the confirmed badcase that decided the verdict, if one did.
    decided_by: str | None = None


class TencentBackend:
    """Every configured Tencent account and its state."""

    def __init__(self, accounts: tuple[TencentAccount, ...]) -> None:
        self._accounts = accounts
        self._by_secret_id = {a.secret_id: a for a in accounts}
        self._by_appid = {a.appid: a for a in accounts}
        self.states: dict[str, TencentState] = {}
        self.reset()

    def reset(self, appids: set[str] | None = None) -> None:
        """Back to the start config: every account, or those in ``appids``."""
        for a in self._accounts:
            if appids is None or a.appid in appids:
                self.states[a.appid] = TencentState(a)

    @property
    def accounts(self) -> tuple[TencentAccount, ...]:
        return self._accounts

    def by_secret_id(self, secret_id: str) -> TencentAccount | None:
        return self._by_secret_id.get(secret_id)

    def by_appid(self, appid: str) -> TencentAccount | None:
        return self._by_appid.get(appid)

    def state(self, account: TencentAccount) -> TencentState:
        return self.states[account.appid]
