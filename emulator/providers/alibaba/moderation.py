"""What a scan answers, in the order the provider's documents give precedence:

1. the account's feedback-based library (ImageScanFeedback / TextFeedback / console reviews: "the
   feedback takes effect the next time the same image is moderated");
2. for texts, the account's custom text libraries: a whitelist hit passes, else a blacklist hit
   blocks, else a review-list hit asks for review (label ``customized``, with the hits as details);
3. the configured default verdicts (``alibaba.verdicts``: a URL, a URL pattern or a text substring);
4. otherwise ``normal`` / ``pass``.

Pure functions over the account state and settings: no HTTP here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from ...config import Verdict
from ...core.patterns import Pattern, compile_pattern
from ...core.storage import Record
from ...core.storage.codec import decode, encode
from ...core.storage.records import NOWHERE, Sink
from .models import (
    BLOCK_LABELS,
    IMAGE_SCENES,
    TEXT_LABELS,
    AlibabaState,
    Detail,
    HitContext,
    SceneResult,
    TaskResult,
)
from .textlib import Hit, mask

#: The confidence of a verdict the emulator is sure of (library hits, defaults). The provider answers
#: a number from 0 to 100; the exact values it gives are not documented: UNCONFIRMED(alibaba-scan-rate)
#: (a verdict's ``rate`` sets it).
SURE = 99.9
TEXT_SCENE = "antispam"
#: TextScan's scenes: antispam, and ad, to which custom term libraries also apply (document 003:
#: "you can apply custom text libraries to ad violation detection and text anti-spam").
#: UNCONFIRMED(alibaba-textscan-ad-scene): that ad violation detection is TextScan's scene ``ad``.
TEXT_SCENES = (TEXT_SCENE, "ad")


def _result(scene: str, label: str, suggestion: str, rate: float = SURE) -> SceneResult:
    return SceneResult(scene, label, suggestion, rate)


def check_verdicts(verdicts: Sequence[Verdict]) -> None:
    """Raise ValueError naming the verdict whose scene or label the provider does not have."""
    for i, v in enumerate(verdicts):
        where = f"alibaba.verdicts[{i}]"
        if v.text is not None:
            if v.scene not in TEXT_SCENES:
                raise ValueError(
                    f"{where}.scene: a text verdict is for scene {' or '.join(TEXT_SCENES)}, not {v.scene!r}"
                )
            if v.label not in TEXT_LABELS:
                raise ValueError(
                    f"{where}.label: {v.label!r} is not a text label ({', '.join(sorted(TEXT_LABELS))})"
                )
        else:
            if v.scene not in IMAGE_SCENES:
                raise ValueError(f"{where}.scene: must be one of {', '.join(IMAGE_SCENES)}, not {v.scene!r}")
            if v.label not in IMAGE_SCENES[v.scene]:
                known = ", ".join(sorted(IMAGE_SCENES[v.scene]))
                raise ValueError(f"{where}.label: {v.label!r} is not a label of scene {v.scene} ({known})")


#: How verdicts added at run time are stored (core/storage); the config's are not: they are config.
KIND_VERDICTS = "alibaba_verdicts."
KIND_VERDICT = "alibaba_verdicts.verdict"


class Verdicts:
    """The verdicts in force in one namespace (the config's, then those added by the admin API),
    with URL patterns compiled once."""

    def __init__(self, configured: Sequence[Verdict] = (), sink: Sink = NOWHERE) -> None:
        self.image: list[tuple[Verdict, Pattern | None]] = []
        self.text: list[Verdict] = []
        self.configured = tuple(configured)
        self.added: list[Verdict] = []
        self._sink = sink
        self.load(self.configured)

    @classmethod
    def build(cls, verdicts: Sequence[Verdict]) -> Verdicts:
        return cls(verdicts)

    def load(self, verdicts: Sequence[Verdict]) -> None:
        """Replace the verdicts in force; all or nothing."""
        check_verdicts(verdicts)
        image = [
            (v, compile_pattern(v.url_pattern) if v.url_pattern is not None else None)
            for v in verdicts
            if v.text is None
        ]
        self.image, self.text = image, [v for v in verdicts if v.text is not None]

    def add(self, verdicts: Sequence[Verdict]) -> None:
        """Add verdicts after those in force (all or nothing), each stored."""
        self.load([*self.configured, *self.added, *verdicts])
        for v in verdicts:
            self.added.append(v)
            self._sink.put(KIND_VERDICT, f"{len(self.added):06d}", encode(v))

    def restore(self, record: Record) -> None:
        if record.kind == KIND_VERDICT:
            self.added.append(decode(record.value, Verdict))
            self.load([*self.configured, *self.added])

    def follow(self, kind: str, key: str, value: Any) -> bool:
        """Verdicts are read back whole (their order decides)."""
        return False

    def dump(self) -> Iterator[tuple[str, str, Any]]:
        for i, v in enumerate(self.added, 1):
            yield KIND_VERDICT, f"{i:06d}", encode(v)

    @property
    def all(self) -> list[Verdict]:
        return [v for v, _ in self.image] + self.text

    def for_image(self, url: str, scene: str) -> Verdict | None:
        # An exact URL beats a pattern, whatever the order they were configured in.
        patterned = None
        for v, pattern in self.image:
            if v.scene != scene:
                continue
            if v.url == url:
                return v
            if patterned is None and pattern is not None and pattern.search(url):
                patterned = v
        return patterned

    def for_text(self, content: str, scene: str = TEXT_SCENE) -> Verdict | None:
        return next((v for v in self.text if v.scene == scene and v.text and v.text in content), None)


def image_results(
    state: AlibabaState, verdicts: Verdicts, url: str, scenes: Sequence[str]
) -> tuple[SceneResult, ...]:
    return tuple(_image_scene(state, verdicts, url, scene) for scene in scenes)


def _image_scene(state: AlibabaState, verdicts: Verdicts, url: str, scene: str) -> SceneResult:
    entry = state.image_library.get(url)
    if entry is not None and (not entry.scenes or scene in entry.scenes):
        if entry.kind == "whitelist":
            return _result(scene, "normal", "pass")
        label = (
            entry.label
            if entry.label in IMAGE_SCENES[scene] and entry.label != "normal"
            else BLOCK_LABELS[scene]
        )
        return _result(scene, label, "block")
    verdict = verdicts.for_image(url, scene)
    if verdict is not None:
        return _result(scene, verdict.label, verdict.suggestion, verdict.rate)
    return _result(scene, "normal", "pass")


def _details(hits: Sequence[Hit], label: str) -> tuple[Detail, ...]:
    contexts = tuple(
        HitContext(
            context=word,
            lib_name=hit.library.name,
            lib_code=hit.library.code,
            # UNCONFIRMED(alibaba-rule-type): the documents name the field, not its values.
            rule_type="keyword" if hit.library.kind == "term" else "similarText",
        )
        for hit in hits
        for word in hit.words
    )
    return (Detail(label, contexts),)


def text_result(
    state: AlibabaState, verdicts: Verdicts, content: str, scene: str = TEXT_SCENE
) -> tuple[SceneResult, str | None]:
    """(the scene's result, filteredContent or None)."""
    entry = state.text_library.get(content)
    if entry is not None:
        # The feedback-based text library serves "all moderation scenarios of the same type".
        if entry.kind == "whitelist":
            return _result(scene, "normal", "pass"), None
        return _result(scene, entry.label, "block"), None
    hits = state.text_libraries.scan(content, scene)
    by_list: dict[str, list[Hit]] = {"whitelist": [], "blacklist": [], "review": []}
    for hit in hits:
        by_list[hit.library.list_type].append(hit)
    if by_list["whitelist"]:
        return _result(scene, "normal", "pass"), None
    for list_type, suggestion in (("blacklist", "block"), ("review", "review")):
        if by_list[list_type]:
            result = replace(
                _result(scene, "customized", suggestion),
                details=_details(by_list[list_type], "customized"),
            )
            words = [w for h in by_list[list_type] if h.library.kind == "term" for w in h.words]
            return result, mask(content, words) if words else None
    verdict = verdicts.for_text(content, scene)
    if verdict is not None:
        result = _result(scene, verdict.label, verdict.suggestion, verdict.rate)
        if verdict.suggestion != "pass" and verdict.text:
            details = (Detail(verdict.label, (HitContext(verdict.text),)),)
            # A configured verdict is a plain substring, not a term: no word-breaking.
            return replace(result, details=details), mask(content, [verdict.text], word_break=False)
        return result, None
    return _result(scene, "normal", "pass"), None


def text_results(
    state: AlibabaState, verdicts: Verdicts, content: str, scenes: Sequence[str]
) -> tuple[tuple[SceneResult, ...], str | None]:
    """Every scene's result and the task's filteredContent (the first scene that masks wins)."""
    results: list[SceneResult] = []
    filtered: str | None = None
    for scene in scenes:
        result, masked = text_result(state, verdicts, content, scene)
        results.append(result)
        filtered = filtered if filtered is not None else masked
    return tuple(results), filtered


def unknown_task(task_id: str | None) -> TaskResult:
    # UNCONFIRMED(alibaba-unknown-task): the provider's answer for a taskId it does not know.
    return TaskResult(code=404, msg="NOT_FOUND", task_id=task_id)


def machine_image_result(
    state: AlibabaState,
    verdicts: Verdicts,
    *,
    task_id: str | None,
    url: str | None,
    scenes: Sequence[str] = (),
    data_id: str | None = None,
) -> TaskResult:
    """What the machine said of an image (a notification's ``scanResult``, document 000: "the
    original system moderation content"): the scan that answered ``task_id``, else what a scan of
    ``url`` in ``scenes`` (none: every scene) answers now, else NOT_FOUND."""
    # UNCONFIRMED(alibaba-notification-unscanned): the scanResult of a sample no scan answered.
    known = state.machine_results.get(task_id) if task_id else None
    if known is not None:
        return known
    if not url:
        return unknown_task(task_id)
    results = image_results(state, verdicts, url, tuple(scenes) or tuple(IMAGE_SCENES))
    return TaskResult(code=200, msg="OK", data_id=data_id, task_id=task_id, url=url, results=results)


def machine_text_result(
    state: AlibabaState,
    verdicts: Verdicts,
    *,
    task_id: str | None,
    content: str | None,
    data_id: str | None = None,
) -> TaskResult:
    """As :func:`machine_image_result`, for a text (scene antispam when no scan is known)."""
    known = state.machine_results.get(task_id) if task_id else None
    if known is not None:
        return known
    if not content:
        return unknown_task(task_id)
    results, filtered = text_results(state, verdicts, content, (TEXT_SCENE,))
    return TaskResult(
        code=200,
        msg="OK",
        data_id=data_id,
        task_id=task_id,
        content=content,
        filtered_content=filtered,
        results=results,
    )
