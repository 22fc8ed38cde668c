"""Tencent CI state: the badcases each account reported.

Plain typed classes, keyed by namespace and APPID (core/namespaces.py); no HTTP here. A reported
badcase "takes effect in subsequent moderation jobs after confirmation on the backend" (CI
documentation), so each one starts as ``reported`` and moves to ``confirmed`` through
:meth:`TencentState.confirm` (the admin action) or once ``tencent.confirm_after_seconds`` have
passed (:meth:`TencentState.confirm_due`); moderation results read only confirmed ones.

Every structure is bounded and every audit's cost is independent of history: badcases are kept by
RequestId (the newest ``tencent.max_badcases``), the confirmed ones indexed by what they correct (a
text, an image URL), and the ones still under review queued in the order they were reported.
How long the backend takes to confirm is undocumented: UNCONFIRMED(tencent-confirm-delay)
(tencent.confirm_after_seconds).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ...config import TencentAccount
from ...core.call import DEFAULT_NAMESPACE
from ...core.namespaces import MAX_NAMESPACES
from ...core.storage import Record, Store
from ...core.storage.codec import decode, encode
from ...core.storage.records import DELETED, NOWHERE, Records, Sink, Spaces
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
#: Badcases each account keeps in a namespace, the oldest reported forgotten first
#: (tencent.max_badcases). CI documents no limit.
MAX_BADCASES = 10_000

BadcaseState = Literal["reported", "confirmed"]

#: The kinds of record an account's state is stored as (core/storage).
KIND = "tencent."
KIND_STATE = "tencent.state"
KIND_BADCASE = "tencent.badcase"
KIND_TEXT_JOB = "tencent.text_job"
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


#: What a confirmed badcase corrects: (ContentType, the text or the image URL).
Subject = tuple[int, str]


class TencentState:
    """One account's state in one namespace. Every change is also written to ``sink`` (the store)."""

    def __init__(
        self,
        account: TencentAccount,
        namespace: str = DEFAULT_NAMESPACE,
        max_badcases: int = MAX_BADCASES,
        *,
        sink: Sink = NOWHERE,
        from_config: bool = True,
    ) -> None:
        self.account = account
        #: The namespace this state belongs to, and how many badcases it keeps.
        self.namespace = namespace
        self.max_badcases = max_badcases
        self.sink = sink
        #: RequestId -> badcase, oldest reported first (dicts keep insertion order).
        self._badcases: dict[str, Badcase] = {}
        #: Badcases still under review, in the order they were reported.
        self._pending: deque[Badcase] = deque()
        #: The confirmed badcases by what they correct, and the one that decides each (the most
        #: recently confirmed): an audit is one lookup.
        self._confirmed: dict[Subject, dict[str, Badcase]] = {}
        self._decider: dict[Subject, Badcase] = {}
        #: JobId -> the audit as answered, oldest first.
        self.text_jobs: Records[TextAudit] = Records(sink, KIND_TEXT_JOB, TextAudit, MAX_TEXT_JOBS)
        if from_config:
            sink.put(KIND_STATE, "", {"appid": account.appid})

    def restore(self, record: Record) -> None:
        """Put back one stored record (nothing is written)."""
        if record.kind == KIND_BADCASE:
            badcase = decode(record.value, Badcase)
            confirmed_at = badcase.confirmed_at
            badcase.state, badcase.confirmed_at = "reported", None
            self.report(badcase)
            if confirmed_at is not None:
                self.confirm(badcase.request_id, at=confirmed_at)
        elif record.kind == KIND_TEXT_JOB:
            self.text_jobs.restore(record.key, record.value)

    def follow(self, kind: str, key: str, value: Any) -> bool:
        """Another replica's record, taken one by one (nothing is written): a text job; a badcase
        reported, confirmed or let go there as it would be here."""
        if kind == KIND_BADCASE:
            durable, self.sink.durable = self.sink.durable, False
            try:
                self._follow_badcase(key, value)
            finally:
                self.sink.durable = durable
            return True
        if kind == KIND_TEXT_JOB:
            if value is DELETED:
                self.text_jobs.discard(key)
            else:
                self.text_jobs.restore(key, value)
            return True
        return kind == KIND_STATE

    def _follow_badcase(self, request_id: str, value: Any) -> None:
        known = self._badcases.get(request_id)
        if value is DELETED:
            if known is not None:
                del self._badcases[request_id]
                self._forget(known)
            return
        if known is None:
            self.restore(Record(KIND_BADCASE, self.namespace, "", request_id, value))
            return
        badcase = decode(value, Badcase)
        if badcase.confirmed_at is not None:
            self.confirm(request_id, at=badcase.confirmed_at)

    def dump(self) -> Iterator[tuple[str, str, Any]]:
        """Every record of this state, as (kind, key, JSON value)."""
        yield KIND_STATE, "", {"appid": self.account.appid}
        for badcase in self._badcases.values():
            yield KIND_BADCASE, badcase.request_id, encode(badcase)
        for key, job in self.text_jobs.items():
            yield KIND_TEXT_JOB, key, encode(job)

    @property
    def badcases(self) -> list[Badcase]:
        """Every badcase kept, oldest reported first."""
        return list(self._badcases.values())

    def report(self, badcase: Badcase) -> None:
        old = self._badcases.pop(badcase.request_id, None)
        if old is not None:
            self._forget(old)
        self._badcases[badcase.request_id] = badcase
        self.sink.put(KIND_BADCASE, badcase.request_id, encode(badcase))
        self._pending.append(badcase)
        while len(self._badcases) > self.max_badcases:
            gone = self._badcases.pop(next(iter(self._badcases)))
            self.sink.delete(KIND_BADCASE, gone.request_id)
            self._forget(gone)
        # The queue drops confirmed and forgotten badcases as they reach its head (confirm_due);
        # without reads it is swept here, once per max_badcases reports at most.
        if len(self._pending) > 2 * self.max_badcases:
            self._pending = deque(b for b in self._pending if self._under_review(b))

    def _under_review(self, badcase: Badcase) -> bool:
        return badcase.state != "confirmed" and self._badcases.get(badcase.request_id) is badcase

    def _forget(self, badcase: Badcase) -> None:
        subject = _subject(badcase)
        if subject is None or badcase.state != "confirmed":
            return
        same = self._confirmed.get(subject, {})
        same.pop(badcase.request_id, None)
        if self._decider.get(subject) is badcase:
            if same:
                # The later confirmed on a tie, as confirm() decides.
                self._decider[subject] = max(reversed(same.values()), key=lambda b: b.confirmed_at or 0.0)
            else:
                del self._decider[subject]
        if not same:
            self._confirmed.pop(subject, None)

    def remember_text_job(self, audit: TextAudit) -> None:
        self.text_jobs.set(audit.job_id, audit)

    def text_job(self, job_id: str) -> TextAudit | None:
        """The audit as it was answered when submitted: a badcase confirmed later does not change a
        finished job's result, only the jobs after it."""
        return self.text_jobs.get(job_id)

    def get(self, request_id: str) -> Badcase:
        badcase = self._badcases.get(request_id)
        if badcase is None:
            raise UnknownBadcase(request_id)
        return badcase

    def confirm(self, request_id: str, *, at: float) -> Badcase:
        """What the provider's backend does after review; confirming twice keeps the first time."""
        badcase = self.get(request_id)
        if badcase.state != "confirmed":
            badcase.state = "confirmed"
            badcase.confirmed_at = at
            self.sink.put(KIND_BADCASE, request_id, encode(badcase))
            subject = _subject(badcase)
            if subject is not None:
                self._confirmed.setdefault(subject, {})[request_id] = badcase
                decider = self._decider.get(subject)
                # Should several disagree, the most recently confirmed decides (the later on a tie).
                if decider is None or at >= (decider.confirmed_at or 0.0):
                    self._decider[subject] = badcase
        return badcase

    def confirmed(self) -> list[Badcase]:
        return [b for b in self._badcases.values() if b.state == "confirmed"]

    def confirm_due(self, now: float, after: float | None) -> None:
        """Confirm every badcase reported at least ``after`` seconds before ``now``, as of the moment
        its review would have finished. Evaluated lazily by whoever reads the state, so no timer
        runs and a ManualClock decides. Only the head of the queue (reported first) is looked at:
        a clock set back between two reports delays the later one until the earlier is due."""
        pending = self._pending
        while pending:
            head = pending[0]
            if not self._under_review(head):
                pending.popleft()  # confirmed by the admin action, or forgotten
                continue
            if after is None or head.received_at + after > now:
                return
            pending.popleft()
            self.confirm(head.request_id, at=head.received_at + after)

    def correction_for(self, content_type: int, key: str) -> Badcase | None:
        """The confirmed badcase that decides the verdict for this text (ContentType 1) or image URL
        (2): the most recently confirmed one, should several disagree."""
        return self._decider.get((content_type, key))


