"""Settings: one frozen dataclass tree, built by :func:`load` from a JSON file plus ``EMULATOR_*``.

Nothing is read at import time. The file is JSON with the sections ``server``, ``alibaba`` and
``tencent`` (see ``fixtures/default-config.json``, which is also the built-in default). Environment
variables overlay the file: ``EMULATOR_<SECTION>__<KEY>=<value>`` sets ``<section>.<key>``, the value
parsed as JSON when it parses (``false``, ``20``, ``[...]``) and taken as a string otherwise, e.g.
``EMULATOR_SERVER__PORT=9000`` or ``EMULATOR_ALIBABA__VERIFY_SIGNATURES=false``.

Every problem raises :class:`~emulator.errors.ConfigError` naming the file or variable, the dotted
key and what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from .core.patterns import compile_pattern
from .documents import DocumentError, read_document
from .errors import ConfigError, InvalidInput


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Host names the admin API answers to (the Host header, port aside); a leading dot also allows
    #: subdomains (``.example.com``). Empty: any. Set it to refuse DNS-rebinding pages.
    allowed_hosts: tuple[str, ...] = ()
    #: Request bodies above this many bytes are refused before they are read in full.
    max_body_bytes: int = 1024 * 1024
    #: Real seconds SIGTERM (or the end of ``serve``) may take in all: calls still running (a
    #: ``hang`` fault, a slow client) are cut and pending deliveries logged once it is spent.
    shutdown_grace: float = 5.0
    #: Seconds a client may take to send a request's head, and again its body, before the
    #: connection is closed (0: no limit).
    read_timeout: float = 30.0
    #: Namespaces whose provider state (libraries, badcases, jobs, console settings) is kept; past
    #: it the least recently used namespace's state is forgotten (the default namespace's never).
    max_namespaces: int = 1_000
    #: "real": the system clock. "manual": starts at the real time of start-up and moves only when
    #: told (POST /_emulator/clock), for throttle windows, signature skew, callback retries and
    #: confirm delays.
    clock: Literal["real", "manual"] = "real"
    #: The request log (logger ``emulator.requests``, one line per exchange) under ``emulator serve``:
    #: its level ("info" shows every exchange) and format ("text" or "json", one object a line).
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class JournalSettings:
    #: Most exchanges kept; the oldest are evicted (and counted) past it. 0 disables recording.
    capacity: int = 10_000
    #: Most bytes kept (request and response bodies, request heads and URLs as received); the
    #: oldest exchanges are evicted (and counted) past it.
    max_bytes: int = 64 * 1024 * 1024
    #: Bytes of a refused call's request body kept (the real length is recorded beside them); a
    #: refused call whose body was not read reads no more than this.
    max_body_bytes: int = 64 * 1024
    #: Long-polls on the journal (GET /_emulator/requests/wait) open at once; more answer 503.
    max_waiters: int = 100


@dataclass(frozen=True)
class StorageSettings:
    #: A data directory: state is kept in ``DIR/emulator.sqlite3`` and survives a restart (or a
    #: ``kill -9``). Empty: in memory, forgotten at exit.
    path: str = ""
    #: SQLite's ``synchronous``: "NORMAL" survives the emulator's crash; "FULL" also an OS crash or
    #: a power loss, at the cost of a flush per commit.
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: A state document (GET /_emulator/state) to seed from: a namespace made afresh (first use, or
    #: after a reset) starts from the config plus the document's records for it.
    state: str = ""
    #: A Redis shared by replicas (``--store``, ``redis://HOST:PORT/DB``): their state, throttle
    #: windows, fault-rule counts, callback outbox and journal are kept there, so that every
    #: replica using it answers alike (README "Running several replicas"). Empty: none. Not with
    #: ``path``.
    url: str = ""


@dataclass(frozen=True)
class AdminSettings:
    #: When set, every /_emulator/* call must carry ``Authorization: Bearer <token>``.
    token: str | None = None


@dataclass(frozen=True)
class FaultSettings:
    #: Fault rules held at most (start-up scenarios included); adding past it is refused.
    max_rules: int = 1000
    #: The folder whose scenario files the admin API may load by relative path; unset: only the
    #: shipped scenario names. (Start-up scenarios from the config or the command line may name
    #: any file: the operator wrote them.)
    scenarios_dir: str | None = None
    #: The largest scenario file the admin API reads, in bytes.
    scenario_max_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class CallbackSettings:
    """Outbound notifications to the user's server (core/callbacks.py)."""

    #: Retries after the first attempt before a delivery is given up as exhausted (the reference
    #: sheet: up to 16; today's provider docs say 3).
    max_retries: int = 16
    #: Seconds to wait before retry 1, 2, ...; the last value repeats for later retries. The
    #: provider documents no schedule: doubling from 1 s, capped at 10 minutes, spreads 16 retries
    #: over about 77 minutes. UNCONFIRMED(callback-retry-delays).
    retry_delays: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600)
    #: Seconds one attempt may take (connect to last byte) before it counts as failed.
    #: UNCONFIRMED(callback-attempt-timeout).
    attempt_timeout: float = 10.0
    #: Real seconds shutdown waits for deliveries still in progress before it cancels and reports
    #: them, within server.shutdown_grace. Real time, not the injected clock: a stopped ManualClock
    #: must not hang the shutdown.
    shutdown_grace: float = 5.0
    #: Bytes of the receiver's answer kept in the journal.
    max_response_bytes: int = 4096
    #: Hosts deliveries may go to: names, addresses, networks, or "*" for any. The hosts of the
    #: accounts' configured callback_url and of URLs set in the console are allowed besides.
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.0/8", "::1")
    #: Finished deliveries kept for the admin API; the oldest are forgotten past it.
    max_deliveries: int = 1000
    #: Deliveries in progress at most; more are refused (journaled, never sent). 0: no limit.
    max_pending: int = 10_000
    #: Attempts sent at once to one receiver (scheme, host, port); others wait their turn. 0: no limit.
    max_concurrent_per_receiver: int = 4
    #: With a shared store (storage.url): seconds a replica's lease on a delivery lasts unless
    #: renewed (every third of it); a replica that dies has its deliveries taken over this long after.
    lease_seconds: float = 10.0


