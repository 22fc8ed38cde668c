"""Fault rules: matcher + action + schedule, kept in priority order by a :class:`FaultEngine`.

A rule is written as JSON (scenario files, the admin API, Python dicts; the README has real ones)::

    {"name": "first call fails", "priority": 10,
     "match": {"provider": "<provider>", "action": "<action>"},
     "action": {"type": "error", "code": "ServiceUnavailable"},
     "schedule": {"first": 1}}

Matchers compose: a mapping of simple fields is an AND (``provider``, ``action``, ``method``,
``path``, ``account``, ``namespace``, ``direction``: a string for equality or ``{"matches": regex}``),
plus ``{"header": {"name", "equals"|"matches"}}``, ``{"body": {"path", "equals"|"matches"}}`` (a
dotted path into the parsed JSON body or the XML document), ``{"all": [...]}``, ``{"any": [...]}`` and
``{"not": {...}}``.

Schedules combine (all given conditions must hold): ``nth`` (only the nth matching call), ``first``
(the first N), ``every`` (every k-th), ``after`` (every call after the first N), ``probability`` with
``seed`` (deterministic), ``window`` (``{"from": s, "until": s}`` seconds after the rule was added,
on the injected clock), and ``times`` (at most M firings in total).

A rule added in a namespace sees only that namespace's calls; a rule of no namespace (start-up
scenarios, or added with ``namespace=*``) sees every namespace's, counting and scheduling them apart,
so each namespace meets it as if it were alone.

Rules are evaluated in descending ``priority``, then in the order they were added; the first rule
whose matcher and schedule both say yes fires, and later rules do not see the call. Which actions
exist, and what they do on the wire, is for the providers (error codes) and fault_actions.py.

Rules come from anyone who can reach the admin API, so what a rule may cost is bounded when it is
added: patterns are compiled by RE2 (core/patterns.py: linear time), a matcher tree is at most
:data:`MAX_DEPTH` deep and :data:`MAX_NODES` matchers big, numbers are finite and within stated
ranges, and the engine holds at most ``faults.max_rules`` rules. A call only walks the rules that
could match it: rules are indexed by direction, namespace and one field their matcher requires by
plain equality (the first of :data:`INDEXED_FIELDS` it names; rules with none are walked by every
call of their direction and namespace).

Nothing here names a provider: providers register the check of their error codes.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..errors import InvalidInput
from .call import ALL_NAMESPACES, DEFAULT_NAMESPACE
from .clock import Clock
from .namespaces import PerNamespace
from .paths import MISSING, lookup, text_forms
from .patterns import Pattern, compile_pattern
from .storage import Record, Store

#: The deepest a matcher tree may nest (``all``/``any``/``not``), and the most matchers it may hold.
MAX_DEPTH = 32
MAX_NODES = 256
#: The largest count a schedule takes (nth, first, every, after, times), and the widest priority.
MAX_COUNT = 2**53
MAX_PRIORITY = 10**9
#: The latest a schedule window may open or close, in seconds after the rule was added (a year).
MAX_WINDOW = 366 * 86400.0
#: How many rules an engine holds unless told otherwise (``faults.max_rules``).
DEFAULT_MAX_RULES = 1000
#: How rules are stored (core/storage): each rule with its counts, and a rule of every namespace's
#: counts in each namespace apart.
KIND = "faults."
KIND_RULE = "faults.rule"
KIND_COUNTS = "faults.counts"


class RuleError(InvalidInput):
    """A rule is not valid; the message names the bad field as a dotted path."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        super().__init__(f"{where}: {problem}")


# --- what a matcher sees -------------------------------------------------------------------------


@dataclass
class CallView:
    """The call a rule is matched against. ``parsed`` is filled lazily, only for body matchers."""

    direction: str
    provider: str | None
    action: str | None
    method: str
    path: str
    account: str | None
    namespace: str | None
    headers: Mapping[str, str]
    body_loader: Callable[[], Any] | None = None
    _parsed: Any = field(default=None, repr=False)
    _loaded: bool = field(default=False, repr=False)
    _lower: dict[str, str] | None = field(default=None, repr=False)

    def header(self, lname: str) -> str | None:
        """The first value sent under the lower-case header name ``lname``; the map is built once
        a call, however many rules ask."""
        if self._lower is None:
            self._lower = {}
            for k, v in self.headers.items():
                self._lower.setdefault(k.lower(), v)
        return self._lower.get(lname)

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def parsed(self) -> Any:
        if not self._loaded:
            self._loaded = True
            self._parsed = self.body_loader() if self.body_loader else None
        return self._parsed


