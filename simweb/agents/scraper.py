"""A lab's scraper: crawls the web with a page budget, then runs the lab's filter chain.

Strategies order the sites a crawler reaches: ``bfs`` from seed sites along
links (sites it never reaches are never crawled), ``pagerank`` from the most to
the least central site, ``random`` over all pages. Within a site the newest
pages come first. ``new_only`` restricts a training crawl to pages published
since the lab's previous crawl; ``snapshot`` to an archive, the pages published at
or before a tick (or ``release - k``), on which it spends its whole budget. A benchmark
crawl reads the live web and never returns a page the lab has trained on.

The scraper keeps a replica of the site graph, fed a delta every tick, and the first page
id of each tick (page ids are in publication order, so a tick's pages are an id range); it
holds no column over the pages. A crawl is three steps, which the engine sends in order:
:meth:`Scraper.plan_crawl` ranks the sites and names the id range (a :class:`~simweb.stages.CrawlPlan`);
every publisher shard returns its own best ``budget`` candidates in crawl order
(:func:`candidates`: site rank, then newest first, then page id — one int64 key); and
:meth:`Scraper.select` merges them (a distributed top-k: the same pages as one sort over the whole
web). The shards then send the selected pages' content and ground truth straight to
:meth:`Scraper.filter`. The filters are registered plugins
(:mod:`simweb.plugins`); each sees only what it declared it needs (:mod:`simweb.filters.base`),
and its random stream is named by the filter (kind, numbered when repeated), not its position.
"""

from __future__ import annotations

import numpy as np

from simweb import consent
from simweb.filters.base import TRUTH_COLUMNS, Batch, accounting, accounting_of, filter_names
from simweb.plugins import PluginError, registry
from simweb.stages import CrawlPlan, Kept, Selection
from simweb.agents.base import Agent
from simweb.timing import Busy, timed
from simweb.web.graph import SiteGraph
from simweb.web.store import AI, join_parts, join_rows

__all__ = ["Scraper", "candidates", "random_positions"]

DEFAULT_CALIBRATION_DOCS = 1000
# a random crawl over more candidates than this samples without replacement, not a permutation of them all
PERMUTE_AT_MOST = 1 << 21


