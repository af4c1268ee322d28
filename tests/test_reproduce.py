"""Smaller versions of every literature target, through the real loop, against their own closed forms.

The pass rule is the reproduction's own: |mean − formula| ≤ Z_PASS standard errors of the replicates.
Seeds are fixed, so the outcome is the same on every run; a loop that leaks the truth must fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simweb.models import CategoricalModel, GaussianModel
from simweb.reproduce import TARGETS, Z_PASS, absorption_by, reproduce

SHORT = ["run.ticks=40"]


@pytest.fixture(scope="module")
def short_table():
    names = [t.name for t in TARGETS if t.name != "shumailov_fixation"]
    return reproduce(replicates=200, only=names, overrides=SHORT)


@pytest.mark.slow  # hundreds of replicates of the loop
def test_every_short_target_matches_its_closed_form(short_table):
    assert short_table.height >= 15
    bad = short_table.filter(~short_table["passed"])
    assert bad.height == 0, bad.select("target", "quantity", "formula", "simulated_mean", "std_error", "z")
    assert (short_table["std_error"] > 0).all()


@pytest.mark.slow  # hundreds of replicates of the loop
def test_fixation_follows_the_starting_shares():
    table = reproduce(replicates=150, only=["shumailov_fixation"], overrides=["run.ticks=150"])
    assert table.height == 3 and table["passed"].all(), table
    # every replicate ended on one outcome
    assert math.isclose(table["simulated_mean"].sum(), 1.0)


def test_the_exact_absorption_chain_is_a_distribution_that_absorbs():
    probs = absorption_by(10, 0.3, 200)
    assert np.all(np.diff(probs) >= -1e-15) and probs[-1] > 0.999
    # generation 0 is absorbed only if all 10 human samples agree
    assert math.isclose(probs[0], 0.3 ** 10 + 0.7 ** 10)


@pytest.mark.slow  # hundreds of replicates of the loop
def test_a_trainer_that_leaks_the_true_gaussian_fails(monkeypatch):
    def leaky_fit(self, x, *, rng=None, prior=None):
        self.mean, self.var = np.zeros(self.dim), np.ones(self.dim)  # the language's parameters
        return self

    monkeypatch.setattr(GaussianModel, "fit", leaky_fit)
    table = reproduce(replicates=50, only=["shumailov_gaussian_mle", "shumailov_gaussian_unbiased"],
                      overrides=SHORT, workers=1)
    # every check past the first fit, where the loop has had time to drift, must catch the leak; but for the
    # unbiased variance E[σ²]/σ² = 1 is the truth's own value, so the leak meets it (E[ln σ²] catches it there)
    late = table.filter(~table["quantity"].str.contains("g=0:")
                        & ~((table["target"] == "shumailov_gaussian_unbiased") & table["quantity"].str.starts_with("E[σ²]")))
    assert late.height >= 4 and not late["passed"].any(), table


@pytest.mark.slow  # hundreds of replicates of the loop
def test_a_trainer_that_leaks_the_true_categorical_fails(monkeypatch):
    def leaky_fit(self, x, *, rng=None, prior=None):
        self.probs = np.array([0.3, 0.7])
        return self

    monkeypatch.setattr(CategoricalModel, "fit", leaky_fit)
    table = reproduce(replicates=50, only=["jangjoo_no_anchor"], overrides=SHORT, workers=1)
    # nothing is ever absorbed: every check with enough absorption to see fails
    strong = table.filter(table["formula"] > 0.5)
    assert strong.height >= 1 and not strong["passed"].any(), table


@pytest.mark.slow  # hundreds of replicates of the loop
def test_z_threshold_is_the_documented_one(short_table):
    assert ((short_table["z"].abs() <= Z_PASS) == short_table["passed"]).all()


def test_an_unbiased_variance_computed_as_the_mle_fails_the_unbiased_target(monkeypatch):
    """The MLE divides by n, not n − 1: per fit E[σ²] shrinks by (n−1)/n and E[ln σ²] by ln(n/(n−1)) more.

    At n = 10 that is 0.105 per fit against a per-fit SD of ln σ² of √ψ′(4.5) ≈ 0.50, so after t fits and R
    replicates the ln check is off by 0.21 √(tR) SEs: 6.6 at t = 10, R = 100 (9.4 at t = 20); E[σ²]/σ² falls to
    0.9^t. Both must fail where the correct estimator passes its formula.
    """
    fit = GaussianModel.fit

    def mle_fit(self, x, *, rng=None, prior=None):
        out = fit(self, x, rng=rng, prior=prior)
        self.var = np.asarray(x, dtype=np.float64).var(axis=0)  # ddof = 0 whatever the scenario asks
        return out

    monkeypatch.setattr(GaussianModel, "fit", mle_fit)
    small = ["run.ticks=20", "labs[0].crawl_budget=10", "publishers[0].initial_pages=10", "publishers[0].pages_per_tick=10"]
    table = reproduce(replicates=100, only=["shumailov_gaussian_unbiased"], overrides=small, workers=1)
    variance = table.filter(table["quantity"].str.starts_with("E[σ²]") | table["quantity"].str.starts_with("E[ln σ²]"))
    late = variance.filter(~variance["quantity"].str.contains("g=0:"))
    assert late.height == 4 and not late["passed"].any(), table


@pytest.mark.slow  # dozens of replicates of the loop
def test_the_best_window_of_a_drifting_truth_is_the_one_the_formula_predicts(monkeypatch):
    from simweb.agents.evaluator import Evaluator

    short = ["run.ticks=30"]
    table = reproduce(replicates=60, only=["drift_window"], overrides=short, workers=1)
    assert table.height == 9 and table["passed"].all(), table
    level = table.filter(table["quantity"].str.starts_with("E[(μ̂"))
    windows = [int(q.split("W=")[1].split(":")[0]) for q in level["quantity"]]
    assert windows[int(np.argmin(level["simulated_mean"]))] == windows[int(np.argmin(level["formula"]))] == 6
    # every paired difference has the formula's sign, beyond two standard errors
    paired = table.filter(table["quantity"].str.starts_with("best W"))
    assert (paired["simulated_mean"] < -2 * paired["std_error"]).all(), paired

    # an evaluator that judges every model against the truth of tick 0, not the present, must fail
    present = Evaluator.present
    monkeypatch.setattr(Evaluator, "present", lambda self, tick: present(self, 0))
    stale = reproduce(replicates=60, only=["drift_window"], overrides=short, workers=1)
    # (the widest window's error is so variable across replicates that 60 of them may not tell)
    stale_level = stale.filter(stale["quantity"].str.starts_with("E[(μ̂") & ~stale["quantity"].str.contains("W=24"))
    assert stale_level.height == 4 and not stale_level["passed"].any(), stale
