"""Alibaba Green state: what each account fed back, and the feedback-based libraries it builds.

Plain typed classes, keyed by namespace and account uid (core/namespaces.py); no HTTP here. Later
parts (callbacks, scans that honour feedback) read :class:`AlibabaState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ...config import AlibabaAccount
from ...core.call import DEFAULT_NAMESPACE
from ...core.namespaces import MAX_NAMESPACES, PerNamespace
from .textlib import DEFAULT_SIMILARITY, TextLibraries

IMAGE_SCENES: dict[str, frozenset[str]] = {
    "porn": frozenset({"normal", "sexy", "porn"}),
    "terrorism": frozenset(
        {
            "normal",
            "bloody",
            "explosion",
            "outfit",
            "logo",
            "weapon",
            "politics",
            "violence",
            "crowd",
            "parade",
            "carcrash",
            "flag",
            "location",
            "drug",
            "gamble",
            "others",
        }
    ),
    "ad": frozenset(
        {
            "normal",
            "politics",
            "porn",
            "abuse",
            "terrorism",
            "contraband",
            "spam",
            "npx",
            "qrcode",
            "programCode",
            "ad",
        }
    ),
}
#: The label a blocked image gets in a scene when the verdict names none of that scene's labels.
BLOCK_LABELS: dict[str, str] = {"porn": "porn", "terrorism": "others", "ad": "ad"}
#: Every label the documents name for any scene: ImageScanFeedback accepts any of them in any scene
#: unless ``alibaba.strict_labels`` (document 000 advises "porn", "ad", "terrorism" whatever the
#: scene; the per-scene lists above are the emulator's reading of the scan documents).
IMAGE_LABELS: frozenset[str] = frozenset().union(*IMAGE_SCENES.values())
TEXT_LABELS: frozenset[str] = frozenset(
    {
        "normal",
        "spam",
        "ad",
        "politics",
        "terrorism",
        "abuse",
        "porn",
        "flood",
        "contraband",
        "meaningless",
        "customized",
    }
)

ListKind = Literal["whitelist", "blacklist"]

#: Feedback records, reviews and asynchronous scan results each account keeps: the newest 10,000
#: (the journal's default cap), the oldest forgotten first, so a long load test keeps memory flat.
#: What the records *changed* (the feedback-based libraries) is bounded by MAX_LIBRARY_ENTRIES.
MAX_RECORDS = 10_000
#: Samples each feedback-based library (image, text) of an account keeps in a namespace, the least
#: recently taught forgotten first (alibaba.max_library_entries). The provider documents no limit.
MAX_LIBRARY_ENTRIES = 10_000


def _keep_newest(records: list[Any]) -> None:
    # Trimmed in batches, so the list is not shifted on every append once full.
    if len(records) > MAX_RECORDS + MAX_RECORDS // 10:
        del records[: len(records) - MAX_RECORDS]


def _put_bounded(store: dict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    while len(store) > MAX_RECORDS:
        del store[next(iter(store))]


@dataclass(frozen=True, slots=True)
class ImageFeedback:
    request_id: str
    received_at: float
    task_id: str | None = None
    suggestion: str | None = None
    url: str | None = None
    scenes: tuple[str, ...] = ()
    label: str | None = None
    note: str | None = None
    #: The machine's result for the sample before this feedback (the scan that gave ``task_id``, or
    #: what a scan would have answered); set when a notification needs it as its ``scanResult``.
    machine: TaskResult | None = None


@dataclass(frozen=True, slots=True)
class TextFeedback:
    request_id: str
    received_at: float
    task_id: str
    data_id: str | None = None
    content: str | None = None
    label: str | None = None
    note: str | None = None
    #: As for :class:`ImageFeedback`.
    machine: TaskResult | None = None


@dataclass(frozen=True, slots=True)
class Review:
    """A person's verdict on a sample in the console (what triggers a result notification)."""

    review_id: str
    received_at: float
    task_id: str
    suggestion: Literal["block", "pass"]
    labels: tuple[str, ...] = ()
    url: str | None = None
    data_id: str | None = None


@dataclass(frozen=True, slots=True)
class HitContext:
    """Where a text hit a library: the words, and the library (absent for a default verdict)."""

    context: str
    lib_name: str | None = None
    lib_code: str | None = None
    #: UNCONFIRMED(alibaba-rule-type): the documents name the field, not its values.
    rule_type: str | None = None


