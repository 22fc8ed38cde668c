"""The dashboard in headless Chromium against a real emulator, with calls made by the official SDKs.

Waits are WebDriverWait with a timeout (never sleeps): a call must show within a second.
``UI_SCREENSHOT=docs/dashboard.png`` also writes the screenshot there (the README's).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_green20180509 import models as green_models
from qcloud_cos import CosServiceError
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from emulator import ManualClock, RunningServer, serve_in_thread
from emulator.testing.sdks import EmulatorSDKs, emulator_sdks
from emulator.testing.settings import make_settings

#: How long a call may take to show in the table.
SHOWS_WITHIN = 1.0
#: How long the page may take for anything else (load, a view's data).
TIMEOUT = 5.0

Driver = webdriver.Chrome


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_in_thread(make_settings(), clock=ManualClock(), host="127.0.0.1") as running:
        yield running


@pytest.fixture(scope="module")
def sdks(server: RunningServer) -> Iterator[EmulatorSDKs]:
    with emulator_sdks(server.url) as redirected:
        yield redirected


def admin(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    data = None if method == "GET" else json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{server.url}/_emulator{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def severe(driver: Driver) -> list[dict[str, Any]]:
    """The page's console errors since the last look (reading the log empties it)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def page(browser: Driver, server: RunningServer) -> Iterator[Driver]:
    """The dashboard, freshly loaded on a reset emulator, its stream live; no console error after."""
    admin(server, "POST", "/reset?namespace=*")
    browser.get(server.url + "/_emulator/ui")
    WebDriverWait(browser, TIMEOUT).until(lambda d: d.find_element(By.ID, "live").text == "live")
    yield browser
    assert severe(browser) == []


def wait(driver: Driver, timeout: float = TIMEOUT) -> WebDriverWait[Driver]:
    # A view redraws its table when its data comes: an element read meanwhile may be gone.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
    )


def rows(driver: Driver) -> list[list[str]]:
    """The traffic table's cells, row by row, newest first (read at once: the table is redrawn as
    rows arrive)."""
    script = (
        "return [...document.querySelectorAll('#traffic-body tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))"
    )
    cells: list[list[str]] = driver.execute_script(script)
    return cells


def report_badcase(sdks: EmulatorSDKs, text: str = "5Lyg6K+t") -> str:
    client = sdks.cos_client()
    result = client.ci_auditing_report_badcase(
        Bucket=sdks.accounts.bucket, ContentType=1, Label="Porn", SuggestedLabel="Normal", Text=text
    )
    request_id: str = result["RequestId"]
    return request_id


def image_feedback(sdks: EmulatorSDKs) -> None:
    request = green_models.ImageScanFeedbackRequest(client_info='{"userId":"ui"}')
    assert sdks.green_client().image_scan_feedback(request).status_code == 200


