"""A client for the admin API with assertion helpers in the style of pytest-httpserver and respx.

>>> async with EmulatorClient(server.url) as emu:
...     await emu.wait_for(action="ImageScanFeedback", count=1, timeout=5)
...     await emu.assert_called(action="ImageScanFeedback", count=1)
...     last = await emu.last(provider="alibaba")
...     assert last.parsed["url"] == "http://example.com/1.jpg"

Filters are the admin API's: provider, action, direction, method, path, account, status, namespace,
correlation_id, since, and ``body={"url": ...}`` for fields of the parsed body. A client made with a
``namespace`` sees and resets only that namespace, and tags its own traffic helpers with it; one made
without sees and resets the default namespace, and ``namespace="*"`` every namespace.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import aiohttp

# AdminError is re-exported: the client raises the admin API's own error type again.
from ..documents import read_document
from ..errors import AdminError as AdminError
from ..errors import InvalidInput, Timeout

NAMESPACE_HEADER = "X-Emulator-Namespace"


@dataclass(frozen=True)
class RecordedExchange:
    """One journal entry as the admin API reports it, with the fields tests use most at hand."""

    raw: Mapping[str, Any]

    @property
    def id(self) -> int:
        return int(self.raw["id"])

    @property
    def direction(self) -> str:
        return str(self.raw["direction"])

    @property
    def provider(self) -> str | None:
        return self.raw.get("provider")

    @property
    def action(self) -> str | None:
        return self.raw.get("action")

    @property
    def account(self) -> str | None:
        return self.raw.get("account")

    @property
    def namespace(self) -> str | None:
        return self.raw.get("namespace")

    @property
    def method(self) -> str:
        return str(self.raw["request"]["method"])

    @property
    def path(self) -> str:
        return str(self.raw["request"]["path"])

    @property
    def body(self) -> str:
        return str(self.raw["request"]["body"])

    @property
    def parsed(self) -> Any:
        return self.raw["request"].get("parsed")

    @property
    def status(self) -> int | None:
        status = self.raw["response"].get("status")
        return None if status is None else int(status)

    @property
    def response_body(self) -> str:
        return str(self.raw["response"]["body"])

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.raw["request"]["headers"] if k.lower() == lname), None)

    def summary(self) -> str:
        return (
            f"#{self.id} {self.direction} {self.method} {self.path} provider={self.provider} "
            f"action={self.action} account={self.account} status={self.status}"
        )


def _params(filters: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if key == "body":
            for field, want in value.items():
                out[f"body.{field}"] = want if isinstance(want, str) else str(want)
        elif key == "correlation_id":
            out["correlationId"] = str(value)
        else:
            out[key] = str(value)
    return out


#: Admin answers are JSON; its errors are problem details (RFC 9457) in JSON.
JSON_TYPES = ("application/json", "application/problem+json")
#: Members of a problem document that are not extension members.
_PROBLEM_MEMBERS = ("type", "title", "status", "detail", "instance", "error", "message")


def _admin_error(status: int, data: Any) -> AdminError:
    """The AdminError an admin error answer stands for; its extension members become ``extra``."""
    if not isinstance(data, dict):
        return AdminError(status, "http_error", str(data))
    message = data.get("message", data.get("detail", data))
    extra = {k: v for k, v in data.items() if k not in _PROBLEM_MEMBERS}
    return AdminError(status, str(data.get("error", "http_error")), str(message), **extra)


def _describe(filters: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in filters.items() if v is not None) or "any request"


class EmulatorClient:
    """Async client for a running emulator's admin API."""

    def __init__(self, base_url: str, *, namespace: str | None = None, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.namespace = namespace
        self._headers: dict[str, str] = {}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if namespace:
            self._headers[NAMESPACE_HEADER] = namespace
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        url = f"{self.base_url}/_emulator{path}"
        if json is None and method in ("POST", "PUT", "PATCH"):
            # The admin API takes a change only as JSON (so a web page cannot forge one), even bodiless.
            json = {}
        async with self._session.request(method, url, params=params or {}, json=json) as response:
            data = await response.json() if response.content_type in JSON_TYPES else await response.text()
            if response.status not in ok:
                raise _admin_error(response.status, data)
            return response.status, data

    # --- queries ------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return (await self._call("GET", "/health"))[1]  # type: ignore[no-any-return]

    async def requests(self, **filters: Any) -> list[RecordedExchange]:
        """Recorded exchanges matching ``filters``, oldest first."""
        _, data = await self._call("GET", "/requests", _params(filters))
        return [RecordedExchange(e) for e in data["entries"]]

    async def count(self, **filters: Any) -> int:
        _, data = await self._call("GET", "/requests/count", _params(filters))
        return int(data["count"])

    async def evicted(self) -> int:
        _, data = await self._call("GET", "/requests/count")
        return int(data["evicted"])

    async def last(self, **filters: Any) -> RecordedExchange:
        """The newest exchange matching ``filters``; AssertionError (with the closest) if none."""
        found = await self.requests(order="desc", limit=1, **filters)
        if not found:
            raise AssertionError(f"no request matching {_describe(filters)}\n{await self._closest(filters)}")
        return found[0]

    async def wait_for(
        self, *, count: int = 1, timeout: float = 5.0, **filters: Any
    ) -> list[RecordedExchange]:
        """Wait (server-side long poll) until ``count`` exchanges match; AssertionError on timeout
        with the closest recorded exchanges."""
        params = {**_params(filters), "count": str(count), "timeout": str(timeout)}
        status, data = await self._call("GET", "/requests/wait", params, ok=(200, 408))
        if status == 408:
            raise Timeout(data["message"])
        return [RecordedExchange(e) for e in data["entries"]]

    async def assert_called(self, *, count: int | None = None, **filters: Any) -> list[RecordedExchange]:
        """Assert that exchanges matching ``filters`` were recorded (exactly ``count`` if given)."""
        found = await self.requests(**filters)
        if (count is None and found) or len(found) == count:
            return found
        want = "at least once" if count is None else f"{count} time{'s' if count != 1 else ''}"
        lines = [f"expected a request matching {_describe(filters)} {want}, found {len(found)}"]
        if found:
            lines += ["matching:"] + [f"  {e.summary()}" for e in found[:10]]
        lines.append(await self._closest(filters))
        if (ev := await self.evicted()) and count is not None:
            lines.append(f"note: {ev} older entries were evicted from the journal")
        raise AssertionError("\n".join(lines))

    async def assert_not_called(self, **filters: Any) -> None:
        await self.assert_called(count=0, **filters)

    async def _closest(self, filters: Mapping[str, Any]) -> str:
        # The server ranks entries by how many criteria they miss: ask the wait endpoint with a
        # zero timeout for an impossible count and read its "closest".
        params = {**_params(filters), "count": "1000000000", "timeout": "0"}
        _, data = await self._call("GET", "/requests/wait", params, ok=(200, 408))
        closest = [RecordedExchange(e) for e in data.get("closest", [])]
        if not closest:
            return "no requests were recorded at all"
        return "closest recorded requests:\n" + "\n".join(f"  {e.summary()}" for e in closest)

    # --- control ------------------------------------------------------------------------------

    async def clear(self) -> int:
        """Forget recorded exchanges (this client's namespace only, if it has one)."""
        _, data = await self._call("DELETE", "/requests")
        return int(data["deleted"])

    async def reset(self, namespace: str | None = None) -> None:
        """Back to the start config: ``namespace`` (``"*"``: every namespace), else this client's
        namespace, else the default namespace."""
        await self._call("POST", "/reset", {"namespace": namespace} if namespace else None)

    # --- the whole state -------------------------------------------------------------------------

    async def state(self) -> dict[str, Any]:
        """The state document (GET /_emulator/state): everything but the journal, as records."""
        return dict((await self._call("GET", "/state"))[1])

    async def put_state(self, document: Mapping[str, Any] | str | Path) -> int:
        """Replace the state with a document (or a JSON file holding one); with this client's
        namespace, only that namespace's, the records moved into it. Returns how many records."""
        doc: Any = read_document(Path(document)) if isinstance(document, str | Path) else dict(document)
        return int((await self._call("PUT", "/state", json=doc))[1]["records"])

    # --- the clock -----------------------------------------------------------------------------

    async def clock(self) -> dict[str, Any]:
        """``{"now": <epoch seconds>, "iso", "mode": "real" | "manual"}`` (manual: and ``timers``,
        the seconds until each pending wait on it)."""
        return dict((await self._call("GET", "/clock"))[1])

    async def advance(self, seconds: float) -> dict[str, Any]:
        """Move a manual clock forward (AdminError 409 on a real one); waits that come due end (a
        callback's next attempt, a badcase's confirmation). Returns the clock as :meth:`clock` does."""
        return dict((await self._call("POST", "/clock", json={"advance": seconds}))[1])

    async def set_clock(self, when: float | str | datetime) -> dict[str, Any]:
        """Move a manual clock forward to ``when`` (epoch seconds, ISO 8601 or an aware datetime);
        never back (AdminError 400)."""
        value = when.isoformat() if isinstance(when, datetime) else when
        return dict((await self._call("POST", "/clock", json={"set": value}))[1])

    # --- fault rules ---------------------------------------------------------------------------

    async def add_faults(
        self, *rules: Mapping[str, Any], scenario: str | Mapping[str, Any] | None = None
    ) -> list[str]:
        """Add fault rules (or a scenario, by shipped name or inline) in this client's namespace;
        returns their ids. All or nothing: a bad rule raises AdminError naming the field."""
        if scenario is not None and rules:
            raise InvalidInput("pass rules or a scenario, not both")
        payload = {"scenario": scenario} if scenario is not None else {"rules": list(rules)}
        _, data = await self._call("POST", "/faults", json=payload, ok=(201,))
        return [r["id"] for r in data["rules"]]

    async def faults(self) -> list[dict[str, Any]]:
        """The rules in force (this client's namespace only, if it has one), with their counts."""
        return list((await self._call("GET", "/faults"))[1]["rules"])

    async def remove_fault(self, rule_id: str) -> None:
        await self._call("DELETE", f"/faults/{rule_id}")

    async def clear_faults(self) -> int:
        return int((await self._call("DELETE", "/faults"))[1]["deleted"])

    @asynccontextmanager
    async def fault(
        self, *rules: Mapping[str, Any], scenario: str | Mapping[str, Any] | None = None
    ) -> AsyncIterator[list[str]]:
        """Rules in force for the block only: ``async with emu.fault({...}): ...``."""
        ids = await self.add_faults(*rules, scenario=scenario)
        try:
            yield ids
        finally:
            for rule_id in ids:
                try:
                    await self.remove_fault(rule_id)
                except AdminError as exc:
                    if exc.status != 404:  # already gone (a reset) is fine
                        raise

    # --- the Alibaba console: custom text libraries and default verdicts ------------------------

    async def create_library(
        self, name: str, kind: str, list_type: str, items: Sequence[str] = (), *, account: str | None = None
    ) -> dict[str, Any]:
        """A custom text library (``kind`` term or pattern; ``list_type`` blacklist, whitelist or
        review); AdminError names the rule broken."""
        body: dict[str, Any] = {"name": name, "kind": kind, "listType": list_type, "items": list(items)}
        if account is not None:
            body["account"] = account
        return dict((await self._call("POST", "/alibaba/libraries", json=body, ok=(201,)))[1])

    async def add_library_items(self, code: str, items: Sequence[str], *, account: str | None = None) -> int:
        body: dict[str, Any] = {"items": list(items)}
        if account is not None:
            body["account"] = account
        return int((await self._call("POST", f"/alibaba/libraries/{code}/items", json=body))[1]["added"])

    async def add_verdicts(self, *verdicts: Mapping[str, Any]) -> None:
        """Default scan results, e.g. ``{"url_pattern": "/nsfw/", "scene": "porn", "label": "porn",
        "suggestion": "block"}``, in this client's namespace; its reset drops them."""
        await self._call("POST", "/alibaba/verdicts", json={"verdicts": list(verdicts)}, ok=(201,))

    async def har(self, **filters: Any) -> dict[str, Any]:
        return (await self._call("GET", "/requests.har", _params(filters)))[1]  # type: ignore[no-any-return]

    async def ndjson(self, **filters: Any) -> str:
        return str((await self._call("GET", "/requests.ndjson", _params(filters)))[1])

    # --- callbacks ----------------------------------------------------------------------------

    async def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        """Outbound callback deliveries (state, provider, action, account, namespace,
        correlation_id, url), oldest first, each with its attempts."""
        _, data = await self._call("GET", "/callbacks", _params(filters))
        return list(data["deliveries"])

    async def wait_for_delivery(
        self, *, count: int = 1, timeout: float = 5.0, state: str | None = "delivered", **filters: Any
    ) -> list[dict[str, Any]]:
        """Wait (server-side long poll) until ``count`` deliveries match (by default: delivered);
        on timeout Timeout (an AssertionError), listing the deliveries the emulator knows."""
        params = {**_params({**filters, "state": state}), "count": str(count), "timeout": str(timeout)}
        status, data = await self._call("GET", "/callbacks/wait", params, ok=(200, 408))
        if status == 408:
            raise Timeout(data["message"])
        return list(data["deliveries"])

    async def set_callback(
        self, url: str | None, *, account: str | None = None, seed: str | None = None
    ) -> dict[str, Any]:
        """The Alibaba console's callback URL (None: off) and, if given, seed for ``account`` (uid or
        AccessKeyId; may be left out when one Alibaba account is configured)."""
        body: dict[str, Any] = {"url": url}
        if account is not None:
            body["account"] = account
        if seed is not None:
            body["seed"] = seed
        return dict((await self._call("PUT", "/alibaba/callback", json=body))[1])

    async def review(
        self,
        *,
        task_id: str,
        suggestion: str,
        labels: Sequence[str] = (),
        url: str | None = None,
        account: str | None = None,
        data_id: str | None = None,
    ) -> dict[str, Any]:
        """A human review in the Alibaba console; returns reviewId, correlationId and the delivery
        it started (None without a callback URL)."""
        body: dict[str, Any] = {"taskId": task_id, "suggestion": suggestion, "labels": list(labels)}
        for key, value in (("url", url), ("account", account), ("dataId", data_id)):
            if value is not None:
                body[key] = value
        return dict((await self._call("POST", "/alibaba/reviews", json=body))[1])

    # --- the Tencent CI console: the backend review of reported badcases -------------------------

    async def tencent_badcases(self, **filters: Any) -> list[dict[str, Any]]:
        """Reported badcases, oldest first, each with its ``state`` (reported or confirmed); filters
        ``state``, ``appid`` and ``namespace`` (a namespaced client sees only its own)."""
        _, data = await self._call("GET", "/tencent/badcases", _params(filters))
        return list(data["badcases"])

    async def confirm_badcase(self, request_id: str) -> dict[str, Any]:
        """Confirm the badcase reported under ``request_id`` now, as CI's review does; later text
        audits of its text answer its SuggestedLabel. AdminError (404) if none was reported."""
        path = f"/tencent/badcases/{quote(request_id, safe='')}/confirm"
        return dict((await self._call("POST", path))[1])


T = TypeVar("T")


class SyncEmulatorClient:
    """The same client for synchronous code: each call runs on a private event loop thread."""

    def __init__(self, base_url: str, *, namespace: str | None = None, token: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator-client", daemon=True)
        self._thread.start()
        self._async = EmulatorClient(base_url, namespace=namespace, token=token)

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def namespace(self) -> str | None:
        return self._async.namespace

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        return self._run(self._async.health())

    def requests(self, **filters: Any) -> list[RecordedExchange]:
        return self._run(self._async.requests(**filters))

    def count(self, **filters: Any) -> int:
        return self._run(self._async.count(**filters))

    def evicted(self) -> int:
        return self._run(self._async.evicted())

    def last(self, **filters: Any) -> RecordedExchange:
        return self._run(self._async.last(**filters))

    def wait_for(self, *, count: int = 1, timeout: float = 5.0, **filters: Any) -> list[RecordedExchange]:
        return self._run(self._async.wait_for(count=count, timeout=timeout, **filters))

    def assert_called(self, *, count: int | None = None, **filters: Any) -> list[RecordedExchange]:
        return self._run(self._async.assert_called(count=count, **filters))

    def assert_not_called(self, **filters: Any) -> None:
        self._run(self._async.assert_not_called(**filters))

    def clear(self) -> int:
        return self._run(self._async.clear())

    def reset(self, namespace: str | None = None) -> None:
        self._run(self._async.reset(namespace))

    def clock(self) -> dict[str, Any]:
        return self._run(self._async.clock())

    def state(self) -> dict[str, Any]:
        return self._run(self._async.state())

    def put_state(self, document: Mapping[str, Any] | str | Path) -> int:
        return self._run(self._async.put_state(document))

    def advance(self, seconds: float) -> dict[str, Any]:
        return self._run(self._async.advance(seconds))

    def set_clock(self, when: float | str | datetime) -> dict[str, Any]:
        return self._run(self._async.set_clock(when))

    def add_faults(
        self, *rules: Mapping[str, Any], scenario: str | Mapping[str, Any] | None = None
    ) -> list[str]:
        return self._run(self._async.add_faults(*rules, scenario=scenario))

    def faults(self) -> list[dict[str, Any]]:
        return self._run(self._async.faults())

    def remove_fault(self, rule_id: str) -> None:
        self._run(self._async.remove_fault(rule_id))

    def clear_faults(self) -> int:
        return self._run(self._async.clear_faults())

    @contextmanager
    def fault(
        self, *rules: Mapping[str, Any], scenario: str | Mapping[str, Any] | None = None
    ) -> Iterator[list[str]]:
        """Rules in force for the block only: ``with emulator.fault({...}): ...``."""
        ids = self.add_faults(*rules, scenario=scenario)
        try:
            yield ids
        finally:
            for rule_id in ids:
                try:
                    self.remove_fault(rule_id)
                except AdminError as exc:
                    if exc.status != 404:
                        raise

    def create_library(
        self, name: str, kind: str, list_type: str, items: Sequence[str] = (), *, account: str | None = None
    ) -> dict[str, Any]:
        return self._run(self._async.create_library(name, kind, list_type, items, account=account))

    def add_library_items(self, code: str, items: Sequence[str], *, account: str | None = None) -> int:
        return self._run(self._async.add_library_items(code, items, account=account))

    def add_verdicts(self, *verdicts: Mapping[str, Any]) -> None:
        self._run(self._async.add_verdicts(*verdicts))

    def har(self, **filters: Any) -> dict[str, Any]:
        return self._run(self._async.har(**filters))

    def ndjson(self, **filters: Any) -> str:
        return self._run(self._async.ndjson(**filters))

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        return self._run(self._async.deliveries(**filters))

    def wait_for_delivery(
        self, *, count: int = 1, timeout: float = 5.0, state: str | None = "delivered", **filters: Any
    ) -> list[dict[str, Any]]:
        return self._run(self._async.wait_for_delivery(count=count, timeout=timeout, state=state, **filters))

    def set_callback(
        self, url: str | None, *, account: str | None = None, seed: str | None = None
    ) -> dict[str, Any]:
        return self._run(self._async.set_callback(url, account=account, seed=seed))

    def review(
        self,
        *,
        task_id: str,
        suggestion: str,
        labels: Sequence[str] = (),
        url: str | None = None,
        account: str | None = None,
        data_id: str | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._async.review(
                task_id=task_id,
                suggestion=suggestion,
                labels=labels,
                url=url,
                account=account,
                data_id=data_id,
            )
        )

    def tencent_badcases(self, **filters: Any) -> list[dict[str, Any]]:
        return self._run(self._async.tencent_badcases(**filters))

    def confirm_badcase(self, request_id: str) -> dict[str, Any]:
        return self._run(self._async.confirm_badcase(request_id))