def _subject(badcase: Badcase) -> Subject | None:
    key = badcase.text if badcase.content_type == CONTENT_TEXT else badcase.url
    return None if key is None else (badcase.content_type, key)


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
    """Every configured Tencent account and its state in each namespace."""

    def __init__(
        self,
        accounts: tuple[TencentAccount, ...],
        *,
        max_badcases: int = MAX_BADCASES,
        max_namespaces: int = MAX_NAMESPACES,
        store: Store | None = None,
        seed: Callable[[str, str], Iterable[Record]] | None = None,
    ) -> None:
        self._accounts = accounts
        self._max_badcases = max_badcases
        self._by_secret_id = {a.secret_id: a for a in accounts}
        self._by_appid = {a.appid: a for a in accounts}
        self.spaces: Spaces[TencentAccount, TencentState] = Spaces(
            KIND, self._by_appid, self._make, limit=max_namespaces, store=store, seed=seed
        )

    def _make(self, namespace: str, account: TencentAccount, sink: Sink, from_config: bool) -> TencentState:
        return TencentState(account, namespace, self._max_badcases, sink=sink, from_config=from_config)

    def reset(self, namespace: str | None = None) -> None:
        """Back to the start config: one namespace's state, or every namespace's (None)."""
        self.spaces.reset(namespace)

    @property
    def accounts(self) -> tuple[TencentAccount, ...]:
        return self._accounts

    def by_secret_id(self, secret_id: str) -> TencentAccount | None:
        return self._by_secret_id.get(secret_id)

    def by_appid(self, appid: str) -> TencentAccount | None:
        return self._by_appid.get(appid)

    def state(self, account: TencentAccount, namespace: str = DEFAULT_NAMESPACE) -> TencentState:
        return self.spaces.get(namespace)[account.appid]

    def states_in(self, namespace: str = DEFAULT_NAMESPACE) -> dict[str, TencentState]:
        """A namespace's state of every account, by APPID."""
        return self.spaces.get(namespace)

    def namespaces(self, namespace: str | None = None) -> list[dict[str, TencentState]]:
        """The states of every namespace that has any (None), or of ``namespace`` if it has."""
        return [states for _, states in self.spaces.items(namespace)]

    @property
    def states(self) -> dict[str, TencentState]:
        """The default namespace's state of every account, by APPID."""
        return self.states_in(DEFAULT_NAMESPACE)
