"""Publishers: populations of sites that write pages, and the shards that hold what they write.

Publishing a tick happens in two steps:

1. :class:`Publisher` (one per population) *plans* the tick's pages: how many,
   on which sites, which are AI-written (the logistic adoption share of the tick,
   as long as a lab it uses has released a model), by which lab's model (market
   share), and the topic of each human page (the site's topic with probability
   ``topic_focus``). A plan is metadata only, drawn from the stream
   ``("publish", population, tick)``.
2. :class:`PublisherShard` s *write* the content of the planned pages on the
   sites they own. Sites are grouped into blocks of ``SITE_BLOCK`` consecutive
   ids and block b belongs to shard ``b % n_shards``. Every page's content comes
   from its own row of the noise drawn for its (population, tick, block) from the
   stream ``("write", population, tick, block)``, so the web is the same whether
   one shard or seven write it.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from simweb import rng as rngs
from simweb.behaviours import Drafts
from simweb.plugins import PluginError, registry
from simweb.sampling import choice
from simweb.agents.base import Agent
from simweb.timing import Busy, timed
from simweb.web.store import AI, HUMAN, ContentStore, PageIndex, join_parts, page_columns

__all__ = ["Publisher", "Planner", "PublisherShard", "adoption_share", "sampling_settings", "SITE_BLOCK", "shard_of"]

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


class Publisher:
    """Plans one population's pages each tick."""

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

    def plan(self, tick: int, sites: np.ndarray, site_topic: np.ndarray, released: Mapping[int, int],
             index=None, topic_probs: np.ndarray | None = None) -> dict[str, np.ndarray] | None:
        """This tick's pages as metadata columns; ``released`` maps lab index → the generation publishers use.

        With ``copy_rate`` > 0, that share of the tick's pages republish pages already on the web (``index``):
        a copy keeps its original's authorship and content, and loses its C2PA label with ``strip_c2pa``.
        ``topic_probs``: the topic popularity of this tick, when the truth drifts (default: the one at start).
        """
        cfg = self.cfg
        n = cfg.pages_per_tick + (cfg.initial_pages if tick == 0 else 0)
        if n == 0 or len(sites) == 0:
            return None
        rng = rngs.stream(self.seed, "publish", cfg.name, tick)
        page_site = sites[rng.integers(0, len(sites), size=n)].astype(np.int32)
        weights = np.array([w if lab in released else 0.0 for lab, w in enumerate(self._weights)])
        share = adoption_share(cfg.ai_adoption, tick) if weights.sum() > 0 else 0.0
        is_ai = rng.random(n) < share
        if tick == 0:
            is_ai[cfg.pages_per_tick:] = False  # the initial pages are human by definition
        lab = np.full(n, -1, dtype=np.int16)
        if is_ai.any():
            lab[is_ai] = choice(weights / weights.sum(), int(is_ai.sum()), rng=rng)
        generation = np.full(n, -1, dtype=np.int16)
        for lab_index, gen in released.items():
            generation[lab == lab_index] = gen
        on_topic = rng.random(n) < cfg.topic_focus
        popularity = self.topic_probs if topic_probs is None else topic_probs
        topic = np.where(on_topic, site_topic[page_site], choice(popularity, n, rng=rng))
        topic = np.where(is_ai, -1, topic).astype(np.int16)
        labelled = rng.random(n) < cfg.c2pa_rate  # a truthful label: 1 says human, 2 says AI
        c2pa = np.where(labelled, np.where(is_ai, 2, 1), 0).astype(np.int8)
        watermarked = is_ai & self.watermarking[np.maximum(lab, 0)]
        edited = np.where(is_ai, cfg.edit_fraction, 0.0).astype(np.float32)
        copied_from = np.full(n, -1, dtype=np.int64)
        if cfg.copy_rate > 0 and index is not None and len(index) and tick > 0:
            copy = rng.random(n) < cfg.copy_rate
            k = int(copy.sum())
            orig = np.sort(rng.integers(0, len(index), size=k))
            copied_from[copy] = orig
            src = index.rows(orig)
            is_ai[copy] = src["origin"] == AI
            lab[copy], generation[copy], topic[copy] = src["lab"], src["generation"], src["topic"]
            watermarked[copy], edited[copy] = src["watermarked"], src["edited_fraction"]
            c2pa[copy] = np.where(rng.random(k) < cfg.strip_c2pa, 0, src["c2pa"])
        extra = {}
        if self.width is not None:  # the humans feature: after every other draw, from streams of its own
            extra = self._humans(tick, n, is_ai, copied_from, weights, share, index)
        columns = {"site_id": page_site, "tick": np.full(n, tick, dtype=np.int32),
                   "origin": np.where(is_ai, AI, HUMAN).astype(np.int8), "lab": lab, "generation": generation,
                   "topic": topic, "population": np.full(n, self.index, dtype=np.int16), "watermarked": watermarked,
                   "c2pa": c2pa, "edited_fraction": edited, "copied_from": copied_from, **extra}
        if "displaced" in columns:
            stay = ~columns.pop("displaced")
            columns = {k: v[stay] for k, v in columns.items()}
            if not stay.any():
                return None
        # pages in site order, so each block's pages are contiguous and in page-id order (a stable sort; a web
        # of one site, like the papers' loops, is in that order already)
        page_site = columns["site_id"]
        if np.any(page_site[1:] < page_site[:-1]):
            order = _stable_order(page_site)
            columns = {k: v[order] for k, v in columns.items()}
        return columns


    def _humans(self, tick: int, n: int, is_ai, copied_from, weights, share, index) -> dict[str, np.ndarray]:
        """The imitation of this tick's human pages and which of them are displaced (:mod:`simweb.humans`)."""
        from simweb.humans import imitation_share

        cfg = self.cfg
        written = ~is_ai & (copied_from < 0)  # human pages written now (a copy keeps its original's)
        tokens = np.zeros(n, dtype=np.int32)
        lab = np.full(n, -1, dtype=np.int16)
        kappa = imitation_share(cfg.imitation, tick) if weights.sum() > 0 else 0.0
        if kappa > 0:
            rng = rngs.stream(self.seed, "imitate", cfg.name, tick)
            tokens = np.where(written, rng.binomial(self.width, kappa, size=n), 0).astype(np.int32)
            lab = np.where(tokens > 0, choice(weights / weights.sum(), n, rng=rng), -1).astype(np.int16)
        imitation = (tokens / self.width).astype(np.float32)
        copy = copied_from >= 0
        if copy.any():
            imitation[copy] = index.rows(copied_from[copy])["imitation"]
        out = {"imitation": imitation, "imitation_tokens": tokens, "imitation_lab": lab}
        if cfg.displacement and share > 0:
            drop = rngs.stream(self.seed, "displace", cfg.name, tick).random(n) < cfg.displacement * share
            out["displaced"] = written & drop
        return out


