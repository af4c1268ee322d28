from __future__ import annotations

import networkx as nx
import numpy as np

from simweb import rng as rngs
from simweb.agents.scraper import Scraper, candidates
from simweb.scenario.models import Lab
from simweb.web import PageIndex, SiteGraph
from tests.helpers import context, scenario


def _web(n_sites=60, pages_per_site=20, ai_share=0.4, seed=0, ticks=3):
    rng = np.random.default_rng(seed)
    graph = SiteGraph(links_per_site=2, homophily=1.0, population_share=np.ones(1), topic_probs=np.ones(1))
    graph.grow(n_sites, 0, rng=rng)
    index = PageIndex()
    for tick in range(ticks):
        n = n_sites * pages_per_site
        ai = rng.random(n) < ai_share
        index.append(site_id=np.repeat(np.arange(n_sites), pages_per_site), tick=np.full(n, tick),
                     origin=ai.astype(np.int8), lab=np.where(ai, 0, -1), generation=np.where(ai, 0, -1),
                     topic=np.zeros(n), population=np.zeros(n), watermarked=np.zeros(n, bool), c2pa=np.zeros(n),
                     edited_fraction=np.zeros(n), copied_from=np.full(n, -1))
    return graph, index


class _Crawler(Scraper):
    """A scraper crawling pages split over two shards by site parity, as the engine drives it: it plans the
    crawl, each shard returns its candidates, it merges them."""

    shards: list[PageIndex] = []

    def crawl(self, tick: int, budget: int, purpose: str, crawl: int):
        plan = self.plan_crawl(tick, budget, purpose, crawl)
        return self.select(plan, [candidates(plan, shard) for shard in self.shards])

    def follow(self, graph: dict, index: PageIndex, since: int = 0) -> None:
        """Observe the pages of ``index`` from id ``since`` (and the graph delta), and hold them in the shards."""
        ticks = index.column("tick")[since:]
        self.observe(graph, {int(t): int((ticks == t).sum()) for t in np.unique(ticks)})
        site = index.column("site_id")
        self.shards = [_shard(index, site % 2 == s) for s in (0, 1)]


def _shard(index: PageIndex, mine: np.ndarray) -> PageIndex:
    """A shard's index: the rows of ``index`` it holds, with their page ids."""
    held = PageIndex(columns=("page_id", "site_id", "tick", "origin"))
    held.append(page_id=np.flatnonzero(mine), **{k: index.column(k)[mine] for k in ("site_id", "tick", "origin")})
    return held


def _scraper(lab: Lab, seed: int, graph: SiteGraph, index: PageIndex) -> _Crawler:
    scraper = _Crawler(context(scenario(), lab, seed=seed), 0)
    scraper.follow(graph.state(), index)
    return scraper


def _filtered(scraper: Scraper, index: PageIndex, tick: int, budget: int, purpose: str, crawl: int, content=None):
    """Crawl, then run the filter chain on content (distinct rows unless given) and metadata, as one shard would
    send them."""
    sel = scraper.crawl(tick, budget, purpose, crawl)
    width, dtype = scraper.context.language.width, scraper.context.language.dtype
    if content is None:
        content = np.zeros((len(sel.ids), width), dtype=dtype)
        content[:, 0] = sel.ids % 60000
        content[:, 1] = sel.ids // 60000
    return scraper.filter(sel, parts=[(sel.ids, content, index.rows(sel.ids))])


def _lab(**kw):
    return Lab(name="lab", **kw)


def test_budget_and_random_crawl_are_reproducible():
    graph, index = _web()
    a = _scraper(_lab(), 1, graph, index).crawl(2, 500, "train", 0)
    b = _scraper(_lab(), 1, graph, index).crawl(2, 500, "train", 0)
    assert len(a.ids) == 500 and len(np.unique(a.ids)) == 500
    assert np.array_equal(a.ids, b.ids)
    assert a.ids.dtype == np.int64 and a.purpose == "train"  # ids only: the engine adds metadata from its index
    c = _scraper(_lab(), 2, graph, index).crawl(2, 500, "train", 0)
    assert not np.array_equal(a.ids, c.ids)


