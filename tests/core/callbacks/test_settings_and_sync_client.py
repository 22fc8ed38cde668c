"""CallbackSettings from file and environment, and the callback methods of the sync client/plugin."""

from __future__ import annotations

import pytest

from emulator import ConfigError
from emulator.config import load
from emulator.keys import DISPATCHER
from emulator.testing.plugin import Emulator
from emulator.testing.settings import make_settings


def test_defaults_match_the_documented_schedule() -> None:
    cfg = make_settings().callbacks
    assert cfg.max_retries == 16
    assert cfg.retry_delays == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600)
    assert (cfg.attempt_timeout, cfg.shutdown_grace) == (10.0, 5.0)
    assert make_settings().alibaba.notify_on_feedback is False


def test_environment_overrides_and_validation() -> None:
    env = {"EMULATOR_CALLBACKS__RETRY_DELAYS": "[0.5, 1]", "EMULATOR_CALLBACKS__MAX_RETRIES": "3"}
    cfg = load(env=env).callbacks
    assert (cfg.retry_delays, cfg.max_retries) == ((0.5, 1.0), 3)
    with pytest.raises(ConfigError, match=r"callbacks.attempt_timeout: must be a number"):
        load(env={"EMULATOR_CALLBACKS__ATTEMPT_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match=r"callbacks.retry_delays\[0\]: must not be negative"):
        load(env={"EMULATOR_CALLBACKS__RETRY_DELAYS": "[-1]"})
    account = {"access_key_id": "a", "access_key_secret": "s", "uid": "1", "callback_url": "ftp://x/"}
    with pytest.raises(ConfigError, match=r"alibaba.accounts\[0\].callback_url: must be an http"):
        make_settings(**{"alibaba.accounts": [account]})


@pytest.mark.emulator(config={"callbacks.max_retries": 2, "callbacks.retry_delays": [3]})
def test_sync_client_callback_methods(emulator: Emulator) -> None:
    assert emulator.app is not None
    dispatcher = emulator.app[DISPATCHER]
    assert (dispatcher.max_retries, dispatcher.delay_before_retry(2)) == (2, 3.0)
    assert emulator.set_callback(None, seed="s3") == {
        "account": "1234567890123456",
        "url": None,
        "seed": "s3",
    }
    answer = emulator.review(task_id="t", suggestion="pass", url="http://example.com/a.jpg")
    assert answer["delivery"] is None  # no callback URL: the review only updates the library
    assert emulator.deliveries() == []
    with pytest.raises(AssertionError, match="no deliveries were made at all"):
        emulator.wait_for_delivery(timeout=0.05)
    # The review is journaled as a console event even without a delivery.
    assert emulator.last(action="ConsoleReview").parsed["taskId"] == "t"
