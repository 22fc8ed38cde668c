"""Admin errors are problem details (RFC 9457), keeping the older error and message members."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator import ManualClock, create_app
from emulator.testing.settings import make_settings

Client = TestClient[Any, Any]
AppClient = Callable[..., Awaitable[Client]]
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def client(aiohttp_client: AppClient) -> Client:
    return await aiohttp_client(create_app(make_settings(), clock=ManualClock()))


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == PROBLEM_JSON
    body: dict[str, Any] = await response.json(content_type=PROBLEM_JSON)
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["detail"] == body["message"]
    return body


async def test_a_bad_request_is_a_problem_with_its_kind_and_message(client: Client) -> None:
    body = await problem(await client.get("/_emulator/requests", params={"colour": "red"}), 400)
    assert body["title"] == "Bad Request" and body["error"] == "bad_request"
    assert "unknown filter 'colour'" in body["detail"]


async def test_extra_members_are_kept(client: Client) -> None:
    response = await client.get("/_emulator/requests/wait", params={"action": "Nope", "timeout": "0"})
    body = await problem(response, 408)
    assert (body["title"], body["error"]) == ("Request Timeout", "timeout")
    assert body["matched"] == [] and body["closest"] == []
    response = await client.delete("/_emulator/alibaba/libraries/feedback-text")
    body = await problem(response, 400)
    assert body["code"] == "FeedbackLibNotDeletable"


async def test_a_bad_rule_keeps_its_kind(client: Client) -> None:
    body = await problem(await client.post("/_emulator/faults", json={"match": 1}), 400)
    assert body["error"] == "bad_rule"


async def test_missing_token_is_a_401_problem_and_health_stays_open(aiohttp_client: AppClient) -> None:
    client = await aiohttp_client(create_app(make_settings(**{"admin.token": "s3cret"})))
    response = await client.get("/_emulator/requests")
    body = await problem(response, 401)
    assert (body["title"], body["error"]) == ("Unauthorized", "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Even an unknown admin path asks for the token first.
    await problem(await client.get("/_emulator/nowhere"), 401)
    assert (await client.get("/_emulator/health")).status == 200
    response = await client.get("/_emulator/requests", headers={"Authorization": "Bearer s3cret"})
    assert response.status == 200


async def test_an_unknown_admin_path_is_a_404_problem(client: Client) -> None:
    body = await problem(await client.get("/_emulator/nowhere"), 404)
    assert (body["title"], body["error"]) == ("Not Found", "not_found")
    assert "/_emulator/nowhere" in body["detail"]


async def test_a_wrong_method_on_a_known_admin_path_is_a_405_problem(client: Client) -> None:
    response = await client.get("/_emulator/reset")
    body = await problem(response, 405)
    assert (body["title"], body["error"]) == ("Method Not Allowed", "method_not_allowed")
    assert "POST" in response.headers["Allow"] and "POST" in body["detail"]


async def test_provider_answers_are_untouched(client: Client) -> None:
    # The middleware belongs to the admin sub-application: a provider's 404 is still its own.
    response = await client.post("/green/image/nowhere")
    assert response.content_type == "application/json"
    assert (await response.json())["Code"] == "InvalidAction.NotFound"