class Matcher:
    """A test on a call. ``needs_body``: it reads the parsed body (so the body must be read first)."""

    @property
    def needs_body(self) -> bool:
        return False

    def __call__(self, call: CallView) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class _Text:
    """Equality with a string, or a regular-expression search."""

    equals: str | None = None
    pattern: Pattern | None = None

    def test(self, value: Any) -> bool:
        if value is None or value is MISSING:
            return False
        forms = text_forms(value)
        if self.pattern is not None:
            return any(self.pattern.search(form) for form in forms)
        return self.equals in forms


def _text(spec: Any, where: str) -> _Text:
    if isinstance(spec, str | int | float) and not isinstance(spec, bool):
        return _Text(equals=str(spec))
    if isinstance(spec, dict) and set(spec) == {"equals"}:
        return _Text(equals=str(spec["equals"]))
    if isinstance(spec, dict) and set(spec) == {"matches"}:
        try:
            return _Text(pattern=compile_pattern(str(spec["matches"])))
        except InvalidInput as exc:
            raise RuleError(f"{where}.matches", str(exc)) from None
    raise RuleError(where, 'must be a string, {"equals": ...} or {"matches": <regex>}')


@dataclass(frozen=True)
class _Simple(Matcher):
    attr: str
    test: _Text

    def __call__(self, call: CallView) -> bool:
        value = getattr(call, self.attr)
        if self.attr == "method" and isinstance(value, str) and self.test.equals is not None:
            return value.upper() == self.test.equals.upper()
        return self.test.test(value)


@dataclass(frozen=True)
class _Header(Matcher):
    name: str  # lower case
    test: _Text

    def __call__(self, call: CallView) -> bool:
        return self.test.test(call.header(self.name))


@dataclass(frozen=True)
class _Body(Matcher):
    path: tuple[str, ...]
    test: _Text

    @property
    def needs_body(self) -> bool:
        return True

    def __call__(self, call: CallView) -> bool:
        return self.test.test(lookup(call.parsed, self.path))


@dataclass(frozen=True)
class _All(Matcher):
    parts: tuple[Matcher, ...]

    @property
    def needs_body(self) -> bool:
        return any(p.needs_body for p in self.parts)

    def __call__(self, call: CallView) -> bool:
        for part in self.parts:
            if not part(call):
                return False
        return True


@dataclass(frozen=True)
class _Any(Matcher):
    parts: tuple[Matcher, ...]

    @property
    def needs_body(self) -> bool:
        return any(p.needs_body for p in self.parts)

    def __call__(self, call: CallView) -> bool:
        for part in self.parts:
            if part(call):
                return True
        return False


@dataclass(frozen=True)
class _Not(Matcher):
    part: Matcher

    @property
    def needs_body(self) -> bool:
        return self.part.needs_body

    def __call__(self, call: CallView) -> bool:
        return not self.part(call)


SIMPLE_FIELDS = ("provider", "action", "method", "path", "account", "namespace", "direction")
#: The fields a rule is indexed by, most selective first.
INDEXED_FIELDS = ("path", "action", "account", "provider", "method")


def _index_entry(match_spec: Mapping[str, Any], provider: str | None) -> tuple[str, str] | None:
    """(field, value) of the first indexed field the matcher requires by equality, if any."""
    for name in INDEXED_FIELDS:
        value = provider if name == "provider" else match_spec.get(name)
        if isinstance(value, dict) and set(value) == {"equals"}:
            value = value["equals"]
        if isinstance(value, str):
            # The method is matched whatever its case (see _Simple).
            return name, value.upper() if name == "method" else value
    return None


def _call_entries(call: CallView) -> tuple[tuple[str, str | None], ...]:
    return (
        ("path", call.path),
        ("action", call.action),
        ("account", call.account),
        ("provider", call.provider),
        ("method", call.method.upper()),
    )


@dataclass
class _Budget:
    """What is left of a matcher tree's size while it is parsed."""

    nodes: int = MAX_NODES

    def take(self, where: str) -> None:
        self.nodes -= 1
        if self.nodes < 0:
            raise RuleError(where, f"a matcher tree holds at most {MAX_NODES} matchers")


