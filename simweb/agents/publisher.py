"""Publishers: populations of sites that write pages, and the shards that hold what they write.

Sites are grouped into blocks of ``SITE_BLOCK`` consecutive ids and block b belongs to shard
``b % n_shards``. Publishing a tick happens in three steps, none of which holds a column over every page:

1. The driver decides what is O(sites) (:func:`plan_sites`): how many pages each site of each population
   publishes (:meth:`Publisher.counts`: the population's pages spread uniformly over its sites, a
   multinomial drawn from the stream ``("publish", population, tick)``, displaced human pages removed
   first), and the id of each site's first page (ids run by population, then site). Each shard receives
   the counts of its own sites.
2. Each shard plans its sites' pages (:meth:`PublisherShard.plan`): which are copies, AI-written (the
   logistic adoption share of the tick, once a lab the population uses has released a model) or human, by
   which lab's model (market share), the topic of each human page (its site's topic with probability
   ``topic_focus``), labels and imitation. Every page draws a fixed number of uniforms from the stream
   ``("plan", population, tick, block)`` of its block, in id order, and each column is a function of them.
3. Each shard writes its pages' content (:meth:`PublisherShard.publish`): every page from its own row of the
   noise drawn for its (population, tick, block) from the stream ``("write", population, tick, block)``.

So the web is the same whether one shard or seven plan and write it.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from simweb import rng as rngs
from simweb.behaviours import Drafts
from simweb.plugins import PluginError, registry
from simweb.sampling import inverse_cdf
from simweb.agents.base import Agent
from simweb.timing import Busy, timed
from simweb.results import exact_sum, tick_counts
from simweb.web.store import AI, HUMAN, ContentStore, PageIndex, join_parts, join_rows, page_columns

__all__ = ["Publisher", "PublisherShard", "adoption_share", "plan_sites", "publishers_of", "sampling_settings", "SITE_BLOCK",
           "shard_of"]

SITE_BLOCK = 64  # consecutive site ids whose pages one shard owns and writes together
BATCH = 32_768  # pages written at once: bounds the noise held while writing


def shard_of(site_ids: np.ndarray, n_shards: int) -> np.ndarray:
    return (np.asarray(site_ids, dtype=np.int64) // SITE_BLOCK) % n_shards


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for non-negative integer keys below 2³², faster: numpy sorts 16-bit
    keys stably by radix (O(n)) and wider ones by timsort, so wider keys go through two 16-bit passes, low half
    first (an LSD radix sort: stable, hence the same unique order). About 4× at 100,000 site ids."""
    keys = np.asarray(keys)
    if len(keys) == 0:
        return np.empty(0, dtype=np.intp)
    high = keys.max() if keys.dtype.kind in "iu" else None
    if high is None or high >= 2**32 or keys.min() < 0:  # not what the passes can order
        return np.argsort(keys, kind="stable")
    if high < 2**16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((keys[low] >> 16).astype(np.uint16), kind="stable")]


def sampling_settings(scenario, lab: int, watermark=None) -> list[tuple[float, float, object]]:
    """The (temperature, top_p, watermark) with which the scenario's publishers may draw from lab ``lab``'s
    released models (``watermark``: the lab's, or None): every population that can pick the lab for an AI page
    or an imitating human page (:meth:`PublisherShard._write`, ``_imitate``), and (1, 1, None) where a
    population launders its drafts with the lab's model. Its trainer builds these sampling tables at release.
    """
    name, out = scenario.labs[lab].name, []
    for p in scenario.publishers:
        if p.pages_per_tick == 0:  # no page after tick 0, and tick 0's are human and written before any release
            continue
        picks = scenario.labs[lab].market_share > 0 and (p.uses is None or name in p.uses)
        if picks and (p.ai_adoption.start > 0 or p.ai_adoption.end > 0 or p.imitation is not None):
            out.append((p.temperature, p.top_p, watermark))
        if p.launder is not None and p.launder.fraction > 0 and p.launder.paraphraser == name:
            out.append((1.0, 1.0, None))
    return list(dict.fromkeys(out))


def adoption_share(cfg, tick: int) -> float:
    """start + (end − start) / (1 + exp(−rate · (tick − midpoint)))."""
    z = -cfg.rate * (tick - cfg.midpoint)
    logistic = 1.0 / (1.0 + math.exp(z)) if z < 700 else 0.0
    return cfg.start + (cfg.end - cfg.start) * logistic


