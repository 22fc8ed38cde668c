"""Alibaba Green state: what each account fed back, and the feedback-based libraries it builds.

Plain typed classes, keyed by namespace and account uid (core/namespaces.py); no HTTP here. Later
parts (callbacks, scans that honour feedback) read :class:`AlibabaState`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ...config import AlibabaAccount
from ...core.call import DEFAULT_NAMESPACE
from ...core.namespaces import MAX_NAMESPACES
from ...core.storage import Record, Store
from ...core.storage.codec import encode
from ...core.storage.records import DELETED, NOWHERE, Log, Records, Sink, Spaces
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


#: The kinds of record an account's state is stored as (core/storage), by what they hold.
KIND = "alibaba."
KIND_STATE = "alibaba.state"
KIND_CONSOLE = "alibaba.console"
KIND_IMAGE_LIBRARY = "alibaba.image_library"
KIND_TEXT_LIBRARY = "alibaba.text_library"
KIND_SCAN_TASK = "alibaba.scan_task"
KIND_MACHINE_RESULT = "alibaba.machine_result"


class AlibabaState:
    """One account's state in one namespace. Every change is also written to ``sink`` (the store)."""

    def __init__(
        self,
        account: AlibabaAccount,
        *,
        similarity: float = DEFAULT_SIMILARITY,
        namespace: str = DEFAULT_NAMESPACE,
        max_library_entries: int = MAX_LIBRARY_ENTRIES,
        sink: Sink = NOWHERE,
        from_config: bool = True,
        on_console: Callable[[AlibabaState], None] | None = None,
    ) -> None:
        self.account = account
        #: Told whenever the console's callback URL is set or restored (its host is allowed).
        self.on_console = on_console
        #: How similar a text must be to a text pattern to hit it (alibaba.pattern_similarity).
        self.similarity = similarity
        #: The namespace this state belongs to, and how many samples each feedback-based library keeps.
        self.namespace = namespace
        self.max_library_entries = max_library_entries
        self.sink = sink
        # The feedback and review records themselves are not stored: nothing reads them back (the
        # journal holds the calls), what they taught is (the feedback-based libraries below).
        self.image_feedback: Log[ImageFeedback] = Log(NOWHERE, "", ImageFeedback, MAX_RECORDS)
        self.text_feedback: Log[TextFeedback] = Log(NOWHERE, "", TextFeedback, MAX_RECORDS)
        self.reviews: Log[Review] = Log(NOWHERE, "", Review, MAX_RECORDS)
        #: The feedback-based image library: URL -> latest verdict. Created automatically; it cannot
        #: be deleted or disabled. The least recently taught sample goes past the cap.
        self.image_library: Records[LibraryEntry] = Records(
            sink, KIND_IMAGE_LIBRARY, LibraryEntry, max_library_entries
        )
        #: The feedback-based text library: exact text -> latest verdict.
        self.text_library: Records[LibraryEntry] = Records(
            sink, KIND_TEXT_LIBRARY, LibraryEntry, max_library_entries
        )
        #: Results of asynchronous image scans, by taskId, for ImageAsyncScanResults.
        self.scan_tasks: Records[TaskResult] = Records(sink, KIND_SCAN_TASK, TaskResult, MAX_RECORDS)
        #: What every scan answered, by taskId (the newest MAX_RECORDS): a notification's scanResult.
        self.machine_results: Records[TaskResult] = Records(
            sink, KIND_MACHINE_RESULT, TaskResult, MAX_RECORDS
        )
        #: The console's callback setting; starts from the config, changed by the admin API.
        self.callback_url: str | None = account.callback_url
        self.callback_seed: str = account.seed
        #: Custom text libraries, preloaded from the config.
        self.text_libraries = TextLibraries(similarity, sink)
        if from_config:
            sink.put(KIND_STATE, "", {"uid": account.uid})
            self.set_console(self.callback_url, self.callback_seed)
            for spec in account.text_libraries:
                lib = self.text_libraries.create(spec.name, spec.kind, spec.list_type, spec.scenes)
                self.text_libraries.add(lib.code, spec.items)

    def set_console(self, url: str | None, seed: str) -> None:
        """The console's callback URL and seed (admin API)."""
        self.callback_url, self.callback_seed = url, seed
        self.sink.put(KIND_CONSOLE, "", {"callbackUrl": url, "seed": seed})
        if self.on_console is not None:
            self.on_console(self)

    def restore(self, record: Record) -> None:
        """Put back one stored record (nothing is written)."""
        kind, key, value = record.kind, record.key, record.value
        if kind == KIND_CONSOLE:
            self.callback_url, self.callback_seed = value["callbackUrl"], value["seed"]
            if self.on_console is not None:
                self.on_console(self)
        elif kind in self._records:
            self._records[kind].restore(key, value)
        elif kind != KIND_STATE:
            self.text_libraries.restore(kind, key, value)

    def follow(self, kind: str, key: str, value: Any) -> bool:
        """Another replica's record: the console and the keyed records are taken one by one; a
        text library is not (its matcher is built from all of them)."""
        if kind == KIND_CONSOLE and value is not DELETED:
            self.restore(Record(kind, "", "", key, value))
            return True
        records = self._records.get(kind)
        if records is None:
            return kind == KIND_STATE
        if value is DELETED:
            records.discard(key)
        else:
            records.restore(key, value)
        return True

    @property
    def _records(self) -> dict[str, Records[Any]]:
        return {
            KIND_IMAGE_LIBRARY: self.image_library,
            KIND_TEXT_LIBRARY: self.text_library,
            KIND_SCAN_TASK: self.scan_tasks,
            KIND_MACHINE_RESULT: self.machine_results,
        }

    def dump(self) -> Iterator[tuple[str, str, Any]]:
        """Every record of this state, as (kind, key, JSON value): what the store holds of it."""
        yield KIND_STATE, "", {"uid": self.account.uid}
        yield KIND_CONSOLE, "", {"callbackUrl": self.callback_url, "seed": self.callback_seed}
        for kind, records in self._records.items():
            for key, value in records.items():
                yield kind, key, encode(value)
        yield from self.text_libraries.dump()

    def add_scan_task(self, result: TaskResult) -> None:
        """An asynchronous scan's result, for ImageAsyncScanResults (the newest MAX_RECORDS)."""
        assert result.task_id is not None
        self.scan_tasks.set(result.task_id, result)

    def remember_result(self, result: TaskResult) -> None:
        """What a scan answered for one task, for the notifications about that task later."""
        if result.task_id is not None and result.results is not None:
            self.machine_results.set(result.task_id, result)

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
        kind = image_list_kind(fb)
        scenes = self.reflux(fb.scenes)
        if fb.url and kind is not None and scenes:
            label = fb.label or ("normal" if kind == "whitelist" else "block")
            self.image_library.set(fb.url, LibraryEntry(kind, label, scenes, fb.request_id))

    def add_review(self, review: Review) -> None:
        """A reviewed image joins the feedback-based library like an ImageScanFeedback would."""
        self.reviews.append(review)
        if review.url:
            if review.suggestion == "pass":
                entry = LibraryEntry("whitelist", "normal", (), review.review_id)
            else:
                label = review.labels[0] if review.labels else "block"
                entry = LibraryEntry("blacklist", label, (), review.review_id)
            self.image_library.set(review.url, entry)

    def add_text_feedback(self, fb: TextFeedback) -> None:
        self.text_feedback.append(fb)
        if fb.content and fb.label:
            kind: ListKind = "whitelist" if fb.label == "normal" else "blacklist"
            self.text_library.set(fb.content, LibraryEntry(kind, fb.label, (), fb.request_id))