@dataclass(frozen=True)
class TextLibrarySpec:
    """A custom text library an account starts with (term or text-pattern; black/white/review list)."""

    name: str
    kind: Literal["term", "pattern"]
    list_type: Literal["blacklist", "whitelist", "review"]
    items: tuple[str, ...] = ()
    #: The TextScan scenes it applies to; empty: term libraries both ``antispam`` and ``ad``,
    #: pattern libraries ``antispam`` only (document 003).
    scenes: tuple[Literal["antispam", "ad"], ...] = ()


@dataclass(frozen=True)
class Verdict:
    """A default moderation result: what scans answer for a matching URL or text in one scene.

    Exactly one of ``url`` (equal), ``url_pattern`` (a regular expression searched in the URL) or
    ``text`` (a substring of the scanned text, scene ``antispam``) says what it applies to.
    """

    scene: str
    label: str
    suggestion: Literal["pass", "review", "block"]
    rate: float = 99.9
    url: str | None = None
    url_pattern: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class AlibabaAccount:
    access_key_id: str
    access_key_secret: str
    uid: str
    #: The callback seed the console generates; checksum = sha256(uid + seed + content).
    seed: str = ""
    callback_url: str | None = None
    #: Calls per second per API action, over the provider defaults.
    rate_limits: Mapping[str, int] = field(default_factory=dict)
    #: Journal namespace of this account's traffic when the request names none.
    namespace: str | None = None
    #: Custom text libraries the account starts with (the console's "custom libraries").
    text_libraries: tuple[TextLibrarySpec, ...] = ()
    #: The real-time data reflux scenarios enabled for the account (document 000): ImageScanFeedback
    #: for these scenes joins the reflux library and changes the next scan; for other scenes it is
    #: recorded only. Default: all three (every feedback takes effect at once).
    reflux_scenes: tuple[Literal["porn", "terrorism", "ad"], ...] = ("porn", "terrorism", "ad")