def parse_matcher(spec: Any, where: str = "match", depth: int = 1, budget: _Budget | None = None) -> Matcher:
    if not isinstance(spec, dict):
        raise RuleError(where, "must be an object")
    if depth > MAX_DEPTH:
        # Refused here, before recursing further: a deeper tree would also recurse on every call.
        raise RuleError(where, f"a matcher tree nests at most {MAX_DEPTH} levels deep")
    budget = budget or _Budget()
    parts: list[Matcher] = []
    for key, value in spec.items():
        sub = f"{where}.{key}"
        budget.take(sub)
        if key in SIMPLE_FIELDS:
            parts.append(_Simple(key, _text(value, sub)))
        elif key in ("header", "body"):
            if not isinstance(value, dict):
                raise RuleError(sub, "must be an object")
            name_key = "name" if key == "header" else "path"
            name = value.get(name_key)
            if not isinstance(name, str) or not name:
                raise RuleError(f"{sub}.{name_key}", "is required (a non-empty string)")
            test = _text({k: v for k, v in value.items() if k != name_key}, sub)
            if key == "header":
                parts.append(_Header(name.lower(), test))
            else:
                parts.append(_Body(tuple(name.split(".")), test))
        elif key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise RuleError(sub, "must be a non-empty list of matchers")
            inner = tuple(parse_matcher(v, f"{sub}[{i}]", depth + 1, budget) for i, v in enumerate(value))
            parts.append(_All(inner) if key == "all" else _Any(inner))
        elif key == "not":
            parts.append(_Not(parse_matcher(value, sub, depth + 1, budget)))
        else:
            known = ", ".join((*SIMPLE_FIELDS, "header", "body", "all", "any", "not"))
            raise RuleError(sub, f"unknown matcher (known: {known})")
    return parts[0] if len(parts) == 1 else _All(tuple(parts))


# --- schedules -----------------------------------------------------------------------------------


@dataclass
class Schedule:
    nth: int | None = None
    first: int | None = None
    every: int | None = None
    after: int | None = None
    probability: float | None = None
    seed: int | None = None
    window_from: float | None = None
    window_until: float | None = None
    times: int | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    _random: random.Random = field(default_factory=random.Random, repr=False)
    #: Numbers drawn so far (a restored schedule draws as many again, to go on where it was).
    draws: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        for _ in range(self.draws):
            self._random.random()

    def decide(self, matched: int, fired: int, age: float) -> bool:
        """Whether the ``matched``-th matching call (1-based) fires, ``fired`` firings so far."""
        if self.times is not None and fired >= self.times:
            return False
        if self.window_from is not None and age < self.window_from:
            return False
        if self.window_until is not None and age >= self.window_until:
            return False
        if self.nth is not None and matched != self.nth:
            return False
        if self.first is not None and matched > self.first:
            return False
        if self.every is not None and matched % self.every != 0:
            return False
        if self.after is not None and matched <= self.after:
            return False
        # Drawn last, and only for calls that got this far, so the sequence depends on the seed and
        # the calls alone.
        if self.probability is None:
            return True
        self.draws += 1
        return self._random.random() < self.probability


def parse_schedule(spec: Any, where: str = "schedule") -> Schedule:
    if spec is None or spec == "always" or spec == {"always": True}:
        return Schedule(spec={"always": True})
    if not isinstance(spec, dict):
        raise RuleError(where, 'must be an object (or "always")')
    values: dict[str, Any] = {}
    for key, value in spec.items():
        sub = f"{where}.{key}"
        if key == "always":
            if value is not True:
                raise RuleError(sub, "must be true")
        elif key in ("nth", "first", "every", "times"):
            values[key] = _positive_int(value, sub)
        elif key == "after":
            values[key] = _positive_int(value, sub, allow_zero=True)
        elif key == "probability":
            values[key] = finite_number(value, sub, 0.0, 1.0)
        elif key == "seed":
            values[key] = seed_value(value, sub)
        elif key == "window":
            if not isinstance(value, dict) or not set(value) <= {"from", "until"} or not value:
                raise RuleError(sub, 'must be {"from": seconds, "until": seconds} (either or both)')
            for end in ("from", "until"):
                if end in value:
                    values[f"window_{end}"] = finite_number(value[end], f"{sub}.{end}", 0.0, MAX_WINDOW)
        else:
            known = "always, nth, first, every, after, probability, seed, window, times"
            raise RuleError(sub, f"unknown schedule (known: {known})")
    if "seed" in values and "probability" not in values:
        raise RuleError(f"{where}.seed", "only makes sense with probability")
    return Schedule(spec=dict(spec), **values)


