"""The viewer in a real browser (Selenium + headless Chromium): the app served on 127.0.0.1 and
the static export opened from disk. Screenshots go to test-artifacts/viewer/.

Skipped, with the reason, only when chromedriver or Chromium is not installed (`make browser`
installs them on Debian/Ubuntu).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from siri_bench.viewer.app import create_app
from siri_bench.viewer.export import export_site
from siri_bench.viewer.index import file_key
from siri_bench.viewer.server import running_server
from tests.conftest import REPO
from tests.viewer import synthetic as syn
from tests.viewer.conftest import snapshot

ARTIFACTS = REPO / "test-artifacts" / "viewer"
A, B = "demo~siri-alfworld-s0", "demo~gigpo-alfworld-s0"


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    return None


CHROMEDRIVER = _find("chromedriver", "/usr/bin/chromedriver")
CHROMIUM = _find("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(CHROMEDRIVER is None or CHROMIUM is None,
                                reason="chromedriver/chromium not installed (run `make browser`)")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.implicitly_wait(5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield drv
    drv.quit()


def _navigate(driver, element) -> None:
    """Click a link/button that loads a new page and wait until the old page is gone.

    Under load the next ``find_element`` could otherwise still see the old page's elements."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element("tag name", "html")
    element.click()
    WebDriverWait(driver, 30).until(ec.staleness_of(old))


def _visible_rows(driver, table_id: str) -> list:
    from selenium.webdriver.common.by import By

    return [r for r in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr") if r.is_displayed()]


def _check_divergence(driver, expected_step: int, shot: str) -> None:
    from selenium.webdriver.common.by import By

    marked = driver.find_element(By.ID, "first-divergence")
    assert marked.get_attribute("data-step") == str(expected_step)
    assert "first-divergence" in marked.get_attribute("class")
    assert "first divergence" in marked.text
    assert f"step {expected_step}" in driver.find_element(By.ID, "divergence-summary").text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", marked)
    driver.save_screenshot(str(ARTIFACTS / shot))


def test_browse_filter_open_episode_and_diff_in_the_served_app(demo, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = snapshot(demo.root)
    with running_server(create_app(demo.root)) as url:
        assert url.startswith("http://127.0.0.1:")
        driver.get(url)
        assert len(_visible_rows(driver, "runs")) == 4
        driver.save_screenshot(str(ARTIFACTS / "01-runs.png"))

        Select(driver.find_element(By.ID, "filter-status")).select_by_value("done")
        rows = _visible_rows(driver, "runs")
        assert sorted(r.find_element(By.CSS_SELECTOR, "a.run-link").text for r in rows) == [
            "demo/gigpo-alfworld-s0", "demo/siri-alfworld-s0"]
        assert "2 of 4 shown" in driver.find_element(By.CSS_SELECTOR, '[data-count-for="runs"]').text
        driver.save_screenshot(str(ARTIFACTS / "02-runs-filtered-done.png"))
        # sorting by success puts GiGPO's 50% before SIRI's 66.7%
        driver.find_element(By.XPATH, "//table[@id='runs']//th[starts-with(normalize-space(.), 'success')]").click()
        rows = _visible_rows(driver, "runs")
        assert rows[0].text.startswith("demo/gigpo-alfworld-s0")

        _navigate(driver, driver.find_element(By.LINK_TEXT, "demo/siri-alfworld-s0"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "siri-alfworld-s0"
        assert len(_visible_rows(driver, "episodes")) == 6  # the last round is selected by default
        Select(driver.find_element(By.ID, "filter-outcome")).select_by_value("lost")
        lost = _visible_rows(driver, "episodes")
        assert len(lost) == 2
        driver.save_screenshot(str(ARTIFACTS / "03-run-episodes-lost.png"))
        _navigate(driver, lost[0].find_element(By.CSS_SELECTOR, "a.episode-link"))
        assert driver.find_element(By.ID, "episode-status").text == "step_limit"
        marks = driver.find_elements(By.CSS_SELECTOR, "#steps mark.action")
        assert len(marks) == syn.STEP_LIMIT and marks[0].is_displayed()
        driver.save_screenshot(str(ARTIFACTS / "04-episode.png"))

        _navigate(driver, driver.find_element(By.ID, "nav-diff"))
        Select(driver.find_element(By.ID, "diff-a")).select_by_value(A)
        Select(driver.find_element(By.ID, "diff-b")).select_by_value(B)
        _navigate(driver, driver.find_element(By.ID, "diff-submit"))
        assert driver.current_url.endswith(f"/diff/{A}/{B}/index.html")
        assert "on 2 task(s)" in driver.find_element(By.ID, "mcnemar").text
        driver.save_screenshot(str(ARTIFACTS / "05-diff-pair.png"))
        _navigate(driver, driver.find_element(By.CSS_SELECTOR, "#a-only a.task-link"))  # task 2: SIRI won, GiGPO lost
        _check_divergence(driver, syn.DIVERGE[2], "06-diff-first-divergence.png")
    assert snapshot(demo.root) == before


def test_static_export_opens_from_disk_without_a_server(demo, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    index = export_site(demo.root, tmp_path / "site")
    driver.get(index.as_uri())
    assert driver.current_url.startswith("file://")
    assert len(_visible_rows(driver, "runs")) == 4
    Select(driver.find_element(By.ID, "filter-algorithm")).select_by_value("gigpo")
    assert [r.text.split()[0] for r in _visible_rows(driver, "runs")] == [
        "demo/gigpo-alfworld-s0", "demo/gigpo-alfworld-s1"]
    driver.save_screenshot(str(ARTIFACTS / "07-export-runs-gigpo.png"))

    _navigate(driver, driver.find_element(By.LINK_TEXT, "demo/gigpo-alfworld-s1"))
    assert driver.current_url.startswith("file://") and driver.find_element(By.TAG_NAME, "h1").text == "gigpo-alfworld-s1"
    _navigate(driver, driver.find_element(By.CSS_SELECTOR, "#episodes a.episode-link"))
    assert driver.current_url.startswith("file://") and driver.find_elements(By.CSS_SELECTOR, "#steps tbody tr")

    _navigate(driver, driver.find_element(By.ID, "nav-diff"))
    _navigate(driver, driver.find_element(By.CSS_SELECTOR, "a.pair-link"))  # gigpo-s0 vs siri-s0 (path order)
    _navigate(driver, driver.find_element(By.LINK_TEXT, syn.TASKS[0][0]))
    assert driver.current_url.endswith(f"{file_key(syn.TASKS[0][0])}~0.html")
    _check_divergence(driver, syn.DIVERGE[0], "08-export-diff.png")
    _navigate(driver, driver.find_element(By.ID, "nav-plots"))
    assert driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline")
    imgs = driver.find_elements(By.CSS_SELECTOR, ".gallery img")
    assert imgs and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in imgs)
    driver.save_screenshot(str(ARTIFACTS / "09-export-plots.png"))
