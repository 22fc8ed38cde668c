"""The official Alibaba SDKs, unchanged but for the endpoint, against a real running server.

aliyunsdkcore + aliyunsdkgreen sign with acs HMAC-SHA1; alibabacloud-green20180509 signs with
ACS3-HMAC-SHA256 by default and with acs HMAC-SHA1 when ``signature_algorithm='v2'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from alibabacloud_green20180509 import models as green_models
from alibabacloud_green20180509.client import Client as TeaGreenClient
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import ImageScanFeedbackRequest, TextFeedbackRequest

from emulator import ManualClock, RunningServer, serve_in_thread
from emulator.keys import JOURNAL
from emulator.providers.alibaba.routes import ALIBABA_BACKEND
from emulator.testing.settings import make_settings

AK = "testAccessKeyId"
SECRET = "testAccessKeySecret"
UID = "1234567890123456"


def core_image_feedback(
    server: RunningServer, body: dict[str, Any], *, ak: str = AK, secret: str = SECRET
) -> dict[str, Any]:
    client = AcsClient(ak, secret, "cn-shanghai", auto_retry=False)
    request = ImageScanFeedbackRequest.ImageScanFeedbackRequest()
    request.set_endpoint(f"{server.host}:{server.port}")
    request.set_protocol_type("http")
    request.set_ClientInfo(json.dumps({"userId": "u+1 &x=y", "ip": "1.2.3.4"}))
    request.set_content(json.dumps(body).encode())
    return _call(client, request)


def _call(client: AcsClient, request: Any) -> dict[str, Any]:
    # One client per call, closed at once: its pooled connection would otherwise be closed by the
    # garbage collector, with a ResourceWarning.
    try:
        result: dict[str, Any] = json.loads(client.do_action_with_exception(request))
    finally:
        client.session.close()
    return result


def core_text_feedback(server: RunningServer, body: Any) -> dict[str, Any]:
    client = AcsClient(AK, SECRET, "cn-shanghai", auto_retry=False)
    request = TextFeedbackRequest.TextFeedbackRequest()
    request.set_endpoint(f"{server.host}:{server.port}")
    request.set_protocol_type("http")
    request.set_content(json.dumps(body).encode())
    return _call(client, request)


def tea_client(
    server: RunningServer, algorithm: str | None, *, ak: str = AK, secret: str = SECRET
) -> TeaGreenClient:
    config = Config(
        access_key_id=ak,
        access_key_secret=secret,
        endpoint=f"{server.host}:{server.port}",
        protocol="http",
        signature_algorithm=algorithm,
    )
    return TeaGreenClient(config)


def tea_image_feedback(server: RunningServer, algorithm: str | None, **kwargs: str) -> int:
    client = tea_client(server, algorithm, **kwargs)
    response = client.image_scan_feedback(
        green_models.ImageScanFeedbackRequest(client_info='{"userId":"u 1+2&x"}')
    )
    status: int = response.status_code
    return status


TEA_ALGORITHMS = [pytest.param(None, id="tea-acs3"), pytest.param("v2", id="tea-v2")]


# --- accepted ---------------------------------------------------------------------------------------


def test_core_sdk_image_feedback_is_accepted_and_stored(threaded_server: RunningServer) -> None:
    body = {
        "taskId": "img-task-1",
        "suggestion": "block",
        "scenes": ["ad"],
        "url": "http://example.com/1.jpg",
        "label": "ad",
        "note": "missed ad",
    }
    result = core_image_feedback(threaded_server, body)
    assert result["code"] == 200 and result["msg"] == "OK"
    assert set(result) == {"code", "msg", "requestId"}
    rid = result["requestId"]
    assert rid == rid.upper() and len(rid) == 36 and rid.count("-") == 4

    state = threaded_server.app[ALIBABA_BACKEND].states[UID]
    (fb,) = state.image_feedback
    assert (fb.task_id, fb.suggestion, fb.scenes, fb.label, fb.request_id) == (
        "img-task-1",
        "block",
        ("ad",),
        "ad",
        rid,
    )
    entry = state.image_library["http://example.com/1.jpg"]
    assert (entry.kind, entry.label) == ("blacklist", "ad")


def test_core_sdk_text_feedback_is_accepted_and_stored(threaded_server: RunningServer) -> None:
    result = core_text_feedback(
        threaded_server, {"taskId": "txt-1", "dataId": "d1", "content": "buy now", "label": "normal"}
    )
    assert result["code"] == 200
    state = threaded_server.app[ALIBABA_BACKEND].states[UID]
    assert [f.task_id for f in state.text_feedback] == ["txt-1"]
    assert state.text_library["buy now"].kind == "whitelist"


def test_core_sdk_gets_business_error_for_invalid_body(threaded_server: RunningServer) -> None:
    result = core_image_feedback(threaded_server, {"suggestion": "pass"})
    assert result["code"] == 400
    assert "scenes" in result["msg"]


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_tea_sdk_empty_feedback_is_accepted(threaded_server: RunningServer, algorithm: str | None) -> None:
    assert tea_image_feedback(threaded_server, algorithm) == 200
    (fb,) = threaded_server.app[ALIBABA_BACKEND].states[UID].image_feedback
    assert fb.url is None and fb.suggestion is None


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_tea_sdk_text_feedback_is_signed_right_but_cannot_carry_a_task_id(
    threaded_server: RunningServer, algorithm: str | None
) -> None:
    # The Tea SDK's TextFeedbackRequest is hollow too: it sends an empty body, so the required taskId
    # is missing. The signature passes; the API answers the business error in an HTTP 200, which the
    # SDK does not raise and its response model (RequestId only) does not show.
    client = tea_client(threaded_server, algorithm)
    response = client.text_feedback(green_models.TextFeedbackRequest(client_info="{}"))
    assert response.status_code == 200
    assert response.body.to_map() == {}
    (entry,) = threaded_server.app[JOURNAL].select()
    answer = json.loads(entry.response_body)
    assert (answer["code"], answer["msg"]) == (400, "taskId is required")
    assert list(threaded_server.app[ALIBABA_BACKEND].states[UID].text_feedback) == []


# --- rejected ----------------------------------------------------------------------------------------


def core_error(call: Callable[[], object]) -> ServerException:
    with pytest.raises(ServerException) as info:
        call()
    return info.value


def test_core_sdk_wrong_secret(threaded_server: RunningServer) -> None:
    exc = core_error(lambda: core_image_feedback(threaded_server, {}, secret="wrong"))
    assert (exc.get_http_status(), exc.get_error_code()) == (400, "SignatureDoesNotMatch")
    assert "server string to sign is:POST\napplication/json\n" in exc.get_error_msg()
    assert exc.get_request_id()


def test_core_sdk_unknown_key(threaded_server: RunningServer) -> None:
    exc = core_error(lambda: core_image_feedback(threaded_server, {}, ak="nobody"))
    assert (exc.get_http_status(), exc.get_error_code()) == (404, "InvalidAccessKeyId.NotFound")
    assert exc.get_error_msg() == "Specified access key is not found."


@pytest.mark.parametrize("skew", [-16 * 60, 16 * 60])
def test_core_sdk_wrong_clock(threaded_server: RunningServer, clock: ManualClock, skew: int) -> None:
    clock.set_time(clock.time() + skew)
    exc = core_error(lambda: core_image_feedback(threaded_server, {}))
    assert (exc.get_http_status(), exc.get_error_code()) == (400, "InvalidTimeStamp.Expired")


def test_core_sdk_clock_within_skew_is_accepted(threaded_server: RunningServer, clock: ManualClock) -> None:
    clock.set_time(clock.time() + 14 * 60)
    assert core_image_feedback(threaded_server, {})["code"] == 200


def tea_error(call: Callable[[], object]) -> ClientException:
    with pytest.raises(ClientException) as info:
        call()
    return info.value


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_tea_sdk_wrong_secret(threaded_server: RunningServer, algorithm: str | None) -> None:
    exc = tea_error(lambda: tea_image_feedback(threaded_server, algorithm, secret="wrong"))
    assert (exc.status_code, exc.code) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_tea_sdk_unknown_key(threaded_server: RunningServer, algorithm: str | None) -> None:
    exc = tea_error(lambda: tea_image_feedback(threaded_server, algorithm, ak="nobody"))
    assert (exc.status_code, exc.code) == (404, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize("algorithm", TEA_ALGORITHMS)
def test_tea_sdk_wrong_clock(
    threaded_server: RunningServer, clock: ManualClock, algorithm: str | None
) -> None:
    clock.set_time(clock.time() - 3600)
    exc = tea_error(lambda: tea_image_feedback(threaded_server, algorithm))
    assert (exc.status_code, exc.code) == (400, "InvalidTimeStamp.Expired")


# --- throttling --------------------------------------------------------------------------------------

SECOND = {
    "access_key_id": "secondAccessKeyId",
    "access_key_secret": "secondAccessKeySecret",
    "uid": "6543210987654321",
    "seed": "secondSeed",
}


def _two_account_settings(**overrides: Any) -> Any:
    first = {
        "access_key_id": AK,
        "access_key_secret": SECRET,
        "uid": UID,
        "seed": "testSeed",
    }
    return make_settings(**{"alibaba.accounts": [first, SECOND], **overrides})


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except ServerException as exc:
        return f"{exc.get_http_status()} {exc.get_error_code()}"
    return "ok"


def test_throttle_30_rapid_sdk_calls_exactly_20_succeed() -> None:
    clock = ManualClock()  # frozen: all 30 calls fall in one window, whatever the machine's speed
    with serve_in_thread(_two_account_settings(), clock=clock) as server:
        outcomes = [_outcome(lambda: core_image_feedback(server, {})) for _ in range(30)]
        assert outcomes.count("ok") == 20
        assert outcomes[:20] == ["ok"] * 20
        assert set(outcomes[20:]) == {"429 Throttling.User"}

        # Another account has its own quota.
        second = [
            _outcome(
                lambda: core_image_feedback(
                    server, {}, ak=SECOND["access_key_id"], secret=SECOND["access_key_secret"]
                )
            )
            for _ in range(5)
        ]
        assert second == ["ok"] * 5
        # And another API of the same account too.
        assert core_text_feedback(server, {"taskId": "t"})["code"] == 200

        # Still inside the window: refused. Once it has passed: accepted again.
        clock.advance(0.999)
        assert _outcome(lambda: core_image_feedback(server, {})) == "429 Throttling.User"
        clock.advance(0.002)
        assert [_outcome(lambda: core_image_feedback(server, {})) for _ in range(21)] == (
            ["ok"] * 20 + ["429 Throttling.User"]
        )


def test_throttled_call_has_the_gateway_shape() -> None:
    clock = ManualClock()
    settings = make_settings(**{"alibaba.accounts": [{**SECOND, "rate_limits": {"ImageScanFeedback": 1}}]})
    with serve_in_thread(settings, clock=clock) as server:
        kwargs = {"ak": SECOND["access_key_id"], "secret": SECOND["access_key_secret"]}
        core_image_feedback(server, {}, **kwargs)
        exc = core_error(lambda: core_image_feedback(server, {}, **kwargs))
        assert exc.get_error_msg() == "Request was denied due to user flow control."
        assert exc.get_request_id()


def test_throttle_can_answer_400() -> None:
    settings = _two_account_settings(**{"alibaba.throttle_response": "400"})
    with serve_in_thread(settings, clock=ManualClock()) as server:
        outcomes = [_outcome(lambda: core_image_feedback(server, {})) for _ in range(21)]
    assert outcomes[-1] == "400 Throttling.User"


def test_throttle_can_answer_business_588() -> None:
    settings = _two_account_settings(**{"alibaba.throttle_response": "588"})
    with serve_in_thread(settings, clock=ManualClock()) as server:
        codes = [core_image_feedback(server, {})["code"] for _ in range(21)]
    assert codes == [200] * 20 + [588]


def test_tea_sdk_raises_throttling_exception_with_retry_after_header() -> None:
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    settings = _two_account_settings(**{"alibaba.throttle_retry_after_header": True})
    clock = ManualClock()
    with serve_in_thread(settings, clock=clock) as server:
        for _ in range(20):
            tea_image_feedback(server, None)
        clock.advance(0.25)
        with pytest.raises(ThrottlingException) as info:
            tea_image_feedback(server, None)
    assert info.value.code == "Throttling.User"
    assert info.value.retry_after == 750
