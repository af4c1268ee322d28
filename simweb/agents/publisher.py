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
from simweb.language import build_language
from simweb.models import build_model
from simweb.web.store import AI, HUMAN, ContentStore

__all__ = ["Publisher", "PublisherShard", "adoption_share", "SITE_BLOCK", "shard_of"]

SITE_BLOCK = 64  # consecutive site ids whose pages one shard owns and writes together


def shard_of(site_ids: np.ndarray, n_shards: int) -> np.ndarray:
    return (np.asarray(site_ids, dtype=np.int64) // SITE_BLOCK) % n_shards


def adoption_share(cfg, tick: int) -> float:
    """start + (end − start) / (1 + exp(−rate · (tick − midpoint)))."""
    z = -cfg.rate * (tick - cfg.midpoint)
    logistic = 1.0 / (1.0 + math.exp(z)) if z < 700 else 0.0
    return cfg.start + (cfg.end - cfg.start) * logistic


class Publisher:
    """Plans one population's pages each tick."""

    def __init__(self, cfg, index: int, topic_probs: np.ndarray, lab_names: list[str], market_share: list[float],
                 seed: int, watermarking: list[bool] | None = None):
        self.cfg = cfg
        self.watermarking = np.array(watermarking if watermarking is not None else [False] * len(lab_names))
        self.index = index
        self.topic_probs = np.asarray(topic_probs, dtype=np.float64)
        self.seed = seed
        uses = set(cfg.uses) if cfg.uses is not None else set(lab_names)
        self._weights = np.array([w if name in uses else 0.0 for name, w in zip(lab_names, market_share)])

    def plan(self, tick: int, sites: np.ndarray, site_topic: np.ndarray, released: Mapping[int, int],
             index=None) -> dict[str, np.ndarray] | None:
        """This tick's pages as metadata columns; ``released`` maps lab index → the generation publishers use.

        With ``copy_rate`` > 0, that share of the tick's pages republish pages already on the web (``index``):
        a copy keeps its original's authorship and content, and loses its C2PA label with ``strip_c2pa``.
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
            lab[is_ai] = rng.choice(len(weights), size=int(is_ai.sum()), p=weights / weights.sum())
        generation = np.full(n, -1, dtype=np.int16)
        for lab_index, gen in released.items():
            generation[lab == lab_index] = gen
        on_topic = rng.random(n) < cfg.topic_focus
        topic = np.where(on_topic, site_topic[page_site], rng.choice(len(self.topic_probs), size=n, p=self.topic_probs))
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
        # pages in site order, so each block's pages are contiguous and in page-id order
        order = np.argsort(page_site, kind="stable")
        return {
            "site_id": page_site[order],
            "tick": np.full(n, tick, dtype=np.int32),
            "origin": np.where(is_ai, AI, HUMAN).astype(np.int8)[order],
            "lab": lab[order],
            "generation": generation[order],
            "topic": topic[order],
            "population": np.full(n, self.index, dtype=np.int16),
            "watermarked": watermarked[order],
            "c2pa": c2pa[order],
            "edited_fraction": edited[order],
            "copied_from": copied_from[order],
        }


class PublisherShard:
    """Writes and keeps the content of the pages on the site blocks it owns."""

    def __init__(self, shard: int, n_shards: int, scenario, seed: int):
        self.shard = shard
        self.n_shards = n_shards
        self.scenario = scenario
        self.seed = seed
        self.language = build_language(scenario.language, seed)
        self.store = ContentStore(width=self.language.width, dtype=self.language.dtype)
        self._models: dict[int, tuple[int, object]] = {}  # lab → (generation, model)
        from simweb.watermark import Watermark, key_of

        self._watermarks = {i: Watermark(key_of(seed, lab.name), lab.watermark.gamma, lab.watermark.delta)
                            for i, lab in enumerate(scenario.labs) if lab.watermark is not None}

    def publish(self, tick: int, first_id: int, pages: dict[str, np.ndarray], generations: Mapping[int, int],
                *refs) -> int:
        """Write the content of this shard's pages among ``pages`` (ids from ``first_id``); returns how many.

        ``generations`` maps each released lab (in increasing order) to its generation; ``refs`` are those
        models' states in the same order, then (ids, content) parts holding the originals of copied pages.
        """
        states, originals = refs[:len(generations)], refs[len(generations):]
        models = {lab: (gen, state) for (lab, gen), state in zip(sorted(generations.items()), states)}
        site = pages["site_id"]
        mine = np.flatnonzero(shard_of(site, self.n_shards) == self.shard)
        if len(mine) == 0:
            return 0
        ids = first_id + mine
        population, block = pages["population"][mine], site[mine].astype(np.int64) // SITE_BLOCK
        # one noise block per (population, block): its rows drive its pages in page-id order
        keys = np.stack([population, block], axis=1)
        starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
        bounds = np.r_[starts, len(mine)]
        # noise is kept column-per-page (width, n): the samplers read one contiguous row per step
        noise_t = np.concatenate([
            self.language.noise(int(hi - lo), rng=rngs.stream(
                self.seed, "write", self.scenario.publishers[int(population[lo])].name, tick, int(block[lo]))).T
            for lo, hi in zip(bounds[:-1], bounds[1:])], axis=1)
        content = np.empty((len(mine), self.language.width), dtype=self.language.dtype)
        lab = pages["lab"][mine].copy()
        copied_from = pages["copied_from"][mine]
        copies = copied_from >= 0
        lab[copies] = -2  # written below, from their originals
        human = lab == -1
        if human.any():
            content[human] = self.language.draw(noise_t[:, human].T, topics=pages["topic"][mine][human])
        for lab_index in np.unique(lab[lab >= 0]):
            for pop in np.unique(population[lab == lab_index]):
                rows = (lab == lab_index) & (population == pop)
                cfg = self.scenario.publishers[int(pop)]
                content[rows] = self._model(int(lab_index), models).draw(
                    noise_t[:, rows].T, temperature=cfg.temperature, top_p=cfg.top_p,
                    watermark=self._watermarks.get(int(lab_index)))
        self._edit(tick, content, population, block, bounds,
                   np.where(copies, 0.0, pages["edited_fraction"][mine]))  # a copy is not edited again
        if copies.any():
            from simweb.agents.trainer import join_parts

            wanted = np.unique(copied_from[copies])
            parts = [(part_ids[np.isin(part_ids, wanted)], part[np.isin(part_ids, wanted)])
                     for part_ids, part in originals]
            found = join_parts(wanted, parts, self.language.width, self.language.dtype)
            content[copies] = found[np.searchsorted(wanted, copied_from[copies])]
        self.store.append(ids, content)
        return len(mine)

    def _edit(self, tick: int, content: np.ndarray, population: np.ndarray, block: np.ndarray,
              bounds: np.ndarray, fraction: np.ndarray) -> None:
        """Human edits of AI drafts: each token rewritten with probability ``fraction``, by a token humans use.

        The randomness comes per (population, tick, block), like the content's, so it is shard-invariant.
        """
        if not np.any(fraction > 0):
            return
        unigram = self.language.unigram()
        L = content.shape[1]
        from simweb.language.simple import inverse_cdf

        for lo, hi in zip(bounds[:-1], bounds[1:]):
            f = fraction[lo:hi]
            if not np.any(f > 0):
                continue
            rng = rngs.stream(self.seed, "edit", self.scenario.publishers[int(population[lo])].name, tick,
                              int(block[lo]))
            u = rng.random((2, hi - lo, L))
            where = u[0] < f[:, None]
            content[lo:hi][where] = inverse_cdf(unigram, u[1][where]).astype(content.dtype)

    def _model(self, lab: int, models: Mapping[int, tuple[int, dict]]):
        gen, state = models[lab]
        cached = self._models.get(lab)
        if cached is None or cached[0] != gen:
            model = build_model(self.scenario.labs[lab].model, self.language).load_state_dict(state)
            self._models[lab] = cached = (gen, model)
        return cached[1]

    def fetch(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, content) of the requested pages, all of which this shard must hold."""
        ids = np.asarray(ids, dtype=np.int64)
        return ids, self.store.fetch(ids)

    def state(self) -> dict[str, np.ndarray]:
        return self.store.state()

    def restore(self, ids: np.ndarray, content: np.ndarray) -> None:
        self.store = ContentStore(width=self.language.width, dtype=self.language.dtype)
        self.store.append(ids, content)
        self._models = {}
