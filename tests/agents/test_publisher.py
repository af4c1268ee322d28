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
    assert isinstance(sim.fleet.planner.publishers[0], Publisher)  # the planner plans with the populations' Publishers


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
    # the plan puts its pages in site order with ties in draw order: _stable_order must give exactly
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
def test_each_shard_is_sent_exactly_the_planned_pages_of_its_own_sites(n_shards):
    from simweb.agents.publisher import Planner, PublisherShard, shard_of

    sc = scenario(COLLAPSE, "run.ticks=3", "web.initial_sites=700", "publishers[0].pages_per_tick=5000")
    sim = Engine(sc)
    sim.step()
    sim.step()  # tick 1: ids start past tick 0's pages
    planner: Planner = sim.fleet.planner
    whole, first = planner.pages(), planner._first
    assert first > 0
    parts = planner.parts(n_shards)
    parts = parts if n_shards > 1 else [parts]
    assert len(parts) == n_shards
    ids = np.concatenate([p["page_id"] for p in parts])
    assert np.array_equal(np.sort(ids), np.arange(first, first + len(whole["tick"])))  # every page once
    for s, part in enumerate(parts):
        assert (np.diff(part["page_id"]) > 0).all()  # in id order
        assert (shard_of(part["site_id"], n_shards) == s).all()
        for k, v in whole.items():
            assert np.array_equal(part[k], v[part["page_id"] - first]), k
    if n_shards > 1:  # a shard refuses pages that are not its own (a routing bug must not go unseen)
        shard = PublisherShard(sim.context, 0, n_shards)
        with pytest.raises(ValueError, match="another shard's sites"):
            shard.publish(1, pages=parts[1], models={}, originals=[])