def test_new_only_crawls_only_pages_since_the_last_crawl():
    graph, index = _web(ticks=1)
    scraper = _scraper(_lab(new_only=True), 1, graph, index)
    first = scraper.crawl(0, 10**6, "train", 0)
    assert len(first.ids) == len(index)
    n0 = len(index)
    index.append(site_id=np.zeros(50), tick=np.ones(50), origin=np.zeros(50), lab=np.full(50, -1),
                 generation=np.full(50, -1), topic=np.zeros(50), population=np.zeros(50),
                 watermarked=np.zeros(50, bool), c2pa=np.zeros(50), edited_fraction=np.zeros(50),
                 copied_from=np.full(50, -1))
    scraper.follow(graph.state(graph.n_sites, len(graph.edges)), index, since=n0)
    second = scraper.crawl(1, 10**6, "train", 1)
    assert (index.column("tick")[second.ids] == 1).all() and len(second.ids) == 50


def test_a_benchmark_crawl_never_returns_a_page_trained_on():
    graph, index = _web()
    scraper = _scraper(_lab(), 1, graph, index)
    train = scraper.crawl(2, 2000, "train", 0)
    bench = scraper.crawl(2, 10**6, "benchmark", 0)
    assert len(np.intersect1d(train.ids, bench.ids)) == 0
    assert len(train.ids) + len(bench.ids) == len(index)


def test_bfs_reaches_only_linked_sites_in_visit_order():
    graph, index = _web()
    scraper = _scraper(_lab(crawl_strategy="bfs", crawl_seeds=1), 3, graph, index)
    res = scraper.crawl(2, 10**6, "benchmark", 0)
    seed_site = int(rngs.stream(3, "crawl", "lab", "benchmark", 0).choice(graph.n_sites, size=1, replace=False)[0])
    reachable = set(nx.descendants(graph.graph, seed_site)) | {seed_site}
    assert set(index.column("site_id")[res.ids].tolist()) == reachable
    small = scraper.crawl(2, 20, "benchmark", 0)
    # the first 20 pages in crawl order all sit on the seed site (it has 60 pages)
    assert set(index.column("site_id")[small.ids].tolist()) == {seed_site}


def test_pagerank_crawl_starts_at_the_most_central_site():
    graph, index = _web()
    res = _scraper(_lab(crawl_strategy="pagerank"), 0, graph, index).crawl(2, 30, "train", 0)
    pr = nx.pagerank(graph.graph)
    top = max(pr, key=lambda s: (pr[s], -s))
    assert set(index.column("site_id")[res.ids].tolist()) == {top}
    # newest pages first within a site: its 20 pages of tick 2, then 10 of tick 1
    assert np.bincount(index.column("tick")[res.ids], minlength=3).tolist() == [0, 10, 20]


def test_crawl_order_is_site_rank_then_newest_then_id_even_across_empty_ticks():
    rng = np.random.default_rng(5)
    graph = SiteGraph(links_per_site=2, homophily=1.0, population_share=np.ones(1), topic_probs=np.ones(1))
    graph.grow(40, 0, rng=rng)
    index = PageIndex()
    for tick, n in enumerate([300, 0, 200, 0, 0, 250]):  # ticks 1, 3 and 4 publish nothing
        if n:
            index.append(site_id=rng.integers(0, 40, n), tick=np.full(n, tick), origin=np.zeros(n),
                         lab=np.full(n, -1), generation=np.full(n, -1), topic=np.zeros(n), population=np.zeros(n),
                         watermarked=np.zeros(n, bool), c2pa=np.zeros(n), edited_fraction=np.zeros(n),
                         copied_from=np.full(n, -1))
    scraper = _scraper(_lab(crawl_strategy="pagerank"), 0, graph, index)
    site_rank = graph.pagerank_rank()
    ids = np.arange(len(index))
    order = np.lexsort((ids, -index.column("tick"), site_rank[index.column("site_id")]))
    for budget in (1, 37, 500, 749):
        assert np.array_equal(scraper.crawl(6, budget, "benchmark", budget).ids, np.sort(order[:budget]))
    fresh = _scraper(_lab(crawl_strategy="pagerank", new_only=True), 0, graph, index)
    fresh.last_crawl_tick = 2  # pages of ticks 3, 4 and 5: only tick 5 has any
    assert np.array_equal(fresh.crawl(6, 10**6, "train", 0).ids, np.arange(500, 750))