@dataclass(frozen=True)
class AlibabaSettings:
    accounts: tuple[AlibabaAccount, ...] = ()
    #: Off relaxes signature, Content-MD5/x-acs-content-sha256 and clock checks (the key id must
    #: still name a configured account, or the only one is used).
    verify_signatures: bool = True
    #: Largest accepted difference between the request's Date / x-acs-date and the server clock.
    max_clock_skew_seconds: int = 900
    #: Answer SignatureNonceUsed to a signed call whose x-acs-signature-nonce was seen before within
    #: the clock-skew window (a replay). The SDKs send a fresh nonce per call.
    reject_nonce_reuse: bool = True
    #: How a throttled call is answered: the gateway error Throttling.User with HTTP 429 or 400, or
    #: HTTP 200 with business code 588 EXCEED_QUOTA (which one Green uses is unconfirmed).
    throttle_response: Literal["429", "400", "588"] = "429"
    #: Add ``x-acs-retry-after`` (milliseconds) to throttled answers. The Tea SDK raises its
    #: ThrottlingException only when the header is present; whether Green sends it is unconfirmed.
    throttle_retry_after_header: bool = False
    #: The HostId the gateway puts in its error bodies.
    host_id: str = "green.cn-shanghai.aliyuncs.com"
    #: Also notify the account's callback URL after an ImageScanFeedback / TextFeedback call that
    #: carries a verdict (the console notifies after human reviews either way).
    notify_on_feedback: bool = False
    #: Default scan results for matching URLs and texts; anything unmapped is normal / pass.
    verdicts: tuple[Verdict, ...] = ()
    #: How similar (Jaccard index of the bigram multisets, 0..1) a text must be to a text pattern to
    #: hit it. At 0.6 a single-character edit of a pattern of 10 or more characters still hits (its
    #: similarity is at least 7/11).
    pattern_similarity: float = 0.6
    #: Check ImageScanFeedback labels against each scene's own list (the emulator's lists, not
    #: documented); off accepts any label the documents name for any scene.
    strict_labels: bool = False
    #: Refuse a ClientInfo query parameter that is not a JSON object (code 400; undocumented).
    strict_client_info: bool = True
    #: Most tasks in one scan call (TextScan's documented 100; the image scans' limit is undocumented).
    max_scan_tasks: int = 100
    #: Most taskIds in one ImageAsyncScanResults call (undocumented).
    max_result_ids: int = 1_000
    #: Samples each feedback-based library (image, text) keeps per account and namespace; past it
    #: the least recently taught is forgotten. The provider documents no limit.
    max_library_entries: int = 10_000


@dataclass(frozen=True)
class TencentAccount:
    secret_id: str
    secret_key: str
    appid: str
    #: Calls per second per API action (/report/badcase, /text/auditing); none is documented, so
    #: unlimited by default. UNCONFIRMED(tencent-rate-limit).
    rate_limit: int | None = None
    #: Journal namespace of this account's traffic when the request names none.
    namespace: str | None = None


@dataclass(frozen=True)
class TencentSettings:
    accounts: tuple[TencentAccount, ...] = ()
    verify_signatures: bool = True
    #: Reject labels outside the documented list.
    strict_labels: bool = False
    #: Refuse elements that document 002 does not list, in /report/badcase, /text/auditing and
    #: /image/auditing (MalformedXML); off ignores them. Undocumented either way.
    strict_elements: bool = True
    #: Refuse a ModerationTime not shaped like 2021-08-07T12:12:12+08:00 (InvalidArgument); off
    #: keeps any text as sent. Undocumented either way.
    strict_moderation_time: bool = True
    #: Refuse a text audit whose Input names more than one of Object, Url and Content (CI: "they do
    #: not take effect together", which one wins is undocumented); off: Content wins, then Object.
    strict_text_input: bool = True
    #: How far ahead of the server clock a signature's q-sign-time may start before the request is
    #: RequestTimeTooSkewed (the reference sheet's 15 minutes).
    max_clock_skew_seconds: int = 900
    #: XMLSizeLimit above this many bytes (also capped by server.max_body_bytes). A badcase is a few
    #: hundred bytes; CI documents no limit, so this only bounds what an untrusted client can send.
    #: UNCONFIRMED(tencent-body-limit).
    max_body_bytes: int = 1024 * 1024
    #: Seconds after which a reported badcase counts as confirmed by the provider's backend review
    #: (CI: it "takes effect in subsequent moderation jobs after confirmation on the backend"; no
    #: review time is documented). ``null``: only the admin action confirms.
    confirm_after_seconds: float | None = 3600.0
    #: Default verdicts of text audits (/text/auditing): a text containing the key gets the label
    #: (the first key found, in file order; e.g. ``{"badword": "Porn"}``); any other text is Normal.
    #: A confirmed badcase for the same text beats both.
    text_labels: Mapping[str, str] = field(default_factory=dict)
    #: Badcases kept per account and namespace; past it the oldest reported is forgotten.
    max_badcases: int = 10_000


