"""The report's figures, read from matplotlib's figure state (titles, labels, lines), not from pixels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.ticker import MaxNLocator

import simweb
from simweb.figures import build_figures, lab_colours
from simweb.report import load_report
from simweb.sweep import run_sweep
from tests.helpers import COLLAPSE, scenario

# a second population that never writes with AI, so that the web figure has two different curves
HUMANS = """
[[publishers]]
name = "humans"
site_share = 0.5
initial_pages = 100
pages_per_tick = 100
ai_adoption = { start = 0.0, end = 0.0 }
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures") / "run"
    text = COLLAPSE.replace("[[labs]]", HUMANS + "\n[[labs]]", 1)
    simweb.run(scenario(text, 'labs.keep.filters=[{kind="classifier"}]', "run.ticks=4"), out=out)
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("figures")
    scen = base / "collapse.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 3"))
    out = base / "sweep"
    run_sweep(scen, ["labs.replace.regime=replace,accumulate"], seeds=2, out=out, workers=1)
    return out


def _visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_every_figure_has_a_title_inside_it_saying_what_the_band_is(run_dir, sweep_dir):
    for directory, band in ((run_dir, "one run (seed 3); no band"), (sweep_dir, "±1 SD over n = 2 seeds")):
        for name, (caption, fig) in build_figures(load_report(directory).data).items():
            title = fig.get_suptitle()
            assert len(title) > 20 and band in title, (name, title)
            assert band in caption.lower() or band in caption


def test_sweep_figures_have_a_panel_per_grid_point_titled_with_its_value(sweep_dir):
    for name, (_, fig) in build_figures(load_report(sweep_dir).data).items():
        titles = [ax.get_title() for ax in _visible(fig)]
        for value in ('labs.replace.regime = "replace"', 'labs.replace.regime = "accumulate"'):
            assert any(value in t for t in titles), (name, titles)
        assert all("labs.replace.regime" in t for t in titles), (name, titles)


def test_the_curves_of_a_grid_point_are_its_own_mean_over_seeds(sweep_dir):
    g = pl.read_parquet(sweep_dir / "generations.parquet")
    _, fig = build_figures(load_report(sweep_dir).data)["quality"]
    for ax in _visible(fig):
        regime = "accumulate" if "accumulate" in ax.get_title() else "replace"
        for line in ax.get_lines():
            lab = line.get_label()
            rows = g.filter((pl.col("grid_labs_replace_regime") == regime) & (pl.col("lab") == lab))
            expected = [rows.filter(pl.col("generation") == x)["excess_nll"].mean() for x in line.get_xdata()]
            assert np.allclose(line.get_ydata(), expected), (regime, lab)


def test_axes_are_labelled_in_words_and_generations_and_ticks_are_integers(run_dir):
    for name, (_, fig) in build_figures(load_report(run_dir).data).items():
        for ax in _visible(fig):
            xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
            assert " " in xlabel and " " in ylabel, (name, xlabel, ylabel)  # words, not a column name
            assert "_" not in xlabel + ylabel, (name, xlabel, ylabel)
            assert xlabel.startswith(("generation", "tick")), (name, xlabel)
            assert isinstance(ax.xaxis.get_major_locator(), MaxNLocator)
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)
    quality = build_figures(load_report(run_dir).data)["quality"][1]
    assert "nats per token" in quality.axes[0].get_ylabel()


def test_a_lab_has_one_colour_in_every_figure(run_dir):
    data = load_report(run_dir).data
    assert data.colours == lab_colours(["replace", "keep"]) and len(set(data.colours.values())) == 2
    seen: dict[str, set[str]] = {}
    for name, (_, fig) in build_figures(data).items():
        if name == "web":  # populations, not labs
            continue
        for ax in _visible(fig):
            for line in ax.get_lines():
                label = line.get_label()
                lab = label.split(" ← ")[-1] if " ← " in label else label.split(" ")[0]
                seen.setdefault(lab, set()).add(line.get_color())
    assert set(seen) == {"replace", "keep"}
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert seen["keep"] == {data.colours["keep"]}


def test_precision_and_recall_are_gaps_where_undefined_not_zeros(run_dir):
    g = pl.read_parquet(run_dir / "generations.parquet")
    _, fig = build_figures(load_report(run_dir).data)["filters"]
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    # "replace" filters nothing: it has no precision or recall curve at all
    assert not any(label.startswith("replace") for label in lines)
    precision = lines["keep precision"]
    xs, ys = list(precision.get_xdata()), np.asarray(precision.get_ydata(), dtype=float)
    # generation 0 trains on the all-human web: no AI page to detect, so no precision (the file may say 0)
    gen0 = g.filter((pl.col("lab") == "keep") & (pl.col("generation") == 0))
    assert gen0["crawl_ai_fraction"][0] == 0.0
    assert 0 in xs and math.isnan(ys[xs.index(0)])
    later = g.filter((pl.col("lab") == "keep") & (pl.col("generation") > 0)).sort("generation")
    assert np.allclose(ys[1:], later["filter_precision"].to_numpy())


def test_the_web_figure_has_a_curve_per_population(run_dir):
    t = pl.read_parquet(run_dir / "ticks.parquet")
    _, fig = build_figures(load_report(run_dir).data)["web"]
    new, everything = fig.axes[0], fig.axes[1]
    for ax, column in ((new, "ai_share_new"), (everything, "ai_share_all")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert {"all", "humans"} <= set(lines)
        for population in ("all", "humans"):
            expected = t.filter(pl.col("population") == population).sort("tick")[column].fill_null(np.nan).to_numpy()
            assert np.allclose(lines[population].get_ydata(), expected, equal_nan=True), (column, population)
    assert np.allclose(lines["whole web"].get_ydata(),
                       t.filter(pl.col("population") == "all").sort("tick")["web_ai_share"].to_numpy())
    assert max(lines["humans"].get_ydata()) == 0.0 and max(lines["all"].get_ydata()) > 0.5
