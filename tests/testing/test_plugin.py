"""The pytest plugin, used by a pytester project exactly as a user would."""

from __future__ import annotations

import pytest

from emulator import serve_in_thread
from emulator.testing.settings import make_settings

pytest_plugins = ["pytester"]

SDK_TEST = """
import json

import pytest

from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import ImageScanFeedbackRequest


def feedback(emulator, body):
    client = AcsClient("testAccessKeyId", "testAccessKeySecret", "cn-shanghai")
    request = ImageScanFeedbackRequest.ImageScanFeedbackRequest()
    request.set_endpoint(f"{emulator.host}:{emulator.port}")
    request.set_protocol_type("http")
    request.set_content(json.dumps(body).encode())
    try:
        return json.loads(client.do_action_with_exception(request))
    finally:
        client.session.close()


def test_feedback_is_recorded(emulator):
    body = {"url": "http://a/1.jpg", "suggestion": "block", "scenes": ["ad"]}
    assert feedback(emulator, body)["code"] == 200
    (call,) = emulator.assert_called(action="ImageScanFeedback", count=1)
    assert call.parsed["url"] == "http://a/1.jpg"
    assert emulator.last(provider="alibaba").status == 200


def test_each_test_starts_from_a_reset_emulator(emulator):
    assert emulator.count() == 0
    for _ in range(20):
        feedback(emulator, {})   # the throttle window was reset too: 20 more fit


def test_failure_message_shows_the_closest_requests(emulator):
    feedback(emulator, {"taskId": "t"})
    try:
        emulator.assert_called(action="TextFeedback", count=1)
    except AssertionError as exc:
        message = str(exc)
    else:
        raise AssertionError("assert_called should have failed")
    assert "expected a request matching action='TextFeedback' 1 time, found 0" in message
    assert "closest recorded requests:" in message
    assert "action=ImageScanFeedback" in message


@pytest.mark.emulator(config={"alibaba.throttle_response": "588"})
def test_marker_gives_a_dedicated_server(emulator):
    codes = [feedback(emulator, {})["code"] for _ in range(21)]
    assert codes[-1] == 588


@pytest.mark.emulator(namespace="mine")
def test_marker_namespace(emulator):
    assert emulator.namespace == "mine"


@pytest.mark.emulator(scenario="first-call-fails")
def test_marker_scenario(emulator):
    from aliyunsdkcore.acs_exception.exceptions import ServerException

    with pytest.raises(ServerException) as info:
        feedback(emulator, {})
    assert info.value.get_error_code() == "ServiceUnavailable"
    assert feedback(emulator, {})["code"] == 200


def test_scenario_is_gone_in_the_next_test(emulator):
    assert emulator.faults() == []
    rule = {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": 586}}
    with emulator.fault(rule):
        assert feedback(emulator, {})["code"] == 586
    assert feedback(emulator, {})["code"] == 200
"""


def test_plugin_in_a_user_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SDK_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


def test_config_fixtures_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def emulator_config():
    return {"alibaba.verify_signatures": False, "journal.capacity": 3}
"""
    )
    pytester.makepyfile(
        test_cfg="""
import urllib.request

def test_unsigned_calls_are_accepted_and_capacity_applies(emulator):
    for i in range(5):
        req = urllib.request.Request(emulator.url + "/green/image/feedback", data=b"{}", method="POST")
        assert urllib.request.urlopen(req).status == 200
    assert emulator.count() == 3 and emulator.evicted() == 2
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_option_points_at_a_running_emulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ext="""
def test_uses_the_external_server(emulator):
    assert emulator.app is None
    assert emulator.health()["status"] == "ok"
"""
    )
    with serve_in_thread() as server:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--emulator-url={server.url}")
        result.assert_outcomes(passed=1)
        assert server.app is not None


def test_environment_points_at_a_running_emulator_with_a_token(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_env="""
def test_uses_the_external_server(emulator, emulator_sdks):
    assert emulator.app is None and emulator.namespace
    emulator_sdks.cos_client().ci_auditing_text_submit(Bucket=emulator.accounts.bucket, Content=b"x")
    emulator.assert_called(provider="tencent", count=1)
"""
    )
    with serve_in_thread(make_settings(**{"admin.token": "s3cret"})) as server:
        monkeypatch.setenv("EMULATOR_URL", server.url)
        monkeypatch.setenv("EMULATOR_ADMIN_TOKEN", "s3cret")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.emulator(config=None, namespace=None, scenario=None*"])


def readme_blocks(language: str) -> list[str]:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## In pytest", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_readme_example_runs_as_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme=readme_blocks("python")[0])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_readme_async_example_runs_with_the_configuration_it_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_async=readme_blocks("python")[1])
    # Without it, pytest-asyncio's strict mode does not run the test.
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").parseoutcomes().get("passed", 0) == 0
    (config,) = readme_blocks("toml")
    pytester.makepyprojecttoml(config)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_moderation_emulator_leaves_the_module_importable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_alias="""
import emulator


def test_alias(moderation_emulator):
    settings = emulator.load(env={})
    assert moderation_emulator.accounts.uid == settings.alibaba.accounts[0].uid
    assert moderation_emulator.health()["status"] == "ok"
"""
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


STATE_TEST = """
import pytest

SEEDED = {"kind": "alibaba_verdicts.verdict", "account": "", "key": "000001",
          "value": {"scene": "porn", "label": "porn", "suggestion": "block", "rate": 99.9,
                    "url": "http://a/seeded.jpg", "url_pattern": None, "text": None}}


def verdicts(emulator):
    return [r for r in emulator.state()["records"] if r["kind"] == "alibaba_verdicts.verdict"]


@pytest.mark.emulator(state="seed.json")
def test_starts_from_the_file(emulator):
    (found,) = verdicts(emulator)
    assert found["value"]["url"] == "http://a/seeded.jpg"
    assert found["namespace"] == (emulator.namespace or "default")


@pytest.mark.emulator(state={"version": 1, "records": [{**SEEDED, "namespace": "default"}]})
def test_starts_from_an_inline_document(emulator):
    assert len(verdicts(emulator)) == 1


def test_the_next_test_starts_afresh(emulator):
    assert verdicts(emulator) == []
"""


@pytest.mark.parametrize("namespaces", ["off", "per-test"])
def test_marker_state_seeds_the_test(pytester: pytest.Pytester, namespaces: str) -> None:
    seed = {
        "version": 1,
        "records": [
            {
                "kind": "alibaba_verdicts.verdict", "namespace": "default", "account": "", "key": "000001",
                "value": {"scene": "porn", "label": "porn", "suggestion": "block", "rate": 99.9,
                          "url": "http://a/seeded.jpg", "url_pattern": None, "text": None},
            }
        ],
    }
    pytester.makefile(".json", seed=__import__("json").dumps(seed))
    pytester.makepyfile(test_state=STATE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--emulator-namespaces={namespaces}")
    result.assert_outcomes(passed=3)