@dataclass(frozen=True, slots=True)
class Detail:
    label: str
    contexts: tuple[HitContext, ...]


@dataclass(frozen=True, slots=True)
class SceneResult:
    """The verdict of one scene of a scanned task."""

    scene: str
    label: str
    suggestion: str
    rate: float
    #: Text hits, for TextScan (None: no details).
    details: tuple[Detail, ...] | None = None


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One task of a scan's answer: judged (code 200, with results) or refused (its code and why).
    Also the ``scanResult`` of a notification."""

    code: int
    msg: str
    data_id: str | None = None
    task_id: str | None = None
    url: str | None = None
    content: str | None = None
    filtered_content: str | None = None
    results: tuple[SceneResult, ...] | None = None


@dataclass(frozen=True, slots=True)
class AuditResult:
    """A person's verdict, the ``auditResult`` of a notification."""

    suggestion: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """One sample in a feedback-based library: how later scans must judge it."""

    kind: ListKind
    label: str
    #: The scenes the verdict applies to; empty means every scene.
    scenes: tuple[str, ...]
    request_id: str


def image_list_kind(fb: ImageFeedback) -> ListKind | None:
    """``suggestion: pass`` or label ``normal`` whitelists; ``block`` or a risky label blacklists."""
    if fb.label is not None:
        return "whitelist" if fb.label == "normal" else "blacklist"
    if fb.suggestion == "pass":
        return "whitelist"
    if fb.suggestion == "block":
        return "blacklist"
    return None