def test_date_cutoff_keeps_pages_up_to_the_tick():
    graph, index = _web(ticks=3)
    lab = _lab(filters=({"kind": "date_cutoff", "tick": 1},))
    res = _filtered(_scraper(lab, 0, graph, index), index, 2, 10**6, "train", 0)
    assert (index.column("tick")[res.ids] <= 1).all()
    assert len(res.ids) == int((index.column("tick") <= 1).sum())
    assert res.steps[1]["dropped"] == int((index.column("tick") == 2).sum())


def test_state_and_restore_rebuild_the_replica():
    graph, index = _web()
    a = _scraper(_lab(new_only=True), 1, graph, index)
    a.crawl(2, 100, "train", 0)
    b = _Crawler(context(scenario(), _lab(new_only=True), seed=1), 0)
    b.shards = a.shards
    b.restore(a.state(), graph.state())
    assert np.array_equal(a.crawl(3, 100, "benchmark", 1).ids, b.crawl(3, 100, "benchmark", 1).ids)


def test_the_trained_ids_are_kept_as_they_came_and_restored():
    graph, index = _web(ticks=3)
    a = _scraper(_lab(), 1, graph, index)  # not new_only: the second crawl meets pages trained on already
    first = a.crawl(2, 900, "train", 0).ids
    second = a.crawl(2, 900, "train", 1).ids
    again = np.intersect1d(first, second)
    assert len(again) > 0
    assert np.array_equal(a.trained_log, np.concatenate([first, np.setdiff1d(second, first)]))
    assert np.array_equal(a.trained, np.union1d(first, second))
    b = _Crawler(context(scenario(), _lab(), seed=1), 0)
    b.shards = a.shards
    b.restore(a.state(), graph.state())
    assert np.array_equal(b.trained, a.trained) and np.array_equal(b.trained_log, a.trained_log)
    assert np.array_equal(a.crawl(3, 100, "benchmark", 2).ids, b.crawl(3, 100, "benchmark", 2).ids)


def test_a_snapshot_crawl_spends_its_whole_budget_in_the_archive():
    graph, index = _web(ticks=4)  # 1200 pages a tick
    ticks = index.column("tick")
    for strategy in ("random", "pagerank"):
        fixed = _scraper(_lab(snapshot=1, crawl_strategy=strategy), 1, graph, index).crawl(3, 1500, "train", 0)
        assert len(fixed.ids) == 1500 and ticks[fixed.ids].max() == 1, strategy
    lagged = _scraper(_lab(snapshot="release - 2"), 1, graph, index)
    assert ticks[lagged.crawl(3, 10**6, "train", 0).ids].max() == 1
    assert len(lagged.crawl(2, 10**6, "train", 1).ids) == 1200  # tick 0 only
    # a benchmark reads the live web
    assert ticks[lagged.crawl(3, 10**6, "benchmark", 0).ids].max() == 3


def test_a_crawl_selects_the_same_pages_however_the_shards_split_the_web():
    # each shard returns only its own best `budget`; the merge must equal one sort over the whole web
    graph, index = _web(ticks=4)
    n = len(index)
    rng = np.random.default_rng(11)
    for strategy in ("bfs", "pagerank", "random"):
        for budget in (0, 1, 50, 999, 10**6):
            one = _scraper(_lab(crawl_strategy=strategy), 3, graph, index)
            one.shards = [_shard(index, np.ones(n, bool))]
            many = _scraper(_lab(crawl_strategy=strategy), 3, graph, index)
            owner = rng.integers(0, 5, size=n)
            many.shards = [_shard(index, owner == s) for s in range(5)]
            trained = one.crawl(3, budget, "train", 0)
            assert np.array_equal(trained.ids, many.crawl(3, budget, "train", 0).ids), (strategy, budget)
            assert len(trained.ids) == min(budget, n) or strategy == "bfs"  # bfs reaches only some sites
            bench = one.crawl(3, budget, "benchmark", 0)  # after the training crawl, which it avoids
            assert np.array_equal(bench.ids, many.crawl(3, budget, "benchmark", 0).ids), (strategy, budget)
            assert not np.isin(bench.ids, trained.ids).any()


