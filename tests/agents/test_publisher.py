from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import simweb
from simweb.agents.publisher import Publisher, _stable_order, adoption_share, sampling_settings
from simweb.engine import Engine
from simweb.scenario.models import Adoption
from tests.helpers import COLLAPSE, scenario


def test_adoption_is_the_logistic_curve():
    cfg = Adoption(start=0.1, end=0.9, midpoint=5.0, rate=0.7)
    for tick in (0, 3, 5, 8, 40):
        expected = 0.1 + 0.8 / (1 + math.exp(-0.7 * (tick - 5)))
        assert math.isclose(adoption_share(cfg, tick), expected, rel_tol=1e-12)
    assert adoption_share(Adoption(start=0.3, end=0.3), 100) == 0.3


def test_ai_share_of_new_pages_follows_adoption_within_sampling_error():
    sc = scenario(COLLAPSE, "run.ticks=8", "publishers[0].pages_per_tick=4000",
                  "publishers[0].ai_adoption={start=0.0, end=0.9, midpoint=3.0, rate=1.0}")
    res = simweb.run(sc)
    cfg = sc.publishers[0].ai_adoption
    for row in res.ticks.filter(pl.col("tick") >= 1).iter_rows(named=True):
        p = adoption_share(cfg, row["tick"])
        se = math.sqrt(p * (1 - p) / row["pages"])
        assert abs(row["ai_share_new"] - p) < 5 * se + 1e-12, (row["tick"], row["ai_share_new"], p)
    first = res.ticks.filter(pl.col("tick") == 0)
    assert first["ai_pages"][0] == 0  # no model is released before tick 0 ends


def test_market_share_splits_ai_pages_between_labs():
    sc = scenario(COLLAPSE, "labs.keep.market_share=3.0", "publishers[0].pages_per_tick=6000", "run.ticks=2")
    sim = Engine(sc)
    sim.step()
    sim.step()
    lab = sim.pages()["lab"][sim.pages()["tick"] == 1]
    share_keep = float((lab == 1).mean())
    se = math.sqrt(0.75 * 0.25 / len(lab))
    assert abs(share_keep - 0.75) < 5 * se


def test_uses_restricts_the_labs_a_population_draws_on():
    sim = Engine(scenario(COLLAPSE, 'publishers[0].uses=["keep"]', "labs.keep.market_share=0.1", "run.ticks=3"))
    for _ in range(3):
        sim.step()
    ai = sim.pages()["origin"] == 1
    assert ai.any() and (sim.pages()["lab"][ai] == 1).all()


def test_human_pages_follow_site_topics_with_topic_focus():
    sc = scenario(COLLAPSE, "publishers[0].ai_adoption={start=0.0, end=0.0}", "publishers[0].topic_focus=1.0")
    sim = Engine(sc)
    sim.step()
    site_topic = sim.graph.topic[sim.pages()["site_id"]]
    assert np.array_equal(sim.pages()["topic"], site_topic)
    assert isinstance(sim.publishers[0], Publisher)  # the driver counts pages with the populations' Publishers


def test_sampling_settings_are_those_of_the_populations_that_can_pick_the_lab():
    sc = scenario(COLLAPSE, "publishers.all.temperature=0.8")
    assert sampling_settings(sc, 0, "mark") == [(0.8, 0.95, "mark")]
    assert sampling_settings(sc, 1) == []  # market share 0: never picked
    assert sampling_settings(scenario(COLLAPSE, "publishers.all.uses=['keep']"), 0) == []
    assert sampling_settings(scenario(COLLAPSE, "publishers.all.pages_per_tick=0"), 0) == []
    assert sampling_settings(scenario(COLLAPSE, "publishers.all.ai_adoption.end=0.0",
                                      "publishers.all.ai_adoption.start=0.0"), 0) == []


@pytest.mark.parametrize("high", [1, 3, 2**16 - 1, 2**16, 2**16 + 1, 200_000, 2**31 - 1])
def test_the_radix_order_of_pages_is_numpys_stable_order(high):
    # the driver groups each shard's sites in site order: _stable_order must give exactly
    # np.argsort(kind="stable") — 16-bit keys by one radix pass, wider ones by two (low half first)
    rng = np.random.default_rng(high)
    for n in (0, 1, 7, 5000):
        for dtype in (np.int32, np.int64, np.uint32):
            keys = rng.integers(0, high + 1, size=n).astype(dtype)
            assert np.array_equal(_stable_order(keys), np.argsort(keys, kind="stable")), (high, n, dtype)


