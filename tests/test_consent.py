"""Opt-outs and compliance, through the real loop: who may crawl what, and what it does to a training set."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import simweb
from simweb import consent
from simweb.agents.publisher import adoption_share
from simweb.engine import Engine
from simweb.executors import LocalExecutor
from simweb.scenario import parse_scenario

# A human-only population whose sites opt out (a constant share b_sites) and an AI-only one that never does.
CONSENT = """
[run]
name = "consent"
seed = 1
ticks = 5
executor = "local"

[language]
vocab_size = 32
topics = 2
doc_length = 8

[web]
initial_sites = 120
sites_per_tick = 4

[[publishers]]
name = "news"
site_share = 0.5
initial_pages = 4000
pages_per_tick = 1000
ai_adoption = { start = 0.0, end = 0.0 }
opt_out = { start = 0.4, end = 0.4 }

[[publishers]]
name = "farm"
site_share = 0.5
pages_per_tick = 1500
ai_adoption = { start = 1.0, end = 1.0 }

[[labs]]
name = "polite"
release_every = 1
crawl_budget = 1500

[[labs]]
name = "rude"
release_every = 1
crawl_budget = 1500
compliance = 0.0

[evaluation]
human_docs = 50
sample_docs = 50
benchmark_docs = 0
"""


def run(*overrides: str, text: str = CONSENT):
    return simweb.run(parse_scenario(text, list(overrides)))


def steps(results, lab: str, crawl: int) -> dict[str, dict]:
    rows = results.crawls.filter((pl.col("lab") == lab) & (pl.col("crawl") == crawl) & (pl.col("purpose") == "train"))
    return {row["filter"]: row for row in rows.iter_rows(named=True)}


def test_the_kept_ai_share_follows_the_law_of_removing_human_pages():
    """Kept AI share = a / (a + (1 − a)(1 − b)).

    Among the N pages a crawl could fetch, aN are AI-written and (1 − a)N human. Opt-outs remove a share b
    of the human pages and none of the AI ones (the sites that block write no AI pages here), leaving
    aN AI pages and (1 − a)(1 − b)N human ones; a random crawl samples that pool uniformly, so the AI share
    of what it fetches has expectation aN / (aN + (1 − a)(1 − b)N) = a / (a + (1 − a)(1 − b)). A lab that
    honours nothing (b = 0) keeps a. Both a and b are read off the crawl's own blocked step; the tolerance is
    4 binomial standard errors of the fetch (conservative: the crawl samples without replacement).
    """
    r = run()
    checked = 0
    for lab in ("polite", "rude"):
        for crawl in range(1, 5):  # generation 0 trains on the all-human web
            s = steps(r, lab, crawl)
            blocked, fetch = s["blocked"], s["fetch"]
            a = blocked["ai_in"] / blocked["pages_in"]
            b = (blocked["dropped"] - blocked["dropped_ai"]) / (blocked["pages_in"] - blocked["ai_in"])
            assert blocked["dropped_ai"] == 0
            assert (b > 0.2) if lab == "polite" else (b == 0)
            expected = a / (a + (1 - a) * (1 - b))
            measured = fetch["ai_in"] / fetch["pages_in"]
            se = math.sqrt(expected * (1 - expected) / fetch["pages_in"])
            assert abs(measured - expected) <= 4 * se, (lab, crawl, measured, expected, se)
            checked += 1
    assert checked == 8
    g = r.generations.filter(pl.col("generation") >= 1)
    polite = g.filter(pl.col("lab") == "polite")["train_ai_fraction"].mean()
    rude = g.filter(pl.col("lab") == "rude")["train_ai_fraction"].mean()
    assert polite > rude  # honouring opt-outs costs contamination


def test_a_lab_that_honours_every_block_never_fetches_a_page_of_a_blocking_site():
    r = run("publishers.news.opt_out={start=1.0, end=1.0}")
    farm_human = 1500  # the farm's tick-0 pages: written before any model exists, so human
    for crawl in range(1, 5):
        s = steps(r, "polite", crawl)
        assert s["blocked"]["kept"] - s["blocked"]["kept_ai"] == farm_human  # every news page refused
        assert s["blocked"]["dropped"] == s["blocked"]["pages_in"] - s["blocked"]["ai_in"] - farm_human
    news_human = r.ticks.filter(pl.col("population") == "news").sort("tick")["pages_total"].to_list()
    gens = r.generations.filter(pl.col("lab") == "polite").sort("generation")
    assert gens["blocked_human_fraction"].to_list() == pytest.approx([n / (n + farm_human) for n in news_human])


def test_compliance_is_a_binomial_draw_per_site_and_lab():
    """Each (site, lab) honours with probability c, independently: the honoured share of the blocking sites
    is Binomial(n, c) / n, and a lab's blocked human pages are the honoured sites' pages."""
    c = 0.6
    sc = parse_scenario(CONSENT, ["labs.rude.compliance=0.6", "web.initial_sites=600", "run.ticks=2"])
    engine = Engine(sc, executor=LocalExecutor())
    results = engine.run()
    graph = engine.graph
    blocking = graph.blocked_since <= 1
    n = int(blocking.sum())
    scraper = engine.fleet.scrapers[1]
    honoured = scraper.honoured[blocking]
    se = math.sqrt(c * (1 - c) / n)
    assert n > 100 and abs(honoured.mean() - c) <= 4 * se, (honoured.mean(), n)
    assert engine.fleet.scrapers[0].honoured.all()  # compliance unset: every block honoured
    # the refused pages are exactly the human pages on the honoured blocking sites
    pages = engine.pages(["origin", "site_id"])
    refused_sites = blocking & scraper.honoured
    human = pages["origin"] == 0
    on_refused = int((refused_sites[pages["site_id"]] & human).sum())
    s = steps(results, "rude", 1)
    assert s["blocked"]["dropped"] == on_refused


def test_the_blocking_share_follows_its_logistic_curve_and_names_its_labs():
    r = run("publishers.news.opt_out={start=0.0, end=0.8, midpoint=2.0, rate=1.5, labs=['polite']}",
            "run.ticks=6")
    news = r.ticks.filter(pl.col("population") == "news").sort("tick")
    cfg = parse_scenario(CONSENT, ["publishers.news.opt_out={start=0.0, end=0.8, midpoint=2.0, rate=1.5}"]
                         ).publishers[0].opt_out
    for row in news.iter_rows(named=True):
        want = math.floor(adoption_share(cfg, row["tick"]) * row["sites"] + 0.5) / row["sites"]
        assert row["blocking_site_share"]["polite"] == pytest.approx(want)
        assert row["blocking_site_share"]["rude"] == 0.0  # its block names the polite lab only
    assert r.ticks.filter(pl.col("population") == "farm")["blocking_site_share"].struct.field("polite").max() == 0
    assert (r.generations.filter(pl.col("lab") == "rude")["blocked_human_fraction"] == 0).all()


def test_reputable_sites_block_first():
    sc = parse_scenario(CONSENT, ["publishers.news.opt_out={start=0.1, end=0.1, by_reputation=8.0}",
                                  "publishers.news.site_share=1.0", "publishers.farm.site_share=0.0001",
                                  "web.initial_sites=400", "run.ticks=1"])
    engine = Engine(sc, executor=LocalExecutor())
    engine.run()
    rank = engine.graph.pagerank_rank()
    blocked = engine.graph.blocked_since <= 0
    assert blocked.sum() > 20
    # with weight exp(8 q), the blocking sites' mean PageRank percentile is far above the web's 0.5
    assert (1 - rank[blocked] / (len(rank) - 1)).mean() > 0.8


def test_opt_outs_are_the_same_for_any_number_of_shards():
    sc = parse_scenario(CONSENT, ["labs.rude.compliance=0.5", "run.ticks=3"])
    one = Engine(sc, executor=LocalExecutor(), shards=1).run()
    three = Engine(sc, executor=LocalExecutor(), shards=3).run()
    for table in ("generations", "ticks", "crawls"):
        assert getattr(one, table).equals(getattr(three, table)), table


def test_a_run_restored_from_a_checkpoint_goes_on_with_the_same_blocks(tmp_path):
    sc = parse_scenario(CONSENT, ["labs.rude.compliance=0.5", "run.ticks=4",
                                  "publishers.news.opt_out={start=0.0, end=0.9, midpoint=2.0}"])
    whole = Engine(sc, executor=LocalExecutor()).run()
    engine = Engine(sc, executor=LocalExecutor(), checkpoint_dir=tmp_path / "checkpoint")
    for _ in range(2):
        engine.step()
    engine.checkpoints.save(engine)
    engine.restore(engine.checkpoints.load())  # every agent rebuilt from the checkpoint's arrays
    resumed = engine.run()
    for table in ("generations", "ticks", "crawls"):
        assert getattr(whole, table).equals(getattr(resumed, table)), table


def test_without_opt_outs_no_consent_column_is_written():
    r = run("publishers.news.opt_out={start=0.0, end=0.0}")
    assert "blocked_human_fraction" in r.generations.columns
    plain = simweb.run(parse_scenario(CONSENT.replace("opt_out = { start = 0.4, end = 0.4 }\n", ""),
                                      ["run.ticks=2"]))
    assert "blocked_human_fraction" not in plain.generations.columns
    assert "blocking_site_share" not in plain.ticks.columns
    assert "blocked" not in plain.crawls["filter"].to_list()


def test_the_longpre_calibration_reproduces_both_figures():
    """scenarios/consent_longpre.toml: after one simulated year, ~5 % of all tokens and ~28 % of the top
    sources are restricted (Longpre et al. 2024), each within ±20 %."""
    sc = simweb.load_scenario("scenarios/consent_longpre.toml")
    engine = Engine(sc, executor=LocalExecutor())
    engine.run()
    tokens, top = consent.restricted(engine.graph, engine.pages()["site_id"], sc.run.ticks - 1)
    assert abs(tokens / 0.05 - 1) <= 0.2, tokens
    assert abs(top / 0.28 - 1) <= 0.2, top


def test_the_consent_scenario_runs_its_four_labs():
    """scenarios/consent.toml (shortened): each lab's policy shows in its own columns."""
    r = simweb.run(simweb.load_scenario("scenarios/consent.toml", ["run.ticks=4"]))
    last = {row["lab"]: row for row in r.generations.filter(pl.col("generation") == 1).iter_rows(named=True)}
    assert last["rude"]["blocked_human_fraction"] == 0 < last["compliant"]["blocked_human_fraction"]
    assert last["licensed"]["spend"] == 0.5 and last["licensed"]["licensed_docs"] == 1000
    assert last["distiller"]["train_distill_docs"] == 1000
    assert last["distiller"]["train_ai_fraction_by_lab"]["rude"] >= 1000 / last["distiller"]["train_docs"]


def test_written_columns_are_the_declared_ones_with_every_mechanism_on(tmp_path):
    from simweb import schema
    from simweb.features import features_of

    sc = simweb.load_scenario("scenarios/consent.toml", ["run.ticks=2"])
    simweb.run(sc, out=tmp_path / "run")
    labs = [lab.name for lab in sc.labs]
    features = features_of(sc)
    assert features == {"consent", "licences", "distill"}
    for name, want in {"generations": schema.generations_schema(labs, features),
                       "ticks": schema.ticks_schema(labs, features), "crawls": schema.CRAWLS}.items():
        got = dict(pl.read_parquet_schema(tmp_path / "run" / f"{name}.parquet"))
        assert got == want, name
