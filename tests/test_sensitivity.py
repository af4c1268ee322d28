"""Sobol indices through the real loop: a parameter that cannot matter gets ST ≈ 0, and in the gaussian
replace loop the ranking of n and t follows the closed form E[μ²] = σ² t / n."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

pytest.importorskip("SALib", reason="SALib is the optional extra simweb[sensitivity]")

from simweb.sensitivity import parse_params, run_sensitivity, saltelli, sobol_indices  # noqa: E402

GAUSS = "scenarios/papers/shumailov_gaussian_unbiased.toml"


def test_a_parameter_that_cannot_matter_has_a_total_index_of_zero(tmp_path):
    # market_share weighs a lab among released models; with one lab it can change nothing
    table = run_sensitivity(GAUSS, ["labs.lab.market_share=0.1,1", "labs.lab.crawl_budget=20,100"], samples=64,
                            out=tmp_path / "s", workers=1, metric="mean_sq_error",
                            overrides=["run.ticks=4", "run.executor=local"])
    row = {r["param"]: r for r in table.iter_rows(named=True)}
    share, budget = row["labs.lab.market_share"], row["labs.lab.crawl_budget"]
    assert abs(share["ST"]) <= share["ST_conf"] + 1e-12 and abs(share["S1"]) <= share["S1_conf"] + 1e-12
    assert budget["ST"] - budget["ST_conf"] > 0.3  # the lever that does matter is seen
    samples = pl.read_parquet(tmp_path / "s" / "samples.parquet")
    assert samples["labs.lab.crawl_budget"].to_list() == [round(v) for v in samples["labs.lab.crawl_budget"]]
    # resumable: the same command again runs nothing and gives the same indices
    again = run_sensitivity(GAUSS, ["labs.lab.market_share=0.1,1", "labs.lab.crawl_budget=20,100"], samples=64,
                            out=tmp_path / "s", workers=1, metric="mean_sq_error",
                            overrides=["run.ticks=4", "run.executor=local"])
    assert again.equals(table)


@pytest.mark.parametrize("gen, budget, seeds, samples", [
    ((0, 9), (90, 100), 40, 64),   # t varies tenfold, n by a tenth: t must rank first
    ((8, 9), (10, 100), 4, 32),    # n varies tenfold, t by a tenth: n must rank first
])
def test_ranking_of_n_and_t_follows_the_closed_form(tmp_path, gen, budget, seeds, samples):
    specs = [f"gen={gen[0]},{gen[1]}", f"labs.lab.crawl_budget={budget[0]},{budget[1]}"]
    table = run_sensitivity(GAUSS, specs, samples=samples, out=tmp_path / "s", workers=1, metric="mean_sq_error",
                            seeds=seeds, overrides=["run.ticks=10", "run.executor=local"])
    # the closed form's partial derivatives of σ² t / n at the centre, times each range
    t_mid, n_mid = (gen[0] + gen[1]) / 2 + 1, (budget[0] + budget[1]) / 2
    effect = {"gen": (gen[1] - gen[0]) / n_mid, "labs.lab.crawl_budget": t_mid / n_mid**2 * (budget[1] - budget[0])}
    expected = sorted(effect, key=effect.get, reverse=True)
    st = {r["param"]: r for r in table.iter_rows(named=True)}
    first, second = expected
    assert st[first]["ST"] - st[first]["ST_conf"] > st[second]["ST"] + st[second]["ST_conf"], table
    # and the closed form itself, sampled the same way, ranks them alike
    params = parse_params(open(GAUSS).read(), specs, overrides=["run.ticks=10"])
    X = saltelli(params, samples, seed=1002)
    exact = sobol_indices(params, (X[:, 0] + 1) / X[:, 1], seed=0)
    assert exact.sort("ST", descending=True)["param"].to_list() == expected


@pytest.mark.parametrize("param, message", [
    ("labs.lab.crawl_budgt=10,20", "did you mean 'crawl_budget'"),
    ("labs.lab.crawl_budget=20,10", "LOW must be < HIGH"),
    ("labs.lab.crawl_budget=a,b", "must be numbers"),
    ("labs.lab.crawl_budget=10", "expected PATH=LOW,HIGH"),
])
def test_bad_parameters_are_one_line_and_exit_2(tmp_path, param, message):
    out = tmp_path / "s"
    res = subprocess.run([sys.executable, "-m", "simweb", "sensitivity", GAUSS, "--param", param, "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not out.exists()


def test_integer_parameters_are_found_from_the_scenario():
    params = parse_params(open(GAUSS).read(), ["labs.lab.crawl_budget=10,20", "labs.lab.market_share=0.1,1",
                                               "run.ticks=2,5"])
    assert [p.integer for p in params] == [True, False, True]
    assert np.all(saltelli(params, 8, seed=0)[:, 0] % 1 == 0)
