"""A lab's scraper: crawls the web with a page budget, then runs the lab's filter chain.

Strategies order the sites a crawler reaches: ``bfs`` from seed sites along
links (sites it never reaches are never crawled), ``pagerank`` from the most to
the least central site, ``random`` over all pages. Within a site the newest
pages come first. ``new_only`` restricts a training crawl to pages published
since the lab's previous crawl; ``snapshot`` to an archive, the pages published at
or before a tick (or ``release - k``), on which it spends its whole budget. A benchmark
crawl reads the live web and never returns a page the lab has trained on.

The scraper keeps its own replica of the site graph and of the one page
column a crawl orders by (the site), fed a delta every tick; page ids are in
publication order, so a tick's pages are an id range and need no column. It
selects page ids; the shards that hold them send their content and ground truth
to it (through the object store on Ray: the engine passes references). The filters are registered plugins
(:mod:`simweb.plugins`); each sees only what it declared it needs (:mod:`simweb.filters.base`),
and its random stream is named by the filter (kind, numbered when repeated), not its position.
"""

from __future__ import annotations

import numpy as np

from simweb import consent
from simweb.filters.base import TRUTH_COLUMNS, Batch, accounting, filter_names
from simweb.plugins import PluginError, registry
from simweb.stages import Kept, Selection
from simweb.agents.base import Agent
from simweb.timing import Busy, timed
from simweb.web.graph import SiteGraph
from simweb.web.store import AI, PageIndex, _grow, join_parts, join_rows

__all__ = ["Scraper", "REPLICA"]

REPLICA = ("site_id",)  # the page columns a scraper keeps
CONSENT_REPLICA = ("site_id", "origin")  # with opt-outs: the origin too, for the blocked step's accounting only
DEFAULT_CALIBRATION_DOCS = 1000


