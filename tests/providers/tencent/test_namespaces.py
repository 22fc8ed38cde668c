"""cos-python-sdk-v5, unchanged, in two namespaces of one running emulator: the same account's
badcases, their confirmation and its text jobs are each namespace's own. The SDK has no option for
extra headers; its requests session carries X-Emulator-Namespace (unsigned: the signature covers
only the headers the SDK lists)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from emulator import ManualClock, RunningServer, Settings
from emulator.testing import SyncEmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings
from emulator.testing.signers import APPID, SECRET_ID, SECRET_KEY

BUCKET = f"examplebucket-{APPID}"
TEXT = "一段有问题的文字"

Client = Callable[[str], CosS3Client]


@pytest.fixture
def clock() -> ManualClock:
    # The SDK signs with the real time: the server's clock starts from it.
    return ManualClock()


@pytest.fixture
def settings() -> Settings:
    return make_settings(**{"tencent.confirm_after_seconds": None})


@pytest.fixture
def client(threaded_server: RunningServer) -> Iterator[Client]:
    sessions: list[requests.Session] = []

    def make(namespace: str) -> CosS3Client:
        session = requests.Session()
        session.trust_env = False
        session.headers["X-Emulator-Namespace"] = namespace
        sessions.append(session)
        conf = CosConfig(
            Proxies={"http": threaded_server.url},
            SecretId=SECRET_ID,
            SecretKey=SECRET_KEY,
            Region="ap-beijing",
            Scheme="http",
        )
        return CosS3Client(conf, retry=0, session=session)

    yield make
    for session in sessions:
        session.close()


def label(client: CosS3Client) -> str:
    result = client.ci_auditing_text_submit(Bucket=BUCKET, Content=TEXT.encode())
    return str(result["JobsDetail"]["Label"])


def test_badcases_and_jobs_of_one_namespace_stay_in_it(
    client: Client, threaded_server: RunningServer
) -> None:
    a, b = client("a"), client("b")
    reported = a.ci_auditing_report_badcase(
        Bucket=BUCKET,
        ContentType=1,
        Label="Normal",
        SuggestedLabel="Porn",
        Text=base64.b64encode(TEXT.encode()).decode(),
    )
    with (
        SyncEmulatorClient(threaded_server.url, namespace="a") as in_a,
        SyncEmulatorClient(threaded_server.url, namespace="b") as in_b,
    ):
        assert [x["requestId"] for x in in_b.tencent_badcases()] == []
        with pytest.raises(AdminError, match="HTTP 404"):
            in_b.confirm_badcase(reported["RequestId"])
        assert in_a.confirm_badcase(reported["RequestId"])["namespace"] == "a"
    assert label(a) == "Porn"
    assert label(b) == "Normal"
    job = a.ci_auditing_text_submit(Bucket=BUCKET, Content=TEXT.encode())["JobsDetail"]["JobId"]
    assert a.ci_auditing_text_query(Bucket=BUCKET, JobID=job)["JobsDetail"]["Label"] == "Porn"
    with pytest.raises(CosServiceError) as info:
        b.ci_auditing_text_query(Bucket=BUCKET, JobID=job)
    assert info.value.get_error_code() == "InvalidArgument"