@dataclass(frozen=True)
class ContractSettings:
    """Contract testing (emulator/contract/)."""

    #: What a call whose request breaks the shipped contract gets (unknown body fields at any depth,
    #: wrong types, undocumented query parameters): "off" nothing, "warn" its answer as usual plus an
    #: ``x-emulator-violations`` header and the list in its journal entry, "error" the provider's own
    #: invalid-parameter error instead.
    strict_requests: Literal["off", "warn", "error"] = "warn"


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    alibaba: AlibabaSettings = field(default_factory=AlibabaSettings)
    tencent: TencentSettings = field(default_factory=TencentSettings)
    #: Fault scenarios loaded at start: names of files in fixtures/scenarios/ (without .json) or
    #: paths to scenario files.
    scenarios: tuple[str, ...] = ()
    faults: FaultSettings = field(default_factory=FaultSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    contract: ContractSettings = field(default_factory=ContractSettings)
    #: Where the settings came from, for messages.
    source: str = "<defaults>"
    #: Dotted keys set by an environment variable or an override, and by which (for messages).
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """What carried the value of the dotted ``key``: the variable or option that set it (or a
        list or section around it), else the file."""
        return _origin(self.origins, key, self.source)


ENV_PREFIX = "EMULATOR_"
#: Variables with the prefix that are not settings: the pytest plugin's (the emulator to use and its
#: admin token), so that a shell or CI job setting them can still run ``emulator serve``.
NOT_SETTINGS = frozenset({"EMULATOR_URL", "EMULATOR_ADMIN_TOKEN"})


def default_config_path() -> Path:
    """The built-in default config: inside the installed package, else the source tree's fixtures/."""
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "default-config.json"
    if packaged.is_file():
        return packaged
    return here.parent / "fixtures" / "default-config.json"


def load(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    origins: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from a JSON or YAML file (the default config when ``path`` is None), then ``EMULATOR_*``
    variables from ``env`` (``os.environ`` when None), then ``overrides`` (dotted keys, e.g. from CLI
    flags: ``{"server.port": 0}``). ``origins`` names where an override came from (e.g.
    ``{"server.port": "option --port"}``) for error messages."""
    file = Path(path) if path is not None else default_config_path()
    source = str(file)
    try:
        raw = read_document(file)
    except DocumentError as exc:
        raise ConfigError(source, "<file>", str(exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, "<file>", "must hold an object (a mapping) at the top level")

    # Which variable or option set each dotted key (and each section it had to create), so that an
    # error names what carried the bad value rather than the file.
    sources: dict[str, str] = {}
    environ = os.environ if env is None else env
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        dotted = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        _set_dotted(raw, dotted, _parse_env_value(environ[name]), f"environment variable {name}", sources)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, (origins or {}).get(dotted, f"override {dotted}"), sources)

    settings = _build(Settings, raw, "", source, sources)
    settings = dataclasses.replace(settings, source=source, origins=types.MappingProxyType(sources))
    _check(settings)
    return settings


def parse_value(cls: type[T], raw: Any, where: str) -> T:
    """A config dataclass from JSON at run time (the admin API), checked like a config file."""
    return _build(cls, raw, "", where, {})


def _parse_env_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, origin: str, sources: dict[str, str]) -> None:
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        if part not in node:
            sources.setdefault(".".join(parts[: i + 1]), origin)
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(origin, ".".join(parts[: i + 1]), "is not a section")
        node = child
    node[parts[-1]] = value
    sources[dotted] = origin


def _origin(sources: Mapping[str, str], key: str, default: str) -> str:
    """What set ``key``: the variable or option that set it or an enclosing key (a list or section
    given whole), else ``default`` (the file)."""
    while key:
        if key in sources:
            return sources[key]
        key = key[: max(key.rfind("."), key.rfind("["), 0)]
    return default


T = TypeVar("T")
#: Settings fields that record where the settings came from: set by load(), never by a file.
_INTERNAL = ("source", "origins")


def _build(cls: type[T], raw: Any, key: str, source: str, sources: Mapping[str, str]) -> T:
    """Turn a JSON object into the dataclass ``cls``, checking every key and type."""
    where = _origin(sources, key, source)
    if not isinstance(raw, dict):
        raise ConfigError(where, key or "<file>", f"must be an object, not {_json_type(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _INTERNAL}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        bad = _join(key, unknown[0])
        known = ", ".join(sorted(fields))
        raise ConfigError(_origin(sources, bad, source), bad, f"unknown key (known keys: {known})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        sub = _join(key, name)
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(where, sub, "is required")
            continue
        values[name] = _convert(hints[name], raw[name], sub, source, sources)
    return cls(**values)


def _convert(tp: Any, value: Any, key: str, source: str, sources: Mapping[str, str]) -> Any:
    where = _origin(sources, key, source)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, source, sources)  # type: ignore[arg-type]
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key, source, sources)
    from_env = key in sources
    if from_env and isinstance(value, int | float) and not isinstance(value, bool):
        # EMULATOR_TENCENT__... = 1250000000 parses as a number; a string was meant where one is
        # expected (an APPID, a throttle mode such as "429").
        if tp is str or (origin is Literal and str(value) in args):
            value = str(value)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(json.dumps(a) for a in args)
            raise ConfigError(where, key, f"must be one of {choices}, not {json.dumps(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(where, key, f"must be a list, not {_json_type(value)}")
        return tuple(_convert(args[0], item, f"{key}[{i}]", source, sources) for i, item in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(where, key, f"must be an object, not {_json_type(value)}")
        return types.MappingProxyType(
            {k: _convert(args[1], v, _join(key, k), source, sources) for k, v in value.items()}
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, key, f"must be true or false, not {json.dumps(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, key, f"must be an integer, not {json.dumps(value)}")
        if value < 0:
            raise ConfigError(where, key, f"must not be negative, not {value}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, key, f"must be a number, not {json.dumps(value)}")
        if value < 0:
            raise ConfigError(where, key, f"must not be negative, not {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(where, key, f"must be a string, not {json.dumps(value)}")
        return value
    raise TypeError(f"config type {tp!r} is not supported")  # a bug in this module, not in config


def _check(settings: Settings) -> None:
    """Rules that span several values (or that a type cannot say)."""

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(settings.origin(key), key, problem)

    if settings.server.port > 65535:
        raise bad("server.port", f"must be at most 65535, not {settings.server.port}")
    used: dict[str, set[str]] = {"access_key_id": set(), "uid": set()}
    for i, acc in enumerate(settings.alibaba.accounts):
        for attr, seen in used.items():
            value = getattr(acc, attr)
            key = f"alibaba.accounts[{i}].{attr}"
            if not value:
                raise bad(key, "must not be empty")
            if value in seen:
                raise bad(key, f"{value!r} is used by another account")
            seen.add(value)
        if acc.callback_url is not None and not acc.callback_url.startswith(("http://", "https://")):
            raise bad(f"alibaba.accounts[{i}].callback_url", "must be an http:// or https:// URL"
            )
    for i, host in enumerate(settings.callbacks.allowed_hosts):
        if not host.strip().rstrip("."):
            raise bad(f"callbacks.allowed_hosts[{i}]", "must not be empty")
    if settings.callbacks.lease_seconds < 0.1:
        lease = settings.callbacks.lease_seconds
        raise bad("callbacks.lease_seconds", f"must be at least 0.1, not {lease:g}")
    for i, verdict in enumerate(settings.alibaba.verdicts):
        key = f"alibaba.verdicts[{i}]"
        chosen = [k for k in ("url", "url_pattern", "text") if getattr(verdict, k) is not None]
        if len(chosen) != 1:
            raise bad(key, "needs exactly one of url, url_pattern, text")
        if verdict.url_pattern is not None:
            try:
                compile_pattern(verdict.url_pattern)
            except InvalidInput as exc:
                raise bad(f"{key}.url_pattern", str(exc)) from None
        if verdict.rate > 100:
            raise bad(f"{key}.rate", f"must be at most 100, not {verdict.rate:g}")
    if settings.faults.max_rules < 1:
        raise bad("faults.max_rules", "must be at least 1")
    if settings.faults.scenarios_dir is not None and not Path(settings.faults.scenarios_dir).is_dir():
        raise bad("faults.scenarios_dir", f"{settings.faults.scenarios_dir!r} is not a folder")
    if not 0 < settings.alibaba.pattern_similarity <= 1:
        raise bad("alibaba.pattern_similarity", "must be above 0 and at most 1")
    ids: set[str] = set()
    appids: set[str] = set()
    for i, tacc in enumerate(settings.tencent.accounts):
        key = f"tencent.accounts[{i}]"
        if not tacc.secret_id:
            raise bad(f"{key}.secret_id", "must not be empty")
        if tacc.secret_id in ids:
            raise bad(f"{key}.secret_id", f"{tacc.secret_id!r} is used twice")
        if not tacc.appid.isdigit():
            raise bad(f"{key}.appid", f"must be digits, not {tacc.appid!r}")
        if tacc.appid in appids:
            raise bad(f"{key}.appid", f"{tacc.appid!r} is used twice")
        ids.add(tacc.secret_id)
        appids.add(tacc.appid)
    for key, value in (
        ("server.max_namespaces", settings.server.max_namespaces),
        ("alibaba.max_library_entries", settings.alibaba.max_library_entries),
        ("tencent.max_badcases", settings.tencent.max_badcases),
    ):
        if value < 1:
            raise bad(key, f"must be at least 1, not {value}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
