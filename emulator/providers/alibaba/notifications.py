"""Alibaba result notifications: what the console POSTs to the account's callback URL.

A notification carries ``scanResult`` and ``auditResult`` (document 000: "the moderation result and
the original system moderation content"): ``scanResult`` is the machine's result for the sample, the
scan that answered its ``taskId`` (with that scan's ``dataId`` and ``taskId``) or, for a sample no
scan the emulator remembers answered, what a scan would have answered just before the verdict;
``auditResult`` is the person's verdict. A receiver can compare the two. Notifications fire after a
review in the console or, when ``alibaba.notify_on_feedback`` is on, after a feedback call with a
verdict (UNCONFIRMED(alibaba-notify-on-feedback): document 000 notifies after reviews only). The
bytes come from ``protocol.notification``; the delivery (retries, journal, faults) from
core/callbacks.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.callbacks import Delivery, Dispatcher, OutboundFault, OutboundInfo, Payload, PayloadBuilder
from . import moderation, protocol
from .models import (
    AlibabaState,
    AuditResult,
    ImageFeedback,
    Review,
    TaskResult,
    TextFeedback,
    image_list_kind,
)

IMAGE_ACTION = "ImageScanNotification"
TEXT_ACTION = "TextScanNotification"


def notify_review(
    dispatcher: Dispatcher,
    state: AlibabaState,
    review: Review,
    *,
    namespace: str | None,
    correlation_id: str,
    verdicts: moderation.Verdicts | None = None,
) -> Delivery | None:
    """Record the review and notify the account's callback URL (None when it has none)."""
    scan = moderation.machine_image_result(
        state,
        verdicts if verdicts is not None else moderation.Verdicts(),
        task_id=review.task_id,
        url=review.url,
        data_id=review.data_id,
    )
    state.add_review(review)
    audit = AuditResult(review.suggestion, review.labels)
    return _submit(dispatcher, state, IMAGE_ACTION, scan, audit, namespace, correlation_id)


def image_feedback_notification(fb: ImageFeedback) -> tuple[TaskResult, AuditResult] | None:
    """(scanResult, auditResult) for an ImageScanFeedback, or None when it carries no verdict."""
    kind = image_list_kind(fb)
    if kind is None:
        return None
    suggestion = "pass" if kind == "whitelist" else "block"
    scan = fb.machine if fb.machine is not None else moderation.unknown_task(fb.task_id)
    return scan, AuditResult(suggestion, (fb.label,) if fb.label else ())


def text_feedback_notification(fb: TextFeedback) -> tuple[TaskResult, AuditResult] | None:
    """(scanResult, auditResult) for one TextFeedback item, or None when it has no label."""
    if fb.label is None:
        return None
    suggestion = "pass" if fb.label == "normal" else "block"
    scan = fb.machine if fb.machine is not None else moderation.unknown_task(fb.task_id)
    return scan, AuditResult(suggestion, (fb.label,))


def notify_feedback(
    dispatcher: Dispatcher,
    state: AlibabaState,
    stored: Sequence[ImageFeedback | TextFeedback],
    *,
    namespace: str | None,
    correlation_id: str,
) -> list[Delivery]:
    """Notify about the feedback records a call stored (one delivery per verdict)."""
    deliveries: list[Delivery] = []
    for fb in stored:
        if isinstance(fb, ImageFeedback):
            action, pair = IMAGE_ACTION, image_feedback_notification(fb)
        else:
            action, pair = TEXT_ACTION, text_feedback_notification(fb)
        if pair is not None:
            d = _submit(dispatcher, state, action, *pair, namespace, correlation_id)
            deliveries += [d] if d else []
    return deliveries


def _submit(
    dispatcher: Dispatcher,
    state: AlibabaState,
    action: str,
    scan: TaskResult,
    audit: AuditResult,
    namespace: str | None,
    correlation_id: str,
) -> Delivery | None:
    url = state.callback_url
    if not url:
        return None
    info = OutboundInfo(
        provider="alibaba",
        action=action,
        account=state.account.uid,
        namespace=namespace,
        url=url,
        correlation_id=correlation_id,
    )
    return dispatcher.submit(info, _builder(state.account.uid, state.callback_seed, scan, audit))


def _builder(uid: str, seed: str, scan: TaskResult, audit: AuditResult) -> PayloadBuilder:
    # The seed is taken now: a notification is signed with the seed in force when it was raised.
    def build(fault: OutboundFault | None) -> Payload:
        kind = fault.kind if fault is not None else None
        return protocol.notification(
            uid,
            seed,
            scan,
            audit,
            wrong_checksum=kind == "wrong_checksum",
            audit_key="auditReult" if kind == "misspelled_audit_key" else "auditResult",
        )

    return build


ASYNC_SCAN_ACTION = "ImageAsyncScanCallback"


def notify_scan(
    dispatcher: Dispatcher,
    state: AlibabaState,
    url: str,
    seed: str,
    result: TaskResult,
    *,
    namespace: str | None,
    correlation_id: str,
) -> Delivery:
    """Send an ImageAsyncScan task's result to the ``callback`` of the call, signed with its ``seed``."""
    info = OutboundInfo(
        provider="alibaba",
        action=ASYNC_SCAN_ACTION,
        account=state.account.uid,
        namespace=namespace,
        url=url,
        correlation_id=correlation_id,
    )
    uid = state.account.uid

    def build(fault: OutboundFault | None) -> Payload:
        return protocol.signed_form(
            uid,
            seed,
            protocol.task(result),
            wrong_checksum=fault is not None and fault.kind == "wrong_checksum",
        )

    return dispatcher.submit(info, build)
