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

Nothing here names a provider: providers register the check of their error codes.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from .call import DEFAULT_NAMESPACE
from .clock import Clock
from .namespaces import PerNamespace
from .paths import MISSING, lookup, text_forms


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
    pattern: re.Pattern[str] | None = None

    def test(self, value: Any) -> bool:
        if value is None or value is MISSING:
            return False
        forms = text_forms(value)
        if self.pattern is not None:
            return any(self.pattern.search(form) is not None for form in forms)
        return self.equals in forms


def _text(spec: Any, where: str) -> _Text:
    if isinstance(spec, str | int | float) and not isinstance(spec, bool):
        return _Text(equals=str(spec))
    if isinstance(spec, dict) and set(spec) == {"equals"}:
        return _Text(equals=str(spec["equals"]))
    if isinstance(spec, dict) and set(spec) == {"matches"}:
        try:
            return _Text(pattern=re.compile(str(spec["matches"])))
        except re.error as exc:
            raise RuleError(f"{where}.matches", f"not a valid regular expression: {exc}") from None
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
    name: str
    test: _Text

    def __call__(self, call: CallView) -> bool:
        lname = self.name.lower()
        value = next((v for k, v in call.headers.items() if k.lower() == lname), None)
        return self.test.test(value)


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
        return all(p(call) for p in self.parts)


@dataclass(frozen=True)
class _Any(Matcher):
    parts: tuple[Matcher, ...]

    @property
    def needs_body(self) -> bool:
        return any(p.needs_body for p in self.parts)

    def __call__(self, call: CallView) -> bool:
        return any(p(call) for p in self.parts)


@dataclass(frozen=True)
class _Not(Matcher):
    part: Matcher

    @property
    def needs_body(self) -> bool:
        return self.part.needs_body

    def __call__(self, call: CallView) -> bool:
        return not self.part(call)


SIMPLE_FIELDS = ("provider", "action", "method", "path", "account", "namespace", "direction")


def parse_matcher(spec: Any, where: str = "match") -> Matcher:
    if not isinstance(spec, dict):
        raise RuleError(where, "must be an object")
    parts: list[Matcher] = []
    for key, value in spec.items():
        sub = f"{where}.{key}"
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
            parts.append(_Header(name, test) if key == "header" else _Body(tuple(name.split(".")), test))
        elif key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise RuleError(sub, "must be a non-empty list of matchers")
            inner = tuple(parse_matcher(v, f"{sub}[{i}]") for i, v in enumerate(value))
            parts.append(_All(inner) if key == "all" else _Any(inner))
        elif key == "not":
            parts.append(_Not(parse_matcher(value, sub)))
        else:
            known = ", ".join((*SIMPLE_FIELDS, "header", "body", "all", "any", "not"))
            raise RuleError(sub, f"unknown matcher (known: {known})")
    return _All(tuple(parts))


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

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

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
        return self.probability is None or self._random.random() < self.probability


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
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise RuleError(sub, "must be a number from 0 to 1")
            values[key] = float(value)
        elif key == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise RuleError(sub, "must be an integer")
            values[key] = value
        elif key == "window":
            if not isinstance(value, dict) or not set(value) <= {"from", "until"} or not value:
                raise RuleError(sub, 'must be {"from": seconds, "until": seconds} (either or both)')
            for end in ("from", "until"):
                if end in value:
                    v = value[end]
                    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                        raise RuleError(f"{sub}.{end}", "must be a number of seconds >= 0")
                    values[f"window_{end}"] = float(v)
        else:
            known = "always, nth, first, every, after, probability, seed, window, times"
            raise RuleError(sub, f"unknown schedule (known: {known})")
    if "seed" in values and "probability" not in values:
        raise RuleError(f"{where}.seed", "only makes sense with probability")
    return Schedule(spec=dict(spec), **values)


def _positive_int(value: Any, where: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RuleError(where, f"must be an integer >= {low}")
    return value


# --- rules and the engine -------------------------------------------------------------------------


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
    #: Calls counted and fired on; for a rule of every namespace, over all of them.
    matched: int = 0
    fired: int = 0
    #: For a rule of every namespace (``namespace`` None): its counts in each namespace.
    spaces: PerNamespace[Counts] | None = None

    def __post_init__(self) -> None:
        if self.namespace is None:
            self.spaces = PerNamespace(lambda ns: Counts(dataclasses.replace(self.schedule)))

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


#: Raises RuleError unless an ``error`` action names an error of the provider's catalogue.
ErrorChecker = Callable[[Mapping[str, Any], str], None]


class FaultEngine:
    """The rules in force, in priority order."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rules: list[Rule] = []
        self._ids = itertools.count(1)
        #: Each provider's check of the error codes its rules may inject, by provider name.
        self.error_checkers: dict[str, ErrorChecker] = {}
        #: Validation of actions by direction: the app registers "in" (core/fault_actions.py) and
        #: the callbacks part "out".
        self.action_checkers: dict[str, Callable[[Mapping[str, Any], str], None]] = {}
        #: Rules loaded at start (scenarios), restored by reset.
        self._initial: list[tuple[dict[str, Any], str | None]] = []

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
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise RuleError(f"{where}.priority", "must be an integer")
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
        return Rule(
            id=f"f{next(self._ids)}",
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
        )

    def add(self, spec: Any, namespace: str | None = None, where: str = "rule") -> Rule:
        rule = self.parse(spec, namespace, where)
        self._rules.append(rule)
        self._rules.sort(key=lambda r: -r.priority)  # stable: equal priorities keep their order
        return rule

    def add_all(self, specs: Sequence[Any], namespace: str | None = None, where: str = "rules") -> list[Rule]:
        """All or nothing: a bad rule leaves the engine unchanged."""
        parsed = [self.parse(s, namespace, f"{where}[{i}]") for i, s in enumerate(specs)]
        self._rules.extend(parsed)
        self._rules.sort(key=lambda r: -r.priority)
        return parsed

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
        return True

    def clear(self, namespace: str | None = None) -> int:
        before = len(self._rules)
        self._rules = [r for r in self._rules if namespace is not None and r.namespace != namespace]
        return before - len(self._rules)

    def reset(self, namespace: str | None = None) -> None:
        """Back to the start: a namespace loses its rules and what the rules of every namespace
        counted of it; a full reset restores the start-up rules afresh."""
        self.clear(namespace)
        if namespace is None:
            for spec, ns in self._initial:
                self.add(spec, ns)
        else:
            for rule in self._rules:
                if rule.spaces is not None:
                    rule.spaces.reset(namespace)

    # -- deciding -----------------------------------------------------------------------------

    def has_rules(self, direction: str) -> bool:
        # Asked on every call: an empty engine answers without a generator.
        return bool(self._rules) and any(r.direction == direction for r in self._rules)

    def needs_body(self, direction: str) -> bool:
        return any(r.direction == direction and r.match.needs_body for r in self._rules)

    def pick(self, call: CallView) -> Rule | None:
        """The rule that fires for ``call``. Each rule reached that matches counts the call; rules
        after the one that fires do not see it."""
        now = self._clock.monotonic()
        for rule in self._rules:
            if rule.direction != call.direction:
                continue
            if rule.namespace is not None and rule.namespace != call.namespace:
                continue
            if not rule.match(call):
                continue
            if rule.decide(call.namespace or DEFAULT_NAMESPACE, now):
                return rule
        return None


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