@dataclass
class AlibabaState:
    account: AlibabaAccount
    image_feedback: list[ImageFeedback] = field(default_factory=list)
    text_feedback: list[TextFeedback] = field(default_factory=list)
    #: The feedback-based image library: URL -> latest verdict. Created automatically; it cannot be
    #: deleted or disabled.
    image_library: dict[str, LibraryEntry] = field(default_factory=dict)
    #: The feedback-based text library: exact text -> latest verdict.
    text_library: dict[str, LibraryEntry] = field(default_factory=dict)
    reviews: list[Review] = field(default_factory=list)
    #: How similar a text must be to a text pattern to hit it (alibaba.pattern_similarity).
    similarity: float = DEFAULT_SIMILARITY
    #: The console's callback setting; starts from the config, changed by the admin API.
    callback_url: str | None = field(init=False)
    callback_seed: str = field(init=False)
    #: Custom text libraries, preloaded from the config.
    text_libraries: TextLibraries = field(init=False)
    #: Results of asynchronous image scans, by taskId, for ImageAsyncScanResults.
    scan_tasks: dict[str, TaskResult] = field(default_factory=dict)
    #: The namespace this state belongs to, and how many samples each feedback-based library keeps.
    namespace: str = DEFAULT_NAMESPACE
    max_library_entries: int = MAX_LIBRARY_ENTRIES
    #: What every scan answered, by taskId (the newest MAX_RECORDS): a notification's scanResult.
    machine_results: dict[str, TaskResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.callback_url = self.account.callback_url
        self.callback_seed = self.account.seed
        self.text_libraries = TextLibraries(self.similarity)
        for spec in self.account.text_libraries:
            lib = self.text_libraries.create(spec.name, spec.kind, spec.list_type, spec.scenes)
            self.text_libraries.add(lib.code, spec.items)

    def add_scan_task(self, result: TaskResult) -> None:
        """An asynchronous scan's result, for ImageAsyncScanResults (the newest MAX_RECORDS)."""
        assert result.task_id is not None
        _put_bounded(self.scan_tasks, result.task_id, result)

    def remember_result(self, result: TaskResult) -> None:
        """What a scan answered for one task, for the notifications about that task later."""
        if result.task_id is not None and result.results is not None:
            _put_bounded(self.machine_results, result.task_id, result)

    def reflux(self, scenes: tuple[str, ...]) -> tuple[str, ...]:
        """The scenes of a feedback (none named: every scene) that the account's real-time data
        reflux covers (document 000: enabled per account and per chosen reflux scenario)."""
        # UNCONFIRMED(alibaba-reflux-default): every scene unless the account names fewer.
        enabled = self.account.reflux_scenes
        return tuple(s for s in scenes if s in enabled) if scenes else tuple(enabled)

    def add_image_feedback(self, fb: ImageFeedback) -> None:
        """Record the feedback; in the account's reflux scenes it also joins the reflux library
        (whitelist or blacklist) and so changes the next scan of the image. Elsewhere it only trains
        the model, which "may not take effect immediately": no scan result changes."""
        self.image_feedback.append(fb)
        _keep_newest(self.image_feedback)
        kind = image_list_kind(fb)
        scenes = self.reflux(fb.scenes)
        if fb.url and kind is not None and scenes:
            label = fb.label or ("normal" if kind == "whitelist" else "block")
            self._learn(self.image_library, fb.url, LibraryEntry(kind, label, scenes, fb.request_id))

    def add_review(self, review: Review) -> None:
        """A reviewed image joins the feedback-based library like an ImageScanFeedback would."""
        self.reviews.append(review)
        _keep_newest(self.reviews)
        if review.url:
            if review.suggestion == "pass":
                entry = LibraryEntry("whitelist", "normal", (), review.review_id)
            else:
                label = review.labels[0] if review.labels else "block"
                entry = LibraryEntry("blacklist", label, (), review.review_id)
            self._learn(self.image_library, review.url, entry)

    def add_text_feedback(self, fb: TextFeedback) -> None:
        self.text_feedback.append(fb)
        _keep_newest(self.text_feedback)
        if fb.content and fb.label:
            kind: ListKind = "whitelist" if fb.label == "normal" else "blacklist"
            self._learn(self.text_library, fb.content, LibraryEntry(kind, fb.label, (), fb.request_id))

    def _learn(self, library: dict[str, LibraryEntry], key: str, entry: LibraryEntry) -> None:
        """The latest verdict for ``key``; the least recently taught sample goes past the cap."""
        library.pop(key, None)  # re-taught: now the newest
        library[key] = entry
        while len(library) > self.max_library_entries:
            del library[next(iter(library))]


class AlibabaBackend:
    """Every configured Alibaba account and its state in each namespace."""

    def __init__(
        self,
        accounts: tuple[AlibabaAccount, ...],
        similarity: float = DEFAULT_SIMILARITY,
        *,
        max_library_entries: int = MAX_LIBRARY_ENTRIES,
        max_namespaces: int = MAX_NAMESPACES,
    ) -> None:
        self._accounts = accounts
        self._similarity = similarity
        self._max_library_entries = max_library_entries
        self._by_key = {a.access_key_id: a for a in accounts}
        self._by_uid = {a.uid: a for a in accounts}
        self._spaces: PerNamespace[dict[str, AlibabaState]] = PerNamespace(self._start, max_namespaces)

    def _start(self, namespace: str) -> dict[str, AlibabaState]:
        """A namespace's states as the start config has them."""
        return {
            a.uid: AlibabaState(
                a,
                similarity=self._similarity,
                namespace=namespace,
                max_library_entries=self._max_library_entries,
            )
            for a in self._accounts
        }

    def reset(self, namespace: str | None = None) -> None:
        """Back to the start config: one namespace's state, or every namespace's (None)."""
        self._spaces.reset(namespace)

    @property
    def accounts(self) -> tuple[AlibabaAccount, ...]:
        return self._accounts

    def by_access_key(self, access_key_id: str) -> AlibabaAccount | None:
        return self._by_key.get(access_key_id)

    def find(self, key: str) -> AlibabaAccount | None:
        """An account by AccessKeyId or uid."""
        return self._by_key.get(key) or self._by_uid.get(key)

    def state(self, account: AlibabaAccount, namespace: str = DEFAULT_NAMESPACE) -> AlibabaState:
        return self._spaces.get(namespace)[account.uid]

    def states_in(self, namespace: str = DEFAULT_NAMESPACE) -> dict[str, AlibabaState]:
        """A namespace's state of every account, by uid."""
        return self._spaces.get(namespace)

    @property
    def states(self) -> dict[str, AlibabaState]:
        """The default namespace's state of every account, by uid."""
        return self.states_in(DEFAULT_NAMESPACE)
