"""The journal's record of cos-python-sdk-v5's calls, both ways the SDK reaches the emulator: the
URL is the one the SDK called, not the proxy's absolute-form target glued to the Host."""

from __future__ import annotations

import requests
from qcloud_cos import CosS3Client

from emulator import RunningServer
from emulator.keys import JOURNAL
from emulator.testing.signers import COS_HOST

from .conftest import BUCKET

BADCASE_URL = f"http://{COS_HOST}/report/badcase"


def test_the_journal_shows_the_url_the_sdk_called(
    cos_client: CosS3Client, threaded_server: RunningServer
) -> None:
    cos_client.ci_auditing_report_badcase(
        Bucket=BUCKET, ContentType=1, Label="Porn", SuggestedLabel="Normal", Text="dGVzdA=="
    )
    (entry,) = threaded_server.app[JOURNAL].select()
    assert entry.status == 200 and entry.path == "/report/badcase"
    # Proxies: an absolute-form target, Host the CI host; IP/Port: origin-form, and the Host the SDK
    # sets itself, with .cos. (cos_client.py, send_request).
    via_proxy = entry.header("Host") == COS_HOST
    assert entry.url == (BADCASE_URL if via_proxy else BADCASE_URL.replace(".ci.", ".cos."))
    with requests.get(threaded_server.url + "/_emulator/requests.har", timeout=10) as response:
        (har_entry,) = response.json()["log"]["entries"]
    assert har_entry["request"]["url"] == entry.url