def _positive_int(value: Any, where: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_COUNT:
        raise RuleError(where, f"must be an integer from {low} to 2**53")
    return value


def finite_number(value: Any, where: str, low: float, high: float) -> float:
    """``value`` as a float when it is a finite number from ``low`` to ``high``; else RuleError.
    (Python's JSON reader takes ``NaN`` and ``Infinity``: a NaN passes every comparison.)"""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise RuleError(where, f"must be a number from {low:g} to {high:g}")
    return float(value)


def seed_value(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise RuleError(where, "must be an integer from 0 to 2**64 - 1")
    return value


# --- rules and the engine -------------------------------------------------------------------------


class SharedCount(NamedTuple):
    matched: int
    fired: int
    fire: bool
    total_matched: int
    total_fired: int


class SharedCounters(Protocol):
    """Rule counts kept where every replica counts (core/replicas.ScheduleCounters on Redis)."""

    async def register(self, rule_id: str) -> None: ...

    async def decide(
        self, rule_id: str, schedule: Schedule, namespace: str | None = None, age: float | None = None
    ) -> SharedCount: ...

    async def counts_of(self, wanted: Sequence[tuple[str, str | None]]) -> list[tuple[int, int]]:
        """(matched, fired) of each (rule, namespace) pair; namespace None: over all of them."""
        ...

    async def forget(self, rule_id: str, namespace: str | None = None) -> None: ...


@dataclass
class Counts:
    """What a rule of every namespace has seen of one namespace's calls, and its schedule there."""

    schedule: Schedule
    matched: int = 0
    fired: int = 0


@dataclass
class Rule:
    id: str
    name: str | None
    priority: int
    direction: str
    match: Matcher
    action: dict[str, Any]
    schedule: Schedule
    namespace: str | None
    spec: dict[str, Any]
    provider: str | None
    added_at: float = 0.0
    #: The same moment on the wall clock (what is stored: monotonic time starts afresh each run).
    added_wall: float = 0.0
    #: Calls counted and fired on; for a rule of every namespace, over all of them.
    matched: int = 0
    fired: int = 0
    #: A field the matcher requires by plain equality and its value (the index key), if any.
    indexed: tuple[str, str] | None = None
    #: Evaluation order: descending priority, then the order of adding.
    order: tuple[int, int] = (0, 0)

    @property
    def index_key(self) -> _IndexKey:
        field, value = self.indexed or (None, None)
        return (self.direction, self.namespace, field, value)
    #: For a rule of every namespace (``namespace`` None): its counts in each namespace.
    spaces: PerNamespace[Counts] | None = None

    def __post_init__(self) -> None:
        if self.namespace is None:
            self.spaces = PerNamespace(lambda ns: Counts(dataclasses.replace(self.schedule, draws=0)))

    @property
    def label(self) -> str:
        return f"{self.id} ({self.name})" if self.name else self.id

    def decide(self, namespace: str, now: float) -> bool:
        """Count a matching call of ``namespace``; whether the rule fires for it."""
        age = now - self.added_at
        self.matched += 1
        if self.spaces is None:
            fire = self.schedule.decide(self.matched, self.fired, age)
        else:
            counts = self.spaces.get(namespace)
            counts.matched += 1
            fire = counts.schedule.decide(counts.matched, counts.fired, age)
            counts.fired += fire
        self.fired += fire
        return fire

    def to_dict(self, namespace: str | None = None) -> dict[str, Any]:
        """As listed; a rule of every namespace listed for one namespace shows that namespace's counts."""
        matched, fired = self.matched, self.fired
        if self.spaces is not None and namespace is not None:
            counts = self.spaces.peek(namespace)
            matched, fired = (counts.matched, counts.fired) if counts is not None else (0, 0)
        return {
            **self.spec,
            "id": self.id,
            "namespace": self.namespace,
            "stats": {"matched": matched, "fired": fired},
        }


#: Where a rule is filed: direction, namespace, and its indexed field and value (or None, None).
_IndexKey = tuple[str, str | None, str | None, str | None]

#: The provider's check of the actions answered in its name: raises RuleError unless an ``error``
#: action names an error of its catalogue, or a ``modify`` action names fields its format can carry.
ErrorChecker = Callable[[Mapping[str, Any], str], None]


class FaultEngine:
    """The rules in force, in priority order."""

    prefix = KIND

    def __init__(self, clock: Clock, max_rules: int = DEFAULT_MAX_RULES, store: Store | None = None) -> None:
        self._clock = clock
        self.max_rules = max_rules
        #: Where each rule and its counts are written (core/storage), when durable.
        self._store = store if store is not None and store.durable else None
        #: The seed's rules (``--state``): restored by reset like the start-up scenarios'.
        self.seed: list[Record] = []
        self._rules: list[Rule] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        # The index a call is matched through (rebuilt when the rules change; calls only read it).
        self._buckets: dict[_IndexKey, list[Rule]] = {}
        self._count: dict[str, int] = {}
        self._body: dict[str, bool] = {}
        #: Each provider's check of the error codes its rules may inject, by provider name.
        self.error_checkers: dict[str, ErrorChecker] = {}
        #: Validation of actions by direction: the app registers "in" (core/fault_actions.py) and
        #: the callbacks part "out".
        self.action_checkers: dict[str, Callable[[Mapping[str, Any], str], None]] = {}
        #: Rules loaded at start (scenarios), restored by reset.
        self._initial: list[tuple[dict[str, Any], str | None]] = []
        #: Shared with other replicas (``storage.url``): counts of every replica's calls, decided in
        #: one place, and rule numbers handed out by ``allocate`` (first of N numbers no other
        #: replica gets). None: this process counts and numbers alone.
        self.counters: SharedCounters | None = None
        self.allocate: Callable[[int], Awaitable[int]] | None = None
        #: Windows measured on this engine's clock (a manual one) rather than the shared store's.
        self.ages_from_clock = False
        self._numbers: list[int] = []
        self._unsettled: list[tuple[str, str | None, str | None]] = []

    def register(self, provider: str, check_error: ErrorChecker) -> None:
        self.error_checkers[provider] = check_error

    # -- rule management ---------------------------------------------------------------------

    def parse(self, spec: Any, namespace: str | None = None, where: str = "rule") -> Rule:
        if not isinstance(spec, dict):
            raise RuleError(where, "must be an object")
        fields = ("name", "priority", "direction", "match", "action", "schedule")
        for key in spec:
            # id, namespace and stats come back from GET /faults: a listed rule can be re-posted.
            if key not in fields and key not in ("id", "namespace", "stats"):
                raise RuleError(f"{where}.{key}", f"unknown field (known: {', '.join(fields)})")
        name = spec.get("name")
        if name is not None and not isinstance(name, str):
            raise RuleError(f"{where}.name", "must be a string")
        priority = spec.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
            raise RuleError(f"{where}.priority", f"must be an integer from -{MAX_PRIORITY} to {MAX_PRIORITY}")
        direction = spec.get("direction", "in")
        if direction not in self.action_checkers:
            raise RuleError(f"{where}.direction", f"must be one of: {', '.join(self.action_checkers)}")
        match_spec = spec.get("match", {})
        matcher = parse_matcher(match_spec, f"{where}.match")
        provider = match_spec.get("provider") if isinstance(match_spec.get("provider"), str) else None
        if provider is not None and provider not in self.error_checkers:
            raise RuleError(f"{where}.match.provider", f"unknown provider ({', '.join(self.error_checkers)})")
        action = spec.get("action")
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            raise RuleError(f"{where}.action", 'is required: an object with a "type"')
        action = dict(action)
        if action["type"] in ("error", "modify") and provider is None:
            action_provider = action.get("provider")
            if action_provider is None:
                raise RuleError(
                    f"{where}.action.provider",
                    f"an {action['type']!r} action needs the provider, as match.provider or action.provider",
                )
            provider = action_provider
        if provider is not None and provider not in self.error_checkers:
            known = ", ".join(self.error_checkers)
            raise RuleError(f"{where}.action.provider", f"unknown provider ({known})")
        if provider is not None and "provider" not in action:
            action["provider"] = provider
        self.action_checkers[direction](action, f"{where}.action")
        schedule = parse_schedule(spec.get("schedule"), f"{where}.schedule")
        clean = {k: v for k, v in spec.items() if k not in ("id", "namespace", "stats")}
        number = self._numbers.pop(0) if self._numbers else next(self._ids)
        return Rule(
            id=f"f{number}",
            name=name,
            priority=priority,
            direction=direction,
            match=matcher if provider is None else _All((matcher, _Simple("provider", _Text(provider)))),
            action=action,
            schedule=schedule,
            namespace=namespace,
            spec=clean,
            provider=provider,
            added_at=self._clock.monotonic(),
            added_wall=self._clock.time(),
            indexed=_index_entry(match_spec, provider),
            order=(-priority, number if self.allocate is not None else next(self._seq)),
        )

    def add(self, spec: Any, namespace: str | None = None, where: str = "rule") -> Rule:
        return self._insert([self.parse(spec, namespace, where)])[0]

    def add_all(self, specs: Sequence[Any], namespace: str | None = None, where: str = "rules") -> list[Rule]:
        """All or nothing: a bad rule, or one rule too many, leaves the engine unchanged."""
        self._check_room(len(specs))
        return self._insert([self.parse(s, namespace, f"{where}[{i}]") for i, s in enumerate(specs)])

    def _check_room(self, adding: int) -> None:
        if len(self._rules) + adding > self.max_rules:
            raise RuleError(
                "rules",
                f"the emulator holds at most {self.max_rules} fault rules (faults.max_rules); "
                f"{len(self._rules)} are in force and {adding} more were sent: delete some first",
            )

    def _insert(self, rules: list[Rule]) -> list[Rule]:
        self._check_room(len(rules))
        self._rules.extend(rules)
        self._reindex()
        for rule in rules:
            self._write(rule)
            if self.counters is not None:
                self._unsettled.append(("register", rule.id, None))
        return rules

    # -- storage -------------------------------------------------------------------------------

    def _rule_record(self, rule: Rule) -> Record:
        return Record(
            KIND_RULE,
            rule.namespace if rule.namespace is not None else ALL_NAMESPACES,
            "",
            rule.id,
            {
                "spec": rule.spec,
                "order": rule.order[1],
                # Wall-clock time it was added: a window schedule goes on counting across a restart.
                "addedAt": rule.added_wall,
                "matched": rule.matched,
                "fired": rule.fired,
                "draws": rule.schedule.draws,
            },
        )

    def _write(self, rule: Rule, namespace: str | None = None) -> None:
        store = self._store
        if store is None:
            return
        r = self._rule_record(rule)
        store.put(r.kind, r.namespace, r.account, r.key, r.value)
        if namespace is not None and rule.spaces is not None:
            counts = rule.spaces.get(namespace)
            value = {"matched": counts.matched, "fired": counts.fired, "draws": counts.schedule.draws}
            store.put(KIND_COUNTS, namespace, "", rule.id, value)

    def _unwrite(self, rule: Rule) -> None:
        if self.counters is not None:
            self._unsettled.append(("forget", rule.id, None))
        if self._store is not None:
            ns = rule.namespace if rule.namespace is not None else ALL_NAMESPACES
            self._store.delete(KIND_RULE, ns, "", rule.id)
            if rule.spaces is not None:
                for counted, _ in rule.spaces.items():
                    self._store.delete(KIND_COUNTS, counted, "", rule.id)

    def dump(self, namespace: str | None = None) -> Iterator[Record]:
        """Every rule and its counts as records (a snapshot); of one namespace: its own rules, and
        what the rules of every namespace counted of it."""
        for rule in self.rules(namespace):
            if namespace is None or rule.namespace == namespace:
                yield self._rule_record(rule)
            if rule.spaces is not None:
                for counted, c in rule.spaces.items(namespace):
                    value = {"matched": c.matched, "fired": c.fired, "draws": c.schedule.draws}
                    yield Record(KIND_COUNTS, counted, "", rule.id, value)

    def load(self, records: Iterable[Record]) -> None:
        """Add the rules of ``records`` with their ids and counts (a snapshot, a restart). A rule
        whose spec this emulator refuses raises RuleError naming it."""
        records = list(records)
        added: list[Rule] = []
        now_wall, now = self._clock.time(), self._clock.monotonic()
        rule_records = [r for r in records if r.kind == KIND_RULE]
        for r in rule_records:
            v = r.value
            namespace = None if r.namespace == ALL_NAMESPACES else r.namespace
            rule = self.parse(v["spec"], namespace, f"{KIND_RULE} {r.key}")
            if self.get(r.key) is None and all(a.id != r.key for a in added):
                rule.id = r.key  # else (seeding one namespace): the rule keeps its new id
            rule.order = (rule.order[0], int(v["order"]))
            rule.added_wall = float(v["addedAt"])
            rule.added_at = now - (now_wall - rule.added_wall)
            rule.matched, rule.fired = int(v["matched"]), int(v["fired"])
            rule.schedule = dataclasses.replace(rule.schedule, draws=int(v.get("draws", 0)))
            added.append(rule)
        by_id = {r.key: rule for r, rule in zip(rule_records, added, strict=True)}
        for r in records:
            owner = by_id.get(r.key) if r.kind == KIND_COUNTS else None
            if owner is not None and owner.spaces is not None:
                v = r.value
                schedule = dataclasses.replace(owner.schedule, draws=int(v.get("draws", 0)))
                owner.spaces.put(r.namespace, Counts(schedule, int(v["matched"]), int(v["fired"])))
        self._insert(added)
        numbers = [int(rule.id[1:]) for rule in self._rules if rule.id[1:].isdigit()]
        top = max([*numbers, 0]) + 1
        self._ids = itertools.count(max(top, next(self._ids)))
        self._seq = itertools.count(max([rule.order[1] for rule in self._rules] + [0]) + 1)

    def touch(self, namespace: str) -> None:
        """Rules are not made per namespace: nothing to make."""

    def restore(self, seed: Sequence[Record] = ()) -> bool:
        """At start: the rules the store holds, if it holds the engine's (True); else the start-up
        rules stay, the seed's rules are added, and all of them are written."""
        store = self._store
        if store is not None and store.get_meta("faults.stored"):
            self.clear()
            self.load(store.load(None, KIND))
            return True
        self.seed = list(seed)
        if seed:
            self.load(seed)
        if store is not None:
            store.put_meta("faults.stored", True)
        return False

    def _reindex(self) -> None:
        self._rules.sort(key=lambda r: r.order)
        buckets: dict[_IndexKey, list[Rule]] = {}
        count: dict[str, int] = {}
        body: dict[str, bool] = {}
        for rule in self._rules:  # in order, so each bucket is in order too
            buckets.setdefault(rule.index_key, []).append(rule)
            count[rule.direction] = count.get(rule.direction, 0) + 1
            body[rule.direction] = body.get(rule.direction, False) or rule.match.needs_body
        self._buckets, self._count, self._body = buckets, count, body

    def load_initial(self, specs: Sequence[Any], where: str) -> None:
        """Rules from start-up scenarios: validated now, restored by :meth:`reset`."""
        self.add_all(specs, None, where)
        self._initial.extend((s, None) for s in specs)

    def rules(self, namespace: str | None = None) -> list[Rule]:
        """The rules a namespace's calls meet (its own and those of every namespace); None: all."""
        return [r for r in self._rules if namespace is None or r.namespace in (namespace, None)]

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self._rules if r.id == rule_id), None)

    def remove(self, rule_id: str, namespace: str | None = None) -> bool:
        rule = self.get(rule_id)
        if rule is None or (namespace is not None and rule.namespace != namespace):
            return False
        self._rules.remove(rule)
        self._reindex()
        self._unwrite(rule)
        return True

    def clear(self, namespace: str | None = None) -> int:
        before = len(self._rules)
        kept = [r for r in self._rules if namespace is not None and r.namespace != namespace]
        if self._store is not None:
            for rule in self._rules:
                if namespace is None or rule.namespace == namespace:
                    self._unwrite(rule)
        self._rules = kept
        self._reindex()
        return before - len(self._rules)

    def reset(self, namespace: str | None = None) -> None:
        """Back to the start: a namespace loses its rules and what the rules of every namespace
        counted of it; a full reset restores the start-up rules afresh."""
        self.clear(namespace)
        if namespace is None:
            for spec, ns in self._initial:
                self.add(spec, ns)
            if self.seed:
                self.load(self.seed)
        else:
            for rule in self._rules:
                if rule.spaces is not None:
                    rule.spaces.reset(namespace)
                    if self.counters is not None:
                        self._unsettled.append(("forget", rule.id, namespace))
                    if self._store is not None:
                        self._store.delete(KIND_COUNTS, namespace, "", rule.id)
            self.load([r for r in self.seed if r.namespace == namespace])

    # -- deciding -----------------------------------------------------------------------------

    def has_rules(self, direction: str) -> bool:
        # Asked on every call: a dictionary lookup, whatever the number of rules.
        return direction in self._count

    def needs_body(self, direction: str) -> bool:
        return self._body.get(direction, False)

    def _candidates(self, call: CallView) -> Iterable[Rule]:
        """The rules that could match ``call``, in evaluation order: those of its direction and
        namespace (or none) whose indexed field, if they have one, has the call's value."""
        buckets = self._buckets
        entries = ((None, None), *_call_entries(call))
        found = [
            bucket
            for ns in {None, call.namespace}
            for field, value in entries
            if (bucket := buckets.get((call.direction, ns, field, value)))
        ]
        if len(found) == 1:
            return found[0]
        return heapq.merge(*found, key=lambda r: r.order)

    def pick(self, call: CallView) -> Rule | None:
        """The rule that fires for ``call``. Each rule reached that matches counts the call; rules
        after the one that fires do not see it."""
        if call.direction not in self._count:
            return None
        now = self._clock.monotonic()
        for rule in self._candidates(call):
            if not rule.match(call):
                continue
            namespace = call.namespace or DEFAULT_NAMESPACE
            fired = rule.decide(namespace, now)
            if self._store is not None:
                self._write(rule, namespace)
            if fired:
                return rule
        return None

    async def pick_shared(self, call: CallView) -> Rule | None:
        """:meth:`pick`, with the counts every replica shares (:attr:`counters`): exactly one
        replica fires the nth matching call. Without shared counters, :meth:`pick`."""
        counters = self.counters
        if counters is None:
            return self.pick(call)
        if call.direction not in self._count:
            return None
        now = self._clock.monotonic()
        for rule in list(self._candidates(call)):
            if not rule.match(call):
                continue
            namespace = call.namespace or DEFAULT_NAMESPACE
            age = now - rule.added_at if self.ages_from_clock else None
            counted = await counters.decide(
                rule.id, rule.schedule, namespace if rule.spaces is not None else None, age
            )
            rule.matched, rule.fired = counted.total_matched, counted.total_fired
            if rule.spaces is not None:
                counts = rule.spaces.get(namespace)
                counts.matched, counts.fired = counted.matched, counted.fired
            if counted.fire:
                return rule
        return None

    # -- shared with other replicas ---------------------------------------------------------------

    async def reserve(self, count: int) -> None:
        """Numbers for ``count`` rules about to be added (and for the start-up rules a reset adds
        again), none of which another replica gets; nothing without :attr:`allocate`."""
        need = count + len(self._initial) + sum(1 for r in self.seed if r.kind == KIND_RULE)
        if self.allocate is not None and len(self._numbers) < need:
            block = max(need, 64)
            first = await self.allocate(block)
            self._numbers.extend(range(first, first + block))

    async def settle(self) -> None:
        """Tell the shared counters of the rules added and removed since the last call: an added
        rule's window starts, a removed rule's counts go (called before an admin call's answer)."""
        counters = self.counters
        while counters is not None and self._unsettled:
            what, rule_id, namespace = self._unsettled[0]
            assert rule_id is not None
            if what == "register":
                await counters.register(rule_id)
            else:
                await counters.forget(rule_id, namespace)
            self._unsettled.pop(0)

    async def refresh_counts(self, rules: Sequence[Rule], namespace: str | None = None) -> None:
        """The shared counts of ``rules`` (as of now, every replica's calls), before they are listed."""
        counters = self.counters
        if counters is None:
            return
        # Every rule's totals, and a rule of every namespace's counts in ``namespace``: one round trip.
        apart = [r for r in rules if r.spaces is not None and namespace is not None]
        answers = await counters.counts_of([(r.id, None) for r in rules] + [(r.id, namespace) for r in apart])
        for rule, (matched, fired) in zip(rules, answers, strict=False):
            rule.matched, rule.fired = matched, fired
        for rule, (matched, fired) in zip(apart, answers[len(rules) :], strict=True):
            assert rule.spaces is not None and namespace is not None
            if matched or rule.spaces.peek(namespace) is not None:
                counts = rule.spaces.get(namespace)
                counts.matched, counts.fired = matched, fired

    def follow(self, change: tuple[str, Any]) -> None:
        """Another replica added, removed or reset rules (core/replicas.Follower): the rules are read
        back from the store (rules change seldom; counts are not records when shared)."""
        what = change[1]
        if getattr(what, "kind", None) == KIND_COUNTS or self._store is None:
            return
        store, self._store = self._store, None  # reading back writes nothing
        counters, self.counters = self.counters, None
        numbers, self._numbers = self._numbers, []  # and the rules keep their stored ids
        try:
            self._rules = []
            self.load(store.load(None, KIND))
        finally:
            self._store, self.counters, self._numbers = store, counters, numbers


def edit_tree(tree: Any, remove: Sequence[str], values: Mapping[str, Any]) -> Any:
    """``tree`` (nested dicts and lists) with dotted ``remove`` paths deleted and ``values`` set."""
    for path in remove:
        parent, key = _walk(tree, path.split("."), create=False)
        if isinstance(parent, dict):
            parent.pop(key, None)
        elif isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
            del parent[int(key)]
    for path, value in values.items():
        parent, key = _walk(tree, path.split("."), create=True)
        if isinstance(parent, dict):
            parent[key] = value
        elif isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
            parent[int(key)] = value
    return tree


def _walk(tree: Any, parts: list[str], *, create: bool) -> tuple[Any, str]:
    node = tree
    for part in parts[:-1]:
        if isinstance(node, dict):
            if part not in node and create:
                node[part] = {}
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None, parts[-1]
    return node, parts[-1]
