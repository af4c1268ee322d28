"""The report of a run and of a sweep, opened in a real (headless) browser: every image loads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import simweb
from simweb.report import make_report
from tests.helpers import COLLAPSE, scenario

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        pytest.fail("no headless browser: install Debian's chromium package (.ci/run does)")
    return path


def _open(page: Path, tmp_path: Path, screenshot: Path) -> str:
    browser = _chromium()
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}", "--window-size=1200,2000",
                    f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=120)
    return dom


def _images_loaded(dom: str) -> tuple[int, int]:
    match = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert match, "the page's load script did not run"
    return int(match.group(1)), int(match.group(2))


def test_run_report_loads_every_image_in_a_browser(tmp_path):
    out = tmp_path / "run"
    simweb.run(scenario(COLLAPSE, "labs.keep.filters=[{kind=\"classifier\"}]"), out=out)
    page = make_report(out)
    assert page == out / "report" / "report.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    ok, total = _images_loaded(_open(page, tmp_path, tmp_path / "run.png"))
    assert total >= 5 and ok == total
    assert (tmp_path / "run.png").stat().st_size > 10_000
    for name in ("quality", "tails", "web", "contamination", "filters"):
        assert (out / "report" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_report_has_bands_over_seeds(tmp_path):
    scen = tmp_path / "collapse.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 4"))
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "simweb", "sweep", str(scen), "--grid",
                           "labs.replace.regime=replace,accumulate", "--seeds", "2", "--out", str(out), "--quiet",
                           "--workers", "1", "--executor", "local"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = subprocess.run([sys.executable, "-m", "simweb", "report", str(out)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    page = out / "report" / "report.html"
    assert "labs.replace.regime" in page.read_text()
    ok, total = _images_loaded(_open(page, tmp_path, tmp_path / "sweep.png"))
    assert total >= 5 and ok == total


def test_report_of_a_directory_without_results_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "simweb", "report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a run or sweep directory" in proc.stderr and "Traceback" not in proc.stderr
