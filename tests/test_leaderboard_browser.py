"""The leaderboard page in a real browser: sorting, filtering, and hostile names rendered as text.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; skipped
with the reason when they are missing.  A screenshot is saved to ``tmp_path`` and, when
``$MMBENCH_ARTIFACTS`` is set, copied there.
"""

from __future__ import annotations

import json
import os
import re
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
    return [row.get_attribute("data-model") for row in rows if row.is_displayed()]


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
    headers["CIDEr-D"].click()  # first click: best first (higher is better)
    assert _visible_models(table)[0] == "easyvqa-captioner"
    assert headers["CIDEr-D"].get_attribute("aria-sort") == "descending"
    headers["CIDEr-D"].click()  # then ascending: the two zero-CIDEr rows keep their order, captioner last
    assert _visible_models(table) == ["example-echo", EVIL, "easyvqa-captioner"]
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


# ------------------------------------------------------------------ the published easy-VQA board (#14)

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboards" / "easy-vqa" / "runs"


def _published_runs(root: Path) -> list[Path]:
    """The published runs, plus two copies that exercise what the published board lacks: a run served
    from the cache (named like a hostile model) and a run whose samples all failed."""
    import json

    runs = [PUBLISHED / name for name in sorted(p.name for p in PUBLISHED.iterdir())]
    for name, change in ((EVIL, lambda t: t.update(timing={"samples_per_s": None}, n_cached=t["n_samples"],
                                                   n_computed=0)),
                         ("easyvqa-broken", lambda t: t.update(n_failed=t["n_samples"]))):
        copy = root / ("cached" if name == EVIL else "broken")
        shutil.copytree(PUBLISHED / "easyvqa-question-only", copy)
        data = json.loads((copy / "results.json").read_text())
        data["model"]["name"] = name
        del data["tasks"]["easyvqa_consistency"]
        change(data["tasks"]["easyvqa_vqa"])
        (copy / "results.json").write_text(json.dumps(data))
        runs.append(copy)
    return runs


def _wait_ready(browser, before: str | None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sb = browser.find_element(By.ID, "sb")
    WebDriverWait(browser, 20).until(lambda d: sb.get_attribute("data-ready") not in (None, before))
    assert sb.get_attribute("data-ready") != "error", sb.find_element(By.CSS_SELECTOR, ".status").text
    return sb.get_attribute("data-ready")


def _select(browser, css: str, value: str, ready: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.CSS_SELECTOR, css)).select_by_value(value)
    return _wait_ready(browser, ready)


def _sample_rows(browser) -> list:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, "#sb table.samples tbody tr")


def _best_published(task: str, metric: str) -> str:
    """The published run with the highest ``metric`` on ``task``, read from the runs' own results."""
    scores = {}
    for results in PUBLISHED.glob("*/results.json"):
        data = json.loads(results.read_text())
        if task in data["tasks"]:
            scores[data["model"]["name"]] = data["tasks"][task]["metrics"][metric]
    return max(scores, key=scores.get)


