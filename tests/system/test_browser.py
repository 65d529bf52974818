"""A real browser (Debian's headless Chromium) opens the live page and sees it update."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import ADMIN_TOKEN, KIOSK_TOKEN, TOKEN
from wellmon.dashboard.auth import login_url
from wellmon.dashboard.store import open_store
from wellmon.harness import URL_PATTERN, LocalPipeline, ready_url

SAMPLE = str(Path(__file__).resolve().parents[2] / "streamer/sample/sample.mp4")

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


def test_live_page_shows_two_streams_and_their_charts_update(browser, processes, clip,
                                                             artifacts) -> None:
    """The sample clip and a second generated clip through one node: both cards appear,
    their charts move, and the page says what each value is (or why it is missing)."""
    path, _ = clip
    # 20 s: long enough for every input to enter the baseline (heart rate and blink rate
    # need 10 s of face, pitch a second of voiced speech pooled over its windows)
    processes.env = {**processes.env, "WELLMON_PERCEPTION_STRESS_BASELINE_S": "20"}
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    for stream, source in (("sample", SAMPLE), ("talking", str(path))):
        for modality in ("video", "audio"):
            processes.start(f"{stream}-{modality}", "capture", "--modality", modality,
                            "--source", source, "--stream", stream)
    url = ready_url(dashboard.ready_line)
    page = browser.new_page()
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(login_url(url, "viewer", TOKEN))  # a sign-in link, as `wellmon login` prints
    assert page.url == url  # traded for an HttpOnly cookie: no code in the address bar
    assert "code=" not in page.url and "token" not in page.url
    cards = {name: page.locator(f'section.card[data-stream="{name}"]')
             for name in ("sample", "talking")}
    for card in cards.values():
        card.wait_for(timeout=30_000)
    before = {name: (points(card), card.locator(".chart-emotions canvas").first.screenshot())
              for name, card in cards.items()}
    deadline = time.monotonic() + 60
    while any(points(card) < before[name][0] + 6 for name, card in cards.items()):
        assert time.monotonic() < deadline, {n: points(c) for n, c in cards.items()}
        time.sleep(0.5)
    for name, card in cards.items():
        assert card.get_attribute("data-state") in ("live", "stale"), name  # not lost
        assert card.locator(".chart-emotions canvas").first.screenshot() != before[name][1]
        assert "happy" in card.locator(".emotion").inner_text()  # both clips: the astronaut
    # After the (shortened) baseline, the fused stress index and the pulse have values.
    deadline = time.monotonic() + 90
    while not all("/ 100" in card.locator(".stress").inner_text()
                  and "bpm" in card.locator(".heart_rate").inner_text()
                  for card in cards.values()):
        assert time.monotonic() < deadline, [c.locator(".stress").inner_text()
                                             for c in cards.values()]
        for card in cards.values():
            assert card.locator(".stress").inner_text() in ("inconclusive", "not available") \
                or "/ 100" in card.locator(".stress").inner_text()
        time.sleep(0.5)
    assert page.locator("#connection").inner_text() == "connected"
    assert "not a diagnosis" in page.inner_text("body")
    page.select_option("#range", "60")
    time.sleep(1)
    page.screenshot(path=str(artifacts / "live-page.png"), full_page=True)


def points(card) -> int:
    return int(card.get_attribute("data-points") or 0)


def test_page_without_sign_in_is_refused_and_the_printed_link_signs_in(browser,
                                                                         tmp_path) -> None:
    with LocalPipeline("sample", TOKEN, tmp_path) as run:
        page = browser.new_page()
        response = page.goto(run.dashboard_url())
        assert response.status == 401
        assert "wellmon login viewer" in page.inner_text("body")  # says how to sign in
        response = page.goto(run.dashboard_url() + f"?token={TOKEN}")
        assert response.status == 401
        assert "wellmon login" in page.inner_text("body")
        (link,) = [f"{m[1]}?code={m[2]}" for line in list(run.output)
                   if (m := URL_PATTERN.search(line))]
        response = page.goto(link)  # the link `wellmon run` printed
        assert response.status == 200 and page.url == run.dashboard_url()
        assert "code=" not in page.url
        page.wait_for_function(  # its socket opened with the cookie ("connected[, …]")
            "document.querySelector('#connection').innerText.startsWith('connected')",
            timeout=30_000)


def test_kiosk_check_from_consent_to_result_card_and_the_operator_sees_it(
        browser, processes, wellmon_env, artifacts) -> None:
    """The whole kiosk flow on the sample clip in Chromium. The operator issues an
    enrolment code on the operator page; at the kiosk the person sets a PIN with it, reads
    a consent screen written from what the server says it keeps, and does a first check
    (inconclusive: no usual range yet). With three earlier checks stored, a wrong PIN is
    refused and sends the person back to the PIN screen; the right one gives "Within your
    usual range" with the history. A check without the PIN is not compared and shows no
    history. Each step is saved as a screenshot."""
    processes.env = {**wellmon_env, "WELLMON_DASHBOARD_CHECK_S": "10",
                     "WELLMON_DASHBOARD_KIOSK_STREAM": "kiosk-1", "WELLMON_ASR_ENGINE": "off"}
    processes.start("node", "infer")
    dashboard = processes.start("dashboard", "dashboard")
    for modality in ("video", "audio"):
        processes.start(f"capture-{modality}", "capture", "--modality", modality,
                        "--source", SAMPLE, "--stream", "kiosk-1")
    url = ready_url(dashboard.ready_line)
    errors: list[str] = []
    operator = browser.new_page()
    operator.set_viewport_size({"width": 1920, "height": 1080})
    operator.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    operator.goto(login_url(url, "admin", ADMIN_TOKEN))
    assert operator.url == f"{url}operator"
    assert "code=" not in operator.url and "token" not in operator.url
    operator.fill("#enrol-person-id", "worker-42")
    operator.click("#enrol-person-submit")
    operator.locator("#code-dialog[open]").wait_for(timeout=30_000)
    code = operator.inner_text("#code-value")
    assert len(code.replace(" ", "")) == 12 and "Shown once" in operator.inner_text("#code-text")
    operator.screenshot(path=str(artifacts / "operator-enrolment-code.png"))
    operator.click("#code-close")
    assert operator.inner_text("#code-value") == ""  # gone from the page

    page = browser.new_page()
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def screen(name: str, timeout: float = 30_000) -> None:
        page.locator(f'body[data-screen="{name}"]').wait_for(state="attached", timeout=timeout)

    def identify(person: str, shots: str) -> None:
        screen("identify")
        page.fill("#badge", person)
        page.screenshot(path=str(artifacts / f"kiosk-{shots}1-identify.png"))
        page.click("#badge-submit")
        screen("pin")

    def capture(person: str, shots: str) -> dict:
        screen("capture")
        page.locator("#progress[data-fraction]").wait_for(state="attached", timeout=30_000)
        deadline = time.monotonic() + 30
        while float(page.get_attribute("#progress", "data-fraction") or 0) < 0.3:
            assert time.monotonic() < deadline, "the progress bar did not move"
            time.sleep(0.2)
        assert page.inner_text("#sentence").strip()
        page.screenshot(path=str(artifacts / f"kiosk-{shots}3-capture.png"))
        screen("result", timeout=60_000)
        page.screenshot(path=str(artifacts / f"kiosk-{shots}4-result.png"))
        card = page.locator("#result-card")
        assert "not a diagnosis" in page.inner_text("#result-note")
        with sqlite3.connect(processes.env["WELLMON_DASHBOARD_STORE"]) as db:
            row = db.execute("SELECT id, status, result_json FROM checks WHERE person_id = ? "
                             "ORDER BY id DESC LIMIT 1", (person,)).fetchone()
            windows = db.execute("SELECT COUNT(*) FROM check_windows WHERE check_id = ?",
                                 (row[0],)).fetchone()[0]
        assert row[1] == "complete" and windows >= 15  # the result row, with its windows
        result = json.loads(row[2])
        assert card.get_attribute("data-verdict") == result["verdict"]
        return result

    def consent(shots: str) -> str:
        screen("consent")
        page.locator("#consent-accept:enabled").wait_for(timeout=60_000)  # camera live
        page.screenshot(path=str(artifacts / f"kiosk-{shots}2-consent.png"))
        text = page.inner_text("#screen-consent")
        page.click("#consent-accept")
        return text

    page.goto(login_url(url, "kiosk", KIOSK_TOKEN))
    assert page.url == f"{url}kiosk"
    assert "code=" not in page.url and "token" not in page.url
    identify("worker-42", "first-")
    page.click("#pin-enrol")
    screen("enrol")
    page.fill("#enrol-code", code)
    page.fill("#enrol-pin", "480315")
    page.fill("#enrol-pin2", "480316")
    page.click("#enrol-submit")
    assert "not the same" in page.inner_text("#enrol-error")
    page.fill("#enrol-pin2", "480315")
    page.screenshot(path=str(artifacts / "kiosk-first-1b-enrol.png"))
    page.click("#enrol-submit")
    told = consent("first-")
    # The consent text is written from the hello's facts (stores_media, stores_transcript,
    # retention_days, history_needs_secret): exactly what is kept, and that words are not.
    assert "Never video, audio or your words" in told and "none of it is kept" in told
    assert "kept for 30 days, then only the summary" in told
    assert "With your PIN: this check is compared with your earlier checks" in told
    assert "not a diagnosis" in told
    first = capture("worker-42", "first-")
    assert first["verdict"] == "inconclusive"
    assert "no usual range yet" in page.inner_text("#result-reason").lower()

    store = open_store(processes.env["WELLMON_DASHBOARD_STORE"])
    for k in range(3):
        day = time.time() - 86400 * (k + 1)
        earlier = store.start_check("worker-42", kiosk="kiosk", stream="kiosk-1", started_at=day)
        store.finish_check(earlier, {"verdict": "usual", "stress": 50.0 + 3 * k,
                                     "summary": first["summary"]}, ended_at=day + 45)
    store.close()
    page.click("#done")
    identify("worker-42", "")
    page.fill("#pin", "135792")  # wrong: refused after consent, back to the PIN screen
    page.click("#pin-submit")
    consent("")
    screen("pin")
    assert "do not match" in page.inner_text("#pin-error")
    page.fill("#pin", "480315")
    page.click("#pin-submit")  # the consent of this visit stands: the check starts at once
    second = capture("worker-42", "")
    assert second["verdict"] == "usual"
    assert page.inner_text("#result-label") == "Within your usual range"
    assert int(page.get_attribute("#history-chart", "data-points") or 0) >= 4

    page.click("#done")
    identify("worker-42", "nopin-")
    page.click("#pin-skip")
    assert "Without your PIN" in consent("nopin-")
    anonymous = capture("worker-42", "nopin-")
    assert anonymous["compared"] is False
    assert page.inner_text("#result-label") == "Not compared"
    assert "only with your PIN" in page.inner_text("#history-chart")

    operator.reload()
    rows = operator.locator("#checks tbody tr[data-check-id]")
    rows.first.wait_for(timeout=30_000)
    assert rows.count() == 3  # today's three checks; the seeded ones are from earlier days
    assert "no PIN" in rows.first.inner_text()
    rows.nth(1).click()
    operator.locator("#detail[data-check-id] #detail-chart canvas").first.wait_for(
        timeout=30_000)
    operator.locator("#person-status:has-text('PIN set')").wait_for(timeout=30_000)
    assert "5 in the baseline" in operator.inner_text("#person-status")
    operator.locator("#person-audit li:has-text('read by an operator')").first.wait_for(
        timeout=30_000)  # this very look at the check, with the admin's address
    assert "history shown at the kiosk (kiosk, kiosk)" in operator.inner_text("#person-audit")
    assert operator.get_attribute("#person-export", "href") == "/api/persons/worker-42/export"
    operator.evaluate("window.scrollTo(0, 0)")
    operator.screenshot(path=str(artifacts / "operator.png"))
    assert not [e for e in errors if "favicon" not in e], errors


COLOURED_PIXELS = """canvas => {
  const ctx = canvas.getContext('2d');
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const hi = Math.max(data[i], data[i + 1], data[i + 2]);
    const lo = Math.min(data[i], data[i + 1], data[i + 2]);
    if (data[i + 3] > 0 && hi - lo > 40) n++;
  }
  return n;
}"""
"""Pixels of a canvas in a colour (the series), not the grey and black of grid and axes."""


def test_a_replay_report_opens_from_disk_with_every_plot_drawn(browser, tmp_path, wellmon_env,
                                                               artifacts) -> None:
    import subprocess
    import sys

    from wellmon.dashboard.report.html import PLOTS

    result = subprocess.run([sys.executable, "-m", "wellmon", "replay", SAMPLE, "--out",
                             str(tmp_path), "--no-progress"], env=wellmon_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((tmp_path / "sample.report.html").as_uri())
    page.wait_for_selector("body[data-plotted=yes]", timeout=30_000)
    assert requests == [(tmp_path / "sample.report.html").as_uri()]  # nothing fetched
    assert not errors, errors
    headline = page.inner_text(".headline")
    assert "Stress within your usual range for " in headline and "arc" in headline
    assert "A wellness indicator, not a diagnosis." in page.inner_text("body")
    for name in PLOTS:
        canvas = page.locator(f"#plot-0-{name} canvas").first
        assert canvas.evaluate(COLOURED_PIXELS) > 200, f"plot {name} drew no series"
    said = page.locator("table.transcript tr").all_inner_texts()
    assert len(said) >= 4 and "feeling calm" in " ".join(said)  # heading and utterances
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
