"""The rules engine on its own: schedules, seeded probability, matchers, validation, scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator import ManualClock, create_app
from emulator.core.faults import CallView, FaultEngine, RuleError
from emulator.core.scenarios import ScenarioError, available, load_scenario
from emulator.keys import FAULTS
from emulator.testing.settings import make_settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(clock: ManualClock) -> FaultEngine:
    # The app registers both providers' adapters, as at run time.
    return create_app(make_settings(), clock=clock)[FAULTS]


def call(**kw: Any) -> CallView:
    base: dict[str, Any] = {
        "direction": "in",
        "provider": "alibaba",
        "action": "ImageScanFeedback",
        "method": "POST",
        "path": "/green/image/feedback",
        "account": "1",
        "namespace": None,
        "headers": {},
    }
    body = kw.pop("body", None)
    base.update(kw)
    return CallView(**base, body_loader=(lambda: body) if body is not None else None)


ERROR = {"type": "error", "code": "InternalError"}


def nested_not(depth: int) -> dict[str, Any]:
    matcher: dict[str, Any] = {"path": "/"}
    for _ in range(depth):
        matcher = {"not": matcher}
    return matcher


def pattern(engine: FaultEngine, schedule: Any, n: int = 12) -> str:
    engine.clear()
    engine.add({"match": {"provider": "alibaba"}, "action": ERROR, "schedule": schedule})
    return "".join("x" if engine.pick(call()) else "." for _ in range(n))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (None, "xxxxxxxxxxxx"),
        ("always", "xxxxxxxxxxxx"),
        ({"nth": 3}, "..x........."),
        ({"first": 2}, "xx.........."),
        ({"every": 4}, "...x...x...x"),
        ({"after": 9}, ".........xxx"),
        ({"times": 5}, "xxxxx......."),
        ({"every": 2, "times": 2}, ".x.x........"),
        ({"after": 2, "first": 5}, "..xxx......."),
    ],
)
def test_schedule_firing_patterns(engine: FaultEngine, schedule: Any, expected: str) -> None:
    assert pattern(engine, schedule) == expected


def test_seeded_probability_repeats_and_differs_by_seed(engine: FaultEngine) -> None:
    first = pattern(engine, {"probability": 0.3, "seed": 11}, 200)
    again = pattern(engine, {"probability": 0.3, "seed": 11}, 200)
    other = pattern(engine, {"probability": 0.3, "seed": 12}, 200)
    assert first == again
    assert first != other
    assert 30 < first.count("x") < 90
    assert pattern(engine, {"probability": 0}, 50) == "." * 50
    assert pattern(engine, {"probability": 1}, 50) == "x" * 50


def test_time_window_reads_the_injected_clock(engine: FaultEngine, clock: ManualClock) -> None:
    engine.add(
        {"match": {"provider": "alibaba"}, "action": ERROR, "schedule": {"window": {"from": 10, "until": 20}}}
    )
    fired = []
    for _ in range(4):
        fired.append(engine.pick(call()) is not None)
        clock.advance(7)
    assert fired == [False, False, True, False]  # at 0, 7, 14, 21 seconds


def test_priority_then_insertion_order(engine: FaultEngine) -> None:
    low = engine.add({"name": "low", "match": {"provider": "alibaba"}, "action": ERROR})
    high = engine.add(
        {
            "name": "high",
            "priority": 5,
            "match": {"provider": "alibaba"},
            "action": ERROR,
            "schedule": {"first": 1},
        }
    )
    assert engine.pick(call()) is high
    assert engine.pick(call()) is low
    assert (high.matched, high.fired, low.matched, low.fired) == (2, 1, 1, 1)


def test_rules_of_every_index_bucket_keep_one_order(engine: FaultEngine) -> None:
    """Rules filed under a field they require by equality (path, action, account, provider, method)
    or under a namespace are looked up apart from the open ones, yet a call still meets them in
    priority-then-insertion order; rules that cannot match it are not reached and do not count it."""
    specs = [
        ("open", {}, 0),
        ("provider", {"provider": "alibaba"}, 2),
        ("action", {"provider": "alibaba", "action": "ImageScanFeedback"}, 2),
        ("other-action", {"provider": "alibaba", "action": "TextFeedback"}, 9),
        ("other-provider", {"provider": "tencent"}, 9),
        ("open-late", {"method": {"matches": "^PO"}}, 2),
        ("path", {"path": {"equals": "/green/image/feedback"}}, 2),
        ("method", {"method": "post"}, 1),
        ("other-path", {"path": "/nope"}, 9),
        ("other-account", {"account": "2"}, 9),
    ]
    rules = {
        name: engine.add(
            {
                "name": name,
                "priority": prio,
                "match": match,
                "action": {"type": "reset"},
                "schedule": {"first": 1},
            }
        )
        for name, match, prio in specs
    }
    ns_rule = engine.add(
        {"name": "ns", "priority": 1, "action": {"type": "reset"}, "schedule": {"first": 1}},
        namespace="team-a",
    )
    fired = [r.name for r in iter(lambda: engine.pick(call(namespace="team-a")), None)]
    assert fired == ["provider", "action", "open-late", "path", "method", "ns", "open"]
    others = ("other-action", "other-provider", "other-path", "other-account")
    assert [rules[name].matched for name in others] == [0, 0, 0, 0]
    assert ns_rule.fired == 1
    seen = ns_rule.matched
    # Rules of every namespace count each namespace apart: team-b meets them afresh, in the same order.
    fired_b = [r.name for r in iter(lambda: engine.pick(call(namespace="team-b")), None)]
    assert fired_b == ["provider", "action", "open-late", "path", "method", "open"]
    assert ns_rule.matched == seen  # the team-b calls did not reach team-a's rule


def test_rules_are_capped(engine: FaultEngine) -> None:
    engine.max_rules = 3
    engine.add({"action": {"type": "reset"}})
    engine.add_all([{"action": {"type": "reset"}}] * 2)
    with pytest.raises(RuleError, match="at most 3 fault rules"):
        engine.add({"action": {"type": "reset"}})
    engine.remove(engine.rules()[0].id)
    with pytest.raises(RuleError, match="2 are in force and 2 more were sent"):
        engine.add_all([{"action": {"type": "reset"}}] * 2)
    assert len(engine.rules()) == 2
    engine.add({"action": {"type": "reset"}})
    assert len(engine.rules()) == 3


def test_composable_matchers(engine: FaultEngine) -> None:
    engine.add(
        {
            "match": {
                "provider": "alibaba",
                "any": [{"action": "TextFeedback"}, {"body": {"path": "url", "matches": r"\.png$"}}],
                "not": {"header": {"name": "X-Test", "equals": "skip"}},
                "method": "post",
                "path": {"matches": "^/green/"},
            },
            "action": ERROR,
        }
    )
    assert engine.pick(call(action="TextFeedback"))
    assert engine.pick(call(body={"url": "http://a/1.png"}))
    assert not engine.pick(call(body={"url": "http://a/1.jpg"}))
    assert not engine.pick(call(action="TextFeedback", headers={"x-test": "skip"}))
    assert not engine.pick(call(action="TextFeedback", provider="tencent"))
    assert engine.pick(call(action="TextFeedback", headers={"x-test": "other"}))


def test_xml_body_field_and_namespace(engine: FaultEngine) -> None:
    engine.add(
        {"match": {"body": {"path": "Request.Label", "equals": "Porn"}}, "action": {"type": "reset"}},
        namespace="team-a",
    )
    xml = {"Request": {"Label": "Porn"}}
    assert not engine.pick(call(provider="tencent", body=xml))  # another namespace's rule
    assert engine.pick(call(provider="tencent", body=xml, namespace="team-a"))
    assert not engine.pick(call(provider="tencent", body={"Request": {"Label": "Ads"}}, namespace="team-a"))


@pytest.mark.parametrize(
    ("rule", "where", "problem"),
    [
        ([], "rule", "must be an object"),
        ({"match": {}}, "rule.action", 'is required: an object with a "type"'),
        ({"action": {"type": "explode"}}, "rule.action.type", "unknown action 'explode'"),
        (
            {"action": {"type": "error", "code": "InternalError"}},
            "rule.action.provider",
            "needs the provider",
        ),
        (
            {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": "Nope"}},
            "rule.action.code",
            "'Nope' is not in the Alibaba catalogue",
        ),
        (
            {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": 200}},
            "rule.action.code",
            "200 is not an Alibaba business error code",
        ),
        (
            {"match": {"provider": "tencent"}, "action": {"type": "error", "code": "Throttling.User"}},
            "rule.action.code",
            "is not in the Tencent CI catalogue",
        ),
        (
            {"match": {"provider": "aws"}, "action": {"type": "reset"}},
            "rule.match.provider",
            "unknown provider",
        ),
        ({"match": {"colour": "red"}, "action": {"type": "reset"}}, "rule.match.colour", "unknown matcher"),
        (
            {"match": {"path": {"matches": "("}}, "action": {"type": "reset"}},
            "rule.match.path.matches",
            "not a regular expression RE2 accepts (missing )",
        ),
        (
            {"match": {"header": {"equals": "x"}}, "action": {"type": "reset"}},
            "rule.match.header.name",
            "is required",
        ),
        ({"match": {"any": []}, "action": {"type": "reset"}}, "rule.match.any", "non-empty list"),
        ({"action": {"type": "latency"}}, "rule.action", "exactly one of fixed, uniform, lognormal"),
        ({"action": {"type": "latency", "fixed": 120}}, "rule.action.fixed", "from 0 to 60"),
        ({"action": {"type": "latency", "uniform": [2, 1]}}, "rule.action.uniform", "low <= high"),
        ({"action": {"type": "latency", "lognormal": {"median": 1}}}, "rule.action.lognormal", "median"),
        ({"action": {"type": "hang", "max": 601}}, "rule.action.max", "from 0 to 600"),
        ({"action": {"type": "drip"}}, "rule.action.duration", "is required"),
        ({"action": {"type": "reset", "max": 1}}, "rule.action.max", "unknown field for a 'reset' action"),
        (
            {"match": {"provider": "alibaba"}, "action": {"type": "modify"}},
            "rule.action",
            "needs remove or set",
        ),
        ({"action": {"type": "reset"}, "schedule": {"nth": 0}}, "rule.schedule.nth", "integer from 1"),
        (
            {"action": {"type": "reset"}, "schedule": {"probability": 2}},
            "rule.schedule.probability",
            "from 0 to 1",
        ),
        ({"action": {"type": "reset"}, "schedule": {"seed": 1}}, "rule.schedule.seed", "only makes sense"),
        (
            {"action": {"type": "reset"}, "schedule": {"when": "later"}},
            "rule.schedule.when",
            "unknown schedule",
        ),
        ({"action": {"type": "reset"}, "priority": "high"}, "rule.priority", "must be an integer"),
        ({"action": {"type": "reset"}, "direction": "sideways"}, "rule.direction", "must be one of"),
        ({"action": {"type": "reset"}, "colour": 1}, "rule.colour", "unknown field"),
        # What would cost the server on every call is refused when the rule is added.
        (
            {"match": {"path": {"matches": "(a)\\1"}}, "action": {"type": "reset"}},
            "rule.match.path.matches",
            "RE2 accepts (invalid escape sequence",
        ),
        (
            {"match": {"header": {"name": "x", "matches": "(?<=a)b"}}, "action": {"type": "reset"}},
            "rule.match.header.matches",
            "RE2 accepts (invalid perl operator",
        ),
        ({"match": nested_not(33), "action": {"type": "reset"}}, "rule.match" + ".not" * 32, "32 levels"),
        (
            {"match": {"any": [{"path": str(i)} for i in range(300)]}, "action": {"type": "reset"}},
            "rule.match.any[255].path",
            "at most 256 matchers",
        ),
        (
            {"action": {"type": "latency", "lognormal": {"median": 1, "sigma": 1000}}},
            "rule.action.lognormal.sigma",
            "from 0 to 10",
        ),
        (
            {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": 500, "retryAfter": 1e306}},
            "rule.action.retryAfter",
            "from 0 to 86400",
        ),
        ({"action": {"type": "latency", "fixed": float("nan")}}, "rule.action.fixed", "from 0 to 60"),
        ({"action": {"type": "latency", "uniform": [0, 1e300]}}, "rule.action.uniform[1]", "from 0 to 60"),
        ({"action": {"type": "latency", "fixed": 1, "seed": -1}}, "rule.action.seed", "from 0 to 2**64"),
        ({"action": {"type": "truncate", "bytes": 1e300}}, "rule.action.bytes", "from 0 to"),
        (
            {"action": {"type": "reset"}, "schedule": {"every": 2**60}},
            "rule.schedule.every",
            "from 1 to 2**53",
        ),
        (
            {"action": {"type": "reset"}, "schedule": {"probability": float("nan")}},
            "rule.schedule.probability",
            "from 0 to 1",
        ),
        (
            {"action": {"type": "reset"}, "schedule": {"window": {"until": float("inf")}}},
            "rule.schedule.window.until",
            "number from 0",
        ),
        ({"action": {"type": "reset"}, "priority": 10**30}, "rule.priority", "from -1000000000"),
        (
            {"match": {"provider": "tencent"}, "action": {"type": "modify", "set": {"": "x"}}},
            "rule.action.set",
            "Empty tag name",
        ),
        (
            {"match": {"provider": "tencent"}, "action": {"type": "modify", "set": {"Response.a b": "x"}}},
            "rule.action.set",
            "Invalid tag name",
        ),
        (
            {"match": {"provider": "tencent"}, "action": {"type": "modify", "set": {"RequestId": "\x00"}}},
            "rule.action.set",
            "XML compatible",
        ),
    ],
)
def test_bad_rules_name_the_field(engine: FaultEngine, rule: Any, where: str, problem: str) -> None:
    with pytest.raises(RuleError) as info:
        engine.add(rule)
    assert info.value.where == where
    assert problem in str(info.value)
    assert engine.rules() == []


def test_add_all_is_all_or_nothing(engine: FaultEngine) -> None:
    with pytest.raises(RuleError, match=r"rules\[1\]\.action"):
        engine.add_all([{"action": {"type": "reset"}}, {"action": {}}])
    assert engine.rules() == []


def test_every_shipped_scenario_loads() -> None:
    assert set(available()) >= {"outage", "flaky", "throttle-storm", "slow", "resets", "first-call-fails"}
    for name in available():
        scenario = load_scenario(name)
        app = create_app(make_settings(scenarios=[name]))
        assert len(app[FAULTS].rules()) == len(scenario.rules) > 0
        assert scenario.description


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"rules": []}', "rules: must be a non-empty list"),
        ('{"rules": [{"action": {"type": "boom"}}]}', "rules[0].action.type: unknown action 'boom'"),
        ('{"rules": [{"action": {"type": "reset"}}], "extra": 1}', "extra: unknown key"),
    ],
)
def test_bad_scenario_files_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ScenarioError) as info:
        create_app(make_settings(scenarios=[str(path)]))
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match=r"no shipped scenario of that name \(shipped: first-call-fails"):
        load_scenario("nope")


def test_reset_restores_start_up_rules(engine: FaultEngine) -> None:
    app = create_app(make_settings(scenarios=["outage"]))
    faults = app[FAULTS]
    faults.add({"action": {"type": "reset"}})
    assert len(faults.rules()) == 3
    faults.reset()
    assert [r.name for r in faults.rules()] == ["alibaba outage", "tencent outage"]
    assert json.dumps(faults.rules()[0].to_dict())  # serialisable for the admin API


def test_yaml_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndescription: every image feedback fails\nrules:\n"
        "  - match: {provider: alibaba, action: ImageScanFeedback}\n"
        "    action: {type: error, code: 586}\n"
    )
    app = create_app(make_settings(scenarios=[str(path)]))
    (rule,) = app[FAULTS].rules()
    assert rule.action["code"] == 586
