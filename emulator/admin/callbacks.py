"""Admin routes for outbound callbacks: the deliveries, and the Alibaba console that causes them.

- ``GET  /_emulator/callbacks``           deliveries with their attempts and state (filterable)
- ``GET  /_emulator/callbacks/wait``      long poll until ``count`` deliveries match
- ``PUT  /_emulator/alibaba/callback``    the console's callback URL and seed for an account
- ``POST /_emulator/alibaba/reviews``     a person's verdict in the console; notifies the callback URL

Admin calls are not journaled, but a review is an event of the emulated console that causes a
notification, so it is recorded as an inbound Alibaba exchange (action ``ConsoleReview``) with the
correlation id its delivery carries.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace

from aiohttp import web

from ..core.call import Call
from ..core.callbacks import DeliveryFilter, DeliveryTimeout, check_url, new_correlation_id
from ..core.recording import record_call
from ..errors import AdminError
from ..keys import CLOCK, DISPATCHER, JOURNAL
from ..providers.alibaba import notifications
from ..providers.alibaba.models import IMAGE_LABELS, Review
from ..providers.alibaba.routes import ALIBABA_BACKEND, VERDICTS
from .common import (
    account_namespace,
    alibaba_account,
    bad_request,
    json_object,
    namespace_of,
    string_field,
    wait_params,
)

REVIEW_ACTION = "ConsoleReview"


def _filter(request: web.Request, ignore: tuple[str, ...] = ()) -> DeliveryFilter:
    # The default namespace when none is named, every one for '*' (namespace_of).
    return replace(DeliveryFilter.from_params(request.query, ignore=ignore), namespace=namespace_of(request))


async def list_callbacks(request: web.Request) -> web.Response:
    found = request.config_dict[DISPATCHER].deliveries(_filter(request))
    return web.json_response({"deliveries": [d.to_dict() for d in found], "count": len(found)})


async def wait_callbacks(request: web.Request) -> web.Response:
    flt = _filter(request, ignore=("count", "timeout"))
    count, timeout = wait_params(request)
    try:
        found = await request.config_dict[DISPATCHER].wait_for(flt, count, timeout)
    except DeliveryTimeout as exc:
        raise AdminError(
            408,
            "timeout",
            str(exc),
            matched=[d.to_dict() for d in exc.got],
            deliveries=[d.to_dict() for d in exc.known],
        ) from exc
    return web.json_response({"deliveries": [d.to_dict() for d in found], "count": len(found)})


async def put_alibaba_callback(request: web.Request) -> web.Response:
    """The console's setting: one callback URL per account, and the seed checksums are made with."""
    body = await json_object(request)
    unknown = sorted(set(body) - {"account", "url", "seed"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} (known: account, url, seed)")
    account = alibaba_account(request, body)
    if "url" not in body:
        raise bad_request("url is required (null turns notifications off)")
    url = string_field(body, "url")
    if url is not None:
        check_url(url)  # CallbackURLError: 400 bad_request
    seed = string_field(body, "seed")
    state = request.config_dict[ALIBABA_BACKEND].state(account, account_namespace(request, account.namespace))
    # The operator named this receiver: its host joins callbacks.allowed_hosts while it is set
    # (the provider's on_console hook).
    state.set_console(url, seed if seed is not None else state.callback_seed)
    return web.json_response({"account": account.uid, "url": state.callback_url, "seed": state.callback_seed})


async def post_alibaba_review(request: web.Request) -> web.Response:
    """A person labels a sample in the console: the library learns it and the callback URL hears it."""
    app = request.config_dict
    started = app[CLOCK].time()
    t0 = time.perf_counter()
    body = await json_object(request)
    unknown = sorted(set(body) - {"account", "taskId", "dataId", "url", "suggestion", "labels"})
    if unknown:
        known = "account, taskId, dataId, url, suggestion, labels"
        raise bad_request(f"unknown field {unknown[0]!r} (known: {known})")
    account = alibaba_account(request, body)
    task_id = string_field(body, "taskId", required=True)
    assert task_id is not None
    suggestion = body.get("suggestion")
    if suggestion not in ("block", "pass"):
        raise bad_request(f"suggestion must be 'block' or 'pass', not {suggestion!r}")
    labels = body.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise bad_request("labels must be an array of strings")
    for i, label in enumerate(labels):
        if label not in IMAGE_LABELS:
            raise bad_request(f"labels[{i}]: {label!r} is not an image label")
    review = Review(
        review_id=str(uuid.uuid4()).upper(),
        received_at=started,
        task_id=task_id,
        suggestion=suggestion,
        labels=tuple(labels),
        url=string_field(body, "url"),
        data_id=string_field(body, "dataId"),
    )
    namespace = account_namespace(request, account.namespace)
    correlation_id = new_correlation_id()
    delivery = notifications.notify_review(
        app[DISPATCHER],
        app[ALIBABA_BACKEND].state(account, namespace),
        review,
        namespace=namespace,
        correlation_id=correlation_id,
        verdicts=app[VERDICTS].get(namespace),
    )
    response = web.json_response(
        {
            "reviewId": review.review_id,
            "account": account.uid,
            "correlationId": correlation_id,
            "delivery": None if delivery is None else delivery.to_dict(),
        }
    )
    # Admin calls are not journaled, but a review is the cause its notification links back to.
    call = Call(
        provider="alibaba",
        action=REVIEW_ACTION,
        account=account.uid,
        namespace=namespace,
        received_at=started,
        body=json.dumps(body).encode(),
        parsed=body,
        correlation_id=correlation_id,
    )
    record_call(app[JOURNAL], request, call, time.perf_counter() - t0, response)
    return response


def setup(admin: web.Application) -> None:
    admin.router.add_get("/callbacks", list_callbacks)
    admin.router.add_get("/callbacks/wait", wait_callbacks)
    admin.router.add_put("/alibaba/callback", put_alibaba_callback)
    admin.router.add_post("/alibaba/reviews", post_alibaba_review)
