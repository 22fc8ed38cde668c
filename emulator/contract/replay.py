"""``emulator contract check``: replays a recording (HAR) against an in-process emulator and compares
each answer with the recorded one (compare.py).

How each entry is replayed:

- The emulator's manual clock is moved to the entry's recorded time (``startedDateTime``), forward
  as the recording went (so throttle windows see the recorded pace), so that signatures and
  their time checks see what the provider saw.
- When the key an entry was signed with belongs to one of the emulator's configured accounts (a
  capture made with the test account, or a config carrying the real key), its signature is
  verified as recorded, and an auth error is compared like any other answer. Otherwise (or when
  the entry was redacted, or quotes an id the provider made up, see below) signature checks are
  relaxed for it, and a recorded auth error is listed as not comparable.
- Ids the provider made up (a task's, a job's) differ from the emulator's: a later request quoting
  a recorded one (ImageAsyncScanResults, DescribeAuditingTextJob) is sent with the emulator's, so
  it finds the same state the provider found.
- Entries the emulator answers with its "no such API" error are listed as not emulated; entries
  no provider claims (other hosts) are counted and skipped; entries without a response too.
- Callbacks the replayed calls would send are dropped, never delivered.

Two emulators serve the replay, both on the same manual clock: one verifying signatures as
configured, one relaxed, which receives every accepted call so that it holds the state later
calls need.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from ..config import Settings, load
from ..core.clock import ManualClock
from ..core.journal import Filter
from ..keys import FAULTS, JOURNAL
from ..providers.alibaba.contract import CONTRACT as ALIBABA
from ..providers.tencent.contract import CONTRACT as TENCENT
from ..server import RunningServer, serve
from .compare import Answer, Finding, compare
from .har import HarError, read_har
from .spec import ProviderContract

__all__ = ["CONTRACTS", "EntryResult", "Report", "check_file", "replay"]

#: Every provider's contract, by provider name.
CONTRACTS: Mapping[str, ProviderContract] = {c.name: c for c in (ALIBABA, TENCENT)}

Outcome = Literal["compared", "not-emulated", "not-comparable", "no-response"]

_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"})


@dataclass
class EntryResult:
    #: The entry's position in the HAR file (from 0).
    index: int
    method: str
    url: str
    outcome: Outcome
    provider: str | None = None
    action: str | None = None
    findings: list[Finding] = field(default_factory=list)
    #: Whether its signature was verified as recorded.
    verified: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        return f"#{self.index} {self.action or self.method + ' ' + urlsplit(self.url).path}"


@dataclass
class Report:
    source: str
    results: list[EntryResult]
    #: Entries for hosts no provider claims, skipped.
    ignored: int = 0
    #: False when the HAR file's tail was missing (an interrupted recording).
    complete: bool = True

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    time: float


def _request(entry: Mapping[str, Any]) -> _Request:
    req = entry["request"]
    url = str(req["url"])
    split = urlsplit(url)
    target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    headers = [(str(h["name"]), str(h["value"])) for h in req.get("headers", [])]
    if not any(k.lower() == "host" for k, _ in headers) and split.netloc:
        headers.append(("Host", split.netloc))
    headers = [(k, v) for k, v in headers if k.lower() not in _HOP and not k.startswith(":")]
    post = req.get("postData") or {}
    when = datetime.fromisoformat(str(entry["startedDateTime"]).replace("Z", "+00:00")).timestamp()
    return _Request(str(req["method"]), url, target, headers, _body(post), when)


def _body(part: Mapping[str, Any]) -> bytes:
    text = str(part.get("text") or "")
    # The journal's export notes a body that is not UTF-8 (core/export.py); HAR's own field for a
    # response is "encoding".
    if part.get("encoding") == "base64" or "base64" in str(part.get("comment", "")):
        return base64.b64decode(text)
    return text.encode("utf-8", "surrogateescape")


def _answer(entry: Mapping[str, Any]) -> Answer:
    resp = entry["response"]
    content = resp.get("content") or {}
    headers = {str(h["name"]).lower(): str(h["value"]) for h in resp.get("headers", [])}
    content_type = headers.get("content-type", str(content.get("mimeType", "")))
    return Answer(int(resp.get("status") or 0), content_type, _body(content))


def replay_settings(settings: Settings) -> Settings:
    """The settings of the verifying emulator: as configured, but with a manual clock, callbacks to
    any host (they are dropped, see :func:`replay`) and no strict request checks (their header is
    the emulator's, not the provider's)."""
    return replace(
        settings,
        server=replace(settings.server, clock="manual"),
        callbacks=replace(settings.callbacks, allowed_hosts=("*",)),
        contract=replace(settings.contract, strict_requests="off"),
    )


class _Replayer:
    def __init__(self, settings: Settings, clock: ManualClock, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.clock = clock
        self.session = session
        self.verifying: RunningServer | None = None
        self.relaxed: RunningServer | None = None
        #: Recorded id -> the emulator's.
        self.ids: dict[str, str] = {}
        self._last_time: float | None = None

    def move_clock(self, when: float) -> None:
        if self._last_time is None or when < self._last_time:
            self.clock.set_time(when)
        else:
            self.clock.advance(when - self._last_time)
        self._last_time = when

    async def send(self, server: RunningServer, req: _Request, target: str, body: bytes) -> Answer:
        async with self.session.request(
            req.method,
            server.url + target,
            headers=req.headers,
            data=body or None,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        ) as resp:
            data = await resp.read()
            return Answer(resp.status, resp.headers.get("Content-Type", ""), data)

    def rewrite(self, req: _Request) -> tuple[str, bytes]:
        target, body = req.target, req.body
        for recorded, ours in self.ids.items():
            if recorded in target:
                target = target.replace(recorded, ours)
            if body and recorded.encode() in body:
                body = body.replace(recorded.encode(), ours.encode())
        return target, body

    def key_known(self, req: _Request) -> bool:
        headers = {k.lower(): v for k, v in req.headers}
        for contract in CONTRACTS.values():
            key = contract.key_id(headers)
            if key is not None and contract.known_key(self.settings, key):
                return True
        return False

    def learn_ids(self, recorded: Any, ours: Any, fields: frozenset[str]) -> None:
        if isinstance(recorded, dict) and isinstance(ours, dict):
            for key, value in recorded.items():
                if key not in ours:
                    continue
                mine = ours[key]
                if key in fields and isinstance(value, str) and isinstance(mine, str):
                    if value != mine and value:
                        self.ids[value] = mine
                else:
                    self.learn_ids(value, mine, fields)
        elif isinstance(recorded, list) and isinstance(ours, list):
            for rec, mine in zip(recorded, ours, strict=False):
                self.learn_ids(rec, mine, fields)


def _last_call(server: RunningServer) -> tuple[str | None, str | None]:
    last = server.app[JOURNAL].select(Filter(direction="in", order="desc", limit=1))
    return (last[0].provider, last[0].action) if last else (None, None)


def _recorded_code(recorded: Answer) -> tuple[ProviderContract, str] | None:
    """The provider and auth error code of a recorded answer that refused credentials."""
    for contract in CONTRACTS.values():
        try:
            code = contract.error_code(contract.parse_body(recorded.body))
        except (ValueError, TypeError):
            continue
        if code is not None and code in contract.auth_codes:
            return contract, code
    return None


async def replay(
    entries: Sequence[Mapping[str, Any]], settings: Settings | None = None, source: str = ""
) -> Report:
    """Replay ``entries`` (HAR entries) and compare; ``settings`` default to the built-in config."""
    base = replay_settings(settings if settings is not None else load(env={}))
    relaxed = base
    for name in CONTRACTS:
        # Each provider's settings section is named after it and has verify_signatures.
        section = getattr(relaxed, name)
        relaxed = replace(relaxed, **{name: replace(section, verify_signatures=False)})
    clock = ManualClock()
    report = Report(source, [])
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(trust_env=False))
        replayer = _Replayer(base, clock, session)
        replayer.verifying = await stack.enter_async_context(serve(base, clock=clock))
        replayer.relaxed = await stack.enter_async_context(serve(relaxed, clock=clock))
        for server in (replayer.verifying, replayer.relaxed):
            # Replayed scans must not call anyone back.
            server.app[FAULTS].add({"direction": "out", "action": {"type": "drop"}})
        for index, entry in enumerate(entries):
            try:
                result = await _replay_one(replayer, index, entry)
            except (KeyError, TypeError, ValueError) as exc:
                problem = f"entry {index} is not a HAR entry with a request and a response: {exc!r}"
                raise HarError(problem) from None
            except aiohttp.ClientError as exc:
                # What the recording holds cannot be sent again (a header aiohttp refuses, say).
                note = f"could not be replayed: {exc}"
                result = EntryResult(index, "?", "?", "not-comparable", note=note)
            if result is None:
                report.ignored += 1
            else:
                report.results.append(result)
    return report


async def _replay_one(r: _Replayer, index: int, entry: Mapping[str, Any]) -> EntryResult | None:
    assert r.verifying is not None and r.relaxed is not None
    if (entry.get("_emulator") or {}).get("direction") == "out":
        return None  # a callback the emulator sent (a journal export): no provider's call
    req = _request(entry)
    recorded = _answer(entry)
    result = EntryResult(index, req.method, req.url, "compared")
    if recorded.status == 0:
        result.outcome = "no-response"
        result.note = "the recording holds no response"
        return result
    r.move_clock(req.time)
    target, body = r.rewrite(req)
    rewritten = (target, body) != (req.target, req.body)
    verify = r.key_known(req) and not rewritten and not entry.get("_redacted")
    if verify:
        answer = await r.send(r.verifying, req, target, body)
        provider, action = _last_call(r.verifying)
        if provider is not None and answer.status < 400:
            # Accepted: the relaxed emulator, which holds the state later calls need, takes it too.
            state = await r.send(r.relaxed, req, target, body)
        else:
            state = None
    else:
        auth = _recorded_code(recorded)
        if auth is not None:
            contract, code = auth
            result.provider = contract.name
            result.outcome = "not-comparable"
            result.note = (
                f"the provider refused its credentials ({code}); the key is no configured account's, "
                "so signatures are not checked for it"
            )
            return result
        answer = state = await r.send(r.relaxed, req, target, body)
        provider, action = _last_call(r.relaxed)
    if provider is None:
        return None
    contract = CONTRACTS[provider]
    result.provider, result.action, result.verified = provider, action, verify
    if action is None:
        result.outcome = "not-emulated"
        return result
    if rewritten:
        result.note = "ids the provider made up replaced by the emulator's; signature not checked"
    if state is not None:
        try:
            trees = contract.parse_body(recorded.body), contract.parse_body(state.body)
            r.learn_ids(*trees, contract.id_fields)
        except ValueError:
            pass
    result.findings = compare(action, recorded, answer, contract)
    return result


def check_file(path: str | os.PathLike[str], settings: Settings | None = None) -> Report:
    """Read a HAR file (an interrupted recording's too) and replay it."""
    har = read_har(path)
    report = asyncio.run(replay(har.entries, settings, str(path)))
    report.complete = har.complete
    return report
