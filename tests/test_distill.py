"""Distillation: labs that train on documents sampled straight from each other's released models."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from simweb.engine import Engine
from simweb.executors import LocalExecutor
from simweb.scenario import parse_scenario

WEB, OWN, FROM_OTHER = 20, 1380, 600  # documents per generation: fresh web pages, own samples, the other's
TWO_LABS = f"""
[run]
name = "distill"
ticks = 4
executor = "local"

[language]
family = "gaussian"

[web]
initial_sites = 20
sites_per_tick = 0

[[publishers]]
name = "people"
site_share = 1.0
pages_per_tick = 2000
ai_adoption = {{ start = 0.0, end = 0.0 }}

[[labs]]
name = "a"
model = {{ family = "gaussian" }}
release_every = 1
crawl_budget = {WEB}
new_only = true
self_augment = {OWN}
distill = [{{ from = "b", docs = {FROM_OTHER} }}]

[[labs]]
name = "b"
model = {{ family = "gaussian" }}
release_every = 1
crawl_budget = {WEB}
new_only = true
self_augment = {OWN}
distill = [{{ from = "a", docs = {FROM_OTHER} }}]

[evaluation]
human_docs = 50
sample_docs = 50
benchmark_docs = 0
"""


def means(seed: int, *overrides: str) -> tuple[np.ndarray, pl.DataFrame]:
    """Each lab's released mean after every tick, through the real loop; and the generations table."""
    sc = parse_scenario(TWO_LABS, [f"run.seed={seed}", *overrides])
    engine = Engine(sc, executor=LocalExecutor())
    out = []
    results = engine.run(on_tick=lambda tick: out.append([float(np.ravel(engine.registry[i][1]["mean"])[0])
                                                          for i in range(2)]))
    return np.array(out), results.generations


def test_distilled_documents_count_as_the_source_labs():
    _, g = means(0)
    n = WEB + OWN + FROM_OTHER
    later = g.filter(pl.col("generation") >= 1)
    assert (later["train_docs"] == n).all() and (later["train_distill_docs"] == FROM_OTHER).all()
    assert later["train_ai_fraction"].to_list() == pytest.approx([(OWN + FROM_OTHER) / n] * len(later))
    by_lab = later["train_ai_fraction_by_lab"].to_list()
    labs = later["lab"].to_list()
    for lab, shares in zip(labs, by_lab):
        other = "b" if lab == "a" else "a"
        assert shares[other] == pytest.approx(FROM_OTHER / n) and shares[lab] == pytest.approx(OWN / n)
    first = g.filter(pl.col("generation") == 0)  # nothing released yet: nothing to distil
    assert (first["train_distill_docs"] == 0).all() and (first["train_ai_fraction"] == 0).all()


@pytest.mark.parametrize("distil", [True, False], ids=["distil", "alone"])
def test_two_labs_that_distil_each_other_converge_at_the_rate_of_the_linear_recursion(distil):
    """E[d_{g+1} | d_g] = (s − λ) d_g for the gap d = μ_a − μ_b between the labs' means.

    Lab a fits generation g+1 by maximum likelihood, so its mean is the mean of its training set:
    w fresh human pages (mean μ* in expectation), s own samples (mean μ_a), λ samples of b (mean μ_b),
    as shares of the set: μ_a' = w x̄_a + s ȳ_a + λ ȳ_b, and symmetrically for b. The fresh pages of the two
    labs have the same expectation and every sample mean is unbiased, so the gap follows the linear
    recursion E[d'] = (s − λ) d: with s = 1380/2000 and λ = 600/2000 it shrinks by 0.39 a generation
    (without distillation, λ = 0 and s = 1380/1400: 0.986). The slope of d_{g+1} on d_g through the origin
    over replicates estimates it; its standard error comes from the residuals.
    """
    rate = (OWN - FROM_OTHER) / (WEB + OWN + FROM_OTHER) if distil else OWN / (WEB + OWN)
    alone = () if distil else ("labs.a.distill=[]", "labs.b.distill=[]")
    x, y = [], []
    for seed in range(12):
        m, _ = means(seed, *alone)
        d = m[:, 0] - m[:, 1]
        x += list(d[:-1])
        y += list(d[1:])
    x, y = np.array(x), np.array(y)
    slope = (x @ y) / (x @ x)
    se = np.sqrt(((y - slope * x) ** 2).sum() / (len(x) - 1) / (x @ x))
    assert abs(slope - rate) <= 4 * se, (slope, rate, se)


def test_js_divergence_is_zero_for_one_law_and_ln2_for_disjoint_ones():
    from simweb.agents.evaluator import js

    p = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert js(p, p) == pytest.approx([0.0, 0.0])
    assert js(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(np.log(2))


def test_labs_that_distil_each_other_grow_alike():
    """lab_divergence: JS between the labs' next-token laws on true contexts. Two labs on a web of their own
    samples drift apart; distilling each other heavily keeps them closer (arXiv 2505.21677)."""
    from tests.helpers import COLLAPSE

    base = ["labs.keep.market_share=1.0", "labs.keep.regime=replace", "labs.keep.new_only=true",
            "labs.keep.reserve_fraction=0.0", "run.ticks=6"]
    each_other = ["labs.replace.distill=[{from='keep', docs=300}]", "labs.keep.distill=[{from='replace', docs=300}]"]
    weak = ["labs.replace.distill=[{from='keep', docs=1}]", "labs.keep.distill=[{from='replace', docs=1}]"]
    import simweb

    def late(overrides):
        g = simweb.run(parse_scenario(COLLAPSE, [*base, *overrides])).generations
        row = g.filter((pl.col("lab") == "replace") & (pl.col("generation") >= 3))
        return row["lab_divergence"].struct.field("keep").mean(), g

    close, g = late(each_other)
    apart, _ = late(weak)
    first = g.filter(pl.col("generation") == 0)["lab_divergence"].to_list()
    assert all(v is None for d in first for v in d.values())  # nothing released before tick 0
    later = g.filter((pl.col("lab") == "replace") & (pl.col("generation") >= 1))
    assert later["lab_divergence"].struct.field("replace").is_null().all()  # not with itself
    assert 0 < close < apart < np.log(2)