def page_draws(cfg) -> dict[str, int]:
    """Uniforms each page of population ``cfg`` draws, by group, in the order a block draws them: ``base``, its
    kind (copy, AI or human), its lab, whether it is on its site's topic, its topic otherwise, its label; ``copy``
    (with ``copy_rate``), whether the page is a copy, whether a copy keeps the label and which page it copies;
    ``imitate`` (when the population imitates), how many of its tokens and from which lab."""
    return {"base": 5, **({"copy": 3} if cfg.copy_rate > 0 else {}), **({"imitate": 2} if cfg.imitation is not None else {})}


class Publisher:
    """One population's pages: how many each of its sites publishes in a tick (:meth:`counts`, on the driver:
    O(sites)), and what those pages are (:meth:`pages`, in the shard that holds the sites).

    Each page draws a fixed number of uniforms (:meth:`draws`) from the stream of its (population, tick, site
    block), in page-id order, and every column of its plan is a function of them: so a page is the same
    whichever shard plans it, and planning costs a few draws per block, not one per page and column. A block
    draws its pages' five base uniforms first, then those of copies, then those of imitation, so turning either
    on leaves every other draw of the block as it was."""

    def __init__(self, cfg, index: int, topic_probs: np.ndarray, lab_names: list[str], market_share: list[float],
                 seed: int, watermarking: list[bool] | None = None, width: int | None = None):
        """``width``: tokens per page, given when the scenario's humans imitate or are displaced (the plan then
        carries ``imitation``, and for the writers ``imitation_tokens`` and ``imitation_lab``)."""
        self.cfg = cfg
        self.width = width
        self.watermarking = np.array(watermarking if watermarking is not None else [False] * len(lab_names))
        self.index = index
        self.topic_probs = np.asarray(topic_probs, dtype=np.float64)
        self.seed = seed
        uses = set(cfg.uses) if cfg.uses is not None else set(lab_names)
        self._weights = np.array([w if name in uses else 0.0 for name, w in zip(lab_names, market_share)])
        self.imitates = width is not None and cfg.imitation is not None

    def draws(self) -> dict[str, int]:
        """Uniforms each page draws, by group (:func:`page_draws`)."""
        return page_draws(self.cfg)

    def weights(self, released: Mapping[int, int]) -> np.ndarray:
        """Market shares of the labs whose models the population uses now (0 for a lab with no release)."""
        return np.array([w if lab in released else 0.0 for lab, w in enumerate(self._weights)])

    def rates(self, tick: int, released: Mapping[int, int], pages_before: int) -> tuple[float, float, float]:
        """(AI share s, copy rate c, displaced share q) of the tick's pages: a page is a copy with probability c,
        else AI-written with probability s, else a human page — displaced (never published) with probability
        ``displacement`` · s. q = (1 − c)(1 − s) · ``displacement`` · s. At tick 0 no lab has released a model
        and the initial pages are human by definition."""
        cfg = self.cfg
        share = adoption_share(cfg.ai_adoption, tick) if tick > 0 and self.weights(released).sum() > 0 else 0.0
        copy = cfg.copy_rate if tick > 0 and pages_before > 0 else 0.0
        gone = (1 - copy) * (1 - share) * (cfg.displacement or 0.0) * share if self.width is not None else 0.0
        return share, copy, gone

    def counts(self, tick: int, n_sites: int, released: Mapping[int, int], pages_before: int) -> np.ndarray:
        """How many pages each of the population's ``n_sites`` sites publishes at ``tick`` (uniform over its
        sites, displaced pages removed), from the stream ("publish", population, tick): O(sites), never
        O(pages)."""
        cfg = self.cfg
        n = cfg.pages_per_tick + (cfg.initial_pages if tick == 0 else 0)
        if n == 0 or n_sites == 0:
            return np.zeros(n_sites, dtype=np.int64)
        gone = self.rates(tick, released, pages_before)[2]
        if gone == 0 and n_sites == 1:  # nothing to draw (a multinomial over one site draws nothing): no stream
            return np.array([n], dtype=np.int64)
        rng = rngs.stream(self.seed, "publish", cfg.name, tick)
        if gone > 0:
            n = int(rng.binomial(n, 1.0 - gone))
        return rng.multinomial(n, np.full(n_sites, 1.0 / n_sites)).astype(np.int64)

    def pages(self, tick: int, u: dict[str, np.ndarray], site: np.ndarray, site_topic: np.ndarray,
              released: Mapping[int, int], pages_before: int, topic_probs: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The plan of pages on ``site`` (one per row, with its site's topic ``site_topic``) from their uniforms
        ``u`` (by group of :meth:`draws`, a row per page): metadata columns, and for copies ``copy_keeps_label``; a copy's other
        columns are its original's, filled in by the shard when it has the original's row (:meth:`PublisherShard.publish`).
        ``topic_probs``: the topic popularity of this tick, when the truth drifts (default: the one at start)."""
        cfg, n = self.cfg, len(site)
        share, copy_rate, gone = self.rates(tick, released, pages_before)
        base = u["base"]
        # the pages drawn are those not displaced: a copy with probability c / (1 − q), an original AI-written
        # with (1 − c)s / (1 − q − c) — so (1 − c)s / (1 − q) in all, and s whatever c when nothing is displaced
        rest = 1.0 - gone - copy_rate
        copy = u["copy"][:, 0] < copy_rate / (1.0 - gone) if "copy" in u else np.zeros(n, dtype=bool)
        is_ai = ~copy & (base[:, 0] < ((1.0 - copy_rate) * share / rest if rest > 0 else 0.0))
        weights = self.weights(released)
        lab = np.full(n, -1, dtype=np.int16)
        if is_ai.any():
            lab[is_ai] = inverse_cdf(weights, base[is_ai, 1])
        generation = np.full(n, -1, dtype=np.int16)
        for lab_index, gen in released.items():
            generation[lab == lab_index] = gen
        popularity = self.topic_probs if topic_probs is None else topic_probs
        topic = np.where(base[:, 2] < cfg.topic_focus, site_topic, inverse_cdf(popularity, base[:, 3]))
        topic = np.where(is_ai, -1, topic).astype(np.int16)
        c2pa = np.where(base[:, 4] < cfg.c2pa_rate, np.where(is_ai, 2, 1), 0).astype(np.int8)  # 1 says human, 2 AI
        copied_from = np.full(n, -1, dtype=np.int64)
        columns = {"site_id": site.astype(np.int32, copy=False), "tick": np.full(n, tick, dtype=np.int32),
                   "origin": np.where(is_ai, AI, HUMAN).astype(np.int8), "lab": lab, "generation": generation,
                   "topic": topic, "population": np.full(n, self.index, dtype=np.int16),
                   "watermarked": is_ai & self.watermarking[np.maximum(lab, 0)], "c2pa": c2pa,
                   "edited_fraction": np.where(is_ai, cfg.edit_fraction, 0.0).astype(np.float32),
                   "copied_from": copied_from}
        if cfg.copy_rate > 0:
            v = u["copy"]
            copied_from[copy] = np.minimum((v[copy, 2] * pages_before).astype(np.int64), max(pages_before - 1, 0))
            columns["copy_keeps_label"] = copy & (v[:, 1] >= cfg.strip_c2pa)
        if self.width is not None:
            columns.update(self._humans(tick, u.get("imitate"), ~is_ai & ~copy, weights))
        return columns

    def _humans(self, tick: int, u: np.ndarray | None, written: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        """The imitation of the pages' human-written ones (:mod:`simweb.humans`): k ~ Binomial(L, κ_t) tokens from
        a lab picked by market share, from the pages' ``imitate`` uniforms ``u``."""
        from simweb.humans import imitation_share

        n = len(written)
        tokens = np.zeros(n, dtype=np.int32)
        lab = np.full(n, -1, dtype=np.int16)
        kappa = imitation_share(self.cfg.imitation, tick) if self.imitates and weights.sum() > 0 else 0.0
        if kappa > 0:
            tokens = np.where(written, inverse_cdf(_binomial(self.width, kappa), u[:, 0]), 0).astype(np.int32)
            lab = np.where(tokens > 0, inverse_cdf(weights, u[:, 1]), -1).astype(np.int16)
        return {"imitation": (tokens / self.width).astype(np.float32), "imitation_tokens": tokens,
                "imitation_lab": lab}


def _binomial(n: int, p: float) -> np.ndarray:
    """The probabilities of 0..n under Binomial(n, p)."""
    if p >= 1.0:
        return np.eye(n + 1)[n]
    k = np.arange(n + 1)
    log = (np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
           + k * math.log(p) + (n - k) * math.log1p(-p))
    return np.exp(log - log.max())


def _groups(population: np.ndarray, site: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(block of each page, bounds of its (population, block) groups) for pages in id order: a shard's unit of
    random streams, in planning and in writing."""
    block = site.astype(np.int64) // SITE_BLOCK
    if len(site) == 0:
        return block, np.zeros(1, dtype=np.int64)
    change = (population[1:] != population[:-1]) | (block[1:] != block[:-1])
    return block, np.concatenate(([0], np.flatnonzero(change) + 1, [len(site)])).astype(np.int64)


def publishers_of(context) -> list[Publisher]:
    """The scenario's populations, each as its :class:`Publisher`."""
    from simweb.features import features_of

    sc = context.scenario
    lab_names = [lab.name for lab in sc.labs]
    topic_probs = getattr(context.language, "topic_probs", np.ones(1))
    width = context.language.width if "humans" in features_of(sc) else None
    return [Publisher(p, i, topic_probs, lab_names, [lab.market_share for lab in sc.labs], context.seed,
                      [lab.watermark is not None for lab in sc.labs], width=width)
            for i, p in enumerate(sc.publishers)]


def plan_sites(publishers: list[Publisher], tick: int, population: np.ndarray, topic: np.ndarray,
               released: Mapping[int, int], first_id: int, n_shards: int) -> tuple[list[dict], int]:
    """The driver's share of planning a tick, O(sites): how many pages each site publishes (:meth:`Publisher.counts`),
    split by the shard that holds the site. Pages take ids from ``first_id`` on, by population, then site, so a
    site's pages have consecutive ids. Returns one part per shard — its sites with pages, in id order, with
    ``count``, ``first`` (the id of the site's first page), ``population`` and ``topic`` — and the tick's pages."""
    site, pop, count = [np.empty(0, np.int64)], [np.empty(0, np.int16)], [np.empty(0, np.int64)]
    for pub in publishers:
        sites = np.flatnonzero(population == pub.index)
        c = pub.counts(tick, len(sites), released, first_id)
        keep = np.flatnonzero(c)
        site.append(sites[keep])
        pop.append(np.full(len(keep), pub.index, dtype=np.int16))
        count.append(c[keep])
    site, pop, count = np.concatenate(site), np.concatenate(pop), np.concatenate(count)
    part = {"site_id": site.astype(np.int32), "population": pop, "count": count,
            "first": first_id + np.cumsum(count) - count, "topic": np.asarray(topic)[site].astype(np.int16)}
    if n_shards == 1:
        return [part], int(count.sum())
    owner = shard_of(site, n_shards)
    order = _stable_order(owner)  # each shard's sites together, in id order within
    cuts = np.cumsum(np.bincount(owner, minlength=n_shards))[:-1]
    return [{k: v[rows] for k, v in part.items()} for rows in np.split(order, cuts)], int(count.sum())


class PublisherShard(Agent):
    """Writes and keeps the pages on the site blocks it owns: their ground truth (``index``, a
    :class:`~simweb.web.store.PageIndex` with each row's ``page_id``) and their content (``store``).

    ``directory`` is where its content chunks are written (at checkpoints, and when spilling past
    ``budget`` bytes of resident content), each with its pages' index rows; see
    :class:`simweb.web.store.ContentStore`. ``capacity``: a hint of the pages it will hold. AI drafts pass
    through their population's behaviours (``edit_fraction``, then ``behaviours``: registered plugins)
    before they are published.
    """

    def __init__(self, context, shard: int, n_shards: int, directory=None, budget: int | None = None,
                 durable: bool = True, capacity: int = 1024):
        from simweb.features import features_of

        self.context = context
        self.shard = shard
        self.n_shards = n_shards
        self.scenario = context.scenario
        self.directory, self.budget, self.durable = directory, budget, durable
        self.language = context.language
        self.capacity = capacity
        humans = "humans" in features_of(self.scenario)
        self.columns = ("page_id", *page_columns(humans))
        self.index = PageIndex(capacity, columns=self.columns)
        self.store = self._new_store()
        self.busy = Busy()
        from simweb.watermark import Watermark, key_of

        self._watermarks = {i: Watermark(key_of(context.seed, lab.name), lab.watermark.gamma, lab.watermark.delta)
                            for i, lab in enumerate(self.scenario.labs) if lab.watermark is not None}
        self.behaviours = [_behaviours(p) for p in self.scenario.publishers]
        self.publishers = publishers_of(context)
        self._features = features_of(self.scenario)
        self._plan: dict | None = None  # the tick's pages, from plan() to publish()
        self._drift: list | None = None

    def _new_store(self) -> ContentStore:
        return ContentStore(width=self.language.width, dtype=self.language.dtype, directory=self.directory,
                            budget=self.budget, name=(self.shard, self.n_shards), durable=self.durable,
                            rows=self._rows_between)

    def _rows_between(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """The index rows of the pages held with ids in [lo, hi)."""
        ids = self.index.column("page_id")
        return self.index.select(np.arange(np.searchsorted(ids, lo), np.searchsorted(ids, hi)))

    @timed("publish")
    def plan(self, tick: int, part: dict[str, np.ndarray], released: Mapping[int, int], pages_before: int) -> np.ndarray:
        """Plan this shard's pages of tick ``tick`` from ``part``, its sites' share of the driver's plan
        (:func:`plan_sites`: how many pages each site publishes, and the id of its first); ``released``: lab →
        generation; ``pages_before``: pages published before the tick. Each (population, site block) draws its
        pages' uniforms from the stream ("plan", population, tick, block). Returns the ids of the pages its copies
        republish (sorted, unique): :meth:`publish` needs their rows and content."""
        count = np.asarray(part["count"], dtype=np.int64)
        n = int(count.sum())
        starts = np.cumsum(count) - count
        ids = np.repeat(np.asarray(part["first"], dtype=np.int64) - starts, count) + np.arange(n, dtype=np.int64)
        site = np.repeat(part["site_id"], count)
        population = np.repeat(part["population"], count)
        if self.n_shards > 1 and np.any(shard_of(site, self.n_shards) != self.shard):
            raise ValueError(f"shard {self.shard} of {self.n_shards} was given pages of another shard's sites")
        block, bounds = _groups(population, site)
        names = [self.scenario.publishers[int(p)].name for p in population[bounds[:-1]]]
        rngs_of = rngs.streams(self.context.seed, [("plan", name, tick, int(b))
                                                  for name, b in zip(names, block[bounds[:-1]])])
        truth = self.language.at(tick)  # a drifting truth: this tick's topic popularity
        popularity = getattr(truth, "topic_probs", None) if truth is not self.language else None
        topic = np.repeat(part["topic"], count)
        plans = []
        for pub in self.publishers:
            g = np.flatnonzero(population[bounds[:-1]] == pub.index)  # its groups, consecutive
            if len(g) == 0:
                continue
            lo, hi = int(bounds[g[0]]), int(bounds[g[-1] + 1])
            u = {name: np.empty((hi - lo, width)) for name, width in pub.draws().items()}
            for i in g:  # each block its base uniforms, then its copies', then its imitation's, in place
                a, b = int(bounds[i]) - lo, int(bounds[i + 1]) - lo
                for values in u.values():
                    rngs_of[i].random(out=values[a:b])
            plans.append(pub.pages(tick, u, site[lo:hi], topic[lo:hi], released, pages_before, popularity))
        keys = dict.fromkeys(k for p in plans for k in p)
        pages = {k: np.concatenate([p[k] if k in p else np.zeros(len(p["tick"]), bool) for p in plans])
                 for k in keys} if plans else PageIndex(1, columns=self.columns[1:]).state()
        self._plan = {"page_id": ids, **pages}
        copied = self._plan["copied_from"]
        return np.unique(copied[copied >= 0])

    def originals(self, wanted: list) -> tuple:
        """(ids, content, index rows) of the pages this shard holds among ``wanted``, every shard's answer to
        :meth:`plan` (the pages their copies republish): each shard takes the union itself, so no id passes
        through the driver."""
        ids = np.unique(np.concatenate([np.asarray(w, dtype=np.int64) for w in wanted]))
        return self.fetch(ids, rows=True)

    @timed("publish")
    def publish(self, tick: int, planned: np.ndarray, models: Mapping[int, tuple], originals: list) -> dict:
        """Write the content of the pages :meth:`plan` planned, and hold them; returns what the driver records of
        them (:func:`simweb.results.tick_counts`, and with imitating humans the sums of :meth:`_drift_sums`).

        ``planned`` is what :meth:`plan` returned (on Ray, its reference: so its error, if any, is raised here);
        ``models`` maps each released lab to (generation, model state); ``originals`` are the shards' (ids,
        content, index rows) of the pages copied (:meth:`originals`), or empty when nothing is copied.
        """
        if self._plan is None:
            raise RuntimeError(f"shard {self.shard} was asked to publish tick {tick} without a plan")
        pages, self._plan = self._plan, None
        ids = pages.pop("page_id")
        keeps_label = pages.pop("copy_keeps_label", None)
        copied_from = pages["copied_from"]
        copies = copied_from >= 0
        content = np.empty((len(ids), self.language.width), dtype=self.language.dtype)
        found = None
        if copies.any():  # a copy keeps its original's authorship and content; its label unless stripped
            wanted = np.asarray(planned, dtype=np.int64)  # np.unique(copied_from[copies]), as plan() returned
            rows = join_rows(wanted, [(o[0], o[2]) for o in originals])
            at = np.searchsorted(wanted, copied_from[copies])
            for k in ("lab", "generation", "topic", "watermarked", "edited_fraction", "origin"):
                pages[k][copies] = rows[k][at]
            pages["c2pa"][copies] = np.where(keeps_label[copies], rows["c2pa"][at], 0)
            if "imitation" in pages:
                pages["imitation"][copies] = rows["imitation"][at]
            # every shard fetched the originals of all: keep those of this shard's copies
            parts = [(o[0][keep], o[1][keep]) for o in originals for keep in (np.isin(o[0], wanted),)]
            found = join_parts(wanted, parts, self.language.width, self.language.dtype)[at]
        self._drift = [] if "imitation_tokens" in pages else None  # this tick's human pages' excess NLL
        counts = tick_counts(pages, len(self.scenario.publishers), None, self._features)
        if len(ids) == 0:
            return {"counts": counts, "drift": []}
        self.index.extend({"page_id": ids, **{k: pages[k] for k in self.columns[1:]}})
        site = pages["site_id"].view()
        site.flags.writeable = False  # the plan's (behaviours see it): read, never written
        # one noise block per (population, block): its rows drive its pages in page-id order
        block, bounds = _groups(pages["population"], site)
        # whole groups at a time, about BATCH pages each, so the noise (8 bytes a token) stays small
        cuts = [0]
        for g in range(1, len(bounds)):
            if bounds[g] - bounds[cuts[-1]] >= BATCH or g == len(bounds) - 1:
                cuts.append(g)
        for g0, g1 in zip(cuts[:-1], cuts[1:]):
            self._write(tick, content, pages, block, site, bounds[g0:g1 + 1], models, ids)
        if found is not None:
            content[copies] = found
        self.store.append(tick, ids, content)
        return {"counts": counts, "drift": self._drift_sums(ids, pages, bounds)}

    def _drift_sums(self, ids: np.ndarray, pages: dict, bounds: np.ndarray) -> list[tuple]:
        """Per (population, block) group of the tick's pages with human-written ones: (population, pages, sum of
        imitation, sum of excess NLL), each sum exact (``math.fsum``), so the driver's means do not depend on which
        shard held which block (:func:`simweb.results.human_drift`)."""
        if self._drift is None:
            return []
        excess = np.full(len(ids), np.nan)
        for held, values in self._drift:
            excess[np.searchsorted(ids, held)] = values
        written = (pages["origin"] != AI) & (pages["copied_from"] < 0)
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            rows = np.flatnonzero(written[a:b]) + a
            if len(rows):
                out.append((int(pages["population"][a]), len(rows), exact_sum(pages["imitation"][rows]),
                            exact_sum(excess[rows])))
        return out

    def _write(self, tick: int, content: np.ndarray, pages: dict[str, np.ndarray], block: np.ndarray,
               site: np.ndarray, bounds: np.ndarray, models: Mapping[int, tuple], ids_of=None) -> None:
        """Write the pages of consecutive (population, block) groups ``bounds`` into ``content`` (copies: later)."""
        lo, hi = int(bounds[0]), int(bounds[-1])
        population = pages["population"][lo:hi]
        starts = bounds[:-1]
        names = [self.scenario.publishers[int(p)].name for p in pages["population"][starts]]
        streams = rngs.streams(self.context.seed, [("write", name, tick, int(b))
                                                   for name, b in zip(names, block[starts])])
        noise_t = np.concatenate([self.language.noise(int(b - a), rng=rng).T
                                  for a, b, rng in zip(starts, bounds[1:], streams)],
                                 axis=1)  # (width, n): one contiguous row per step
        out = content[lo:hi]
        lab = pages["lab"][lo:hi].copy()
        copies = pages["copied_from"][lo:hi] >= 0
        lab[copies] = -2  # written by publish(), from their originals
        # who writes each page: 0 nobody here (a copy), 1 the truth (a human page), 2 + lab × populations +
        # population a lab's model for a population; grouped by one stable sort, so each writer gathers its pages'
        # noise and puts its pages back by index, at a cost in its own pages (a mask per writer would scan the
        # whole batch each time)
        n_pop = len(self.scenario.publishers)
        writer = np.where(lab >= 0, 2 + lab.astype(np.int64) * n_pop + population, np.where(lab == -1, 1, 0))
        order = _stable_order(writer)
        edges = np.concatenate(([0], np.cumsum(np.bincount(writer))))  # writer w: order[edges[w]:edges[w + 1]]
        for w in np.flatnonzero(np.diff(edges)[1:]) + 1:  # the writers present, in order (the truth first)
            rows = order[edges[w]:edges[w + 1]]
            if w == 1:  # human pages, written from the truth of the tick they are published
                out[rows] = self.language.at(tick).draw(noise_t[:, rows].T, topics=pages["topic"][lo:hi][rows])
                if "imitation_tokens" in pages:
                    self._imitate(tick, out, pages, lo, hi, lab == -1, block, bounds - lo, models, ids_of)
                continue
            lab_index, pop = divmod(int(w) - 2, n_pop)
            cfg = self.scenario.publishers[pop]
            out[rows] = self.context.model(lab_index, *models[lab_index]).draw(
                noise_t[:, rows].T, temperature=cfg.temperature, top_p=cfg.top_p,
                watermark=self._watermarks.get(lab_index))
        self._behave(tick, out, lab, site[lo:hi], population, block[lo:hi], bounds - lo, models)

    def _imitate(self, tick: int, out: np.ndarray, pages: dict, lo: int, hi: int, human: np.ndarray,
                 block: np.ndarray, bounds: np.ndarray, models: Mapping[int, tuple], ids: np.ndarray) -> None:
        """Splice the models' tokens into the imitating human pages of each (population, block) group, from the
        stream ("imitate", population, tick, block); record every human page's excess NLL (:meth:`drift`)."""
        from simweb.humans import splice

        tokens, lab = pages["imitation_tokens"][lo:hi], pages["imitation_lab"][lo:hi]
        population = pages["population"][lo:hi]
        truth = self.language.at(tick)
        before = out[human].copy()
        for a, b in zip(bounds[:-1], bounds[1:]):
            rows = np.flatnonzero(human[a:b] & (tokens[a:b] > 0)) + a
            if len(rows) == 0:
                continue
            cfg = self.scenario.publishers[int(population[a])]
            rng = self.context.stream("imitate", cfg.name, tick, int(block[lo + a]))
            noise = self.language.noise(len(rows), rng=rng)
            drawn = np.empty((len(rows), out.shape[1]), dtype=out.dtype)
            for j in np.flatnonzero(np.bincount(lab[rows])):
                mine = lab[rows] == j
                drawn[mine] = self.context.model(int(j), *models[int(j)]).draw(
                    noise[mine], temperature=cfg.temperature, top_p=cfg.top_p, watermark=self._watermarks.get(int(j)))
            out[rows] = splice(out[rows], drawn, tokens[rows], rng=rng)
        per = getattr(self.language, "doc_length", 1)  # per token; per sample for the gaussian and categorical
        excess = (truth.log_prob(before) - truth.log_prob(out[human])) / per
        self._drift.append((ids[lo:hi][human], excess))

    def _behave(self, tick: int, content: np.ndarray, lab: np.ndarray, site: np.ndarray, population: np.ndarray,
                block: np.ndarray, bounds: np.ndarray, models: Mapping[int, tuple]) -> None:
        """Pass each group's AI drafts (not copies: they are published as they were) through its population's
        behaviours; each draws from its own stream per (behaviour, population, tick, block), so it is
        shard-invariant and leaves the others' draws alone."""
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            pop = int(population[lo])
            chain = self.behaviours[pop]
            if not chain or not np.any(lab[lo:hi] >= 0):
                continue
            name = self.scenario.publishers[pop].name
            drafts = Drafts(content=content[lo:hi], is_draft=lab[lo:hi] >= 0, lab=lab[lo:hi], site_id=site[lo:hi],
                            tick=tick, population=name, language=self.language.at(tick),
                            models=_Released(self.context, models),
                            lab_names=tuple(lab.name for lab in self.scenario.labs))
            for kind, entry, behaviour in chain:
                rng = self.context.stream(kind, name, tick, int(block[lo]))
                try:
                    behaviour.apply(drafts, rng=rng)
                except Exception as err:
                    if entry.builtin or isinstance(err, PluginError):
                        raise
                    raise PluginError(f"publisher behaviour {kind!r} of population {name!r} at tick {tick} "
                                      f"({entry.origin}) raised {type(err).__name__}: {err}") from err

    def fetch(self, ids, rows: bool = False) -> tuple:
        """(ids, content) of those of ``ids`` (page ids, or a crawl's :class:`~simweb.stages.Selection`) this shard
        holds, in the order asked; with ``rows``, (ids, content, their index rows). Every shard may be asked for the
        same ids: each answers for its own."""
        ids = np.asarray(getattr(ids, "ids", ids), dtype=np.int64)
        hit, at = self.index.find(ids)
        held = ids[hit]
        out = (held, self.store.fetch(held))
        return out + (self.index.select(at, self.columns[1:]),) if rows else out

    @timed("crawl")
    def candidates(self, plan) -> tuple:
        """This shard's answer to a lab's crawl (:func:`simweb.agents.scraper.candidates`)."""
        from simweb.agents.scraper import candidates

        return candidates(plan, self.index)

    def columns_of(self, names) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(ids, ``names`` columns) of every page this shard holds, in id order: a scraper's replica after a
        restore, or an inspection of the whole web."""
        return self.index.column("page_id").copy(), {k: self.index.column(k).copy() for k in names}

    @timed("checkpoint")
    def flush(self) -> list[dict]:
        """Write what is not on disk yet; the records of every chunk this shard holds (its checkpoint)."""
        return self.store.flush()

    def footprint(self) -> dict[str, int]:
        """Pages held, bytes of content (with ids) resident in memory, and bytes of the index rows."""
        spilled = sum(c.pages for c in self.store.chunks if c.content is None)
        return {"pages": len(self.store), "resident_bytes": self.store.resident_bytes, "spilled_pages": spilled,
                "index_bytes": self.index.nbytes}

    def restore(self, records: list[dict]) -> None:
        """Hold the pages of a checkpoint's ``records`` (each file carries its pages' index rows): this
        shard's own files as they are; files written under another shard layout are read and split by
        site, tick by tick.
        """
        self.store = self._new_store()
        self.index = PageIndex(self.capacity, columns=self.columns)
        if all(r["shards"] == self.n_shards for r in records):
            mine = sorted((r for r in records if r["shard"] == self.shard), key=lambda r: r["lo"])
            for record in mine:
                self.index.extend(self.store.read_rows(record))
            self.store.adopt(mine)
            return
        for tick in sorted({r["tick"] for r in records}):
            parts = [self.store.read(r) for r in records if r["tick"] == tick]
            ids = np.concatenate([p[0] for p in parts])
            content = np.concatenate([p[1] for p in parts])
            rows = {k: np.concatenate([p[2][k] for p in parts]) for k in self.columns[1:]}
            keep = np.flatnonzero(shard_of(rows["site_id"], self.n_shards) == self.shard)
            keep = keep[np.argsort(ids[keep], kind="stable")]
            self.index.extend({"page_id": ids[keep], **{k: v[keep] for k, v in rows.items()}})
            self.store.append(tick, ids[keep], content[keep])


def _behaviours(cfg) -> list[tuple[str, object, object]]:
    """A population's behaviours as (stream name, registry entry, instance): its edits first, then its plugins."""
    from simweb.plugins import parse_config

    configs = ([parse_config("behaviour", {"kind": "edit", "fraction": cfg.edit_fraction})]
               if cfg.edit_fraction > 0 else [])
    if cfg.launder is not None and cfg.launder.fraction > 0:
        from simweb.behaviours import launder_config

        configs.append(launder_config(cfg.launder))
    configs += list(cfg.behaviours or ())
    out, seen = [], {}
    for c in configs:
        seen[c.kind] = seen.get(c.kind, 0) + 1
        entry = registry.get("behaviour", c.kind)
        out.append((c.kind if seen[c.kind] == 1 else f"{c.kind}_{seen[c.kind]}", entry, entry.cls(c)))
    return out


class _Released(dict):
    """Lab index → its released model, built (once per process) on first use."""

    def __init__(self, context, models: Mapping[int, tuple]):
        super().__init__()
        self._context, self._states = context, models

    def __missing__(self, lab: int):
        if lab not in self._states:
            raise KeyError(lab)
        model = self._context.model(lab, *self._states[lab])
        self[lab] = model
        return model