def view(driver: Driver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#tabs button[data-view="{name}"]').click()


def test_the_page_loads_every_view_without_console_errors(page: Driver, server: RunningServer) -> None:
    assert page.title == "emulator dashboard"
    shown = wait(page).until(lambda d: (t := d.find_element(By.ID, "clock").text).startswith("manual") and t)
    before = admin(server, "GET", "/clock")["now"]
    page.find_element(By.ID, "advance").click()  # 60 s, as the field says
    wait(page).until(lambda d: d.find_element(By.ID, "clock").text != shown)
    assert admin(server, "GET", "/clock")["now"] == pytest.approx(before + 60)
    view(page, "faults")
    wait(page).until(lambda d: len(Select(d.find_element(By.ID, "scenario")).options) >= 1)
    view(page, "state")
    wait(page).until(lambda d: len(Select(d.find_element(By.ID, "ali-account")).options) == 1)
    wait(page).until(lambda d: "feedback-image" in d.find_element(By.ID, "libraries-body").text)
    url = page.find_element(By.ID, "cb-url")
    url.clear()
    url.send_keys("http://127.0.0.1:9/hook")
    page.find_element(By.ID, "cb-save").click()
    console = lambda: admin(server, "GET", "/ui/console")["alibaba"][0]["callback"]  # noqa: E731
    wait(page).until(lambda d: console()["url"] == "http://127.0.0.1:9/hook")
    view(page, "callbacks")
    view(page, "traffic")
    assert severe(page) == []


def test_sdk_calls_show_within_a_second_and_a_filter_narrows_the_table(
    page: Driver, sdks: EmulatorSDKs
) -> None:
    report_badcase(sdks)
    wait(page, SHOWS_WITHIN).until(lambda d: any("ReportBadcase" in r for r in rows(d)))
    image_feedback(sdks)
    wait(page, SHOWS_WITHIN).until(lambda d: len(rows(d)) == 2)
    # Newest first.
    assert [r[4] for r in rows(page)] == ["ImageScanFeedback", "ReportBadcase"]
    Select(page.find_element(By.ID, "f-provider")).select_by_visible_text("tencent")
    wait(page).until(lambda d: [r[4] for r in rows(d)] == ["ReportBadcase"])
    Select(page.find_element(By.ID, "f-provider")).select_by_value("")
    page.find_element(By.ID, "f-text").send_keys("image/feedback")  # its path
    wait(page).until(lambda d: [r[4] for r in rows(d)] == ["ImageScanFeedback"])
    assert "1 shown of 2" in page.find_element(By.ID, "counts").text
    # Paused, a call waits (counted) until the table resumes.
    page.find_element(By.ID, "f-text").clear()
    page.find_element(By.ID, "pause").click()
    image_feedback(sdks)
    wait(page).until(lambda d: "1 new while paused" in d.find_element(By.ID, "counts").text)
    assert len(rows(page)) == 2
    page.find_element(By.ID, "pause").click()
    wait(page).until(lambda d: len(rows(d)) == 3)
    ids = [int(r[0]) for r in rows(page)]
    assert ids == sorted(ids, reverse=True) and rows(page)[0][4] == "ImageScanFeedback"


def test_the_detail_shows_the_fault_that_fired(
    page: Driver, sdks: EmulatorSDKs, server: RunningServer
) -> None:
    view(page, "faults")
    wait(page).until(lambda d: Select(d.find_element(By.ID, "scenario")).options)
    Select(page.find_element(By.ID, "scenario")).select_by_value("first-call-fails")
    page.find_element(By.ID, "scenario-add").click()
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faults-body tr")) == 2)
    with pytest.raises(CosServiceError) as failed:
        report_badcase(sdks)
    assert failed.value.get_status_code() == 503
    view(page, "traffic")
    wait(page, SHOWS_WITHIN).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#traffic-body tr.faulted"))
    page.find_element(By.CSS_SELECTOR, "#traffic-body tr.faulted").click()
    fault = wait(page).until(lambda d: d.find_element(By.ID, "detail-fault"))
    assert "(tencent first call)" in fault.text and '"provider":"tencent"' in fault.text
    assert "fired 1 times" in fault.text
    assert "<Code>ServiceUnavailable</Code>" in page.find_element(By.ID, "detail-response-body").text
    # The Faults view counts it, and deletes a rule.
    view(page, "faults")
    wait(page).until(lambda d: "spent" in d.find_element(By.ID, "faults-body").text)
    page.find_element(By.CSS_SELECTOR, "#faults-body button[data-delete]").click()
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faults-body tr")) == 1)
    assert len(admin(server, "GET", "/faults?namespace=*")["rules"]) == 1


def test_confirming_a_badcase_changes_its_state(
    page: Driver, sdks: EmulatorSDKs, server: RunningServer
) -> None:
    request_id = report_badcase(sdks)
    view(page, "state")
    row = f'#badcases-body tr[data-id="{request_id}"]'
    wait(page).until(lambda d: d.find_element(By.CSS_SELECTOR, row + " td.badcase-state").text == "reported")
    page.find_element(By.CSS_SELECTOR, row + " button[data-confirm]").click()
    wait(page).until(lambda d: d.find_element(By.CSS_SELECTOR, row + " td.badcase-state").text == "confirmed")
    (badcase,) = admin(server, "GET", "/tencent/badcases?namespace=*")["badcases"]
    assert (badcase["requestId"], badcase["state"]) == (request_id, "confirmed")


def test_a_screenshot_is_saved(
    page: Driver, sdks: EmulatorSDKs, server: RunningServer, tmp_path: Path
) -> None:
    match = {"provider": "tencent", "action": "ReportBadcase"}
    rule = {"name": "slow badcases", "match": match, "action": {"type": "error", "code": "SlowDown"}}
    admin(server, "POST", "/faults", {**rule, "schedule": {"nth": 2}})
    for i in range(3):
        image_feedback(sdks)
        try:
            report_badcase(sdks, text=f"dGVzdCB7aX0{i}")
        except CosServiceError:
            pass
    wait(page, SHOWS_WITHIN).until(lambda d: len(rows(d)) == 6)
    page.find_element(By.CSS_SELECTOR, "#traffic-body tr.faulted").click()
    wait(page).until(lambda d: "slow badcases" in d.find_element(By.ID, "detail-fault").text)
    page.execute_script("document.querySelector('.split .scroll').scrollLeft = 0")  # as the click left it
    shot = tmp_path / "dashboard.png"
    assert page.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if target := os.environ.get("UI_SCREENSHOT"):
        Path(target).write_bytes(shot.read_bytes())


def test_with_an_admin_token_the_page_asks_for_it_once(browser: Driver) -> None:
    with serve_in_thread(make_settings(**{"admin.token": "s3cret"}), host="127.0.0.1") as server:
        browser.get(server.url + "/_emulator/ui")
        token = wait(browser).until(lambda d: (e := d.find_element(By.ID, "token")).is_displayed() and e)
        assert token is not False
        token.send_keys("s3cret")
        browser.find_element(By.ID, "token-save").click()
        wait(browser).until(lambda d: d.find_element(By.ID, "live").text == "live")
        assert browser.find_element(By.ID, "clock").text.startswith("real clock")
        # Only the refusals before the token was given: the page's own calls, each a 401.
        errors = severe(browser)
        assert errors and all("401" in e["message"] for e in errors)
        browser.get("about:blank")  # the stream closes before the server stops
