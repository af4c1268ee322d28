"""Humans who imitate models and are displaced by them (simweb.humans, issue 19), through the real loop.

Tolerances are sampling errors: binomial standard errors for shares, the replicates' standard error for
the stationary law (the reproduction's own pass rule, |mean − formula| ≤ Z_PASS SE).
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from simweb.engine import Engine
from simweb.executors import LocalExecutor
from simweb.humans import imitation_share, splice
from simweb.reproduce import Z_PASS, imitation_error, reproduce
from simweb.features import features_of
from tests.helpers import COLLAPSE, refused_run, scenario

HUMANS = COLLAPSE + """
[[publishers]]
name = "humans"
site_share = 0.5
initial_pages = 200
pages_per_tick = 400
ai_adoption = { start = 0.0, end = 0.0 }
"""
SMALL = ("web.initial_sites=60", "run.ticks=6", "labs.keep.filters=[{kind=\"classifier\", tpr=0.9, fpr=0.01}]")
IMITATE = ("publishers.humans.imitation={start=0.2, end=0.8, midpoint=2.0, rate=1.0}",)


def _run(*overrides, shards=1):
    return Engine(scenario(HUMANS, *SMALL, *overrides), executor=LocalExecutor(), shards=shards).run()


@pytest.fixture(scope="module")
def imitating():
    return _run(*IMITATE)


def test_the_stationary_error_law_diverges_as_kappa_goes_to_one():
    n = 20
    values = [imitation_error(n, k, 1.0, True) for k in (0.0, 0.5, 0.9, 0.95, 0.97)]
    assert math.isclose(values[0], 1 / n) and all(b > a for a, b in zip(values, values[1:]))
    assert imitation_error(n, 0.99, 1.0, True) == math.inf  # past n(1 − κ²) = κ: no stationary state


def test_the_moment_recursion_starts_at_sigma2_over_n_and_tends_to_the_stationary_law():
    from simweb.reproduce import imitation_curve

    for kappa in (0.0, 0.5, 0.9, 0.95):
        curve = imitation_curve(20, kappa, 2.0, True, 2000)
        assert math.isclose(curve[0], 2.0 / 20) and math.isclose(curve[-1], imitation_error(20, kappa, 2.0, True),
                                                                 rel_tol=1e-9)


def test_human_pages_imitate_with_the_share_of_their_tick(imitating):
    sc = scenario(HUMANS, *SMALL, *IMITATE)
    ticks = imitating.ticks.filter((pl.col("population") == "humans") & (pl.col("tick") >= 1))
    width = sc.language.doc_length
    for row in ticks.iter_rows(named=True):
        kappa = imitation_share(sc.publishers[1].imitation, row["tick"])
        humans = row["pages"] - row["ai_pages"]
        se = math.sqrt(kappa * (1 - kappa) / (width * humans))  # mean of Binomial(L, κ)/L over the human pages
        assert abs(row["human_imitation"] - kappa) <= 5 * se + 1e-12, row
    # the writers drift from the truth as they imitate; tick 0 has nothing to imitate
    first = imitating.ticks.filter((pl.col("population") == "humans") & (pl.col("tick") == 0)).row(0, named=True)
    assert first["human_imitation"] == 0 and first["human_excess_nll"] == 0
    assert ticks["human_excess_nll"].min() > 0
    assert (imitating.generations["train_imitation_fraction"].drop_nulls() >= 0).all()


def test_the_classifier_flags_imitating_human_pages_more_often(imitating):
    steps = imitating.crawls.filter((pl.col("filter") == "classifier") & (pl.col("imitating_in") > 0))
    dropped, seen = steps["imitating_dropped"].sum(), steps["imitating_in"].sum()
    base = 0.01
    # its FPR on them is fpr + imitation·(tpr − fpr): well above the base rate by many binomial SEs
    assert dropped / seen > base + 5 * math.sqrt(base * (1 - base) / seen)
    assert imitating.crawls.filter(pl.col("filter") == "fetch")["imitating_fpr"].drop_nulls().max() == 0


def test_displacement_thins_the_human_pages_by_the_adoption():
    over = ("publishers.humans.ai_adoption={start=0.5, end=0.5}", "publishers.humans.displacement=0.8")
    res = _run(*over)
    rows = res.ticks.filter((pl.col("population") == "humans") & (pl.col("tick") >= 1))
    n, a, s = 400, 0.5, 0.8
    stay = (1 - a) * (1 - s * a)  # a page is human, and not displaced
    for row in rows.iter_rows(named=True):
        humans = row["pages"] - row["ai_pages"]
        assert abs(humans - n * stay) <= 5 * math.sqrt(n * stay * (1 - stay)), row
        assert row["ai_pages"] <= n


def test_the_web_is_the_same_for_any_number_of_shards(imitating):
    other = _run(*IMITATE, shards=3)
    for name in ("generations", "ticks", "crawls"):
        a, b = getattr(imitating, name), getattr(other, name)
        assert a.columns == b.columns
        for col in a.columns:
            assert a[col].equals(b[col]), f"{name}.{col} differs between 1 and 3 shards"


def test_without_the_keys_no_column_is_added():
    sc = scenario(HUMANS, *SMALL)
    assert "humans" not in features_of(sc)
    res = _run()
    assert "train_imitation_fraction" not in res.generations.columns and "imitating_in" not in res.crawls.columns
    assert "human_imitation" not in res.ticks.columns


def test_a_current_reserve_is_as_imitating_as_the_humans():
    res = _run(*IMITATE, "labs.keep.reserve_docs=500", "labs.keep.reserve_fraction=0.3",
               "labs.keep.reserve_vintage=current", "labs.keep.filters=[]", "labs.keep.crawl_budget=50")
    fixed = _run(*IMITATE, "labs.keep.reserve_docs=500", "labs.keep.reserve_fraction=0.3",
                 "labs.keep.reserve_vintage=fixed", "labs.keep.filters=[]", "labs.keep.crawl_budget=50")
    keep = lambda r: r.generations.filter((pl.col("lab") == "keep") & (pl.col("generation") >= 2))
    assert (keep(res)["train_imitation_fraction"] > keep(fixed)["train_imitation_fraction"]).all()


def test_splice_takes_exactly_k_tokens_from_the_model():
    rng = np.random.default_rng(0)
    truth, model = np.zeros((50, 16), dtype=np.int32), np.ones((50, 16), dtype=np.int32)
    k = rng.integers(0, 17, size=50)
    out = splice(truth, model, k, rng=rng)
    assert (out.sum(axis=1) == k).all()


@pytest.mark.parametrize("override, field", [
    ("publishers.humans.imitation={start=0.6, end=0.2}", "publishers[1].imitation.end"),
    ("publishers.humans.imitation={start=-0.1}", "publishers[1].imitation.start"),
    ("publishers.humans.imitation={end=1.5}", "publishers[1].imitation.end"),
    ("publishers.humans.imitation={rate=-1}", "publishers[1].imitation.rate"),
    ("publishers.humans.imitation={speed=1}", "publishers[1].imitation"),
    ("publishers.humans.displacement=-0.2", "publishers[1].displacement"),
    ("publishers.humans.displacement=1.5", "publishers[1].displacement"),
    ("publishers.humans.displacement=\"lots\"", "publishers[1].displacement"),
    ("labs.keep.reserve_vintage=\"stale\"", "labs[1].reserve_vintage"),
    ("labs.replace.reserve_vintage=\"current\"", "labs[0].reserve_vintage"),  # without a reserve_fraction
])
def test_bad_keys_exit_2_with_one_line_naming_the_field(tmp_path, override, field):
    line = refused_run(tmp_path, HUMANS, override)
    assert field in line, line


@pytest.mark.slow  # a hundred replicates of the gaussian loop per κ
def test_the_stationary_error_follows_the_law_at_several_kappa():
    table = reproduce(replicates=100, only=["imitation_k50", "imitation_k90", "imitation_k95"],
                      overrides=["run.ticks=60"])
    assert table.height == 3 and (table["z"].abs() <= Z_PASS).all(), table
    table = table.filter(table["target"] != "imitation_k95")
    means = table.sort("formula")["simulated_mean"].to_list()
    se = table.sort("formula")["std_error"].to_list()
    assert means[1] - means[0] > 4 * math.hypot(*se)  # more imitation, a worse fit: it grows toward divergence


def test_humans_kill_then_resume_gives_the_uninterrupted_output(tmp_path):
    """The imitation column of the page index, the trainers' pools and the current reserve survive a restart."""
    import os
    import signal
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scenarios" / "humans.toml"
    args = ["--executor", "local", "--quiet", "--set", "run.ticks=7", "--set", "evaluation.forensics_tokens=5000"]

    def simweb(*extra, crash_at=None):
        env = {k: v for k, v in os.environ.items() if k != "SIMWEB_CRASH_AT_TICK"}
        if crash_at is not None:
            env["SIMWEB_CRASH_AT_TICK"] = str(crash_at)
        return subprocess.run([sys.executable, "-m", "simweb", *map(str, extra)], capture_output=True, text=True,
                              env=env, timeout=600)

    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert simweb("run", path, "--out", whole, *args).returncode == 0
    killed = simweb("run", path, "--out", broken, *args, crash_at=4)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert simweb("resume", broken, "--quiet").returncode == 0
    for name in ("generations.parquet", "ticks.parquet", "crawls.parquet"):
        assert (broken / name).read_bytes() == (whole / name).read_bytes(), name
    # and the report draws the human writers' drift from the truth
    assert simweb("report", whole).returncode == 0 and (whole / "report" / "human_drift.png").stat().st_size > 0



def test_a_current_reserve_is_as_old_as_its_purchase_in_data_age():
    # a reserve bought every generation from the writers of the day is drawn from the truth of the release
    # tick (age 0), not of tick 0: the same crawl and web, the fixed reserve's age (tick) counted out of data_age
    fixed = _run("labs.keep.reserve_vintage=\"fixed\"").generations.filter(pl.col("lab") == "keep")
    current = _run("labs.keep.reserve_vintage=\"current\"").generations.filter(pl.col("lab") == "keep")
    for a, b in zip(fixed.iter_rows(named=True), current.iter_rows(named=True)):
        assert (a["train_web_docs"], a["train_reserve_docs"]) == (b["train_web_docs"], b["train_reserve_docs"])
        dated = a["train_web_docs"] + a["train_reserve_docs"] + a["train_anchor_docs"]
        expected = a["data_age"] - a["train_reserve_docs"] * a["tick"] / dated
        assert math.isclose(b["data_age"], expected, rel_tol=1e-9, abs_tol=1e-12), (a, b)
