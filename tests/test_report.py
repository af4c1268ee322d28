"""The report of a run and of a sweep: what its page says (parsed HTML), what it refuses, and that it opens.

The numbers the page shows are checked against statistics computed here from
the Parquet files with numpy, never against the report's own code. The browser
tests open the page in headless Chromium: they skip where none is installed,
unless ``SIMWEB_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import simweb
from simweb.report import make_report
from simweb.sweep import run_sweep
from tests.helpers import COLLAPSE, scenario

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]
FILTERED = 'labs.keep.filters=[{kind="classifier"}]'  # "keep" filters, "replace" does not


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    simweb.run(scenario(COLLAPSE, FILTERED, "run.ticks=4"), out=out)
    make_report(out)
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report")
    scen = base / "collapse.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 3").replace(
        'regime = "accumulate"', 'regime = "accumulate"\nfilters = [{ kind = "classifier" }]'))
    out = base / "sweep"
    run_sweep(scen, ["labs.keep.reserve_fraction=0.2,0.5"], seeds=3, out=out, workers=1)
    make_report(out)
    return out


# ---------------------------------------------------------------- reading the page
class _Page(HTMLParser):
    """The parts of report.html the tests read: header facts, tables (rows of cell texts), captions, images."""

    def __init__(self, text: str):
        super().__init__()
        self.facts: dict[str, str] = {}
        self.tables: dict[str, list[list[tuple[str, str, dict]]]] = {}  # class -> rows of (tag, text, attrs)
        self.captions: list[str] = []
        self.images = 0
        self._table: str | None = None
        self._cell: tuple[str, dict] | None = None
        self._text = ""
        self._key: str | None = None
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("class", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell, self._text = (tag, attrs), ""
        elif tag in ("dt", "dd", "figcaption"):
            self._in, self._text = tag, ""
        elif tag == "img":
            self.images += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append((self._cell[0], self._text.strip(), self._cell[1]))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "dt":
            self._key = self._text.strip()
        elif tag == "dd":
            self.facts[self._key] = self._text.strip()
        elif tag == "figcaption":
            self.captions.append(self._text.strip())
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._cell is not None or self._in is not None:
            self._text += data


def _page(directory: Path) -> _Page:
    return _Page((directory / "report" / "report.html").read_text(encoding="utf-8"))


def _last_generation_table(page: _Page) -> list[dict[str, str]]:
    """The sweep table as one dict per body row: "lab", the grid path, and "metric:mean" / ":SD" / ":n"."""
    rows = page.tables["last-generation"]
    first, second = rows[0], rows[1]
    names = [text for _, text, attrs in first if attrs.get("rowspan")]
    metrics = [attrs["data-metric"] for _, _, attrs in first if attrs.get("colspan") == "3"]
    assert metrics and [text for _, text, _ in second] == ["mean", "SD", "n"] * len(metrics)
    names += [f"{m}:{stat}" for m in metrics for stat in ("mean", "SD", "n")]
    return [dict(zip(names, [text for _, text, _ in row])) for row in rows[2:]]


def test_a_sweep_table_gives_mean_sd_and_n_over_seeds_per_grid_point_and_lab(sweep_dir):
    g = pl.read_parquet(sweep_dir / "generations.parquet")
    table = _last_generation_table(_page(sweep_dir))
    assert len(table) == 4  # 2 grid points × 2 labs, not one row per replicate
    last = g["generation"].max()
    for row in table:
        fraction = float(row["labs.keep.reserve_fraction"])
        seeds = g.filter((pl.col("grid_labs_keep_reserve_fraction") == fraction) & (pl.col("lab") == row["lab"])
                         & (pl.col("generation") == last))
        assert seeds.height == 3 and row["generation"] == str(last)
        for metric in ("excess_nll", "tail_mass_ratio", "train_ai_fraction"):
            values = seeds[metric].to_numpy()
            assert row[f"{metric}:n"] == "3"
            assert float(row[f"{metric}:mean"]) == pytest.approx(values.mean(), rel=1e-3)
            assert float(row[f"{metric}:SD"]) == pytest.approx(values.std(ddof=1), rel=1e-3, abs=1e-12)


def test_a_lab_without_filters_has_no_precision_and_no_recall(sweep_dir):
    table = _last_generation_table(_page(sweep_dir))
    for row in table:
        cells = [row[f"filter_{m}:{s}"] for m in ("precision", "recall") for s in ("mean", "SD")]
        if row["lab"] == "replace":  # filters nothing: "–", not the 0 that "dropped no AI page" would suggest
            assert cells == ["–"] * 4 and row["filter_precision:n"] == row["filter_recall:n"] == "0"
        else:
            assert all(re.fullmatch(r"[0-9.e+-]+", c) for c in cells) and row["filter_recall:n"] == "3"


def test_the_header_names_the_settings_seeds_version_and_run_ids(run_dir, sweep_dir):
    page = _page(run_dir)
    manifest = __import__("json").loads((run_dir / "manifest.json").read_text())
    assert page.facts["seed"] == "3" and page.facts["run id"] == manifest["run_id"]
    assert page.facts["simweb version"] == simweb.__version__
    settings = {path: value for path, value in (tuple(t for _, t, _ in row) for row in page.tables["settings"][1:])}
    assert settings["run.ticks"] == "4" and settings["labs.keep.filters[0].kind"] == '"classifier"'
    assert settings["labs.keep.regime"] == '"accumulate"'
    assert "web.homophily" not in settings and "labs.replace.regime" not in settings  # defaults are left out

    sweep = _page(sweep_dir)
    g = pl.read_parquet(sweep_dir / "generations.parquet")
    assert "labs.keep.reserve_fraction" in sweep.facts["grid"]
    for seed in g["seed"].unique().to_list():
        assert str(seed) in sweep.facts["seeds"]
    runs = sweep.tables["runs"][1:]
    assert sorted(row[-1][1] for row in runs) == sorted(g["run_id"].unique().to_list())


def test_every_caption_says_what_its_band_is(run_dir, sweep_dir):
    sweep = _page(sweep_dir)
    assert sweep.images == len(sweep.captions) >= 5
    assert all("±1 SD over n = 3 seeds" in c for c in sweep.captions)
    run = _page(run_dir)
    assert all("one run (seed 3); no band" in c.lower() for c in run.captions)


def test_pngs_are_written_with_their_size(run_dir):
    for name in ("quality", "tails", "observed", "web", "contamination", "filters"):
        data = (run_dir / "report" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert 500 <= width <= 4000 and 300 <= height <= 6000, (name, width, height)


# ---------------------------------------------------------------- what it refuses
def _report(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simweb", "report", str(directory)], capture_output=True, text=True)


def _one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)


def test_report_of_a_directory_without_results_is_a_clear_error(tmp_path):
    _one_line_error(_report(tmp_path), "not a run or sweep directory")


def test_garbage_parquet_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "generations.parquet").write_bytes(b"PAR1 this is not parquet at all PAR1")
    (tmp_path / "ticks.parquet").write_bytes(os.urandom(2048))
    _one_line_error(_report(tmp_path), "generations.parquet", "not a readable Parquet file")
    assert not (tmp_path / "report").exists()


def test_parquet_of_another_schema_is_one_line_naming_the_column(tmp_path, run_dir):
    pl.DataFrame({"lab": ["a"], "generation": [0]}).write_parquet(tmp_path / "generations.parquet")
    shutil.copy(run_dir / "ticks.parquet", tmp_path / "ticks.parquet")
    _one_line_error(_report(tmp_path), "generations.parquet", "no column")
    # the right columns with the wrong type
    g = pl.read_parquet(run_dir / "generations.parquet").with_columns(pl.col("excess_nll").cast(pl.String))
    g.write_parquet(tmp_path / "generations.parquet")
    _one_line_error(_report(tmp_path), "excess_nll")


def test_a_report_symlink_out_of_the_run_directory_is_refused(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report", "pages", "index", "checkpoint"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "report").symlink_to(elsewhere)
    _one_line_error(_report(run), "symbolic link")
    assert list(elsewhere.iterdir()) == []
    # a link to a file inside report/ is replaced by the figure, and the file it pointed to is left alone
    (run / "report").unlink()
    (run / "report").mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"mine")
    (run / "report" / "quality.png").symlink_to(outside)
    assert _report(run).returncode == 0
    assert outside.read_bytes() == b"mine" and not (run / "report" / "quality.png").is_symlink()


def test_a_read_only_run_directory_is_one_line(tmp_path, run_dir, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report", "pages", "index", "checkpoint"))
    if os.geteuid() != 0:  # root writes through permission bits: there the refusal is simulated below
        run.chmod(0o555)
        try:
            _one_line_error(_report(run), "cannot write the report", "ermission denied")
        finally:
            run.chmod(0o755)
    from simweb import cli, report

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(report, "atomic_write", refuse)
    assert cli.main(["report", str(run)]) == 2


# ---------------------------------------------------------------- in a browser
def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        reason = ("no headless browser (chromium, chromium-browser or google-chrome) on PATH: install Debian's "
                  "chromium package to run this test")
        if os.environ.get("SIMWEB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; SIMWEB_REQUIRE_BROWSER=1 says it must run here")
        pytest.skip(reason)
    return path


def test_no_browser_skips_unless_the_browser_is_required(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("SIMWEB_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="install Debian's chromium"):
        _chromium()
    monkeypatch.setenv("SIMWEB_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="SIMWEB_REQUIRE_BROWSER=1"):
        _chromium()


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


@pytest.mark.slow
def test_run_report_loads_every_image_in_a_browser(tmp_path, run_dir):
    page = run_dir / "report" / "report.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    ok, total = _images_loaded(_open(page, tmp_path, tmp_path / "run.png"))
    assert total >= 5 and ok == total
    assert (tmp_path / "run.png").stat().st_size > 10_000


@pytest.mark.slow
def test_sweep_report_through_the_cli_loads_every_image_in_a_browser(tmp_path):
    scen = tmp_path / "collapse.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 4"))
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "simweb", "sweep", str(scen), "--grid",
                           "labs.replace.regime=replace,accumulate", "--seeds", "2", "--out", str(out), "--quiet",
                           "--workers", "1", "--executor", "local"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = _report(out)
    assert report.returncode == 0, report.stderr
    page = out / "report" / "report.html"
    assert "labs.replace.regime" in page.read_text()
    ok, total = _images_loaded(_open(page, tmp_path, tmp_path / "sweep.png"))
    assert total >= 5 and ok == total