def test_random_positions_are_a_uniform_subset_on_both_sides_of_the_bound():
    from simweb.agents.scraper import PERMUTE_AT_MOST, random_positions

    # up to the bound: the first `budget` of a permutation (the output of every web up to 2 M pages as it was)
    for n, budget in ((0, 5), (7, 10), (1000, 37), (PERMUTE_AT_MOST, 50)):
        got = random_positions(n, budget, np.random.default_rng(4))
        assert np.array_equal(got, np.random.default_rng(4).permutation(n)[:budget])
    # one past it, the other path
    got = random_positions(PERMUTE_AT_MOST + 1, 50, np.random.default_rng(4))
    assert not np.array_equal(got, np.random.default_rng(4).permutation(PERMUTE_AT_MOST + 1)[:50])
    # past it: distinct positions in range, min(budget, n) of them, each position equally likely
    n = PERMUTE_AT_MOST + 1000
    rng = np.random.default_rng(9)
    for budget in (1, 500, n, n + 5):
        got = random_positions(n, budget, rng)
        assert len(got) == min(budget, n) == len(np.unique(got)) and got.min() >= 0 and got.max() < n
    draws, budget, bins = 200, 20_000, 40
    counts = np.zeros(bins)
    for _ in range(draws):
        counts += np.bincount(random_positions(n, budget, rng) * bins // n, minlength=bins)
    # each bin holds n / bins positions, each kept with probability budget / n: a sum of draws × hypergeometric
    p = 1 / bins
    sd = np.sqrt(draws * budget * p * (1 - p) * (n - budget) / (n - 1))
    assert np.abs(counts - draws * budget * p).max() < 4.5 * sd


def test_past_the_bound_every_position_and_every_pair_is_kept_as_often_as_in_a_uniform_subset(monkeypatch):
    # k of n uniformly: a position is kept with probability k/n, a pair with k(k-1)/(n(n-1)) — which a subset
    # spread evenly (never two neighbours) or one that never keeps some position would fail. The bound lowered
    # so that both of numpy's ways past it are checked on webs small enough to count every position: Floyd's
    # algorithm (n <= 10,000 or k <= n/50) and a partial shuffle (else)
    from simweb.agents import scraper as scraper_module

    monkeypatch.setattr(scraper_module, "PERMUTE_AT_MOST", 100)
    rng = np.random.default_rng(21)
    for n, k, draws in ((1000, 300, 400), (20_000, 2_000, 300), (20_000, 100, 1_000)):
        kept = np.zeros(n)
        pairs = np.zeros(3)
        for _ in range(draws):
            got = np.zeros(n, bool)
            got[scraper_module.random_positions(n, k, rng)] = True
            kept += got
            pairs += [got[0] & got[1], got[0] & got[n - 1], got[n // 2] & got[n // 2 + 1]]
        p = k / n
        assert np.abs(kept - draws * p).max() < 6 * np.sqrt(draws * p * (1 - p)), (n, k)
        q = k * (k - 1) / (n * (n - 1))
        if draws * q >= 3:  # else too rare a pair for a normal bound
            assert np.all(np.abs(pairs - draws * q) < 5 * np.sqrt(draws * q * (1 - q))), (n, k, pairs, draws * q)


def test_a_random_crawl_past_the_bound_keeps_a_uniform_share_of_each_tick(monkeypatch):
    # the bound lowered so the scraper's real merge takes Floyd's path on a small web: the pages kept from each
    # tick are a hypergeometric share of its pages, and the shards' split still does not matter
    from simweb.agents import scraper as scraper_module

    monkeypatch.setattr(scraper_module, "PERMUTE_AT_MOST", 100)
    graph, index = _web(ticks=4)
    n, budget, crawls = len(index), 600, 60
    ticks = index.column("tick")
    kept = np.zeros(4)
    for crawl in range(crawls):
        one = _scraper(_lab(), 5, graph, index)
        one.shards = [_shard(index, np.ones(n, bool))]
        many = _scraper(_lab(), 5, graph, index)
        many.shards = [_shard(index, np.arange(n) % 3 == s) for s in range(3)]
        ids = one.crawl(3, budget, "train", crawl).ids
        assert len(ids) == budget == len(np.unique(ids))
        assert np.array_equal(ids, many.crawl(3, budget, "train", crawl).ids)
        kept += np.bincount(ticks[ids], minlength=4)
    p = np.bincount(ticks, minlength=4) / n
    sd = np.sqrt(crawls * budget * p * (1 - p) * (n - budget) / (n - 1))
    assert np.all(np.abs(kept - crawls * budget * p) < 4.5 * sd), (kept, crawls * budget * p)
