"""A lab's scraper: crawls the web with a page budget, then runs the lab's filter chain.

Strategies order the sites a crawler reaches: ``bfs`` from seed sites along
links (sites it never reaches are never crawled), ``pagerank`` from the most to
the least central site, ``random`` over all pages. Within a site the newest
pages come first. ``new_only`` restricts a crawl to pages published since the
lab's previous crawl.
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs
from simweb.filters import accounting, build_filter, filter_names
from simweb.web.graph import SiteGraph
from simweb.web.store import AI, PageStore

__all__ = ["Scraper", "CrawlResult"]


class CrawlResult:
    """Pages that passed the filters, plus one accounting row per step (the fetch, then each filter)."""

    def __init__(self, kept: np.ndarray, fetched: int, steps: list[dict]):
        self.kept = kept
        self.fetched = fetched
        self.steps = steps


class Scraper:
    def __init__(self, cfg, index: int, seed: int):
        self.cfg = cfg
        self.index = index
        self.seed = seed
        self.filters = [build_filter(f) for f in cfg.filters]
        self.filter_names = filter_names(cfg.filters)
        self.last_crawl_tick = -1

    def crawl(self, tick: int, graph: SiteGraph, store: PageStore, *, budget: int, purpose: str, crawl: int,
              exclude: np.ndarray | None = None) -> CrawlResult:
        """Fetch up to ``budget`` pages and filter them. ``purpose`` ("train" / "benchmark") names the streams."""
        cfg = self.cfg
        rng = rngs.stream(self.seed, "crawl", cfg.name, purpose, crawl)
        eligible = np.ones(len(store), dtype=bool)
        if cfg.new_only and purpose == "train":
            eligible &= store.column("tick") > self.last_crawl_tick
        if exclude is not None and len(exclude):
            eligible[exclude] = False
        ids = np.flatnonzero(eligible)
        ids = ids[self._order(ids, graph, store, rng)][:budget]
        ids = np.sort(ids)
        if purpose == "train":
            self.last_crawl_tick = tick
        is_ai = store.column("origin")[ids] == AI
        steps = [{"step": 0, "filter": "fetch", **accounting(is_ai, np.ones(len(ids), dtype=bool))}]
        for i, (name, flt) in enumerate(zip(self.filter_names, self.filters), start=1):
            keep = flt.keep(ids, store, rng=rngs.stream(self.seed, "filter", cfg.name, purpose, crawl, i))
            steps.append({"step": i, "filter": name, **accounting(is_ai, keep)})
            ids, is_ai = ids[keep], is_ai[keep]
        return CrawlResult(ids, steps[0]["pages_in"], steps)

    def _order(self, ids: np.ndarray, graph: SiteGraph, store: PageStore, rng: np.random.Generator) -> np.ndarray:
        """Positions of ``ids`` in crawl order; pages on sites the crawl never reaches are left out."""
        strategy = self.cfg.crawl_strategy
        if strategy == "random":
            return rng.permutation(len(ids))
        if strategy == "bfs":
            k = min(self.cfg.crawl_seeds, graph.n_sites)
            site_rank = graph.bfs_rank(rng.choice(graph.n_sites, size=k, replace=False))
        else:
            site_rank = graph.pagerank_rank()
        rank = site_rank[store.column("site_id")[ids]]
        reached = np.flatnonzero(rank >= 0)
        # by site visit order, then newest first, then page id
        order = np.lexsort((ids[reached], -store.column("tick")[ids[reached]], rank[reached]))
        return reached[order]