class Scraper(Agent):
    def __init__(self, context, index: int, capacity: int = 1024):
        self.context = context
        self.cfg = cfg = context.scenario.labs[index]
        self.index = index
        self.busy = Busy()
        entries = [registry.get("filter", f.kind) for f in cfg.filters]
        self.chain = [(name, entry, entry.cls(f)) for name, entry, f in zip(filter_names(cfg.filters), entries,
                                                                            cfg.filters)]
        self.needs = frozenset().union(*(e.needs for e in entries))
        self.last_crawl_tick = -1
        self._trained = np.zeros(capacity, dtype=bool)
        self.trained = self._trained[:0]  # per page: kept for training by this lab at some point
        web = context.scenario.web
        self.graph = SiteGraph(links_per_site=web.links_per_site, homophily=web.homophily,
                               population_share=np.ones(1), topic_probs=np.ones(1))
        self.capacity = capacity  # pages the run will publish: the replica is allocated once
        # sites may refuse crawlers: which populations' blocks concern this lab, and which blocks it honours
        self.consent = consent.consent_on(context.scenario)
        self.refuses = consent.blocks_labs(context.scenario)[:, index] if self.consent else None
        self.honoured = np.zeros(0, dtype=bool)
        self.replica = CONSENT_REPLICA if self.consent else REPLICA
        self.pages = PageIndex(capacity, columns=self.replica)
        self.tick_start = np.zeros(0, dtype=np.int64)  # first page id of each tick
        self._calibration: np.ndarray | None = None  # fresh human documents, drawn once, for filters that need them

    @timed("crawl")
    def observe(self, graph: dict, pages: dict) -> None:
        """Follow the web: the sites and links (``graph``) and pages (``site_id`` and ``tick``) added since."""
        # nothing else changes when no site, link or block was added (a ~20 µs networkx call saved a tick)
        if len(graph["population"]) or len(graph["edges"]) or len(graph.get("blocks", ())):
            first_site = self.graph.n_sites
            self.graph.apply(graph)
            if self.consent:
                self.honoured = np.concatenate([self.honoured, consent.honour(
                    self.cfg.compliance, self.cfg.name, self.graph.created[first_site:], seed=self.context.seed)])
        tick = np.asarray(pages["tick"])
        if len(tick):
            new = np.flatnonzero(np.concatenate(([True], tick[1:] != tick[:-1])))  # pages arrive in tick order
            starts = np.full(int(tick[-1]) + 1, len(self.pages) + len(tick), dtype=np.int64)
            starts[:len(self.tick_start)] = self.tick_start
            starts[tick[new]] = len(self.pages) + new
            self.tick_start = np.minimum.accumulate(starts[::-1])[::-1]  # a tick with no pages starts at the next
        self.pages.extend(pages)
        # a view of a buffer allocated for the run's pages, so a tick costs its own pages, not all pages so far
        n = len(self.pages)
        if n > len(self._trained):
            self._trained = _grow(self._trained, len(self.trained), n)
            self._trained[len(self.trained):] = False
        self.trained = self._trained[:n]

    @timed("crawl")
    def crawl(self, tick: int, budget: int, purpose: str, crawl: int) -> Selection:
        """Pick up to ``budget`` page ids. ``purpose`` is "train" or "benchmark".

        A benchmark never includes a page this lab fetched for training. With opt-outs, pages on sites
        that refuse this lab (and whose refusal it honours) are never fetched: the selection carries the
        accounting of that ``blocked`` step (step −1, before the fetch) over the pages it could have fetched.
        """
        cfg = self.cfg
        rng = self.context.stream("crawl", cfg.name, purpose, crawl)
        first = 0
        if purpose == "train" and cfg.new_only:  # the pages since the last crawl: one id range
            since = self.last_crawl_tick + 1
            first = int(self.tick_start[since]) if since < len(self.tick_start) else len(self.pages)
        last = len(self.pages)
        archive = cfg.snapshot_tick(tick) if purpose == "train" else None
        if archive is not None:  # an archive: the pages published at or before it, also an id range
            last = int(self.tick_start[archive + 1]) if archive + 1 < len(self.tick_start) else len(self.pages)
        ids = np.arange(first, max(first, last), dtype=np.int64)
        if purpose == "benchmark":
            ids = ids[~self.trained[first:]]
        steps = ()
        if self.consent:
            refused = consent.refused_sites(self.graph, self.refuses, self.honoured, tick)
            allowed = ~refused[self.pages.column("site_id")[ids]]
            is_ai = self.pages.column("origin")[ids] == AI  # ground truth, for the accounting only
            steps = ({"step": -1, "filter": "blocked", **accounting(is_ai, allowed)},)
            ids = ids[allowed]
        ids = np.sort(self._pick(ids, budget, rng))
        if purpose == "train":
            self.last_crawl_tick = tick
            self.trained[ids] = True
        return Selection(ids=ids, crawl_tick=tick, purpose=purpose, crawl=crawl, steps=steps)

    @timed("filter")
    def filter(self, selection: Selection, *, parts: list, model=None) -> Kept:
        """Run the lab's filter chain on the selected pages; keep what passes.

        ``parts``: (ids, content, index rows) from the shards holding them; ``model``: (generation, state)
        of the lab's latest released model, for filters that need it (None before it has one).
        """
        ids = selection.ids
        language = self.context.language
        content = join_parts(ids, [p[:2] for p in parts], language.width, language.dtype)
        pages = join_rows(ids, [(p[0], p[2]) for p in parts])
        extra = {"graph": self.graph, "language": language,
                 "population_names": [p.name for p in self.context.scenario.publishers],
                 "model": self.context.model(self.index, *model) if model is not None else None}
        if "calibration" in self.needs:
            extra["calibration"] = self.calibration()
        batch = Batch(ids=ids, site_id=np.asarray(pages["site_id"]), tick=np.asarray(pages["tick"]),
                      c2pa=np.asarray(pages["c2pa"]), crawl_tick=selection.crawl_tick, purpose=selection.purpose,
                      lab=self.cfg.name, vocab_size=getattr(language, "vocab_size", 0),
                      watermark_keys=self.context.watermark_keys(), _content=content,
                      _truth={k: np.asarray(pages[k]) for k in TRUTH_COLUMNS if k in pages}, _extra=extra)

        def imitating(truth):  # human pages written under a model's influence (None: humans do not imitate)
            return (truth["imitation"] > 0) & (truth["origin"] != AI) if "imitation" in truth else None

        steps = [*selection.steps, {"step": 0, "filter": "fetch", **accounting(
            batch._truth["origin"] == AI, np.ones(len(ids), bool), imitating(batch._truth))}]
        for i, (name, entry, flt) in enumerate(self.chain, start=1):
            rng = self.context.stream("filter", self.cfg.name, selection.purpose, selection.crawl, name)
            keep = self._run(entry, name, selection, lambda: flt.keep(batch.view(name, entry.needs), rng=rng),
                             len(batch))
            steps.append({"step": i, "filter": name, **accounting(batch._truth["origin"] == AI, keep,
                                                                   imitating(batch._truth))})
            batch = batch.subset(keep)
        for name, entry, flt in self.chain:
            if hasattr(flt, "after_crawl"):
                self._run(entry, name, selection, lambda: flt.after_crawl(batch.view(name, entry.needs)))
        truth = batch._truth
        return Kept(ids=batch.ids, content=batch._content, tick=batch.tick, site_id=batch.site_id,
                    truth={k: truth[k] for k in ("origin", "lab", "generation", "imitation") if k in truth},
                    steps=tuple(steps),
                    crawl_tick=selection.crawl_tick, purpose=selection.purpose)

    def _run(self, entry, name: str, selection: Selection, call, n: int | None = None):
        """Call a filter's method; a plugin's failure or a result of the wrong shape names the plugin and the tick."""
        where = f"filter {name!r} of lab {self.cfg.name!r} at tick {selection.crawl_tick}"
        try:
            result = call()
        except PluginError:
            raise
        except Exception as err:
            if entry.builtin:
                raise
            raise PluginError(f"{where} ({entry.origin}) raised {type(err).__name__}: {err}") from err
        if n is None:
            return result
        keep = np.asarray(result) if isinstance(result, (np.ndarray, list, tuple)) else None
        if keep is None or keep.dtype != np.bool_ or keep.shape != (n,):
            got = (f"{type(result).__name__}" if keep is None else
                   f"an array of dtype {keep.dtype} and shape {keep.shape}")
            raise PluginError(f"{where} ({entry.origin}): keep returned {got}, expected a bool array of shape ({n},)")
        return keep

    def calibration(self) -> np.ndarray:
        """Fresh human documents, drawn once from the language, as many as the largest ``calibration_docs``."""
        if self._calibration is None:
            size = max(getattr(f, "calibration_docs", DEFAULT_CALIBRATION_DOCS)
                       for (_, entry, _), f in zip(self.chain, self.cfg.filters) if "calibration" in entry.needs)
            docs, _ = self.context.language.sample(size, rng=self.context.stream("calibration", self.cfg.name))
            self._calibration = docs
        return self._calibration

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
        return self.pages.nbytes + self.trained.nbytes + self.tick_start.nbytes + self.honoured.nbytes

    def state(self) -> dict[str, np.ndarray]:
        out = {"last_crawl_tick": np.array(self.last_crawl_tick), "trained": np.flatnonzero(self.trained)}
        for name, entry, flt in self.chain:  # filters with a memory of their own carry it in the checkpoint
            if "history" in entry.needs:
                out.update({f"filter.{name}.{k}": np.asarray(v) for k, v in flt.state().items()})
        return out

    def restore(self, state: dict[str, np.ndarray], graph: dict, parts: list) -> None:
        """Back to a checkpoint: ``state`` (:meth:`state`), the site graph, and the replica's columns of every
        page as (ids, columns) parts from the shards that hold them."""
        self.last_crawl_tick = int(state["last_crawl_tick"])
        for name, entry, flt in self.chain:
            if "history" in entry.needs:
                prefix = f"filter.{name}."
                flt.restore({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        self.graph = SiteGraph(links_per_site=self.graph.links_per_site, homophily=self.graph.homophily,
                               population_share=np.ones(1), topic_probs=np.ones(1))
        self.pages = PageIndex(self.capacity, columns=self.replica)
        self.honoured = np.zeros(0, dtype=bool)
        self.tick_start = np.zeros(0, dtype=np.int64)
        self._trained = np.zeros(self.capacity, dtype=bool)
        self.trained = self._trained[:0]
        total = sum(len(p[0]) for p in parts)
        pages = join_rows(np.arange(total), parts) if total else {k: np.zeros(0, np.int32) for k in ("tick", *self.replica)}
        self.observe(graph, pages)
        self.trained[np.asarray(state["trained"], dtype=np.int64)] = True