class AlibabaBackend:
    """Every configured Alibaba account and its state in each namespace."""

    def __init__(
        self,
        accounts: tuple[AlibabaAccount, ...],
        similarity: float = DEFAULT_SIMILARITY,
        *,
        max_library_entries: int = MAX_LIBRARY_ENTRIES,
        max_namespaces: int = MAX_NAMESPACES,
        store: Store | None = None,
        seed: Callable[[str, str], Iterable[Record]] | None = None,
    ) -> None:
        self._accounts = accounts
        self._similarity = similarity
        self._max_library_entries = max_library_entries
        self._by_key = {a.access_key_id: a for a in accounts}
        self._by_uid = {a.uid: a for a in accounts}
        #: Told when a state's console callback URL is set or restored (AlibabaState.on_console).
        self.on_console: Callable[[AlibabaState], None] | None = None
        #: A namespace's state is made on first use: from the store's records when it holds the
        #: namespace (a restart), else from the config plus the seed (``--state``).
        self.spaces: Spaces[AlibabaAccount, AlibabaState] = Spaces(
            KIND, self._by_uid, self._make, limit=max_namespaces, store=store, seed=seed
        )

    def _make(self, namespace: str, account: AlibabaAccount, sink: Sink, from_config: bool) -> AlibabaState:
        return AlibabaState(
            account,
            similarity=self._similarity,
            namespace=namespace,
            max_library_entries=self._max_library_entries,
            sink=sink,
            from_config=from_config,
            on_console=self.on_console,
        )

    def reset(self, namespace: str | None = None) -> None:
        """Back to the start config: one namespace's state, or every namespace's (None)."""
        self.spaces.reset(namespace)

    @property
    def accounts(self) -> tuple[AlibabaAccount, ...]:
        return self._accounts

    def by_access_key(self, access_key_id: str) -> AlibabaAccount | None:
        return self._by_key.get(access_key_id)

    def find(self, key: str) -> AlibabaAccount | None:
        """An account by AccessKeyId or uid."""
        return self._by_key.get(key) or self._by_uid.get(key)

    def state(self, account: AlibabaAccount, namespace: str = DEFAULT_NAMESPACE) -> AlibabaState:
        return self.spaces.get(namespace)[account.uid]

    def states_in(self, namespace: str = DEFAULT_NAMESPACE) -> dict[str, AlibabaState]:
        """A namespace's state of every account, by uid."""
        return self.spaces.get(namespace)

    @property
    def states(self) -> dict[str, AlibabaState]:
        """The default namespace's state of every account, by uid."""
        return self.states_in(DEFAULT_NAMESPACE)
