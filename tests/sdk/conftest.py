"""cos-python-sdk-v5 pointed at a running emulator, both ways that keep the real (signed) host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client

from emulator import RunningServer

SECRET_ID = "AKIDtestSecretId"
SECRET_KEY = "testSecretKey"
BUCKET = "examplebucket-1250000000"
REGION = "ap-beijing"
#: ``Proxies`` (absolute-form requests to the emulator, Host the CI host) and ``IP``/``Port`` (the SDK
#: sets Host itself, with ``.cos.`` instead of ``.ci.``: cos_client.py, send_request).
SETUPS = ["proxies", "ip-port"]


@pytest.fixture(params=SETUPS)
def cos_client(request: pytest.FixtureRequest, threaded_server: RunningServer) -> Iterator[CosS3Client]:
    credentials = {"SecretId": SECRET_ID, "SecretKey": SECRET_KEY, "Region": REGION, "Scheme": "http"}
    if request.param == "proxies":
        conf = CosConfig(Proxies={"http": threaded_server.url}, **credentials)
    else:
        conf = CosConfig(IP=threaded_server.host, Port=threaded_server.port, **credentials)
    # An own session, closed at teardown; retry=0 because the SDK sleeps before retrying a 5xx.
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment between the SDK and the emulator
        yield CosS3Client(conf, retry=0, session=session)
