"""emulator_sdks: app code that builds the official SDKs' clients with the real endpoints reaches the
emulator, and nothing leaves loopback."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_green20180509 import models as green_models
from alibabacloud_green20180509.client import Client as GreenClient
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.client import AcsClient
from aliyunsdkgreen.request.v20180509 import ImageScanFeedbackRequest, ImageSyncScanRequest
from qcloud_cos import CosConfig, CosS3Client

from emulator import serve_in_thread
from emulator.testing import EmulatorClient, SyncEmulatorClient
from emulator.testing.plugin import AsyncEmulator, Emulator
from emulator.testing.sdks import EmulatorSDKs, emulator_sdks, is_provider_host
from emulator.testing.settings import make_settings

# --- the app under test: real endpoints, https, no emulator settings anywhere ------------------


class App:
    def __init__(self, key: str, secret: str, secret_id: str, secret_key: str, bucket: str) -> None:
        self.key, self.secret = key, secret
        self.secret_id, self.secret_key, self.bucket = secret_id, secret_key, bucket

    def acs_feedback(self, url: str) -> dict[str, Any]:
        client = AcsClient(self.key, self.secret, "cn-shanghai")
        request = ImageScanFeedbackRequest.ImageScanFeedbackRequest()
        request.set_protocol_type("https")
        request.set_content(json.dumps({"url": url, "suggestion": "block", "scenes": ["ad"]}).encode())
        try:
            return dict(json.loads(client.do_action_with_exception(request)))
        finally:
            client.session.close()

    def acs_scan(self, url: str) -> str:
        client = AcsClient(self.key, self.secret, "cn-shanghai")
        request = ImageSyncScanRequest.ImageSyncScanRequest()
        request.set_endpoint("green.cn-shanghai.aliyuncs.com")
        request.set_protocol_type("https")
        request.set_content(json.dumps({"scenes": ["ad"], "tasks": [{"url": url}]}).encode())
        try:
            answer = json.loads(client.do_action_with_exception(request))
        finally:
            client.session.close()
        return str(answer["data"][0]["results"][0]["suggestion"])

    def tea(self) -> GreenClient:
        return GreenClient(
            Config(
                access_key_id=self.key,
                access_key_secret=self.secret,
                endpoint="green.cn-shanghai.aliyuncs.com",
                protocol="https",
            )
        )

    def cos(self) -> CosS3Client:
        conf = CosConfig(
            Region="ap-beijing", SecretId=self.secret_id, SecretKey=self.secret_key, Scheme="https"
        )
        return CosS3Client(conf, retry=0)

    def report_badcase(self, text: str) -> dict[str, Any]:
        answer = self.cos().ci_auditing_report_badcase(
            Bucket=self.bucket,
            ContentType=1,
            Label="Porn",
            SuggestedLabel="Normal",
            Text=base64.b64encode(text.encode()).decode(),
        )
        return dict(answer)


def app_for(sdks: EmulatorSDKs) -> App:
    a = sdks.accounts
    return App(a.access_key_id, a.access_key_secret, a.secret_id, a.secret_key, a.bucket)


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every name resolved and address connected to while the test runs; anything but loopback is
    refused."""
    seen: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def check(name: str) -> None:
        seen.append(name)
        if name not in LOOPBACK:
            raise OSError(f"test left loopback: {name}")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check(host.decode() if isinstance(host, bytes) else str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            check(str(address[0]))
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield seen
    assert seen and set(seen) <= LOOPBACK


# --- the tests -----------------------------------------------------------------------------


def test_the_three_sdks_reach_the_emulator_with_real_endpoints(
    emulator: Emulator, emulator_sdks: EmulatorSDKs, loopback_only: list[str]
) -> None:
    app = app_for(emulator_sdks)
    assert app.acs_feedback("http://cdn.example.com/ad.jpg")["code"] == 200
    assert app.acs_scan("http://cdn.example.com/ad.jpg") == "block"  # the feedback took effect
    app.tea().image_scan_feedback(green_models.ImageScanFeedbackRequest(client_info='{"userId": "u1"}'))
    assert app.report_badcase("hello")["RequestId"]

    calls = emulator.assert_called(direction="in", count=4)
    actions = [c.action for c in calls]
    assert actions == ["ImageScanFeedback", "ImageSyncScan", "ImageScanFeedback", "ReportBadcase"]
    assert all(c.status == 200 and c.namespace == (emulator.namespace or "default") for c in calls)
    # The SDKs signed the real hosts, and the emulator saw them.
    assert calls[0].header("Host") == "green.cn-shanghai.aliyuncs.com"
    assert calls[2].header("Host") == "green.cn-shanghai.aliyuncs.com"
    assert calls[3].header("Host") == f"{emulator.accounts.bucket}.ci.ap-beijing.myqcloud.com"
    assert calls[3].provider == "tencent" and calls[3].path == "/report/badcase"
    assert calls[2].header("Authorization").startswith("ACS3-HMAC-SHA256 ")  # type: ignore[union-attr]


def test_ready_clients_carry_the_test_accounts(emulator: Emulator, emulator_sdks: EmulatorSDKs) -> None:
    accounts = emulator_sdks.accounts
    assert (accounts.access_key_id, accounts.uid, accounts.seed) == (
        "testAccessKeyId",
        "1234567890123456",
        "testSeed",
    )
    assert (accounts.secret_id, accounts.appid, accounts.bucket) == (
        "AKIDtestSecretId",
        "1250000000",
        "examplebucket-1250000000",
    )
    assert emulator.accounts == accounts
    detail = emulator_sdks.cos_client().ci_auditing_text_submit(Bucket=accounts.bucket, Content=b"hi")
    assert detail["JobsDetail"]["State"] == "Success"
    emulator_sdks.green_client().image_scan_feedback(green_models.ImageScanFeedbackRequest())
    client = emulator_sdks.acs_client()
    request = ImageScanFeedbackRequest.ImageScanFeedbackRequest()
    request.set_content(b"{}")
    try:
        assert json.loads(client.do_action_with_exception(request))["code"] == 200
    finally:
        client.session.close()
    assert emulator.count(direction="in", status=200) == 3


async def test_the_tea_clients_async_path_is_redirected_too(
    aemulator: AsyncEmulator, emulator_sdks: EmulatorSDKs, loopback_only: list[str]
) -> None:
    tea = app_for(emulator_sdks).tea()
    await tea.image_scan_feedback_async(green_models.ImageScanFeedbackRequest(client_info="{}"))
    (call,) = await aemulator.assert_called(action="ImageScanFeedback", count=1)
    assert call.header("Host") == "green.cn-shanghai.aliyuncs.com"
    assert call.namespace == (aemulator.namespace or "default")


def test_outside_the_block_nothing_is_redirected() -> None:
    settings = make_settings()
    with serve_in_thread(settings) as server, emulator_sdks(server.url, namespace="ns1") as sdks:
        app = app_for(sdks)
        assert app.acs_feedback("http://a/1.jpg")["code"] == 200
    # Whatever exception the SDK makes of it, the refused name is the real endpoint's.
    with pytest.raises(Exception) as info:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(socket, "getaddrinfo", _refuse)
            app.acs_feedback("http://a/2.jpg")
    assert "refused: green.cn-shanghai.aliyuncs.com" in str(info.value)


def _refuse(host: Any, *args: Any, **kwargs: Any) -> Any:
    raise OSError(f"refused: {host}")


async def test_the_context_manager_tags_its_namespace() -> None:
    with serve_in_thread(make_settings()) as server:
        with emulator_sdks(server.url, namespace="ns-a") as sdks:
            app_for(sdks).report_badcase("one")
        with emulator_sdks(server.url) as sdks:
            app_for(sdks).report_badcase("two")
        async with EmulatorClient(server.url, namespace="ns-a") as admin:
            (call,) = await admin.assert_called(provider="tencent", count=1)
            assert "<Text>b25l</Text>" in call.body
        async with EmulatorClient(server.url, namespace="*") as admin:
            assert [c.namespace for c in await admin.requests(provider="tencent")] == ["ns-a", "default"]


@pytest.mark.parametrize(
    ("host", "redirected"),
    [
        ("green.cn-shanghai.aliyuncs.com", True),
        ("examplebucket-1250000000.ci.ap-beijing.myqcloud.com:443", True),
        ("myqcloud.com", True),
        ("example.com", False),
        ("notaliyuncs.com", False),
        ("127.0.0.1:8080", False),
    ],
)
def test_which_hosts_are_redirected(host: str, redirected: bool) -> None:
    assert is_provider_host(host) is redirected


def test_proxy_settings_do_not_take_redirected_calls_off_loopback(
    emulator: Emulator, emulator_sdks: EmulatorSDKs, loopback_only: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://proxy.example.com:3128")
    app = app_for(emulator_sdks)
    assert app.acs_feedback("http://a/1.jpg")["code"] == 200
    app.tea().image_scan_feedback(green_models.ImageScanFeedbackRequest())
    assert app.report_badcase("proxied")["RequestId"]
    assert emulator.count(direction="in", status=200) == 3
    assert "proxy.example.com" not in loopback_only


def test_clients_built_before_the_block_are_redirected_inside_it() -> None:
    with serve_in_thread(make_settings()) as server:
        with emulator_sdks(server.url) as sdks:
            pass
        app = app_for(sdks)
        cos, tea = app.cos(), app.tea()  # built with no redirect in force
        with emulator_sdks(server.url, namespace="late"):
            assert cos.ci_auditing_text_submit(Bucket=app.bucket, Content=b"x")["JobsDetail"]["Label"]
            tea.image_scan_feedback(green_models.ImageScanFeedbackRequest())
        with SyncEmulatorClient(server.url, namespace="late") as admin:
            assert [c.provider for c in admin.requests()] == ["tencent", "alibaba"]
