"""Licences: verified human documents bought every generation, past any opt-out, at a price."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

import simweb
from simweb.errors import ScenarioError
from simweb.scenario import parse_scenario
from tests.helpers import COLLAPSE, MINIMAL

LICENSED = ["labs.replace.licences=[{population='all', docs_per_generation=120, price=2.5}]",
            "labs.replace.budget=4.0"]


def test_every_licensed_document_is_human_and_paid_for():
    """The web is all AI after tick 0 and the lab crawls only new pages, so from generation 1 on every web
    document is AI-written: the ground truth's AI share is web / (web + licensed) exactly when every
    licensed document is human, and the lab pays the price once per generation."""
    sc = parse_scenario(COLLAPSE, LICENSED)
    g = simweb.run(sc).generations
    lab = g.filter(pl.col("lab") == "replace").sort("generation")
    assert lab["licensed_docs"].to_list() == [120] * len(lab)
    assert lab["spend"].to_list() == [2.5] * len(lab)
    assert lab["spend"].sum() == pytest.approx(2.5 * sc.run.ticks)  # price × generations
    later = lab.filter(pl.col("generation") >= 1)
    assert (later["train_docs"] == later["train_web_docs"] + 120).all()
    assert later["train_ai_fraction"].to_list() == pytest.approx(
        (later["train_web_docs"] / later["train_docs"]).to_list())
    other = g.filter(pl.col("lab") == "keep")
    assert (other["licensed_docs"] == 0).all() and (other["spend"] == 0).all()


def test_licensed_documents_bypass_opt_outs():
    sc = parse_scenario(COLLAPSE, [*LICENSED, "publishers.all.opt_out={start=1.0, end=1.0}", "run.ticks=3"])
    g = simweb.run(sc).generations.filter(pl.col("lab") == "replace")
    assert (g["train_web_docs"] == 0).all()  # every site refuses it
    assert (g["train_docs"] == 120).all() and (g["train_ai_fraction"] == 0).all()


@pytest.mark.parametrize("overrides, message", [
    (["labs[0].licences=[{population='nobody', docs_per_generation=1, price=1.0}]"],
     "labs[0].licences[0].population: no publisher population named 'nobody'"),
    (["labs[0].licences=[{population='pub', docs_per_generation=1, price=-1.0}]"],
     "labs[0].licences[0].price: expected a number >= 0.0, got -1.0"),
    (["labs[0].licences=[{population='pub', docs_per_generation=1, price=3.0}]", "labs[0].budget=2.0"],
     "labs[0].budget: expected at least the licences' price per generation (3), got 2"),
])
def test_a_bad_licence_is_one_line_and_exit_2(tmp_path, overrides, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(MINIMAL, overrides)
    assert str(info.value) == message
    path = tmp_path / "s.toml"
    path.write_text(MINIMAL)
    args = [a for o in overrides for a in ("--set", o)]
    proc = subprocess.run([sys.executable, "-m", "simweb", "validate", str(path), *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr


def test_the_run_summary_shows_excess_nll_against_spend():
    from rich.console import Console

    from simweb.summary import print_summary

    results = simweb.run(parse_scenario(COLLAPSE, [*LICENSED, "run.ticks=3"]))
    console = Console(record=True, width=160)
    print_summary(results, None, console)
    text = console.export_text()
    assert "licences: excess NLL against cumulative spend" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("│ replace") and "120" in ln)
    assert "7.5" in line  # 2.5 a generation, three generations


def test_the_report_shows_excess_nll_against_cumulative_spend(tmp_path):
    """The report's spend figure puts each generation at the lab's spend so far (price × generations)."""
    from simweb.figures import build_figures
    from simweb.report import load_report, make_report

    out = tmp_path / "run"
    simweb.run(parse_scenario(COLLAPSE, [*LICENSED, "run.ticks=4"]), out=out)
    page = make_report(out).read_text()
    assert 'id="fig-spend"' in page and "cumulative spend" in page
    data = load_report(out).data
    _, fig = build_figures(data)["spend"]
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "replace")
    assert line.get_xdata().tolist() == pytest.approx([2.5, 5.0, 7.5, 10.0])
    g = pl.read_parquet(out / "generations.parquet").filter(pl.col("lab") == "replace").sort("generation")
    assert line.get_ydata().tolist() == pytest.approx(g["excess_nll"].to_list())
    without = tmp_path / "plain"
    simweb.run(parse_scenario(COLLAPSE, ["run.ticks=2"]), out=without)
    assert "spend" not in build_figures(load_report(without).data)
