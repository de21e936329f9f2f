"""Real browser (headless Chromium through selenium): open an invite link, rank, reload, see the answer kept."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from common.artifacts import write_jsonl
from rlchf.annotate import store
from rlchf.annotate.app import RedactingRequestHandler, create_app

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT_COPY = Path(__file__).resolve().parents[2] / "rlchf" / "annotate" / "screenshot.png"
TASKS = [
    {"prompt_id": "web-popup", "prompt": "How do I show a popup message when my web page loads?",
     "candidates": [
         {"id": "script", "text": "Add this to your HTML:\n<script>alert('Welcome!')</script>\nIt runs when the "
                                  "browser reaches it, so put it at the end of <body>."},
         {"id": "css", "text": "Popups are annoying; consider a banner styled with CSS instead."},
         {"id": "vague", "text": "Use JavaScript."}]},
    {"prompt_id": "tea", "prompt": "How long should green tea steep?",
     "candidates": [{"id": "a", "text": "2-3 minutes at about 80 °C."}, {"id": "b", "text": "10 minutes."},
                    {"id": "c", "text": "Until it is dark."}]},
]


@pytest.fixture
def browser(tmp_path):
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not CHROMIUM.exists() or not Path(driver_path).exists():
        pytest.skip(f"needs {CHROMIUM} and chromedriver: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1000,1150"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_invite_link_rank_reload_keeps_the_answer(browser, tmp_path):
    from selenium.common.exceptions import (
        NoAlertPresentException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    write_jsonl(tmp_path / "tasks.jsonl", TASKS)
    conn = store.connect(tmp_path / "a.db")
    store.load_tasks(conn, tmp_path / "tasks.jsonl", "rank")
    ((_, token),) = store.create_annotators(conn, 1)
    me = store.annotator_for(conn, token)
    position = next(t["position"] for t in store.assigned_tasks(conn, me["id"]) if t["prompt_id"] == "web-popup")
    shown = store.shown_order(TASKS[0], "rank", me["annotator_id"], 0)
    conn.close()
    server = make_server("127.0.0.1", 0, create_app(tmp_path / "a.db"), threaded=True,
                         request_handler=RedactingRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        browser.get(f"{base}/a/{token}/")
        assert "0 / 2 answered" in browser.find_element(By.ID, "progress-text").text
        browser.find_element(By.LINK_TEXT, f"Task {position}").click()
        # a click starts a navigation without waiting for it: wait for the next page before reading it
        wait = WebDriverWait(browser, 20, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
        wait.until(lambda d: d.find_element(By.ID, "rank_A"))
        wanted = {"script": "1", "css": "1", "vague": "3"}  # two equally good, one worse
        for label, cid in zip("ABC", shown):
            Select(browser.find_element(By.ID, f"rank_{label}")).select_by_value(wanted[cid])
        browser.find_element(By.ID, "submit").click()
        wait.until(lambda d: "1 / 2 answered" in d.find_element(By.ID, "progress-text").text)

        browser.get(f"{base}/a/{token}/task/{position}")
        browser.refresh()
        kept = {cid: Select(browser.find_element(By.ID, f"rank_{label}")).first_selected_option.get_attribute("value")
                for label, cid in zip("ABC", shown)}
        assert kept == wanted
        assert browser.find_element(By.ID, "saved").is_displayed()
        assert "<script>alert('Welcome!')</script>" in browser.find_element(By.TAG_NAME, "body").text
        with pytest.raises(NoAlertPresentException):
            _ = browser.switch_to.alert.text  # an executed <script> would have opened one
        shot = tmp_path / "rank_page.png"
        assert browser.save_screenshot(str(shot))
    finally:
        server.shutdown()
        server.server_close()
    assert shot.stat().st_size > 10_000
    # the copy linked from rlchf/README.md; rewritten only when the page looks different
    if not SCREENSHOT_COPY.exists() or SCREENSHOT_COPY.read_bytes() != shot.read_bytes():
        shutil.copyfile(shot, SCREENSHOT_COPY)
