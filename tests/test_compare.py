"""simweb compare: paired where arms share seeds, Welch otherwise, Holm across arms, and intervals that cover
a difference known in closed form at the rate they claim."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from scipy import stats

from simweb.compare import compare, compare_dir, forest_png, holm
from simweb.errors import SimwebError
from simweb.sweep import expand_grid, simulate_points
from tests.helpers import COLLAPSE

GAUSS = "scenarios/papers/shumailov_gaussian_unbiased.toml"


def _sweep_frame(values: dict[str, np.ndarray], seeds: dict[str, list[int]]) -> pl.DataFrame:
    """A sweep's generations frame: one grid column ``x``, one lab, one generation, a metric ``m``."""
    rows = []
    for point, (x, vals) in enumerate(values.items()):
        for r, (s, v) in enumerate(zip(seeds[x], vals)):
            rows.append({"point": point * 100 + r, "replicate": r, "x": x, "run_id": "r", "scenario": "t", "seed": s,
                         "lab": "lab", "generation": 0, "tick": 0, "m": float(v)})
    return pl.DataFrame(rows)


def test_holm_is_the_step_down_adjustment():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, then 0.04·1 held up to 0.06 (monotone)
    np.testing.assert_allclose(holm(p)[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm(p)[4])
    assert holm(np.array([0.9, 0.8]))[0] == 1.0  # capped at 1


def test_paired_by_seed_when_arms_share_seeds_else_welch():
    rng = np.random.default_rng(5)
    common = rng.normal(0, 1, 12)  # the seed's own noise, shared by both arms
    a, b = common + 0.3 + rng.normal(0, 0.1, 12), common + rng.normal(0, 0.1, 12)
    paired = compare(_sweep_frame({"A": b, "B": a}, {"A": list(range(12)), "B": list(range(12))}), metric="m",
                     target_halfwidth=0.05).row(0, named=True)
    ref = stats.ttest_rel(a, b)
    assert paired["method"] == "paired" and paired["n"] == 12 and paired["baseline"] == "x=A"
    assert paired["p_value"] == pytest.approx(ref.pvalue)
    assert (paired["ci_low"], paired["ci_high"]) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    d = a - b
    assert paired["variance_reduction"] == pytest.approx((a.var(ddof=1) + b.var(ddof=1)) / d.var(ddof=1))
    assert paired["variance_reduction"] > 20  # the shared noise cancels
    m = paired["seeds_needed"]  # the fewest seeds whose t interval is as narrow as asked
    assert stats.t.ppf(0.975, m - 1) * d.std(ddof=1) / math.sqrt(m) <= 0.05
    assert stats.t.ppf(0.975, m - 2) * d.std(ddof=1) / math.sqrt(m - 1) > 0.05
    assert paired["seeds_needed_unpaired"] > 10 * m

    welch = compare(_sweep_frame({"A": b, "B": a}, {"A": list(range(12)), "B": list(range(100, 112))}),
                    metric="m").row(0, named=True)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert welch["method"] == "welch" and welch["variance_reduction"] is None
    assert (welch["ci_low"], welch["ci_high"]) == pytest.approx(tuple(ref.confidence_interval(0.95)))


def test_a_run_compares_its_labs_with_n_1_and_says_so(tmp_path):
    scen = tmp_path / "c.toml"
    scen.write_text(COLLAPSE)
    out = tmp_path / "run"
    assert subprocess.run([sys.executable, "-m", "simweb", "run", str(scen), "--out", str(out), "--quiet",
                           "--executor", "local"], capture_output=True).returncode == 0
    res = subprocess.run([sys.executable, "-m", "simweb", "compare", str(out), "--baseline", "keep"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "n=1" in res.stdout and "no interval" in res.stdout
    table = pl.read_parquet(out / "compare.parquet")
    assert table["arm"].to_list() == ["replace"] and table["method"].to_list() == ["n=1"]
    assert table["ci_low"].is_null().all() and table["p_value"].is_null().all()
    g = pl.read_parquet(out / "generations.parquet")
    last = g.filter(pl.col("generation") == pl.col("generation").max().over("lab"))
    mean = dict(last.select("lab", "excess_nll").iter_rows())
    assert table["diff"][0] == pytest.approx(mean["replace"] - mean["keep"])
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the report of that run embeds the comparison's forest plot
    report = subprocess.run([sys.executable, "-m", "simweb", "report", str(out)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    page = (out / "report" / "report.html").read_text()
    assert 'id="fig-compare"' in page and (out / "report" / "compare.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--metric", "excess_nl"], "did you mean 'excess_nll'"),
    (["--baseline", "C"], "no grid point 'C'"),
    (["--at", "gen", "7"], "gen 7 is out of range"),
    (["--at", "tomorrow"], "expected 'last', 'gen N' or 'tick T'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    _sweep_frame({"A": np.zeros(3), "B": np.ones(3)}, {"A": [1, 2, 3], "B": [1, 2, 3]}).rename(
        {"m": "excess_nll"}).write_parquet(tmp_path / "generations.parquet")
    res = subprocess.run([sys.executable, "-m", "simweb", "compare", str(tmp_path), *args], capture_output=True,
                         text=True)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_directory_that_is_not_a_run_or_sweep_is_refused(tmp_path):
    with pytest.raises(SimwebError, match="not a run or sweep directory"):
        compare_dir(tmp_path)
    res = subprocess.run([sys.executable, "-m", "simweb", "compare", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_forest_plot_is_a_png():
    frame = _sweep_frame({"A": np.arange(5.0), "B": np.arange(5.0) + 1, "C": np.arange(5.0) ** 2},
                         {x: list(range(5)) for x in "ABC"})
    png = forest_png(compare(frame, metric="m"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# ---------------------------------------------------------------- coverage against a closed form
REPETITIONS, PER = 200, 10


def test_intervals_cover_a_closed_form_difference_at_their_stated_rate():
    """MLE vs unbiased variance in the gaussian replace loop (Shumailov et al. 2024): after t fits,
    E[σ̂²_mle]/σ² = ((n−1)/n)^t and E[σ̂²_unbiased]/σ² = 1, so the difference is ((n−1)/n)^t − 1.
    200 comparisons of 10 paired seeds, from one batch of 2000 seeds through simweb's loop."""
    gen, n = 1, 100
    text = open(GAUSS).read().replace("ticks = 100", f"ticks = {gen + 1}")
    points = expand_grid(["labs.lab.model.variance=mle,unbiased"], REPETITIONS * PER, 1002)
    frame = simulate_points(text, points, workers=2, source=GAUSS)
    truth = ((n - 1) / n) ** (gen + 1) - 1
    hits = []
    for part in frame.with_columns((pl.col("replicate") // PER).alias("group")).partition_by("group"):
        row = compare(part.drop("group"), metric="var_ratio", at=f"gen {gen}", baseline="unbiased").row(0, named=True)
        assert row["method"] == "paired" and row["n"] == PER
        hits.append(row["ci_low"] <= truth <= row["ci_high"])
    # three binomial standard errors of a 95 % coverage estimated from 200 intervals: ±4.6 points
    tolerance = 3 * math.sqrt(0.95 * 0.05 / REPETITIONS)
    assert abs(np.mean(hits) - 0.95) <= tolerance, f"coverage {np.mean(hits):.3f}"


def test_replace_vs_accumulate_pairs_well_and_is_flagged_as_skewed():
    """E[μ²] under replace (t/n) vs accumulate ((1/n)Σ1/k²): the per-seed differences of squared means are
    χ²-like, so a 10-seed t interval undercovers (BENCHMARKS.md); compare says so, and pairing pays."""
    text = open(GAUSS).read().replace("ticks = 100", "ticks = 2")
    frame = simulate_points(text, expand_grid(["labs.lab.regime=replace,accumulate"], 200, 1002), workers=2,
                            source=GAUSS)
    row = compare(frame, metric="mean_sq_error", at="gen 1", baseline="accumulate").row(0, named=True)
    truth = 2 / 100 - (1 + 1 / 4) / 100
    assert row["ci_low"] <= truth <= row["ci_high"]
    assert row["variance_reduction"] > 2  # both arms share generation 0 and the first model's samples
    small = compare(frame.filter(pl.col("replicate") < PER), metric="mean_sq_error", at="gen 1",
                    baseline="accumulate").row(0, named=True)
    assert small["cochran_seeds"] > PER

