"""A truth that moves: the walk's law, its own streams, and the stationary limit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import simweb
from simweb.errors import ScenarioError
from simweb.language import build_language
from simweb.language.drift import GaussianWalk
from simweb.scenario import parse_scenario
from simweb.scenario.models import GaussianLanguage as GaussianConfig

# one population of human writers, one lab that fits each tick's new pages
HUMANS = """
[run]
name = "drift"
seed = 5
ticks = 8
executor = "local"

[language]
family = "gaussian"
dim = 2

[web]
initial_sites = 5
sites_per_tick = 0

[[publishers]]
name = "humans"
site_share = 1.0
pages_per_tick = 50
ai_adoption = { start = 0.0, end = 0.0 }

[[labs]]
name = "lab"
release_every = 1
crawl_budget = 50
new_only = true
model = { family = "gaussian", variance = "mle" }

[evaluation]
human_docs = 100
benchmark_docs = 0
"""


def test_the_walk_has_variance_t_tau_squared_per_coordinate():
    tau, t, size = 0.3, 9, 20_000
    walk = GaussianWalk(seed=1, size=size, sd=tau)
    x = walk.offset(t)
    assert np.all(walk.offset(0) == 0)
    # E[x²] = tτ² with SD √2·tτ² per coordinate
    assert abs(np.mean(x ** 2) - t * tau ** 2) < 5 * math.sqrt(2 / size) * t * tau ** 2
    # steps are independent of one another: successive increments are uncorrelated
    d1, d2 = walk.offset(4) - walk.offset(3), walk.offset(5) - walk.offset(4)
    assert abs(np.corrcoef(d1, d2)[0, 1]) < 5 / math.sqrt(size)


def test_the_walk_is_the_same_in_any_order_and_any_process():
    a, b = GaussianWalk(seed=7, size=3, sd=1.0), GaussianWalk(seed=7, size=3, sd=1.0)
    late = a.offset(6)
    for t in range(7):
        b.offset(t)
    np.testing.assert_array_equal(late, b.offset(6))


def test_at_is_the_language_itself_without_drift_and_a_cached_truth_with_it():
    still = build_language(GaussianConfig(family="gaussian"), 3)
    assert still.at(0) is still and still.at(40) is still
    zero = build_language(GaussianConfig(family="gaussian", drift={"mean_step_sd": 0.0}), 3)
    assert zero.at(12) is zero
    moving = build_language(GaussianConfig(family="gaussian", mean=2.0, drift={"mean_step_sd": 0.5}), 3)
    assert moving.at(4) is moving.at(4) and moving.at(4).at(2) is moving.at(2)
    np.testing.assert_array_equal(moving.at(0).mean, [2.0])
    np.testing.assert_allclose(moving.at(4).mean, 2.0 + moving.walk.offset(4))
    assert not np.allclose(moving.at(4).mean, moving.at(3).mean)


def test_drift_moves_the_truth_and_nothing_else():
    """Each tick's human pages are the stationary run's plus that tick's offset, so a lab that fits only the
    newest tick's pages has exactly the stationary error against the present: drift changed no other draw."""
    still = simweb.run(parse_scenario(HUMANS))
    moving = simweb.run(parse_scenario(HUMANS + '\n[language.drift]\nmean_step_sd = 0.4\n'))
    for table in ("ticks", "crawls"):
        a, b = getattr(still, table).drop("run_id"), getattr(moving, table).drop("run_id")
        assert a.equals(b), table
    g0, g1 = still.generations, moving.generations
    for col in ("mean_sq_error", "var_ratio", "excess_nll", "human_nll"):
        np.testing.assert_allclose(g1[col], g0[col], rtol=1e-9, atol=1e-12, err_msg=col)
    assert (g0["staleness"] == 0).all() and (g0["mean_sq_error_end"] == g0["mean_sq_error"]).all()
    # against the truth one tick later the moving world's model is worse on average
    assert (g1["mean_sq_error_end"] - g1["mean_sq_error"]).mean() > 0
    assert (g1["data_age"] == 0).all()


