"""The leaderboard page in a real browser: sorting, filtering, and hostile names rendered as text.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped
with the reason when they are missing.  A screenshot is saved to ``tmp_path`` and, when
``$MMBENCH_ARTIFACTS`` is set, copied there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mmbench.leaderboard import build_leaderboard
from tests.test_leaderboard import EVIL, real_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")

if os.environ.get("CI") == "true" and not (CHROMIUM and DRIVER):  # .ci/run installs them: never skip silently
    raise RuntimeError("CI must run the browser test: chromium/chromedriver are missing (see .ci/run)")
pytestmark = [pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                 reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)"),
              pytest.mark.browser, pytest.mark.slow]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1400"]


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'chrome-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _visible_models(table) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    return [row.find_element(By.CSS_SELECTOR, "td.model").text for row in rows if row.is_displayed()]


def test_page_sorts_filters_and_escapes(browser, tmp_path, tmp_path_factory):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    runs = real_runs(tmp_path_factory)
    out = tmp_path / "lb"
    build_leaderboard([runs / "captioner", runs / "echo", runs / "evil", runs / "captioner_alt"], out, n_boot=200)
    browser.get((out / "index.html").as_uri())

    table = browser.find_element(By.ID, "t1")
    # ranked by CIDEr-D: the captioner first; echo and the copy of echo tie
    assert _visible_models(table) == ["easyvqa-captioner", "example-echo", EVIL]
    ranks = [td.text for td in table.find_elements(By.CSS_SELECTOR, "tbody tr td:first-child")]
    assert ranks == ["1", "=2", "=2"]

    headers = {th.text: th for th in table.find_elements(By.CSS_SELECTOR, "thead th")}
    headers["CIDEr-D"].click()  # ascending: the two zero-CIDEr rows keep their order, captioner last
    assert _visible_models(table) == ["example-echo", EVIL, "easyvqa-captioner"]
    assert headers["CIDEr-D"].get_attribute("aria-sort") == "ascending"
    headers["CIDEr-D"].click()
    assert _visible_models(table)[0] == "easyvqa-captioner"
    headers["model"].click()  # text sort, ascending: "<img..." < "easyvqa..." < "example..."
    assert _visible_models(table) == [EVIL, "easyvqa-captioner", "example-echo"]

    box = browser.find_element(By.CSS_SELECTOR, 'input.filter[data-table="t1"]')
    box.send_keys("ECHO")
    assert _visible_models(table) == ["example-echo"]
    box.clear()
    box.send_keys("onerror")
    assert _visible_models(table) == [EVIL]
    box.clear()
    box.send_keys("x")  # clear() fires no input event; a new keystroke refilters
    box.send_keys("\b")
    assert len(_visible_models(table)) == 3

    # the hostile name is text: no <img> element anywhere, no alert, the literal text visible
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert browser.execute_script("return document.querySelectorAll('img, iframe, object').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert EVIL in table.text
    # the second group (other prompt) says why it is separate
    assert "prompt differs" in browser.find_element(By.TAG_NAME, "body").text

    shot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    if os.environ.get("MMBENCH_ARTIFACTS"):
        dest = Path(os.environ["MMBENCH_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "leaderboard.png")
        shutil.copy(out / "index.html", dest / "leaderboard.html")
