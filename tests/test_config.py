"""Settings: the built-in default, file + EMULATOR_* overlay, and messages that name what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator import ConfigError, create_app, load
from emulator.config import AlibabaAccount, default_config_path
from emulator.providers.alibaba.routes import ACTIONS, rate_limit


def limits(account: AlibabaAccount) -> dict[str, int | None]:
    """The account's limit for each API action (its own, else the provider's default)."""
    return {action.name: rate_limit(account, action) for action in ACTIONS}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_default_config_has_the_documented_test_accounts() -> None:
    settings = load(env={})
    (ali,) = settings.alibaba.accounts
    assert (ali.access_key_id, ali.access_key_secret, ali.uid, ali.seed) == (
        "testAccessKeyId",
        "testAccessKeySecret",
        "1234567890123456",
        "testSeed",
    )
    assert limits(ali)["ImageScanFeedback"] == 20 and limits(ali)["TextFeedback"] == 20
    (ten,) = settings.tencent.accounts
    assert (ten.secret_id, ten.secret_key, ten.appid) == (
        "AKIDtestSecretId",
        "testSecretKey",
        "1250000000",
    )
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.alibaba.verify_signatures and settings.tencent.verify_signatures
    assert default_config_path().name == "default-config.json"


def test_settings_are_frozen() -> None:
    settings = load(env={})
    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]


def test_environment_overlays_the_file() -> None:
    settings = load(
        env={
            "EMULATOR_SERVER__PORT": "9000",
            "EMULATOR_ALIBABA__VERIFY_SIGNATURES": "false",
            "EMULATOR_ALIBABA__THROTTLE_RESPONSE": "588",
            "OTHER": "ignored",
        }
    )
    assert settings.server.port == 9000
    assert settings.alibaba.verify_signatures is False
    assert settings.alibaba.throttle_response == "588"


def test_minimal_file_takes_defaults(tmp_path: Path) -> None:
    settings = load(write(tmp_path, {}), env={})
    assert settings.alibaba.accounts == () and settings.server.port == 8080


def test_per_account_limit_overrides_the_default(tmp_path: Path) -> None:
    account = {
        "access_key_id": "k",
        "access_key_secret": "s",
        "uid": "1",
        "rate_limits": {"TextFeedback": 5},
    }
    settings = load(write(tmp_path, {"alibaba": {"accounts": [account]}}), env={})
    (acc,) = settings.alibaba.accounts
    assert limits(acc)["TextFeedback"] == 5 and limits(acc)["ImageScanFeedback"] == 20


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        ("{not json", "<file>", "is not valid JSON"),
        ("[]", "<file>", "must hold an object (a mapping) at the top level"),
        ({"server": {"port": "eighty"}}, "server.port", 'must be an integer, not "eighty"'),
        ({"server": {"port": 70000}}, "server.port", "must be at most 65535"),
        ({"server": {"prot": 1}}, "server.prot", "unknown key (known keys: "),
        ({"source": "x"}, "source", "unknown key"),
        ({"server": {"clock": "fake"}}, "server.clock", 'must be one of "real", "manual", not "fake"'),
        ({"server": {"log_format": "xml"}}, "server.log_format", 'must be one of "text", "json"'),
        ({"alibaba": {"verify_signatures": "yes"}}, "alibaba.verify_signatures", "must be true or false"),
        ({"alibaba": {"throttle_response": "503"}}, "alibaba.throttle_response", "must be one of"),
        ({"alibaba": {"accounts": {}}}, "alibaba.accounts", "must be a list, not an object"),
        ({"alibaba": {"accounts": [{"uid": "1"}]}}, "alibaba.accounts[0].access_key_id", "is required"),
        (
            {
                "alibaba": {
                    "accounts": [
                        {"access_key_id": "a", "access_key_secret": "s", "uid": "1"},
                        {"access_key_id": "a", "access_key_secret": "s", "uid": "2"},
                    ]
                }
            },
            "alibaba.accounts[1].access_key_id",
            "'a' is used by another account",
        ),
        (
            {
                "alibaba": {
                    "accounts": [
                        {
                            "access_key_id": "a",
                            "access_key_secret": "s",
                            "uid": "1",
                            "rate_limits": {"VideoSyncScan": 3},
                        }
                    ]
                }
            },
            "alibaba.accounts[0].rate_limits.VideoSyncScan",
            "unknown API action",
        ),
        (
            {"tencent": {"accounts": [{"secret_id": "i", "secret_key": "k", "appid": "12ab"}]}},
            "tencent.accounts[0].appid",
            "must be digits",
        ),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path: Path, data: Any, key: str, problem: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        # What the generic loader cannot check (an API action's name) the provider checks when the
        # app is built from the settings.
        create_app(load(path, env={}))
    assert info.value.source == str(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(f"{path}: {key}: ")


def test_bad_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load(env={"EMULATOR_SERVER__PORT": "abc"})
    assert str(info.value) == (
        'environment variable EMULATOR_SERVER__PORT: server.port: must be an integer, not "abc"'
    )


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        # An unknown section: the variable made it, not the file.
        ({"EMULATOR_SERVR__PORT": "9000"}, "servr", "unknown key (known keys: "),
        ({"EMULATOR_SERVER__PROT": "9000"}, "server.prot", "unknown key"),
        # A rule checked after the types: the variable still carried the value.
        ({"EMULATOR_SERVER__PORT": "70000"}, "server.port", "must be at most 65535, not 70000"),
        # A list given whole by a variable: its items' problems are the variable's.
        (
            {"EMULATOR_ALIBABA__ACCOUNTS": '[{"uid": "1"}]'},
            "alibaba.accounts[0].access_key_id",
            "is required",
        ),
        (
            {"EMULATOR_TENCENT__ACCOUNTS": '[{"secret_id": "i", "secret_key": "k", "appid": "12ab"}]'},
            "tencent.accounts[0].appid",
            "must be digits",
        ),
        ({"EMULATOR_SERVER__CLOCK": "fake"}, "server.clock", "must be one of"),
    ],
)
def test_a_bad_value_from_a_variable_names_the_variable(env: dict[str, str], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(env={**env, "EMULATOR_JOURNAL__CAPACITY": "5"})
    (name,) = env
    assert info.value.source == f"environment variable {name}"
    assert info.value.key == key and problem in info.value.problem


def test_a_provider_check_names_the_variable() -> None:
    accounts = '[{"access_key_id": "k", "access_key_secret": "s", "uid": "1", "rate_limits": {"Nope": 1}}]'
    with pytest.raises(ConfigError) as info:
        create_app(load(env={"EMULATOR_ALIBABA__ACCOUNTS": accounts}))
    assert info.value.source == "environment variable EMULATOR_ALIBABA__ACCOUNTS"
    assert info.value.key == "alibaba.accounts[0].rate_limits.Nope"


def test_a_bad_value_in_the_file_names_the_file_even_with_variables_set(tmp_path: Path) -> None:
    # The variable touches the same section; the file's own bad key is still the file's.
    path = write(tmp_path, {"server": {"prot": 1}, "alibaba": {"accounts": [{"uid": "1"}]}})
    for env in ({"EMULATOR_SERVER__PORT": "9000"}, {}):
        with pytest.raises(ConfigError) as info:
            load(path, env=env)
        assert (info.value.source, info.value.key) == (str(path), "server.prot")
    path = write(tmp_path, {"alibaba": {"accounts": [{"uid": "1"}]}})
    with pytest.raises(ConfigError) as info:
        load(path, env={"EMULATOR_ALIBABA__VERIFY_SIGNATURES": "false"})
    assert (info.value.source, info.value.key) == (str(path), "alibaba.accounts[0].access_key_id")


def test_an_override_is_named_by_its_origin() -> None:
    with pytest.raises(ConfigError) as info:
        key = "server.log_level"
        load(env={}, overrides={key: "loud"}, origins={key: "option --log-level"})
    assert str(info.value).startswith("option --log-level: server.log_level: must be one of")
    with pytest.raises(ConfigError) as info:
        load(env={}, overrides={"server.prot": 1})
    assert info.value.source == "override server.prot"


def test_the_pytest_plugin_variables_are_not_settings() -> None:
    env = {"EMULATOR_URL": "http://127.0.0.1:9", "EMULATOR_ADMIN_TOKEN": "t"}
    assert load(env=env).admin.token is None


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load("/nonexistent/emulator.json", env={})


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "server:\n  port: 9100\nalibaba:\n  throttle_response: '588'\n  accounts:\n"
        "    - {access_key_id: k, access_key_secret: s, uid: '42'}\n"
    )
    settings = load(path, env={})
    assert settings.server.port == 9100 and settings.alibaba.throttle_response == "588"
    assert settings.alibaba.accounts[0].uid == "42"


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("server:\n  port: [9100\n")
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert info.value.key == "<file>" and "is not valid YAML" in info.value.problem
    assert "line 3" in info.value.problem


def test_yaml_without_pyyaml_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    path = tmp_path / "config.yaml"
    path.write_text("server: {}\n")
    with pytest.raises(ConfigError, match=r"needs PyYAML: pip install 'cloud-moderation-emulator\[yaml\]'"):
        load(path, env={})