def test_published_board_reads_right(browser, tmp_path):
    """Each item of #14 on the published easy-VQA board, built here from its runs, in headless Chromium from
    file://; screenshots are saved under tmp_path (and $MMBENCH_ARTIFACTS) and their paths printed."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    if not PUBLISHED.is_dir():
        pytest.skip("no published runs in this checkout")
    out = tmp_path / "board"
    build_leaderboard([str(p) for p in _published_runs(tmp_path)], out, n_boot=200)
    shots: list[Path] = []

    def shot(name: str, element=None) -> None:
        path = tmp_path / f"{name}.png"
        if element is not None:
            browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
        ok = element.screenshot(str(path)) if element is not None else browser.save_screenshot(str(path))
        assert ok and path.stat().st_size > 1000
        shots.append(path)

    browser.set_window_size(1400, 1000)
    browser.get((out / "index.html").as_uri())
    groups = {g.find_element(By.TAG_NAME, "h4").text.split(" ")[0]: g
              for g in browser.find_elements(By.CSS_SELECTOR, "div.group")}
    vqa = groups["easyvqa_vqa"]
    table = vqa.find_element(By.CSS_SELECTOR, "table.lb")

    # failures flagged, never ranked; the cached run is kept and says so
    rows = {r.get_attribute("data-model"): r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    broken = rows["easyvqa-broken"]
    assert broken.find_element(By.CSS_SELECTOR, "td").text == "-"
    assert "all 9,673 samples failed" in broken.find_element(By.CSS_SELECTOR, ".flag").get_attribute("title")
    cached = rows[EVIL]
    assert "served from the cache" in cached.find_element(By.CSS_SELECTOR, ".flag").get_attribute("title")
    heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert cached.find_elements(By.TAG_NAME, "td")[heads.index("samples/s")].text == "cached"
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in rows.values()][:1] == ["1"]

    # first click sorts best first: exact_match (higher is better) and peak RSS (lower is better)
    header = {th.text: th for th in table.find_elements(By.CSS_SELECTOR, "thead th")}
    header["peak RSS MB"].click()
    assert header["peak RSS MB"].get_attribute("aria-sort") == "ascending"
    header["exact_match"].click()
    assert header["exact_match"].get_attribute("aria-sort") == "descending"
    assert _visible_models(table)[0] == _best_published("easyvqa_vqa", "exact_match")
    shot("vqa-table-sorted", vqa)

    # one number format per column: the same decimals in every cell of a column
    for col in range(2, len(heads)):
        texts = [r.find_elements(By.TAG_NAME, "td")[col].text.split("\n")[0] for r in
                 table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        decimals = {len(t.split(".")[1]) if "." in t else 0 for t in texts if t not in ("-", "cached")}
        assert len(decimals) <= 1, (heads[col], texts)

    # charts: ticks on both axes, every label inside its SVG, point labels never overlapping
    svgs = browser.find_elements(By.CSS_SELECTOR, "svg")
    assert svgs
    for svg in svgs:
        report = browser.execute_script("""
            var svg = arguments[0], s = svg.getBoundingClientRect(), bad = [];
            svg.querySelectorAll('text').forEach(function(t){  // rendered boxes (rotation included)
              var b = t.getBoundingClientRect();
              if(b.left < s.left - 0.5 || b.top < s.top - 0.5 || b.right > s.right + 0.5 || b.bottom > s.bottom + 0.5)
                bad.push(t.textContent);
            });
            var boxes = Array.prototype.map.call(svg.querySelectorAll('text.plabel'), function(t){ return t.getBBox(); });
            var overlaps = 0;
            for(var i = 0; i < boxes.length; i++) for(var j = i + 1; j < boxes.length; j++){
              var a = boxes[i], b = boxes[j];
              if(a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) overlaps++;
            }
            return {bad: bad, overlaps: overlaps, ticks: svg.querySelectorAll('text.tick').length,
                    label: svg.getAttribute('aria-label')};""", svg)
        assert report["bad"] == [] and report["overlaps"] == 0, report
        assert report["ticks"] >= 3, report
    scatter = vqa.find_element(By.CSS_SELECTOR, 'svg[aria-label$="against samples per second"]')
    texts = [t.text for t in scatter.find_elements(By.CSS_SELECTOR, "text.tick")]
    assert "cached" in texts and any(t.replace(",", "").isdigit() and int(t.replace(",", "")) >= 1000 for t in texts)
    n_vqa = sum("easyvqa_vqa" in json.loads(r.read_text())["tasks"] for r in PUBLISHED.glob("*/results.json"))
    # every published vqa run, the broken copy and the cached copy (a hollow point)
    assert len(scatter.find_elements(By.TAG_NAME, "circle")) == n_vqa + 2
    shot("vqa-charts", vqa.find_element(By.CSS_SELECTOR, ".charts"))

    # one model: no chart; wide tables keep model and primary metric in view, efficiency columns unscrolled
    caption = groups["easyvqa_caption"]
    assert caption.find_elements(By.TAG_NAME, "svg") == [] and "One model" in caption.text
    box = caption.find_element(By.CSS_SELECTOR, ".scroll")
    ctable = box.find_element(By.TAG_NAME, "table")
    cheads = {th.text: th for th in ctable.find_elements(By.CSS_SELECTOR, "thead th")}
    right = browser.execute_script("return arguments[0].getBoundingClientRect().right", box)
    for name in ("samples/s", "peak RSS MB", "params"):
        assert browser.execute_script("return arguments[0].getBoundingClientRect().right", cheads[name]) <= right
    meteor = ctable.find_elements(By.CSS_SELECTOR, "tbody td")[list(cheads).index("METEOR")]
    assert meteor.find_elements(By.CSS_SELECTOR, ".ci") == [] and "corpus metric" in meteor.get_attribute("title")
    browser.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth", box)
    left = browser.execute_script("return arguments[0].getBoundingClientRect().left", box)
    for name in ("model", "CIDEr-D"):
        assert browser.execute_script("return arguments[0].getBoundingClientRect().left", cheads[name]) >= left - 1
    assert browser.execute_script("return arguments[0].scrollLeft", box) > 0
    shot("caption-table-scrolled", caption)

    # the summary across tasks, with per-category charts
    summary = browser.find_element(By.ID, "summary")
    vqa_tasks = {name for run in PUBLISHED.glob("*/results.json")
                 for name, t in json.loads(run.read_text())["tasks"].items() if t["family"] == "vqa"}
    assert len(vqa_tasks) >= 2 and f"vqa: {len(vqa_tasks)} tasks" in summary.text and "mean rank" in summary.text
    assert len(summary.find_elements(By.CSS_SELECTOR, "svg")) >= 2
    shot("summary", summary)

    # the per-sample browser, from a table cell, loaded from file:// on demand
    vilt = rows["easyvqa-vilt"]
    assert browser.execute_script("return document.querySelectorAll('script[src]').length") == 0
    vilt.find_elements(By.TAG_NAME, "td")[3].click()
    ready = _wait_ready(browser, None)
    sb = browser.find_element(By.ID, "sb")
    assert sb.is_displayed() and "easyvqa_vqa" in sb.find_element(By.TAG_NAME, "h2").text
    loaded = browser.execute_script("return Array.prototype.map.call(document.querySelectorAll('script[src]'), "
                                    "function(s){ return s.getAttribute('src'); })")
    gkey = vilt.get_attribute("data-group")
    # the group's shared chunk and one chunk of this model's samples, not all of them
    assert len(loaded) == 2 and f"samples/{gkey}/s0.js" in loaded, loaded
    assert re.fullmatch(rf"samples/{gkey}/m\d+-0\.js", next(p for p in loaded if not p.endswith("/s0.js"))), loaded
    first = _sample_rows(browser)
    assert len(first) == 25
    assert "Answer the question using a single word." in first[0].find_element(By.CSS_SELECTOR, ".prompt").text
    assert "references: triangle" in first[0].text
    imgs = browser.find_elements(By.CSS_SELECTOR, "#sb img")
    assert imgs and all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)
                        for i in imgs)
    shot("samples")

    ready = _select(browser, "#sb-filter", "wrong", ready)
    ready = _select(browser, "#sb-cat", "color", ready)
    rows_now = _sample_rows(browser)
    assert rows_now and all(r.find_element(By.CSS_SELECTOR, "td:nth-child(3) .v").text == "wrong" for r in rows_now)
    assert all("· color" in r.find_element(By.CSS_SELECTOR, ".sid").text for r in rows_now)
    shot("samples-wrong-color")

    ready = _select(browser, "#sb-cat", "", ready)
    # side by side with the majority baseline (many questions the ViLT gets right and it gets wrong)
    majority = next(o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#sb-b option")
                    if o.text == "easyvqa-majority")
    ready = _select(browser, "#sb-b", majority, ready)
    ready = _select(browser, "#sb-filter", "a-right-b-wrong", ready)
    rows_now = _sample_rows(browser)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sb table.samples thead th")) == 4
    assert rows_now and all([v.text for v in r.find_elements(By.CSS_SELECTOR, ".v")] == ["right", "wrong"]
                            for r in rows_now)
    browser.find_element(By.ID, "sb-next").click()
    ready = _wait_ready(browser, ready)
    assert "Showing 26–" in browser.find_element(By.CSS_SELECTOR, "#sb .status").text
    shot("samples-side-by-side")

    # escaped everywhere: the hostile model name is text in the table and in the browser's model list
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#sb-b option")]
    assert EVIL in options
    assert browser.execute_script("return document.querySelectorAll('img:not([src^=\"thumbs/\"]), iframe').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    browser.find_element(By.ID, "sb-close").click()
    assert not sb.is_displayed()
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(height + 120, 8000))
    shot("overview")

    dest = Path(os.environ["MMBENCH_ARTIFACTS"]) if os.environ.get("MMBENCH_ARTIFACTS") else None
    for path in shots:
        print(f"screenshot: {path}")
        if dest is not None:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest / path.name)
