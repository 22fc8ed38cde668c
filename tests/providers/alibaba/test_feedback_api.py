"""ImageScanFeedback and TextFeedback over real HTTP: validation, malformed input, stored state."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator import ManualClock, create_app
from emulator.providers.alibaba.routes import ALIBABA_BACKEND
from emulator.testing.settings import make_settings

Client = TestClient[Any, Any]
UID = "1234567890123456"
IMAGE = "/green/image/feedback"
TEXT = "/green/text/feedback"


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    # Signatures are checked by tests/sdk with the real SDKs; here they are relaxed so each case
    # is about the body alone.
    settings = make_settings(**{"alibaba.verify_signatures": False, "server.max_body_bytes": 64 * 1024})
    return await aiohttp_client(create_app(settings, clock=ManualClock()))


async def post(client: Client, path: str, body: bytes | str, **headers: str) -> dict[str, Any]:
    data = body.encode() if isinstance(body, str) else body
    response = await client.post(path, data=data, headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    result: dict[str, Any] = await response.json()
    assert set(result) == {"code", "msg", "requestId"}
    assert response.headers["x-acs-request-id"] == result["requestId"]
    return result


BAD_IMAGE_BODIES = [
    ({"suggestion": "pass"}, "scenes is required when suggestion is given"),
    ({"suggestion": "pass", "scenes": []}, "scenes is required when suggestion is given"),
    ({"suggestion": "maybe", "scenes": ["porn"]}, "suggestion must be one of: pass, block"),
    ({"suggestion": 1, "scenes": ["porn"]}, "suggestion must be a string"),
    ({"scenes": "porn"}, "scenes must be an array of strings"),
    ({"scenes": ["porn", "violence"]}, "scenes[1] must be one of: porn, terrorism, ad"),
    ({"scenes": [None]}, "scenes[0] must be one of: porn, terrorism, ad"),
    # Found by the hypothesis fuzzing (tests/hardening): an unhashable scene was a 500.
    ({"scenes": [["porn"]]}, "scenes[0] must be one of: porn, terrorism, ad"),
    ({"scenes": [{"porn": 1}]}, "scenes[0] must be one of: porn, terrorism, ad"),
    ({"taskId": 12}, "taskId must be a string"),
    ({"url": ["http://a"]}, "url must be a string"),
    ({"note": {}}, "note must be a string"),
    ({"label": "nonsense", "scenes": ["porn"]}, "label 'nonsense' is not a label of any scene"),
    ({"label": "nonsense"}, "label 'nonsense' is not a label of any scene"),
    ([], "request body must be a JSON object"),
    ("porn", "request body must be a JSON object"),
]


@pytest.mark.parametrize(("body", "message"), BAD_IMAGE_BODIES)
async def test_invalid_image_feedback(client: Client, body: Any, message: str) -> None:
    result = await post(client, IMAGE, json.dumps(body))
    assert (result["code"], result["msg"]) == (400, message)
    assert client.app is not None
    assert list(client.app[ALIBABA_BACKEND].states[UID].image_feedback) == []


BAD_TEXT_BODIES = [
    ({}, "taskId is required"),
    ({"taskId": ""}, "taskId is required"),
    ({"taskId": 5}, "taskId must be a string"),
    (
        {"taskId": "t", "label": "sexy"},
        "label must be one of: abuse, ad, contraband, customized, "
        "flood, meaningless, normal, politics, porn, spam, terrorism",
    ),
    ({"taskId": "t", "content": "x" * 10_001}, "content is longer than 10000 characters (10001)"),
    ([{"taskId": "a"}, {"dataId": "b"}], "[1].taskId is required"),
    ([{"taskId": "a"}, "b"], "[1] must be a JSON object"),
    ([], "request body must not be an empty array"),
]


@pytest.mark.parametrize(("body", "message"), BAD_TEXT_BODIES)
async def test_invalid_text_feedback(client: Client, body: Any, message: str) -> None:
    result = await post(client, TEXT, json.dumps(body))
    assert (result["code"], result["msg"]) == (400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"taskId": ', "request body is not valid JSON"),
        (b"{'taskId': 'x'}", "request body is not valid JSON"),
        (b'{"taskId": NaN}', "request body is not valid JSON"),
        (b'{"note": "\xff\xfe"}', "request body is not valid UTF-8 (byte 10)"),
        (b"[" * 50_000, "request body is nested too deeply"),
    ],
)
async def test_malformed_body_then_server_keeps_serving(client: Client, body: bytes, message: str) -> None:
    result = await post(client, IMAGE, body)
    assert result["code"] == 400
    assert result["msg"].startswith(message)
    assert (await post(client, IMAGE, b""))["code"] == 200


async def test_oversized_body_is_refused_without_reading_it(client: Client) -> None:
    big = json.dumps({"note": "x" * 70_000})
    result = await post(client, IMAGE, big)
    assert result["code"] == 589
    assert result["msg"].startswith("TOO_LARGE")
    assert (await post(client, IMAGE, b"{}"))["code"] == 200


async def test_oversized_chunked_body_is_refused(client: Client) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    response = await client.post(IMAGE, data=chunks())
    assert (await response.json())["code"] == 589


@pytest.mark.parametrize("query", ["ClientInfo=not-json", "clientInfo=[1]"])
async def test_client_info_must_be_a_json_object(client: Client, query: str) -> None:
    result = await post(client, f"{IMAGE}?{query}", b"")
    assert result["code"] == 400
    assert "must be a JSON object" in result["msg"]


async def test_valid_bodies_are_stored_in_the_feedback_libraries(client: Client) -> None:
    bodies = [
        {"url": "http://e/white.jpg", "suggestion": "pass", "scenes": ["porn", "ad"]},
        {"url": "http://e/black.jpg", "scenes": ["terrorism"], "label": "weapon"},
        {"url": "http://e/nolist.jpg", "note": "just a note"},
        {"suggestion": "block", "scenes": ["porn"], "taskId": "no-url"},
    ]
    for body in bodies:
        assert (await post(client, IMAGE, json.dumps(body)))["code"] == 200
    await post(
        client,
        TEXT,
        json.dumps(
            [
                {"taskId": "a", "content": "hi", "label": "normal"},
                {"taskId": "b", "content": "spam!", "label": "spam"},
            ]
        ),
    )
    assert client.app is not None
    state = client.app[ALIBABA_BACKEND].states[UID]
    assert len(state.image_feedback) == 4
    assert {url: (e.kind, e.label, e.scenes) for url, e in state.image_library.items()} == {
        "http://e/white.jpg": ("whitelist", "normal", ("porn", "ad")),
        "http://e/black.jpg": ("blacklist", "weapon", ("terrorism",)),
    }
    assert {t: e.kind for t, e in state.text_library.items()} == {
        "hi": "whitelist",
        "spam!": "blacklist",
    }


@pytest.mark.parametrize(("method", "path"), [("GET", IMAGE), ("PUT", TEXT), ("POST", "/green/video/scan")])
async def test_unknown_api_or_method_is_the_gateways_not_found(
    client: Client, method: str, path: str
) -> None:
    response = await client.request(method, path, data=b"{}")
    assert response.status == 404
    body = await response.json()
    assert body["Code"] == "InvalidAction.NotFound"
    assert body["Message"] == "Specified api is not found, please check your url and method."
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
