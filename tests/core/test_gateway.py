"""The gateway, run over every row of each provider's action table: the same steps, in the same
order, with each provider's own answers; and a call identified once, whatever reads it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from lxml import etree

from emulator import ManualClock, create_app
from emulator.core.gateway import Action
from emulator.core.journal import Filter
from emulator.keys import FAULTS, GATEWAY, JOURNAL
from emulator.providers.alibaba.routes import ACTIONS as ALIBABA_ACTIONS
from emulator.providers.tencent.routes import ACTIONS as TENCENT_ACTIONS
from emulator.testing.settings import make_settings

Client = TestClient[Any, Any]
AppClient = Callable[..., Awaitable[Client]]

CI_HOST = "examplebucket-1250000000.ci.ap-beijing.myqcloud.com"
ALIBABA_UID = "1234567890123456"
TENCENT_APPID = "1250000000"
#: A well-formed Authorization of a key no account has, per provider.
UNKNOWN_KEY = {
    "alibaba": "acs nobodysKeyId:c2lnbmF0dXJl",
    "tencent": (
        "q-sign-algorithm=sha1&q-ak=AKIDnobody&q-sign-time=1;2&q-key-time=1;2"
        "&q-header-list=&q-url-param-list=&q-signature=00"
    ),
}
ROWS = [("alibaba", a) for a in ALIBABA_ACTIONS] + [("tencent", a) for a in TENCENT_ACTIONS]


def _id(row: tuple[str, Action]) -> str:
    return f"{row[0]}-{row[1].name}"


def path_of(action: Action) -> str:
    return action.path.replace("{jobId}", "st0123456789abcdef0123456789abcdef")


def headers_for(provider: str) -> dict[str, str]:
    if provider == "alibaba":
        return {"Authorization": UNKNOWN_KEY["alibaba"], "Content-Type": "application/json"}
    return {"Host": CI_HOST, "Authorization": UNKNOWN_KEY["tencent"], "Content-Type": "application/xml"}


def error_code(provider: str, body: bytes) -> str:
    if provider == "alibaba":
        data = json.loads(body)
        return str(data.get("Code", data.get("code")))
    return str(etree.fromstring(body).findtext("Code"))


async def make(aiohttp_client: AppClient, **overrides: Any) -> Client:
    settings = make_settings(**overrides)
    return await aiohttp_client(create_app(settings, clock=ManualClock()))


def test_every_row_is_routed() -> None:
    app = create_app(make_settings())
    gateway = app[GATEWAY]
    assert set(gateway.providers) == {"alibaba", "tencent"}
    routed = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    for _, action in ROWS:
        assert (action.method, action.path) in routed


@pytest.mark.parametrize("row", ROWS, ids=_id)
async def test_another_method_is_the_providers_own_refusal(
    aiohttp_client: AppClient, row: tuple[str, Action]
) -> None:
    provider, action = row
    client = await make(aiohttp_client)
    method = "PUT" if action.method != "PUT" else "POST"
    response = await client.request(method, path_of(action), headers=headers_for(provider))
    code = error_code(provider, await response.read())
    if provider == "alibaba":
        assert (response.status, code) == (404, "InvalidAction.NotFound")
    else:
        assert (response.status, code) == (405, "MethodNotAllowed")
    (entry,) = client.app[JOURNAL].select(Filter(method=method))
    assert entry.provider == provider and entry.status == response.status


@pytest.mark.parametrize("row", ROWS, ids=_id)
async def test_an_unknown_key_is_refused_in_the_providers_shape_and_journaled(
    aiohttp_client: AppClient, row: tuple[str, Action]
) -> None:
    provider, action = row
    client = await make(aiohttp_client)
    response = await client.request(action.method, path_of(action), headers=headers_for(provider))
    code = error_code(provider, await response.read())
    expected = {"alibaba": (404, "InvalidAccessKeyId.NotFound"), "tencent": (403, "InvalidAccessKeyId")}
    assert (response.status, code) == expected[provider]
    (entry,) = client.app[JOURNAL].select(Filter(provider=provider))
    assert (entry.action, entry.status) == (action.name, response.status)


@pytest.mark.parametrize("row", ROWS, ids=_id)
async def test_an_oversized_body_is_the_providers_too_large_error(
    aiohttp_client: AppClient, row: tuple[str, Action]
) -> None:
    provider, action = row
    client = await make(
        aiohttp_client,
        **{
            "server.max_body_bytes": 1024,
            "alibaba.verify_signatures": False,
            "tencent.verify_signatures": False,
        },
    )
    response = await client.request(
        action.method, path_of(action), headers=headers_for(provider), data=b"x" * 4096
    )
    code = error_code(provider, await response.read())
    assert code == {"alibaba": "589", "tencent": "XMLSizeLimit"}[provider]
    (entry,) = client.app[JOURNAL].select(Filter(provider=provider))
    assert entry.action == action.name


@pytest.mark.parametrize("row", ROWS, ids=_id)
async def test_a_rule_on_the_action_fires_with_the_providers_error(
    aiohttp_client: AppClient, row: tuple[str, Action]
) -> None:
    provider, action = row
    client = await make(aiohttp_client)
    code = "ServiceUnavailable"
    client.app[FAULTS].add(
        {"match": {"provider": provider, "action": action.name}, "action": {"type": "error", "code": code}}
    )
    response = await client.request(action.method, path_of(action), headers=headers_for(provider))
    assert response.status == 503
    assert error_code(provider, await response.read()) == code
    (entry,) = client.app[JOURNAL].select(Filter(provider=provider))
    assert entry.action == action.name and entry.fault is not None


@pytest.mark.parametrize(("provider", "account"), [("alibaba", ALIBABA_UID), ("tencent", TENCENT_APPID)])
async def test_relaxed_signatures_a_rule_on_the_account_fires_for_the_account_journaled(
    aiohttp_client: AppClient, provider: str, account: str
) -> None:
    """With signature checks off, a key no account has is the first account's: the rule on that
    account sees the same account the journal records (they once disagreed)."""
    client = await make(aiohttp_client, **{f"{provider}.verify_signatures": False})
    client.app[FAULTS].add(
        {
            "match": {"provider": provider, "account": account},
            "action": {"type": "error", "code": "InternalError"},
        }
    )
    action = (ALIBABA_ACTIONS if provider == "alibaba" else TENCENT_ACTIONS)[0]
    headers = headers_for(provider)
    if provider == "tencent":
        headers["Host"] = "127.0.0.1"  # no APPID in the Host: the key alone names the account
    response = await client.request(action.method, path_of(action), headers=headers)
    assert response.status == 500
    (entry,) = client.app[JOURNAL].select(Filter(provider=provider))
    assert entry.account == account
    assert entry.fault is not None


async def test_a_body_matcher_reads_the_body_parsed_once(aiohttp_client: AppClient) -> None:
    """A body rule and the handler see one parse: the journal's parsed body is the rule's."""
    client = await make(aiohttp_client, **{"tencent.verify_signatures": False})
    client.app[FAULTS].add(
        {
            "match": {"provider": "tencent", "body": {"path": "Request.Label", "equals": "Porn"}},
            "action": {"type": "latency", "fixed": 0},
        }
    )
    body = (
        b"<Request><ContentType>1</ContentType><Label>Porn</Label>"
        b"<SuggestedLabel>Normal</SuggestedLabel><Text>dGVzdA==</Text></Request>"
    )
    response = await client.post("/report/badcase", data=body, headers=headers_for("tencent"))
    assert response.status == 200
    (entry,) = client.app[JOURNAL].select(Filter(provider="tencent"))
    assert entry.fault is not None
    assert entry.parsed == {
        "Request": {"ContentType": "1", "Label": "Porn", "SuggestedLabel": "Normal", "Text": "dGVzdA=="}
    }
