from __future__ import annotations

import math

import numpy as np

from simweb import rng as rngs
from simweb.agents.scraper import Scraper
from simweb.scenario.models import Lab
from simweb.web import PageStore, SiteGraph


def _web(n_sites=60, pages_per_site=20, ai_share=0.4, seed=0, ticks=3):
    rng = np.random.default_rng(seed)
    graph = SiteGraph(links_per_site=2, homophily=1.0, population_share=np.ones(1), topic_probs=np.ones(1))
    graph.grow(n_sites, 0, rng=rng)
    store = PageStore(width=4, dtype=np.uint16)
    for tick in range(ticks):
        n = n_sites * pages_per_site
        ai = rng.random(n) < ai_share
        store.append(rng.integers(0, 10, (n, 4)), site_id=np.repeat(np.arange(n_sites), pages_per_site),
                     tick=tick, origin=ai.astype(np.int8), lab=np.where(ai, 0, -1), generation=np.where(ai, 0, -1),
                     topic=0, population=0, watermarked=False, c2pa=0, edited_fraction=0.0, copied_from=-1)
    return graph, store


def _lab(**kw):
    return Lab(name="lab", **kw)


def test_budget_and_random_crawl_are_reproducible():
    graph, store = _web()
    a = Scraper(_lab(crawl_budget=500), 0, seed=1).crawl(2, graph, store, budget=500, purpose="train", crawl=0)
    b = Scraper(_lab(crawl_budget=500), 0, seed=1).crawl(2, graph, store, budget=500, purpose="train", crawl=0)
    assert len(a.kept) == 500 and len(np.unique(a.kept)) == 500
    assert np.array_equal(a.kept, b.kept)
    c = Scraper(_lab(crawl_budget=500), 0, seed=2).crawl(2, graph, store, budget=500, purpose="train", crawl=0)
    assert not np.array_equal(a.kept, c.kept)


def test_new_only_crawls_only_pages_since_the_last_crawl():
    graph, store = _web(ticks=1)
    scraper = Scraper(_lab(new_only=True), 0, seed=1)
    first = scraper.crawl(0, graph, store, budget=10**6, purpose="train", crawl=0)
    assert len(first.kept) == len(store)
    rng = np.random.default_rng(5)
    store.append(rng.integers(0, 10, (50, 4)), site_id=0, tick=1, origin=0, lab=-1, generation=-1, topic=0,
                 population=0, watermarked=False, c2pa=0, edited_fraction=0.0, copied_from=-1)
    second = scraper.crawl(1, graph, store, budget=10**6, purpose="train", crawl=1)
    assert (store.column("tick")[second.kept] == 1).all() and len(second.kept) == 50


def test_bfs_reaches_only_linked_sites_in_visit_order():
    graph, store = _web()
    scraper = Scraper(_lab(crawl_strategy="bfs", crawl_seeds=1), 0, seed=3)
    res = scraper.crawl(2, graph, store, budget=10**6, purpose="train", crawl=0)
    seed_site = rngs.stream(3, "crawl", "lab", "train", 0).choice(graph.n_sites, size=1, replace=False)
    import networkx as nx

    reachable = set(nx.descendants(graph.graph, int(seed_site[0]))) | {int(seed_site[0])}
    assert set(store.column("site_id")[res.kept].tolist()) == reachable
    small = scraper.crawl(2, graph, store, budget=20, purpose="train", crawl=0)
    # the first 20 pages in crawl order all sit on the seed site (it has 60 pages)
    assert set(store.column("site_id")[small.kept].tolist()) == {int(seed_site[0])}


def test_pagerank_crawl_starts_at_the_most_central_site():
    graph, store = _web()
    scraper = Scraper(_lab(crawl_strategy="pagerank"), 0, seed=0)
    res = scraper.crawl(2, graph, store, budget=30, purpose="train", crawl=0)
    import networkx as nx

    pr = nx.pagerank(graph.graph)
    top = max(pr, key=lambda s: (pr[s], -s))
    assert set(store.column("site_id")[res.kept].tolist()) == {top}
    # newest pages first within a site: its 20 pages of tick 2, then 10 of tick 1
    assert np.bincount(store.column("tick")[res.kept], minlength=3).tolist() == [0, 10, 20]


def test_classifier_drops_ai_at_tpr_and_human_at_fpr():
    graph, store = _web(n_sites=100, pages_per_site=100, ticks=1)
    tpr, fpr = 0.85, 0.05
    lab = _lab(filters=({"kind": "classifier", "tpr": tpr, "fpr": fpr},))
    res = Scraper(lab, 0, seed=9).crawl(0, graph, store, budget=10**6, purpose="train", crawl=0)
    fetch, clf = res.steps
    assert fetch["filter"] == "fetch" and clf["filter"] == "classifier"
    n_ai, n_h = clf["ai_in"], clf["pages_in"] - clf["ai_in"]
    recall = clf["dropped_ai"] / n_ai
    fpr_seen = (clf["dropped"] - clf["dropped_ai"]) / n_h
    assert abs(recall - tpr) < 5 * math.sqrt(tpr * (1 - tpr) / n_ai)
    assert abs(fpr_seen - fpr) < 5 * math.sqrt(fpr * (1 - fpr) / n_h)
    assert math.isclose(clf["recall"], recall)
    # precision as the parameters and the page mix imply it
    a = n_ai / (n_ai + n_h)
    expected_precision = tpr * a / (tpr * a + fpr * (1 - a))
    assert abs(clf["precision"] - expected_precision) < 0.02
    kept_ai = store.column("origin")[res.kept] == 1
    assert len(res.kept) == clf["kept"] and kept_ai.sum() == clf["kept_ai"]


def test_date_cutoff_keeps_pages_up_to_the_tick():
    graph, store = _web(ticks=3)
    lab = _lab(filters=({"kind": "date_cutoff", "tick": 1},))
    res = Scraper(lab, 0, seed=0).crawl(2, graph, store, budget=10**6, purpose="train", crawl=0)
    assert (store.column("tick")[res.kept] <= 1).all()
    assert len(res.kept) == int((store.column("tick") <= 1).sum())
    assert res.steps[1]["dropped"] == int((store.column("tick") == 2).sum())
