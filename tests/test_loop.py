"""The loop's bookkeeping, counted exactly: generation g of a lab is its (g+1)-th fit, trained on generation g−1's pages.

Every closed form in simweb/reproduce.py puts t = g + 1 fits behind generation g. The literature checks are
statistical and an off-by-one in the generation count moves them by less than their tolerance; here the fits
are counted and each generation's row is tied to the fit that made it, with no tolerance at all.
"""

from __future__ import annotations

import numpy as np
import polars as pl

import simweb
from simweb.models import GaussianModel
from simweb.scenario import parse_scenario

# Two gaussian labs told apart by their variance estimator: "every" releases each tick from tick 0,
# "sparse" every other tick from tick 1. Publishers use only "every", so after tick 0 the web holds
# exactly its pages, n = 50 per tick, written by its latest released generation.
TWO_LABS = """
[run]
name = "fits"
seed = 5
ticks = 6
executor = "local"

[language]
family = "gaussian"
dim = 2
mean = 0.5
std = 2.0

[web]
initial_sites = 1
sites_per_tick = 0

[[publishers]]
name = "writers"
site_share = 1.0
initial_pages = 50
pages_per_tick = 50
uses = ["every"]
ai_adoption = { start = 1.0, end = 1.0 }

[[labs]]
name = "every"
release_every = 1
crawl_budget = 50
new_only = true
model = { family = "gaussian", variance = "mle" }

[[labs]]
name = "sparse"
market_share = 0.0
release_every = 2
first_release = 1
crawl_budget = 30
new_only = true
model = { family = "gaussian", variance = "unbiased" }

[evaluation]
human_docs = 20
benchmark_docs = 0
"""


def test_generation_g_is_the_labs_g_plus_first_fit_and_its_row_describes_that_fit(monkeypatch):
    fits: dict[str, list[dict]] = {"mle": [], "unbiased": []}
    fit = GaussianModel.fit

    def counting_fit(self, x, *, rng=None, prior=None):
        out = fit(self, x, rng=rng, prior=prior)
        fits[self.variance].append({"n": len(x), "mean": self.mean.copy(), "var": self.var.copy()})
        return out

    monkeypatch.setattr(GaussianModel, "fit", counting_fit)
    sc = parse_scenario(TWO_LABS)
    gens = simweb.run(sc, executor="local").generations.sort("lab", "generation")
    mu, s2 = sc.language.mean, sc.language.std ** 2
    for lab, variance, ticks, n in [("every", "mle", [0, 1, 2, 3, 4, 5], 50), ("sparse", "unbiased", [1, 3, 5], 30)]:
        rows = gens.filter(pl.col("lab") == lab)
        made = fits[variance]
        assert len(made) == rows.height == len(ticks), f"{lab}: {len(made)} fits for {rows.height} generations"
        assert rows["generation"].to_list() == list(range(len(ticks))), lab
        assert rows["tick"].to_list() == ticks, lab
        for g, (row, f) in enumerate(zip(rows.iter_rows(named=True), made)):
            assert f["n"] == n == row["train_docs"], (lab, g)
            # the row's metrics are the (g+1)-th fit's parameters against the truth, exactly
            assert row["var_ratio"] == np.mean(f["var"] / s2), (lab, g)
            assert row["mean_sq_error"] == np.sum((f["mean"] - mu) ** 2), (lab, g)
    # each fit of "every" after the first trained only on the pages of the generation before it
    every = gens.filter(pl.col("lab") == "every")
    assert every["train_ai_fraction"].to_list() == [0.0] + [1.0] * 5
    assert every["train_mean_ai_generation"].to_list() == [None, 0.0, 1.0, 2.0, 3.0, 4.0]