def random_positions(n: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    """``min(budget, n)`` distinct positions in ``range(n)``, every such set equally likely (a random crawl).

    Up to :data:`PERMUTE_AT_MOST` candidates: the first ``budget`` of a permutation of all of them. A permutation
    draws once per candidate — 0.6 s for 11 M candidates, to keep 50,000 — so past that the positions come from
    ``Generator.choice(replace=False)``, which draws once per position kept (numpy: Floyd's algorithm when
    ``budget`` ≤ n/50, else the last ``budget`` steps of a shuffle). Both give a uniform subset; they give
    different ones, so the bound keeps every crawl of up to 2,097,152 candidates as it was.
    """
    if n <= PERMUTE_AT_MOST:
        return rng.permutation(n)[:budget]
    return rng.choice(n, size=min(budget, n), replace=False, shuffle=False)


class Scraper(Agent):
    def __init__(self, context, index: int):
        self.context = context
        self.cfg = cfg = context.scenario.labs[index]
        self.index = index
        self.busy = Busy()
        entries = [registry.get("filter", f.kind) for f in cfg.filters]
        self.chain = [(name, entry, entry.cls(f)) for name, entry, f in zip(filter_names(cfg.filters), entries,
                                                                            cfg.filters)]
        self.needs = frozenset().union(*(e.needs for e in entries))
        self.last_crawl_tick = -1
        self.trained = np.empty(0, dtype=np.int64)  # sorted ids of the pages this lab has fetched for training
        self.trained_log = np.empty(0, dtype=np.int64)  # the same ids as they came, each once: what checkpoints keep
        web = context.scenario.web
        self.graph = SiteGraph(links_per_site=web.links_per_site, homophily=web.homophily,
                               population_share=np.ones(1), topic_probs=np.ones(1))
        # sites may refuse crawlers: which populations' blocks concern this lab, and which blocks it honours
        self.consent = consent.consent_on(context.scenario)
        self.refuses = consent.blocks_labs(context.scenario)[:, index] if self.consent else None
        self.honoured = np.zeros(0, dtype=bool)
        self.pages = 0  # on the web so far
        self.tick_start = np.zeros(0, dtype=np.int64)  # first page id of each tick
        self._calibration: np.ndarray | None = None  # fresh human documents, drawn once, for filters that need them

    @timed("crawl")
    def observe(self, graph: dict, published: dict[int, int]) -> None:
        """Follow the web: the sites and links (``graph``) added since, and how many pages each tick since
        published (``published``: tick → pages, in tick order; their ids follow the pages already seen)."""
        # nothing else changes when no site, link or block was added (a ~20 µs networkx call saved a tick)
        if len(graph["population"]) or len(graph["edges"]) or len(graph.get("blocks", ())):
            first_site = self.graph.n_sites
            self.graph.apply(graph)
            if self.consent:
                self.honoured = np.concatenate([self.honoured, consent.honour(
                    self.cfg.compliance, self.cfg.name, self.graph.created[first_site:], seed=self.context.seed)])
        for tick, count in published.items():
            if count:  # a tick without pages starts where the next one does
                starts = np.full(int(tick) + 1, self.pages, dtype=np.int64)
                starts[:len(self.tick_start)] = self.tick_start
                self.tick_start = starts
                self.pages += int(count)

    @timed("crawl")
    def plan_crawl(self, tick: int, budget: int, purpose: str, crawl: int) -> CrawlPlan:
        """What to ask every shard for, to pick up to ``budget`` pages. ``purpose`` is "train" or "benchmark".

        A benchmark never includes a page this lab fetched for training. With opt-outs, pages on sites that
        refuse this lab (and whose refusal it honours) are never fetched.
        """
        cfg = self.cfg
        rng = self.context.stream("crawl", cfg.name, purpose, crawl)
        first = 0
        if purpose == "train" and cfg.new_only:  # the pages since the last crawl: one id range
            since = self.last_crawl_tick + 1
            first = int(self.tick_start[since]) if since < len(self.tick_start) else self.pages
        last = self.pages
        archive = cfg.snapshot_tick(tick) if purpose == "train" else None
        if archive is not None:  # an archive: the pages published at or before it, also an id range
            last = int(self.tick_start[archive + 1]) if archive + 1 < len(self.tick_start) else self.pages
        site_rank = None
        if cfg.crawl_strategy == "bfs":
            k = min(cfg.crawl_seeds, self.graph.n_sites)
            site_rank = self.graph.bfs_rank(rng.choice(self.graph.n_sites, size=k, replace=False))
        elif cfg.crawl_strategy == "pagerank":
            site_rank = self.graph.pagerank_rank()
        refused = consent.refused_sites(self.graph, self.refuses, self.honoured, tick) if self.consent else None
        return CrawlPlan(crawl_tick=tick, purpose=purpose, crawl=crawl, budget=budget, first=first,
                         last=max(first, last), ticks=len(self.tick_start), pages=self.pages, site_rank=site_rank,
                         trained=self.trained if purpose == "benchmark" else None, refused=refused)

    @timed("crawl")
    def select(self, plan: CrawlPlan, parts: list) -> Selection:
        """The crawl's pages from every shard's :func:`candidates`: the first ``budget`` in crawl order (a
        random crawl: a random ``budget`` of them). With opt-outs the selection carries the accounting of the
        ``blocked`` step (step −1, before the fetch) over the pages it could have fetched."""
        ids = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts]) if parts else np.empty(0, np.int64)
        steps = ()
        if plan.refused is not None:
            counts = np.sum([p[2] for p in parts], axis=0, dtype=np.int64) if parts else np.zeros(4, np.int64)
            steps = ({"step": -1, "filter": "blocked", **accounting_of(*(int(c) for c in counts))},)
        if plan.site_rank is None:  # random: positions among the candidates in id order (random_positions)
            lengths = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts]) if parts else ids
            order = np.argsort(ids, kind="stable")  # the runs, disjoint, in id order
            starts, ends = ids[order], np.cumsum(lengths[order])
            rng = self.context.stream("crawl", self.cfg.name, plan.purpose, plan.crawl)
            pos = random_positions(int(ends[-1]) if len(ends) else 0, plan.budget, rng)
            run = np.searchsorted(ends, pos, side="right")  # the run holding each position, then its id
            ids = starts[run] + pos - (ends[run] - lengths[order][run])
        elif len(ids) > plan.budget:
            keys = np.concatenate([p[1] for p in parts])
            ids = ids[np.argpartition(keys, plan.budget - 1)[:plan.budget]]
        ids = np.sort(ids)
        if plan.purpose == "train":
            self.last_crawl_tick = plan.crawl_tick
            at = np.searchsorted(self.trained, ids)
            seen = at < len(self.trained)
            seen[seen] = self.trained[at[seen]] == ids[seen]
            fresh = ids[~seen]  # sorted, and none among the trained ids
            self.trained_log = np.concatenate([self.trained_log, fresh])
            # both sorted: a stable sort merges the two runs in linear time (np.union1d sorts from scratch)
            merged = np.concatenate([self.trained, fresh])
            merged.sort(kind="stable")
            self.trained = merged
        return Selection(ids=ids, crawl_tick=plan.crawl_tick, purpose=plan.purpose, crawl=plan.crawl, steps=steps)

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

    def footprint(self) -> int:
        """Bytes this scraper keeps per page: its trained ids (sorted, and as they came), the tick starts and the
        honoured blocks."""
        return self.trained.nbytes + self.trained_log.nbytes + self.tick_start.nbytes + self.honoured.nbytes

    def appended(self) -> tuple[str, ...]:
        return ("trained_log",)  # grows by each training crawl's new ids (:meth:`select`)

    def state(self) -> dict[str, np.ndarray]:
        out = {"last_crawl_tick": np.array(self.last_crawl_tick), "trained_log": self.trained_log,
               "tick_start": self.tick_start, "pages": np.array(self.pages)}
        for name, entry, flt in self.chain:  # filters with a memory of their own carry it in the checkpoint
            if "history" in entry.needs:
                out.update({f"filter.{name}.{k}": np.asarray(v) for k, v in flt.state().items()})
        return out

    def restore(self, state: dict[str, np.ndarray], graph: dict) -> None:
        """Back to a checkpoint: ``state`` (:meth:`state`) and the site graph."""
        self.last_crawl_tick = int(state["last_crawl_tick"])
        for name, entry, flt in self.chain:
            if "history" in entry.needs:
                prefix = f"filter.{name}."
                flt.restore({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        self.graph = SiteGraph(links_per_site=self.graph.links_per_site, homophily=self.graph.homophily,
                               population_share=np.ones(1), topic_probs=np.ones(1))
        self.honoured = np.zeros(0, dtype=bool)
        self.observe(graph, {})
        self.forget_parts()
        self.trained_log = np.asarray(state["trained_log"], dtype=np.int64).copy()
        self.trained = np.sort(self.trained_log)
        self.tick_start = np.asarray(state["tick_start"], dtype=np.int64).copy()
        self.pages = int(state["pages"])


def candidates(plan: CrawlPlan, index) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One shard's answer to ``plan`` from its ``index`` (a :class:`~simweb.web.store.PageIndex` with
    ``page_id``, ``site_id``, ``tick`` and ``origin``): (ids, keys, counts). ids: its pages in the plan's range,
    not trained on, not refused, reached — at most ``budget`` of them, the first by key (site rank, age, id), with
    their keys; for a random crawl all of them, as runs of consecutive ids (starts, lengths: a shard's pages come
    in long runs, so this is small); counts (opt-outs): pages in, AI pages in, allowed, AI allowed.
    """
    held = index.column("page_id")
    lo, hi = np.searchsorted(held, [plan.first, plan.last])
    ids, site = held[lo:hi], index.column("site_id")[lo:hi]
    keep = np.ones(len(ids), dtype=bool)
    if plan.trained is not None and len(plan.trained) and len(ids):  # the trained ids among these (few)
        pos = np.searchsorted(ids, plan.trained)
        inside = pos < len(ids)
        pos = pos[inside]
        keep[pos[ids[pos] == plan.trained[inside]]] = False
    counts = None
    if plan.refused is not None:
        allowed = ~plan.refused[site]
        is_ai = index.column("origin")[lo:hi] == AI  # ground truth, for the accounting only
        counts = np.array([keep.sum(), (is_ai & keep).sum(), (allowed & keep).sum(), (allowed & is_ai & keep).sum()],
                          dtype=np.int64)
        keep &= allowed
    if plan.site_rank is None:  # every candidate, as runs of consecutive ids: (starts, lengths)
        ids = ids[keep]
        if not len(ids):
            return ids, np.empty(0, dtype=np.int64), counts
        cuts = np.flatnonzero(np.diff(ids) != 1) + 1
        return ids[np.concatenate(([0], cuts))], np.diff(np.concatenate(([0], cuts, [len(ids)]))), counts
    rank = plan.site_rank[site]
    keep &= rank >= 0
    rows = np.flatnonzero(keep)
    ids, rank = ids[rows], rank[rows].astype(np.int64)
    age = plan.ticks - 1 - index.column("tick")[lo:hi][rows].astype(np.int64)  # 0 for the newest tick
    key = (rank * plan.ticks + age) * plan.pages + ids  # < n_sites · ticks · pages, well inside int64 for any real web
    if len(ids) > plan.budget:
        first = np.argpartition(key, plan.budget - 1)[:plan.budget]
        ids, key = ids[first], key[first]
    return ids, key, counts
