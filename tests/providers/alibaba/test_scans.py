"""Scans over HTTP: validation, precedence of feedback / libraries / verdicts, the console routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator import ManualClock, RunningServer, serve
from emulator.testing import EmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings

VERDICTS = [
    {"url": "http://a/x.jpg", "scene": "porn", "label": "sexy", "suggestion": "review", "rate": 80},
    {"url_pattern": r"\.gif$", "scene": "porn", "label": "porn", "suggestion": "block"},
    {"text": "spammy", "scene": "antispam", "label": "spam", "suggestion": "block", "rate": 95},
]


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    settings = make_settings(**{"alibaba.verify_signatures": False, "alibaba.verdicts": VERDICTS})
    async with serve(settings, clock=ManualClock()) as running:
        yield running


@pytest.fixture
async def emu(server: RunningServer) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(server.url) as client:
        yield client


async def post(server: RunningServer, path: str, body: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + path, data=json.dumps(body)) as response:
            assert response.status == 200
            result: dict[str, Any] = await response.json()
            return result


async def text(server: RunningServer, content: str) -> dict[str, Any]:
    answer = await post(server, "/green/text/scan", {"scenes": ["antispam"], "tasks": [{"content": content}]})
    task: dict[str, Any] = answer["data"][0]
    return task


async def image(server: RunningServer, url: str) -> dict[str, Any]:
    answer = await post(server, "/green/image/scan", {"scenes": ["porn"], "tasks": [{"url": url}]})
    result: dict[str, Any] = answer["data"][0]["results"][0]
    return result


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/green/image/scan", {}, "scenes is required: a non-empty array"),
        ("/green/image/scan", {"scenes": ["porn"]}, "tasks is required: a non-empty array"),
        (
            "/green/image/scan",
            {"scenes": ["violence"], "tasks": [{}]},
            "scenes[0] must be one of: porn, terrorism, ad",
        ),
        (
            "/green/image/scan",
            {"scenes": ["porn"], "tasks": [{"url": "http://a"}] * 101},
            "tasks has 101 items, over 100",
        ),
        (
            "/green/text/scan",
            {"scenes": ["porn"], "tasks": [{"content": "x"}]},
            "scenes[0] must be one of: antispam, ad",
        ),
        (
            "/green/text/scan",
            {"scenes": [["antispam"]], "tasks": [{"content": "x"}]},
            "scenes[0] must be one of: antispam, ad",
        ),
        (
            "/green/image/scan",
            {"scenes": [{"porn": 1}], "tasks": [{}]},
            "scenes[0] must be one of: porn, terrorism, ad",
        ),
        (
            "/green/image/asyncscan",
            {"scenes": ["porn"], "tasks": [{"url": "http://a"}], "callback": "ftp://x"},
            "callback must be an http(s) URL",
        ),
        (
            "/green/image/asyncscan",
            {"scenes": ["porn"], "tasks": [{"url": "http://a"}], "callback": "http://x"},
            "seed is required when callback is given",
        ),
        ("/green/image/results", {"taskId": "x"}, "request body must be a non-empty JSON array of taskIds"),
        ("/green/image/results", [1], "[0] must be a taskId string"),
    ],
)
async def test_invalid_scan_bodies(server: RunningServer, path: str, body: Any, message: str) -> None:
    answer = await post(server, path, body)
    assert (answer["code"], answer["msg"]) == (400, message)


async def test_per_task_errors_leave_the_other_tasks_alone(server: RunningServer) -> None:
    answer = await post(
        server,
        "/green/image/scan",
        {
            "scenes": ["porn"],
            "tasks": [{"dataId": "bad", "url": "not a url"}, {"dataId": "ok", "url": "http://a/1.png"}],
        },
    )
    bad, ok = answer["data"]
    assert (bad["code"], bad["dataId"], bad["msg"]) == (
        400,
        "bad",
        "tasks[0].url is required: an http(s) URL",
    )
    assert (ok["code"], ok["results"][0]["suggestion"]) == (200, "pass")
    answer = await post(
        server, "/green/text/scan", {"scenes": ["antispam"], "tasks": [{"content": "x" * 10_001}]}
    )
    assert answer["data"][0]["code"] == 400


async def test_default_verdicts(server: RunningServer) -> None:
    assert await image(server, "http://a/x.jpg") == {
        "scene": "porn",
        "label": "sexy",
        "suggestion": "review",
        "rate": 80,
    }
    assert (await image(server, "http://b/anim.gif"))["label"] == "porn"
    assert (await image(server, "http://b/still.png"))["label"] == "normal"
    task = await text(server, "so spammy!")
    assert task["results"][0]["label"] == "spam" and task["filteredContent"] == "so ******!"


async def test_whitelist_beats_the_default_verdict(server: RunningServer, emu: EmulatorClient) -> None:
    await emu.create_library("ok words", "term", "whitelist", ["好的"])
    task = await text(server, "so spammy! 好的")
    assert (task["results"][0]["label"], task["results"][0]["suggestion"]) == ("normal", "pass")
    assert "filteredContent" not in task


async def test_blacklist_beats_the_default_verdict(server: RunningServer, emu: EmulatorClient) -> None:
    await emu.add_verdicts({"text": "hello", "scene": "antispam", "label": "normal", "suggestion": "pass"})
    lib = await emu.create_library("bad words", "term", "blacklist", ["hello1&world2"])
    task = await text(server, "hello1 big world2")
    result = task["results"][0]
    assert (result["label"], result["suggestion"]) == ("customized", "block")
    assert task["filteredContent"] == "****** big ******"
    assert result["details"][0]["contexts"][0]["libCode"] == lib["code"]
    review = await emu.create_library("check", "pattern", "review", ["请审核这个很长的句子好吗"])
    task = await text(server, "请审核这个很长的句子好吗。")
    assert task["results"][0]["suggestion"] == "review"
    assert task["results"][0]["details"][0]["contexts"][0]["libName"] == review["name"]


async def test_image_feedback_scenes_and_reviews(server: RunningServer, emu: EmulatorClient) -> None:
    await post(
        server, "/green/image/feedback", {"url": "http://a/x.jpg", "suggestion": "pass", "scenes": ["porn"]}
    )
    assert (await image(server, "http://a/x.jpg"))["suggestion"] == "pass"
    await emu.review(url="http://b/anim.gif", task_id="t", suggestion="pass", labels=[])
    assert (await image(server, "http://b/anim.gif"))["suggestion"] == "pass"


async def test_library_routes_and_limits(server: RunningServer, emu: EmulatorClient) -> None:
    with pytest.raises(AdminError, match="term 'a~b&c': every '&' must come before any '~'"):
        await emu.create_library("bad", "term", "blacklist", ["a~b&c"])
    for i in range(10):
        await emu.create_library(f"lib{i}", "term", "blacklist")
    with pytest.raises(AdminError, match="at most 10 libraries"):
        await emu.create_library("eleven", "term", "blacklist")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/_emulator/alibaba/libraries") as response:
            listed = (await response.json())["libraries"]
        assert [lib["code"] for lib in listed[:2]] == ["feedback-image", "feedback-text"]
        assert len(listed) == 12
        async with http.delete(f"{server.url}/_emulator/alibaba/libraries/feedback-image") as response:
            body = await response.json()
            assert response.status == 400 and body["code"] == "FeedbackLibNotDeletable"
        async with http.delete(f"{server.url}/_emulator/alibaba/libraries/nope") as response:
            assert response.status == 404 and (await response.json())["code"] == "KeywordLibNotFound"
        code = listed[2]["code"]
        assert await emu.add_library_items(code, ["one1", "two2"]) == 2
        async with http.delete(
            f"{server.url}/_emulator/alibaba/libraries/{code}/items", json={"items": ["one1"]}
        ) as r:
            assert (await r.json())["count"] == 1
        async with http.get(f"{server.url}/_emulator/alibaba/libraries/{code}/items") as r:
            assert (await r.json())["items"] == ["two2"]
    await emu.reset()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/_emulator/alibaba/libraries") as response:
            assert len((await response.json())["libraries"]) == 2


async def test_bad_verdicts_are_refused(emu: EmulatorClient) -> None:
    with pytest.raises(AdminError, match="label: 'qrcode' is not a label of scene porn"):
        await emu.add_verdicts({"url": "http://a", "scene": "porn", "label": "qrcode", "suggestion": "block"})
    with pytest.raises(AdminError, match="suggestion: must be one of"):
        await emu.add_verdicts({"url": "http://a", "scene": "porn", "label": "porn", "suggestion": "maybe"})


def test_preloaded_libraries_and_bad_config() -> None:
    from emulator import ConfigError, create_app
    from emulator.providers.alibaba.routes import ALIBABA_BACKEND

    account = {
        "access_key_id": "k",
        "access_key_secret": "s",
        "uid": "1",
        "text_libraries": [{"name": "pre", "kind": "term", "list_type": "blacklist", "items": ["x1&y"]}],
    }
    app = create_app(make_settings(**{"alibaba.accounts": [account]}))
    (lib,) = app[ALIBABA_BACKEND].states["1"].text_libraries.libraries
    assert lib.name == "pre" and list(lib.items) == ["x1&y"]
    bad = {
        **account,
        "text_libraries": [{"name": "pre", "kind": "term", "list_type": "blacklist", "items": ["x y"]}],
    }
    with pytest.raises(ConfigError) as info:
        create_app(make_settings(**{"alibaba.accounts": [bad]}))
    assert info.value.key == "alibaba.accounts[0].text_libraries[0]"
    with pytest.raises(ConfigError) as info:
        create_app(
            make_settings(
                **{
                    "alibaba.verdicts": [
                        {"text": "a", "scene": "porn", "label": "porn", "suggestion": "block"}
                    ]
                }
            )
        )
    assert info.value.key == "alibaba.verdicts[0].scene"
