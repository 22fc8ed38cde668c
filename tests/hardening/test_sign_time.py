"""Tencent ``q-sign-time`` / ``q-key-time`` that are not plain ASCII Unix seconds: AccessDenied in
CI's own shape, never a 500 (``str.isdigit`` accepts "²" and "١٢", which ``int`` refuses or reads;
``int`` refuses more than 4,300 digits)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.providers.tencent import errors, signing
from emulator.testing.payloads import TEXT_BADCASE
from emulator.testing.signers import cos_sdk_headers

from .conftest import BADCASE, hardening_settings, tencent_shape

NOW = int(time.time())
ARABIC_INDIC = str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
FULLWIDTH = str(NOW).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
BAD_RANGES = [
    f"{ARABIC_INDIC};{ARABIC_INDIC}",
    f"{NOW - 60};{FULLWIDTH}",
    "²;³",
    f"{NOW};{NOW + 3600}\u0660",
    "9" * 4400 + ";" + "9" * 10,
    f"{NOW - 60};{NOW + 3600};1",
]
#: Stable test ids: the values hold the time of collection, which differs between xdist workers.
IDS = ["arabic-indic", "fullwidth-end", "superscripts", "trailing-digit", "4400-digits", "three-parts"]


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve(hardening_settings()) as running:
        yield running


@pytest.mark.parametrize("field", ["q-sign-time", "q-key-time"])
@pytest.mark.parametrize("value", BAD_RANGES, ids=IDS)
def test_a_time_range_of_non_ascii_digits_is_access_denied(field: str, value: str) -> None:
    fields = {"q-sign-time": f"{NOW};{NOW + 60}", "q-key-time": f"{NOW};{NOW + 60}", field: value}
    header = (
        f"q-sign-algorithm=sha1&q-ak=AKIDtestSecretId&q-sign-time={fields['q-sign-time']}"
        f"&q-key-time={fields['q-key-time']}&q-header-list=&q-url-param-list=&q-signature=00"
    )
    with pytest.raises(errors.AccessDenied) as info:
        signing.parse_authorization(header)
    assert info.value.text == f"Authorization: {field} must be <start>;<end> in Unix seconds"


@pytest.mark.parametrize("value", BAD_RANGES, ids=IDS)
async def test_the_server_answers_access_denied_and_keeps_serving(server: RunningServer, value: str) -> None:
    headers = cos_sdk_headers(TEXT_BADCASE, time.time())
    auth = headers["Authorization"]
    start = auth.index("q-sign-time=") + len("q-sign-time=")
    end = auth.index("&", start)
    headers["Authorization"] = auth[:start] + value + auth[end:]
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + BADCASE, data=TEXT_BADCASE, headers=headers) as response:
            fields = tencent_shape(response.status, await response.read())
        assert response.status == 403 and fields["Code"] == "AccessDenied", fields
        valid = cos_sdk_headers(TEXT_BADCASE, time.time())
        async with session.post(server.url + BADCASE, data=TEXT_BADCASE, headers=valid) as response:
            assert response.status == 200, await response.text()