def test_keys_the_radix_passes_cannot_order_get_numpys_order():
    for keys in ([2**32 + 1, 1, 0, 2**32 + 1], [-1, 1, 0, 70_000, -1], [-3, 2, -3], [0.5, 0.25, 0.5]):
        assert np.array_equal(_stable_order(np.array(keys)), np.argsort(np.array(keys), kind="stable")), keys


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_each_shard_is_sent_only_counts_of_its_own_sites_and_plans_their_pages(n_shards):
    from simweb.agents.publisher import PublisherShard, plan_sites, shard_of

    sc = scenario(COLLAPSE, "run.ticks=3", "web.initial_sites=700", "publishers[0].pages_per_tick=5000")
    sim = Engine(sc)
    sim.step()
    first = sim.n_pages  # tick 1: ids start past tick 0's pages
    assert first > 0
    parts, n = plan_sites(sim.publishers, 1, sim.graph.population, sim.graph.topic, sim.released, first, n_shards)
    assert len(parts) == n_shards and n == 5000
    # what the driver sends is O(sites): a row per site with pages, never one per page
    assert sum(len(p["site_id"]) for p in parts) <= sim.graph.n_sites
    for s, part in enumerate(parts):
        assert (shard_of(part["site_id"], n_shards) == s).all() and (np.diff(part["site_id"]) > 0).all()
        assert (part["count"] > 0).all() and np.array_equal(part["topic"], sim.graph.topic[part["site_id"]])
    # a site's pages take consecutive ids, in site order: the first ids and counts tile the tick's ids
    rows = np.concatenate([p["first"] for p in parts]), np.concatenate([p["count"] for p in parts])
    order = np.argsort(rows[0])
    assert rows[0][order][0] == first and np.array_equal(np.cumsum(rows[1][order])[:-1], rows[0][order][1:] - first)
    sim.step()
    pages = sim.pages()
    tick1 = np.flatnonzero(pages["tick"] == 1)
    assert np.array_equal(tick1, np.arange(first, first + 5000))
    assert (np.diff(pages["site_id"][tick1]) >= 0).all()  # in site order
    if n_shards > 1:  # a shard refuses another's sites (a routing bug must not go unseen)
        shard = PublisherShard(sim.context, 0, n_shards)
        with pytest.raises(ValueError, match="another shard's sites"):
            shard.plan(1, parts[1], sim.released, first)


def test_a_population_s_pages_are_spread_over_its_sites_as_a_multinomial():
    """Each site gets Binomial(n, 1/k) of its population's n pages a tick (k sites): over 400 ticks the per-site
    counts have mean n/k and variance n(1/k)(1 − 1/k), within 5 standard errors."""
    sc = scenario(COLLAPSE, "publishers[0].pages_per_tick=300")
    pub = Engine(sc).publishers[0]
    k, n, ticks = 40, 300, 400
    counts = np.array([pub.counts(t, k, {}, 0) for t in range(1, ticks + 1)], dtype=np.float64)
    assert (counts.sum(axis=1) == n).all()
    p = 1 / k
    mean, var = n * p, n * p * (1 - p)
    values = counts.ravel()
    assert abs(values.mean() - mean) <= 5 * math.sqrt(var / len(values)) + 1e-12
    # the variance of a sample of m: its standard error is about var·sqrt(2/m) (near-normal counts)
    assert abs(values.var() - var) <= 5 * var * math.sqrt(2 / len(values))
    # sites are exchangeable: no site's mean is far from n/k over the ticks
    assert np.abs(counts.mean(axis=0) - mean).max() <= 5 * math.sqrt(var / ticks)


def test_a_page_s_kind_follows_copy_adoption_and_displacement_rates():
    """The pages drawn are those not displaced (q = (1 − c)(1 − s)·d·s of them never are): a copy with probability
    c/(1 − q), AI-written with (1 − c)s/(1 − q), human otherwise."""
    from simweb.agents.publisher import AI

    sc = scenario(COLLAPSE, "publishers[0].copy_rate=0.2", "publishers[0].ai_adoption={start=0.6, end=0.6}",
                  "publishers[0].displacement=0.5")
    pub = Engine(sc).publishers[0]
    c, s, d = 0.2, 0.6, 0.5
    share, copy, q = pub.rates(5, {0: 1}, 100)
    assert (share, copy) == (s, c) and math.isclose(q, (1 - c) * (1 - s) * d * s)
    m = 200_000
    rng = np.random.default_rng(1)
    u = {name: rng.random((m, width)) for name, width in pub.draws().items()}
    pages = pub.pages(5, u, np.zeros(m, np.int32), np.zeros(m, np.int16), {0: 1}, 100)
    copies = pages["copied_from"] >= 0
    ai = (pages["origin"] == AI) & ~copies
    for got, p in ((copies.mean(), c / (1 - q)), (ai.mean(), (1 - c) * s / (1 - q))):
        assert abs(got - p) <= 5 * math.sqrt(p * (1 - p) / m), (got, p)
    assert pages["copied_from"][copies].min() >= 0 and pages["copied_from"][copies].max() < 100
    assert (pages["lab"][ai] == 0).all() and (pages["lab"][~ai & ~copies] == -1).all()
    assert pub.rates(0, {0: 1}, 100) == (0.0, 0.0, 0.0)  # tick 0: human pages only


PLAN = ("site_id", "tick", "origin", "lab", "generation", "topic", "c2pa", "watermarked")


def _plans(*overrides, ticks=4):
    sim = Engine(scenario(COLLAPSE, f"run.ticks={ticks}", "publishers[0].pages_per_tick=3000",
                          "publishers[0].ai_adoption={start=0.5, end=0.5}", *overrides))
    for _ in range(ticks):
        sim.step()
    return sim.pages()


def test_turning_on_copies_or_imitation_leaves_every_other_page_as_it_was():
    """A block draws its pages' base uniforms first, then the copies', then the imitation's, and a page is a copy
    by a uniform of its own: so (without displacement) a run with copies is the run without them but for the pages
    that became copies, and imitation changes no page's kind, lab, topic or label — a sweep over either is paired
    page by page."""
    plain = _plans()
    copying = _plans("publishers[0].copy_rate=0.3")
    original = copying["copied_from"] < 0
    assert 0.2 < 1 - original[plain["tick"] > 0].mean() < 0.4
    for k in PLAN:
        assert np.array_equal(copying[k][original], plain[k][original]), k
    imitating = _plans("publishers[0].imitation={start=0.5, end=0.5}")
    assert imitating["imitation"].max() > 0 and plain["origin"].mean() > 0.3
    for k in PLAN:
        assert np.array_equal(imitating[k], plain[k]), k