class _Missing(Exception):
    """A plan needs the rows of pages it copies, which the shards hold: asked for, then planned again."""


class _Copied:
    """The pages published before this tick as :meth:`Publisher.plan` reads them: how many, and the rows of the
    originals it copies — from ``rows`` (fetched from the shards), else noted in ``need`` and :class:`_Missing`."""

    def __init__(self, pages: int, rows: dict | None, need: list):
        self.pages, self._rows, self.need = pages, rows, need

    def __len__(self) -> int:
        return self.pages

    def rows(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        if self._rows is not None:
            return {k: v[np.searchsorted(self._rows["page_id"], ids)] for k, v in self._rows.items() if k != "page_id"}
        self.need.append(ids)
        raise _Missing


class Planner(Agent):
    """Plans each tick's pages with every population's :class:`Publisher`, so that no page passes through the
    driver: each shard receives from here the part of the plan on its own sites (:meth:`parts`; on Ray one
    object per shard), and the driver receives counts.

    It follows the sites' populations and topics (a delta a tick). A plan that copies pages needs their rows,
    which the shards hold: :meth:`plan` then returns the ids it needs and is called again with the shards'
    answer (the same streams, so the same plan). It keeps the tick's plan until the next one, for
    :meth:`parts`, :meth:`originals` and :meth:`human_drift`.
    """

    def __init__(self, context):
        from simweb.features import features_of

        self.context = context
        sc = context.scenario
        lab_names = [lab.name for lab in sc.labs]
        topic_probs = getattr(context.language, "topic_probs", np.ones(1))
        self.features = features_of(sc)
        width = context.language.width if "humans" in self.features else None
        self.publishers = [Publisher(p, i, topic_probs, lab_names, [lab.market_share for lab in sc.labs],
                                     context.seed, [lab.watermark is not None for lab in sc.labs], width=width)
                           for i, p in enumerate(sc.publishers)]
        self.busy = Busy()
        self.restore({"population": np.empty(0, np.int16), "topic": np.empty(0, np.int16)}, 0)

    def restore(self, graph: dict, pages: int) -> None:
        """Back to a checkpoint: the sites (``graph``: the site graph's state) and the pages published so far."""
        self.population = np.asarray(graph["population"], dtype=np.int16).copy()
        self.topic = np.asarray(graph["topic"], dtype=np.int16).copy()
        self.n_pages = int(pages)
        self._tick, self._plans, self._pages, self._first = None, {}, None, 0

    @timed("publish")
    def plan(self, tick: int, graph: dict | None, released: Mapping[int, int], parts: list | None = None):
        """Plan tick ``tick`` (``graph``: the sites added since; ``released``: lab → generation). Returns what the
        driver records of it (:meth:`_counts`) — or, when a plan copies pages, ``{"need": ids}``: the ids whose rows
        it needs, to be called again with ``parts``, the shards' (ids, rows) of them."""
        if graph is not None:
            self.population = np.concatenate([self.population, np.asarray(graph["population"], dtype=np.int16)])
            self.topic = np.concatenate([self.topic, np.asarray(graph["topic"], dtype=np.int16)])
        if tick != self._tick:
            self._tick, self._plans = tick, {}
        rows = None
        if parts is not None:
            from simweb.web.store import join_rows

            wanted = np.unique(np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts]))
            rows = {"page_id": wanted, **join_rows(wanted, parts)}
        language = self.context.language
        truth = language.at(tick)  # a drifting truth: this tick's topic popularity
        popularity = getattr(truth, "topic_probs", None) if truth is not language else None
        need: list = []
        copied = _Copied(self.n_pages, rows, need)
        for pub in self.publishers:
            if pub.index in self._plans:
                continue
            try:
                self._plans[pub.index] = pub.plan(tick, np.flatnonzero(self.population == pub.index), self.topic,
                                                  released, copied, topic_probs=popularity)
            except _Missing:
                continue
        if need:
            return {"need": np.unique(np.concatenate(need))}
        plans = [self._plans[i] for i in sorted(self._plans) if self._plans[i] is not None]
        if len(plans) == 1:
            pages = plans[0]
        elif plans:
            pages = {k: np.concatenate([p[k] for p in plans]) for k in plans[0]}
        else:
            pages = PageIndex(1, columns=page_columns("humans" in self.features)).state()
        self._pages, self._first = pages, self.n_pages
        self.n_pages += len(pages["tick"])
        return self._counts()

    def pages(self) -> dict[str, np.ndarray]:
        """The planned tick's pages (metadata columns)."""
        return self._pages

    def parts(self, n_shards: int) -> list[dict[str, np.ndarray]] | dict[str, np.ndarray]:
        """The planned tick's pages split by the shard that writes them (site block b: shard b mod ``n_shards``),
        each part with its pages' ids (``page_id``) and in id order — one list of ``n_shards`` parts (one value
        each for the executor), or the one part itself for one shard. Each shard receives only its own pages."""
        pages = self._pages
        n = len(pages["tick"])
        ids = np.arange(self._first, self._first + n, dtype=np.int64)
        if n_shards == 1:
            return {"page_id": ids, **pages}
        owner = shard_of(pages["site_id"], n_shards)
        order = _stable_order(owner)  # each shard's pages together, in id order within
        cuts = np.cumsum(np.bincount(owner, minlength=n_shards))[:-1]
        return [{"page_id": ids[rows], **{k: v[rows] for k, v in pages.items()}} for rows in np.split(order, cuts)]

    def originals(self) -> np.ndarray:
        """The ids of the pages the planned tick copies (sorted, unique)."""
        copied = self._pages["copied_from"]
        return np.unique(copied[copied >= 0])

    def _counts(self) -> dict:
        """What the driver records of the planned tick (:func:`simweb.results.tick_counts`) and how many pages."""
        from simweb.results import tick_counts

        return {"pages": len(self._pages["tick"]), "first_id": self._first,
                "copies": bool(np.any(self._pages["copied_from"] >= 0)),
                **tick_counts(self._pages, len(self.publishers), len(self.population), self.features)}

    def human_drift(self, parts: list) -> list[dict]:
        """Per population, its new human pages' mean imitation and excess NLL (:mod:`simweb.humans`), from the
        shards' (ids, excess NLL) ``parts`` of the planned tick."""
        from simweb.results import human_drift

        out = np.full(len(self._pages["tick"]), np.nan)
        for ids, excess in parts:
            out[np.asarray(ids) - self._first] = excess
        return [human_drift(self._pages, out, p) for p in range(len(self.publishers))]


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
    def publish(self, tick: int, pages: dict[str, np.ndarray], models: Mapping[int, tuple], originals: list) -> int:
        """Write the content of ``pages``, this shard's part of the tick's plan (:meth:`Planner.parts`: metadata
        columns and ``page_id``, in id order); returns how many.

        ``models`` maps each released lab to (generation, model state); ``originals`` are (ids, content)
        parts holding the originals of copied pages.
        """
        # the ids are kept (by the content store): a copy, so no array of the plan stays pinned in Ray's object store
        site, ids = pages["site_id"].view(), np.array(pages["page_id"], dtype=np.int64)
        site.flags.writeable = False  # the plan's (behaviours see it): read, never written
        self._drift = [] if "imitation_tokens" in pages else None  # this tick's human pages' excess NLL
        if len(ids) == 0:
            return 0
        if self.n_shards > 1 and np.any(shard_of(site, self.n_shards) != self.shard):
            raise ValueError(f"shard {self.shard} of {self.n_shards} was given pages of another shard's sites")
        self.index.extend({k: pages[k] for k in self.columns})
        block = site.astype(np.int64) // SITE_BLOCK
        # one noise block per (population, block): its rows drive its pages in page-id order
        population = pages["population"]
        change = (population[1:] != population[:-1]) | (block[1:] != block[:-1])
        bounds = np.concatenate(([0], np.flatnonzero(change) + 1, [len(ids)]))
        content = np.empty((len(ids), self.language.width), dtype=self.language.dtype)
        # whole groups at a time, about BATCH pages each, so the noise (8 bytes a token) stays small
        cuts = [0]
        for g in range(1, len(bounds)):
            if bounds[g] - bounds[cuts[-1]] >= BATCH or g == len(bounds) - 1:
                cuts.append(g)
        for g0, g1 in zip(cuts[:-1], cuts[1:]):
            self._write(tick, content, pages, block, site, bounds[g0:g1 + 1], models, ids)
        copied_from = pages["copied_from"]
        copies = copied_from >= 0
        if copies.any():
            wanted = np.unique(copied_from[copies])
            parts = [(part_ids[np.isin(part_ids, wanted)], part[np.isin(part_ids, wanted)])
                     for part_ids, part in originals]
            found = join_parts(wanted, parts, self.language.width, self.language.dtype)
            content[copies] = found[np.searchsorted(wanted, copied_from[copies])]
        self.store.append(tick, ids, content)
        return len(ids)

    def drift(self) -> tuple[np.ndarray, np.ndarray]:
        """(page ids, excess NLL) of the human pages the last ``publish`` wrote, when humans imitate: per token
        (per sample for the gaussian and categorical families), the page's NLL under the truth of its tick minus
        that of the truth-only page it would have been (the same noise, before the model's tokens went in)."""
        parts = self._drift or []
        if not parts:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

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

    def rows(self, ids: np.ndarray, columns=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(ids, index rows) of those of ``ids`` this shard holds, in the order asked (``columns``: default all)."""
        ids = np.asarray(ids, dtype=np.int64)
        hit, at = self.index.find(ids)
        return ids[hit], self.index.select(at, columns or self.columns[1:])

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