@pytest.mark.parametrize("value", ["-0.1", "nan"])
def test_a_bad_step_is_refused_naming_the_field(value):
    with pytest.raises(ScenarioError, match=r"language\.drift\.mean_step_sd"):
        parse_scenario(HUMANS + f"\n[language.drift]\nmean_step_sd = {value}\n")


def test_categorical_logits_walk_and_impossible_outcomes_stay_impossible():
    from simweb.scenario.models import CategoricalLanguage as CategoricalConfig

    cfg = CategoricalConfig(family="categorical", outcomes=4, probs=(0.5, 0.3, 0.2, 0.0),
                            drift={"logit_step_sd": 0.7})
    lang = build_language(cfg, 11)
    assert lang.at(0).probs.tolist() == [0.5, 0.3, 0.2, 0.0]
    p = lang.at(6).probs
    assert math.isclose(p.sum(), 1.0) and p[3] == 0.0
    # log-odds move by exactly the walk's difference
    off = lang.walk.offset(6)
    np.testing.assert_allclose(np.log(p[0] / p[1]), np.log(0.5 / 0.3) + off[0] - off[1])
    still = build_language(cfg.model_copy(update={"drift": None}), 11)
    assert still.at(6) is still


def _markov(**drift):
    from simweb.scenario.models import MarkovLanguage as MarkovConfig

    return build_language(MarkovConfig(vocab_size=40, topics=3, doc_length=12, classes=4, drift=drift or None), 9)


def test_markov_popularity_walks_log_normally_and_shares_the_chains():
    still, moving = _markov(), _markov(topic_sigma=0.6)
    assert still.at(5) is still and moving.at(0) is moving
    np.testing.assert_array_equal(moving.start, still.start)  # drift changes nothing at tick 0
    t5 = moving.at(5)
    off = moving._drift.topic_walk.offset(5)
    np.testing.assert_allclose(np.log(t5.topic_probs / t5.topic_probs[0]),
                               np.log(still.topic_probs / still.topic_probs[0]) + off - off[0])
    assert t5.transition is moving.transition and t5._alias() is moving._alias()
    docs, _ = still.sample(200, rng=np.random.default_rng(0))
    want = np.logaddexp.reduce(still.topic_log_likelihood(docs) + np.log(t5.topic_probs), axis=1)
    np.testing.assert_allclose(t5.log_prob(docs), want)


def test_markov_boosts_walk_and_each_tick_writes_from_its_own_truth(tmp_path):
    import polars as pl

    from tests.helpers import COLLAPSE, scenario

    lang = _markov(boost_sigma=0.8)
    t3 = lang.at(3)
    assert not np.allclose(t3.transition, lang.transition)
    np.testing.assert_allclose(t3.transition.sum(axis=2), 1.0)
    # human pages of tick 2 are more likely under the truth of tick 2 than under that of tick 0 (E = a KL > 0)
    sc = scenario(COLLAPSE, "run.ticks=3", "publishers[0].ai_adoption.start=0.0", "publishers[0].ai_adoption.end=0.0",
                  "language.drift={boost_sigma=1.0}")
    simweb.run(sc, out=tmp_path / "run")
    truth = build_language(sc.language, sc.run.seed)
    pages = pl.read_ipc(next((tmp_path / "run" / "pages" / "tick=00002").glob("*.arrow")))
    docs = np.stack(pages["content"].to_list()).astype(np.int64)
    assert truth.at(2).log_prob(docs).mean() > truth.at(0).log_prob(docs).mean() + 1.0
    tick0 = pl.read_ipc(next((tmp_path / "run" / "pages" / "tick=00000").glob("*.arrow")))
    docs0 = np.stack(tick0["content"].to_list()).astype(np.int64)
    assert truth.at(0).log_prob(docs0).mean() > truth.at(2).log_prob(docs0).mean() + 1.0
