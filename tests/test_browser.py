"""A real browser (Debian's headless Chromium) opens the live page and sees it update."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from tests.helpers import TOKEN
from wellmon.harness import LocalPipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 800})
        yield context
        context.close()


def test_live_page_shows_the_sample_stream_and_its_chart_updates(browser, tmp_path,
                                                                 artifacts) -> None:
    with LocalPipeline("sample", TOKEN, tmp_path) as run:
        page = browser.new_page()
        page.goto(f"{run.url}?token={TOKEN}")
        card = page.locator('.card[data-stream="sample"]')
        card.wait_for(timeout=30_000)
        page.wait_for_function(
            "() => Number(document.querySelector('.card').dataset.points) >= 3", timeout=30_000)
        assert "token" not in page.url  # moved to an HttpOnly cookie, out of the address bar
        chart = card.locator(".chart-video canvas")
        before_points = int(card.get_attribute("data-points"))
        before_pixels = chart.screenshot()
        page.wait_for_function(
            f"() => Number(document.querySelector('.card').dataset.points) >= {before_points + 4}",
            timeout=30_000)
        assert chart.screenshot() != before_pixels  # the line has moved on
        assert card.locator(".state").inner_text().lower() == "live"
        assert card.locator(".stress").inner_text() == "inconclusive"  # baseline minute
        assert "dBFS" in card.locator(".audio_level_db").inner_text()
        assert page.locator("#connection").inner_text() == "connected"
        assert "not a diagnosis" in page.inner_text("body")
        page.screenshot(path=str(artifacts / "live-page.png"), full_page=True)


def test_page_without_token_is_refused_in_the_browser(browser, tmp_path) -> None:
    with LocalPipeline("sample", TOKEN, tmp_path) as run:
        page = browser.new_page()
        response = page.goto(run.url)
        assert response.status == 401
        assert "token" in page.inner_text("body")
