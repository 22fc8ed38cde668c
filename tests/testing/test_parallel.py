"""Parallel tests sharing one emulator: pytest-xdist workers against one --emulator-url, each test in
a namespace of its own, asserting exact counts while the others call, reset and assert beside it."""

from __future__ import annotations

import pytest

from emulator import serve_in_thread
from emulator.testing import SyncEmulatorClient
from emulator.testing.plugin import auto_namespace
from emulator.testing.settings import make_settings

pytest_plugins = ["pytester"]

USER_TESTS = """
import base64

import pytest
from alibabacloud_green20180509 import models


@pytest.mark.parametrize("n", range(12))
def test_exact_counts(n, emulator, emulator_sdks):
    # The app's code: real endpoints (the Tea client's default for cn-shanghai, the COS bucket host).
    green = emulator_sdks.green_client()
    cos = emulator_sdks.cos_client(Scheme="https")
    calls = 1 + n % 4
    for i in range(calls):
        green.image_scan_feedback(models.ImageScanFeedbackRequest(client_info=f'{{"n": {n}}}'))
        cos.ci_auditing_report_badcase(
            Bucket=emulator_sdks.accounts.bucket, ContentType=1, Label="Porn", SuggestedLabel="Normal",
            Text=base64.b64encode(f"{n}-{i}".encode()).decode(),
        )
    emulator.assert_called(provider="alibaba", action="ImageScanFeedback", count=calls)
    emulator.assert_called(provider="tencent", count=calls)
    assert emulator.namespace and emulator.namespace.startswith("gw")
    assert all(c.namespace == emulator.namespace for c in emulator.requests())
    emulator.reset()                     # wipes this test's namespace, nobody else's
    assert emulator.count() == 0
"""


def test_xdist_workers_share_one_emulator_without_seeing_each_other(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    # The workers share the accounts' rate limits: lift them, this is about namespaces.
    settings = make_settings(
        **{
            "alibaba.accounts": [
                {
                    "access_key_id": "testAccessKeyId",
                    "access_key_secret": "testAccessKeySecret",
                    "uid": "1234567890123456",
                    "seed": "testSeed",
                    "rate_limits": {"ImageScanFeedback": 10000},
                }
            ]
        }
    )
    pytester.makepyfile(test_parallel=USER_TESTS)
    with serve_in_thread(settings) as server:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "3", f"--emulator-url={server.url}"
        )
        result.assert_outcomes(passed=12)
        with SyncEmulatorClient(server.url) as admin:
            # Every test reset its own namespace at the end: nothing is left in any of them, and no
            # call went anywhere else.
            assert admin.count() == 0
    result.stdout.fnmatch_lines(["*3 workers*"])


def test_per_test_namespaces_without_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ns="""
def test_one(emulator, aemulator):
    assert emulator.namespace.startswith("main-") and emulator.namespace.endswith("test_ns.py::test_one")
    assert aemulator.namespace == emulator.namespace
    assert emulator.headers == {"X-Emulator-Namespace": emulator.namespace}

def test_two(emulator):
    assert emulator.namespace.endswith("test_ns.py::test_two")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--emulator-namespaces=per-test")
    result.assert_outcomes(passed=2)


def test_the_private_server_needs_no_namespace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ns="""
def test_one(emulator):
    assert emulator.namespace is None and emulator.headers == {}
"""
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_auto_namespaces_are_header_safe_and_distinct() -> None:
    a = auto_namespace("gw0", "a1b2c3", "tests/test_x.py::test_y[caf\u00e9 au lait]")
    b = auto_namespace("gw0", "a1b2c3", "tests/test_x.py::test_y[caf\u00e9 au the]")
    assert a != b and a.isascii() and " " not in a and len(a) < 100
    assert a.startswith("gw0-a1b2c3-")
    assert auto_namespace("gw1", "a1b2c3", "t.py::t") != auto_namespace("gw0", "a1b2c3", "t.py::t")
