"""The built wheel, installed into a new virtual environment, runs outside the repository.

As a stranger would have it: the tracked files are copied out (as a fresh clone has them),
a wheel is built from the copy, installed with its dependencies (pinned by the lock file)
into a new virtual environment, and `wellmon run` is started from a folder that holds its own
`models/`, `dashboard/` and `streamer/` packages, which must never be imported. Chromium then
opens the printed sign-in link and the sample stream's card shows live values, with every
file the page asks for served.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.helpers import TOKEN
from wellmon.harness import URL_PATTERN, LocalPipeline

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
DECOYS = ("models", "dashboard", "streamer")


def _tracked_copy(dest: Path) -> Path:
    """The repository's tracked files (as a fresh clone has them), links resolved."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)  # follows links: config.example.yaml
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = _tracked_copy(work / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(work / "dist"), str(source)],
                   check=True)
    (built,) = (work / "dist").glob("wellmon-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a new virtual environment with the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(LOCK),
                    str(wheel)], check=True)
    return python


def test_the_wheel_holds_every_asset_and_no_generic_top_level_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"wellmon"}, tops
    tracked = subprocess.run(["git", "ls-files", "dashboard/static", "models/weights",
                              "streamer/sample"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    missing = [f for f in tracked if f"wellmon/{f}" not in names]
    assert not missing, missing
    assert "wellmon/dashboard/static/live/stream.js" in names
    template = zipfile.ZipFile(wheel).read("wellmon/config.example.yaml").decode()
    assert template == (ROOT / "config.yaml").read_text()


@pytest.mark.browser
def test_installed_wheel_runs_from_a_folder_with_decoy_packages(installed: Path,
                                                                tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.system.test_browser import CHROMIUM, CHROMIUM_ARGS

    folder = tmp_path / "project"
    for name in DECOYS:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(
            f"raise ImportError('the decoy {name} package of the current folder was imported')\n")
    with LocalPipeline("sample", TOKEN, tmp_path, python=str(installed), cwd=folder) as run, \
            tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        (link,) = [f"{m[1]}?code={m[2]}" for line in list(run.output)
                   if (m := URL_PATTERN.search(line))]
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        failed: list[str] = []
        page = browser.new_page()
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        page.goto(link)
        card = page.locator('section.card[data-stream="sample"]')
        card.wait_for(timeout=60_000)
        deadline = time.monotonic() + 90
        while int(card.get_attribute("data-points") or 0) < 6 \
                or "happy" not in card.locator(".emotion").inner_text():
            assert run.proc.poll() is None, "\n".join(run.output)
            assert time.monotonic() < deadline, "\n".join(run.output)
            time.sleep(0.5)
        assert page.locator("#connection").inner_text().startswith("connected")
        assert not failed, failed
        browser.close()
    log = "\n".join(run.output)
    assert "decoy" not in log and "Traceback" not in log, log
