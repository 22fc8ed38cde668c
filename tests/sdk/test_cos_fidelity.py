"""Document 002 through cos-python-sdk-v5: the answers name ``Connection: keep-alive``, and the
ModerationTime format the document shows is enforced only while tencent.strict_moderation_time is on."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from emulator import ManualClock, RunningServer, serve_in_thread
from emulator.testing.settings import make_settings

from .conftest import BUCKET, REGION, SECRET_ID, SECRET_KEY


class Client:
    """The SDK on its own session, with every response's headers kept."""

    def __init__(self, server: RunningServer) -> None:
        self.headers: list[Any] = []
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.hooks["response"].append(lambda r, *args, **kwargs: self.headers.append(r.headers))
        conf = CosConfig(
            Proxies={"http": server.url},
            SecretId=SECRET_ID,
            SecretKey=SECRET_KEY,
            Region=REGION,
            Scheme="http",
        )
        self.cos = CosS3Client(conf, retry=0, session=self.session)

    def report(self, **extra: str) -> Any:
        return self.cos.ci_auditing_report_badcase(
            Bucket=BUCKET,
            ContentType=1,
            Label="Porn",
            SuggestedLabel="Normal",
            Text=base64.b64encode("这是一个测试".encode()).decode(),
            **extra,
        )


@pytest.fixture
def strict() -> Iterator[Client]:
    with serve_in_thread(make_settings(), clock=ManualClock()) as server:
        client = Client(server)
        yield client
        client.session.close()


def test_answers_keep_the_connection_alive_as_documented(strict: Client) -> None:
    strict.report()
    with pytest.raises(CosServiceError):
        strict.report(ModerationTime="yesterday")
    assert [h["Connection"] for h in strict.headers] == ["keep-alive", "keep-alive"]


def test_other_moderation_time_formats_only_when_relaxed(strict: Client) -> None:
    with pytest.raises(CosServiceError) as info:
        strict.report(ModerationTime="2021-08-07 12:12:12")
    assert info.value.get_error_code() == "InvalidArgument"
    assert "ModerationTime" in info.value.get_error_msg()
    settings = make_settings(**{"tencent.strict_moderation_time": False})
    with serve_in_thread(settings, clock=ManualClock()) as server:
        lax = Client(server)
        try:
            assert "RequestId" in lax.report(ModerationTime="2021-08-07 12:12:12")
        finally:
            lax.session.close()
