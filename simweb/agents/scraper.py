"""A lab's scraper: crawls the web with a page budget, then runs the lab's filter chain.

Strategies order the sites a crawler reaches: ``bfs`` from seed sites along
links (sites it never reaches are never crawled), ``pagerank`` from the most to
the least central site, ``random`` over all pages. Within a site the newest
pages come first. ``new_only`` restricts a training crawl to pages published
since the lab's previous crawl. A benchmark crawl never returns a page the lab
has trained on.

The scraper keeps its own replica of the site graph and of the one page
column a crawl orders by (the site), fed a delta every tick; page ids are in
publication order, so a tick's pages are an id range and need no column. It
selects page ids; the engine adds their metadata and fetches their content from
the publisher shards that hold it.
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs
from simweb.filters import Batch, accounting, build_filter, content_hash, filter_names
from simweb.language import build_language
from simweb.models import build_model
from simweb.timing import Busy, timed
from simweb.web.graph import SiteGraph
from simweb.web.store import AI, PAGE_COLUMNS, PageIndex, join_parts

__all__ = ["Scraper", "Selection", "REPLICA"]

REPLICA = ("site_id",)  # the page columns a scraper keeps


class Selection(dict):
    """Pages of a crawl: ``ids``, their metadata columns, later their ``content``, and accounting ``steps``."""


class Scraper:
    def __init__(self, cfg, index: int, scenario, seed: int, capacity: int = 1024):
        self.cfg = cfg
        self.index = index
        self.seed = seed
        self.filters = [build_filter(f) for f in cfg.filters]
        self.busy = Busy()
        self.filter_names = filter_names(cfg.filters)
        self.last_crawl_tick = -1
        self.trained = np.zeros(0, dtype=bool)  # per page: kept for training by this lab at some point
        web = scenario.web
        self.graph = SiteGraph(links_per_site=web.links_per_site, homophily=web.homophily,
                               population_share=np.ones(1), topic_probs=np.ones(1))
        self.capacity = capacity  # pages the run will publish: the replica is allocated once
        self.pages = PageIndex(capacity, columns=REPLICA)
        self.tick_start = np.zeros(0, dtype=np.int64)  # first page id of each tick
        self.seen_hashes = np.empty(0, dtype=np.uint64)  # content hashes of pages kept for training (dedup)
        self.language = build_language(scenario.language, seed)
        self._calibration: dict | None = None  # fresh human documents, drawn once, for likelihood / verifier
        self._model: tuple[int, object] | None = None  # (generation, the lab's current model) for likelihood
        self.context = {"population_names": [p.name for p in scenario.publishers], "lab": cfg.name,
                        "vocab_size": getattr(scenario.language, "vocab_size", 0),
                        "watermark_keys": _watermark_keys(scenario, seed)}

    @timed("crawl")
    def observe(self, graph: dict, pages: dict) -> None:
        """Follow the web: the sites and links (``graph``) and pages (``site_id`` and ``tick``) added since."""
        self.graph.apply(graph)
        tick = np.asarray(pages["tick"])
        if len(tick):
            new = np.flatnonzero(np.r_[True, tick[1:] != tick[:-1]])  # pages arrive in tick order
            starts = np.full(int(tick[-1]) + 1, len(self.pages) + len(tick), dtype=np.int64)
            starts[:len(self.tick_start)] = self.tick_start
            starts[tick[new]] = len(self.pages) + new
            self.tick_start = np.minimum.accumulate(starts[::-1])[::-1]  # a tick with no pages starts at the next
        self.pages.extend(pages)
        self.trained = np.concatenate([self.trained, np.zeros(len(self.pages) - len(self.trained), dtype=bool)])

    @timed("crawl")
    def crawl(self, tick: int, budget: int, purpose: str, crawl: int) -> Selection:
        """Pick up to ``budget`` page ids. ``purpose`` is "train" or "benchmark".

        A benchmark never includes a page this lab fetched for training.
        """
        cfg = self.cfg
        rng = rngs.stream(self.seed, "crawl", cfg.name, purpose, crawl)
        first = 0
        if purpose == "train" and cfg.new_only:  # the pages since the last crawl: one id range
            since = self.last_crawl_tick + 1
            first = int(self.tick_start[since]) if since < len(self.tick_start) else len(self.pages)
        ids = np.arange(first, len(self.pages), dtype=np.int64)
        if purpose == "benchmark":
            ids = ids[~self.trained[first:]]
        ids = np.sort(self._pick(ids, budget, rng))
        if purpose == "train":
            self.last_crawl_tick = tick
            self.trained[ids] = True
        return Selection(ids=ids, crawl_tick=tick)

    @timed("filter")
    def filter(self, selection: dict, purpose: str, crawl: int, generation: int, model_state, *parts) -> Selection:
        """Run the lab's filter chain on the fetched pages (content in shard ``parts``); keep what passes.

        ``model_state`` is the lab's latest released model (generation ``generation``), or None before it has one.
        """
        ids = np.asarray(selection["ids"], dtype=np.int64)
        meta = {k: np.asarray(selection[k]) for k in PAGE_COLUMNS}  # added by the engine from its index
        content = join_parts(ids, parts, self.language.width, self.language.dtype)
        batch = Batch(ids, meta, content, int(selection["crawl_tick"]),
                      {**self.context, "graph": self.graph, "seen_hashes": self.seen_hashes,
                       "language": self.language, **self._scoring(generation, model_state)})
        is_ai = meta["origin"] == AI
        steps = [{"step": 0, "filter": "fetch", **accounting(is_ai, np.ones(len(ids), dtype=bool))}]
        for i, (name, flt) in enumerate(zip(self.filter_names, self.filters), start=1):
            keep = flt.keep(batch, rng=rngs.stream(self.seed, "filter", self.cfg.name, purpose, crawl, i))
            steps.append({"step": i, "filter": name, **accounting(batch.meta["origin"] == AI, keep)})
            batch = Batch(batch.ids[keep], {k: v[keep] for k, v in batch.meta.items()}, batch.content[keep],
                          batch.tick, batch.context)
        if purpose == "train" and len(batch):
            self.seen_hashes = np.union1d(self.seen_hashes, content_hash(batch.content))
        return Selection(ids=batch.ids, content=batch.content, steps=steps, **batch.meta)

    def _scoring(self, generation: int, model_state) -> dict:
        """What the likelihood and verifier filters need: the lab's model and its human calibration text."""
        kinds = {f.kind for f in self.cfg.filters}
        if not kinds & {"likelihood", "verifier"}:
            return {}
        if self._calibration is None:
            size = max(f.calibration_docs for f in self.cfg.filters if f.kind in ("likelihood", "verifier"))
            docs, _ = self.language.sample(size, rng=rngs.stream(self.seed, "calibration", self.cfg.name))
            # add-one unigram law of human text: the likelihood ratio's reference
            unigram = np.bincount(docs.ravel().astype(np.int64), minlength=self.language.vocab_size) + 1.0
            self._calibration = {"calibration": docs, "calibration_unigram": unigram / unigram.sum()}
        out = dict(self._calibration)
        if model_state is not None:
            if self._model is None or self._model[0] != generation:
                self._model = (generation, build_model(self.cfg.model, self.language).load_state_dict(model_state))
            out["model"] = self._model[1]
        return out

    def _pick(self, ids: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        """The first ``budget`` of ``ids`` in crawl order; pages on sites the crawl never reaches are left out.

        Crawl order is by site visit order, then newest first, then page id: one int64 key, so the
        first ``budget`` are found by a partition in O(pages) rather than a sort.
        """
        strategy = self.cfg.crawl_strategy
        if strategy == "random":
            return ids[rng.permutation(len(ids))[:budget]]
        graph = self.graph
        if strategy == "bfs":
            k = min(self.cfg.crawl_seeds, graph.n_sites)
            site_rank = graph.bfs_rank(rng.choice(graph.n_sites, size=k, replace=False))
        else:
            site_rank = graph.pagerank_rank()
        rank = site_rank[self.pages.column("site_id")[ids]]
        reached = rank >= 0
        ids, rank = ids[reached], rank[reached].astype(np.int64)
        if len(ids) <= budget:
            return ids
        ticks = len(self.tick_start)
        age = ticks - np.searchsorted(self.tick_start, ids, side="right")  # 0 for the newest tick
        n = len(self.pages)
        key = (rank * ticks + age) * n + ids  # < n_sites · ticks · pages, well inside int64 for any real web
        return ids[np.argpartition(key, budget - 1)[:budget]]

    def footprint(self) -> int:
        """Bytes of this scraper's page replica."""
        return self.pages.nbytes + self.trained.nbytes + self.tick_start.nbytes

    def busy_seconds(self) -> dict[str, float]:
        return dict(self.busy.seconds)

    def state(self) -> dict[str, np.ndarray]:
        return {"last_crawl_tick": np.array(self.last_crawl_tick), "trained": np.flatnonzero(self.trained),
                "seen_hashes": self.seen_hashes.copy()}

    def restore(self, state: dict[str, np.ndarray], graph: dict, pages: dict) -> None:
        self.last_crawl_tick = int(state["last_crawl_tick"])
        self.seen_hashes = np.asarray(state["seen_hashes"], dtype=np.uint64)
        self.graph = SiteGraph(links_per_site=self.graph.links_per_site, homophily=self.graph.homophily,
                               population_share=np.ones(1), topic_probs=np.ones(1))
        self.pages = PageIndex(self.capacity, columns=REPLICA)
        self.tick_start = np.zeros(0, dtype=np.int64)
        self.trained = np.zeros(0, dtype=bool)
        self.observe(graph, pages)
        self.trained[np.asarray(state["trained"], dtype=np.int64)] = True


def _watermark_keys(scenario, seed: int) -> dict[str, tuple[int, float]]:
    """Lab name → (key, γ) for every lab that watermarks; a filter uses those it is given."""
    from simweb.watermark import key_of

    return {lab.name: (key_of(seed, lab.name), lab.watermark.gamma) for lab in scenario.labs
            if lab.watermark is not None}
