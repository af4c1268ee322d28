"""Data regimes through the real loop: what a generation's training set is drawn from, and how."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.stats import hypergeom

import simweb
from simweb.scenario import parse_scenario

N_PER_TICK, TRAIN, LABS = 40, 70, 40


def _subsample_scenario() -> str:
    # One population writes 40 human pages at tick 0 and 40 AI pages a tick after (by lab l0's latest model).
    # Every lab crawls exactly the 40 new pages a tick, so the pool of generation g holds 40 human pages and 40
    # of each generation 0..g−1: N_g = 40 (g + 1) pages, and the labs differ only in their subsample streams.
    labs = "".join(f"""
[[labs]]
name = "l{i}"
market_share = {1.0 if i == 0 else 0.0}
release_every = 1
crawl_budget = {N_PER_TICK}
new_only = true
regime = "accumulate_subsample"
train_docs = {TRAIN}
model = {{ family = "categorical" }}
""" for i in range(LABS))
    return f"""
[run]
name = "subsample"
seed = 21
ticks = 4
executor = "local"

[language]
family = "categorical"
outcomes = 4

[web]
initial_sites = 1
sites_per_tick = 0

[[publishers]]
name = "writers"
site_share = 1.0
initial_pages = 0
pages_per_tick = {N_PER_TICK}
uses = ["l0"]
ai_adoption = {{ start = 1.0, end = 1.0 }}

[evaluation]
human_docs = 20
sample_docs = 20
benchmark_docs = 0
{labs}"""


def test_accumulate_subsample_draws_without_replacement_afresh_each_generation():
    """The human pages in generation g's subsample, across 40 labs that differ only in their streams.

    A uniform subsample of m = 70 from the pool of N_g = 40 (g+1) pages, drawn without replacement, holds
    H_g ~ Hypergeometric(N_g, 40 human, 70) human pages: every page is in it with probability m/N_g. So:

    - H_1 lies in [m − 40, 40] = [30, 40] (only 40 AI pages can fill the rest);
    - Var H_1 = m p (1 − p)(N − m)/(N − 1) = 2.2; drawn with replacement it would be binomial, m p (1 − p) = 17.5;
    - E[H_g] = m · 40 / N_g: 35, 23.3, 17.5. A subsample drawn once and kept would hold H_2 = H_3 = H_1 ≈ 35;
    - conditional on its AI count, each AI page in it is equally likely from any generation 0..g−1, so
      E[train_mean_ai_generation] = (g − 1)/2 exactly; a stale subsample keeps generation 0 only.

    Tolerances: 5 SEs of the 40 labs' mean (σ/√40) and of their sample variance (√((μ4 − σ⁴)/40), μ4 from the
    hypergeometric kurtosis); the labs' subsamples come from independent streams.
    """
    res = simweb.run(parse_scenario(_subsample_scenario()), executor="local")
    g = res.generations.sort("lab", "generation")
    assert g.height == LABS * 4
    first = g.filter(pl.col("generation") == 0)
    assert (first["train_docs"] == N_PER_TICK).all() and (first["train_ai_fraction"] == 0).all()  # pool ≤ m: all of it
    for gen in (1, 2, 3):
        rows = g.filter(pl.col("generation") == gen)
        assert (rows["train_docs"] == TRAIN).all(), gen
        humans = np.rint(TRAIN * (1 - rows["train_ai_fraction"].to_numpy()))
        pool = N_PER_TICK * (gen + 1)
        mean, var, _, kurt = (float(v) for v in hypergeom(pool, N_PER_TICK, TRAIN).stats(moments="mvsk"))
        assert humans.min() >= TRAIN - (pool - N_PER_TICK) and humans.max() <= N_PER_TICK, (gen, humans)
        assert abs(humans.mean() - mean) < 5 * math.sqrt(var / LABS), (gen, humans.mean(), mean)
        fourth = (kurt + 3) * var ** 2
        assert abs(humans.var(ddof=1) - var) < 5 * math.sqrt((fourth - var ** 2) / LABS), (gen, humans.var(ddof=1), var)
        ai_gen = rows["train_mean_ai_generation"].to_numpy()
        expected = (gen - 1) / 2
        if gen == 1:
            assert (ai_gen == 0).all()
        else:
            assert abs(ai_gen.mean() - expected) < 5 * ai_gen.std(ddof=1) / math.sqrt(LABS) + 1e-12, (gen, ai_gen.mean())


_HUMANS = """
[run]
name = "window"
seed = 8
ticks = 7
executor = "local"

[language]
family = "gaussian"

[web]
initial_sites = 4
sites_per_tick = 0

[[publishers]]
name = "humans"
site_share = 1.0
pages_per_tick = 20
ai_adoption = { start = 0.0, end = 0.0 }

[[labs]]
name = "w3"
release_every = 1
crawl_budget = 20
new_only = true
regime = { kind = "window", window_ticks = 3 }
model = { family = "gaussian" }

[[labs]]
name = "w1"
release_every = 1
crawl_budget = 20
new_only = true
regime = { kind = "window", window_ticks = 1 }
model = { family = "gaussian" }

[[labs]]
name = "replace"
release_every = 1
crawl_budget = 20
new_only = true
model = { family = "gaussian" }

[[labs]]
name = "accumulate"
release_every = 1
crawl_budget = 20
new_only = true
regime = "accumulate"
model = { family = "gaussian" }

[[labs]]
name = "archive"
release_every = 1
crawl_budget = 20
snapshot = 0
model = { family = "gaussian" }

[[labs]]
name = "cutoff"
release_every = 1
crawl_budget = 20
filters = [{ kind = "date_cutoff", tick = 0 }]
model = { family = "gaussian" }

[evaluation]
human_docs = 50
benchmark_docs = 0
"""


def test_a_window_trains_on_the_last_w_ticks_of_crawls():
    gens = simweb.run(parse_scenario(_HUMANS)).generations
    w3, w1, replace = (gens.filter(pl.col("lab") == name).sort("generation") for name in ("w3", "w1", "replace"))
    t = w3["tick"].to_numpy()
    assert w3["train_web_docs"].to_list() == [20 * min(k + 1, 3) for k in t]
    # the mean age of W ticks of data, one batch per tick: (0 + 1 + … + (W−1)) / W
    np.testing.assert_allclose(w3["data_age"], [np.mean(np.arange(min(k + 1, 3))) for k in t])
    # a window of one tick is replace
    assert w1["mean_sq_error"].equals(replace["mean_sq_error"]) and (w1["data_age"] == 0).all()


def test_accumulate_trains_on_every_page_ever_kept():
    """An unbounded window: generation k trains on the 20 pages of each of the k + 1 crawls so far, mean age k/2."""
    gens = simweb.run(parse_scenario(_HUMANS)).generations
    acc = gens.filter(pl.col("lab") == "accumulate").sort("generation")
    t = acc["tick"].to_numpy()
    assert acc["train_web_docs"].to_list() == [20 * (k + 1) for k in t]
    np.testing.assert_allclose(acc["data_age"], t / 2)


def test_an_archive_snapshot_crawls_its_whole_budget_where_a_cutoff_filter_starves():
    gens = simweb.run(parse_scenario(_HUMANS)).generations
    archive, cutoff = (gens.filter(pl.col("lab") == name).sort("generation") for name in ("archive", "cutoff"))
    assert (archive["kept_pages"] == 20).all()
    np.testing.assert_array_equal(archive["data_age"], archive["tick"])  # every page is from tick 0
    # the cut-off filter's crawl spends its budget on the whole web and drops everything after tick 0
    assert cutoff["kept_pages"][-1] < 20
