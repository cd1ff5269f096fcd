"""compare.html in a real browser: thumbnails are inline data images, hostile model text is text.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped with
the reason when they are missing.  A screenshot is saved to ``tmp_path`` and, when
``$MMBENCH_ARTIFACTS`` is set, copied there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mmbench.compare import compare_runs, write_report
from tests.test_compare import EVIL, baseline_runs  # noqa: F401  (the fixture)
from tests.test_leaderboard_browser import CHROMIUM, DRIVER, browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                 reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)"),
              pytest.mark.browser, pytest.mark.slow]


def test_compare_page_shows_flips_with_thumbnails_and_escapes(browser, baseline_runs, tmp_path):  # noqa: F811
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    cand = tmp_path / "hostile"
    shutil.copytree(baseline_runs / "easyvqa-question-only", cand)
    preds = cand / "predictions" / "easyvqa_vqa.jsonl"
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    for line in lines:  # same scores, hostile text
        line["raw_output"] = line["prediction"] = f"{line['prediction']} {EVIL}"
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = compare_runs(baseline_runs / "easyvqa-majority", [cand], n_boot=200, max_items=20)
    page = write_report(result, tmp_path / "report")["html"]
    browser.get(page.as_uri())

    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Right → wrong" in body and "Wrong → right" in body
    assert "mcnemar-exact" in body
    task = result["candidates"]["hostile"]["tasks"]["easyvqa_vqa"]
    rows = browser.find_elements(By.CSS_SELECTOR,
                                 'section[id="hostile--easyvqa_vqa"] details.to_correct table.flips tbody tr')
    assert len(rows) == min(20, task["flipped_to_correct"]) > 0
    first = task["flips"]["items"]["to_correct"][0]
    assert rows[0].get_attribute("data-id") == first["id"] and first["question"] in rows[0].text
    assert EVIL in rows[0].text  # shown as text
    images = browser.find_elements(By.CSS_SELECTOR, "img.thumb")
    assert images and all(img.get_attribute("src").startswith("data:image/png;base64,") for img in images)
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
               for img in images)  # decoded, not broken
    assert browser.execute_script("return document.querySelectorAll('img:not(.thumb), script, iframe').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018

    shot = tmp_path / "compare.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    if os.environ.get("MMBENCH_ARTIFACTS"):
        dest = Path(os.environ["MMBENCH_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "compare.png")
        shutil.copy(page, dest / "compare.html")
