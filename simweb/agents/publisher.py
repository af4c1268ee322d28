"""A publisher population: a group of sites that writes pages with one behaviour.

Each tick it publishes ``pages_per_tick`` pages (plus ``initial_pages`` human
pages at tick 0) on sites it owns. A page is AI-written with the logistic
adoption share of that tick (as long as some lab has released a model it
uses); its model is picked by market share among the released ones. Human
pages come from the ground-truth language, on the site's topic with
probability ``topic_focus``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from simweb import rng as rngs
from simweb.web.store import AI, HUMAN

__all__ = ["Publisher", "adoption_share"]


def adoption_share(cfg, tick: int) -> float:
    """start + (end − start) / (1 + exp(−rate · (tick − midpoint)))."""
    z = -cfg.rate * (tick - cfg.midpoint)
    logistic = 1.0 / (1.0 + math.exp(z)) if z < 700 else 0.0
    return cfg.start + (cfg.end - cfg.start) * logistic


class Publisher:
    def __init__(self, cfg, index: int, language, lab_names: list[str], market_share: list[float], seed: int):
        self.cfg = cfg
        self.index = index
        self.language = language
        self.seed = seed
        uses = set(cfg.uses) if cfg.uses is not None else set(lab_names)
        self._weights = np.array([w if name in uses else 0.0 for name, w in zip(lab_names, market_share)])

    def publish(self, tick: int, sites: np.ndarray, released: Mapping[int, tuple[int, object]],
                site_topic: np.ndarray) -> dict[str, np.ndarray] | None:
        """This tick's pages as columns plus ``content``; ``released`` maps lab index → (generation, model)."""
        cfg = self.cfg
        n = cfg.pages_per_tick + (cfg.initial_pages if tick == 0 else 0)
        if n == 0 or len(sites) == 0:
            return None
        rng = rngs.stream(self.seed, "publish", cfg.name, tick)
        page_site = sites[rng.integers(0, len(sites), size=n)].astype(np.int32)
        weights = np.array([w if lab in released else 0.0 for lab, w in enumerate(self._weights)])
        share = adoption_share(cfg.ai_adoption, tick) if weights.sum() > 0 else 0.0
        n_fresh = cfg.pages_per_tick if tick > 0 else n  # the initial pages are human by definition
        is_ai = np.zeros(n, dtype=bool)
        is_ai[:n_fresh] = rng.random(n_fresh) < share
        lab = np.full(n, -1, dtype=np.int16)
        if is_ai.any():
            lab[is_ai] = rng.choice(len(weights), size=int(is_ai.sum()), p=weights / weights.sum())
        content = np.empty((n, self.language.width), dtype=self.language.dtype)
        topic = np.full(n, -1, dtype=np.int16)
        generation = np.full(n, -1, dtype=np.int16)

        human = np.flatnonzero(~is_ai)
        if len(human):
            on_topic = rng.random(len(human)) < cfg.topic_focus
            wanted = np.where(on_topic, site_topic[page_site[human]],
                              rng.choice(self.language.topics, size=len(human), p=_topic_law(self.language)))
            docs, topics = self.language.sample(len(human), rng=rngs.stream(self.seed, "write", cfg.name, tick, "human"),
                                                topics=wanted)
            content[human] = docs
            topic[human] = topics
        for lab_index in np.unique(lab[is_ai]):
            rows = np.flatnonzero(lab == lab_index)
            gen, model = released[int(lab_index)]
            content[rows] = model.sample(len(rows), rng=rngs.stream(self.seed, "write", cfg.name, tick, "lab",
                                                                     int(lab_index)),
                                         temperature=cfg.temperature, top_p=cfg.top_p)
            generation[rows] = gen
        return {
            "content": content,
            "site_id": page_site,
            "tick": np.full(n, tick, dtype=np.int32),
            "origin": np.where(is_ai, AI, HUMAN).astype(np.int8),
            "lab": lab,
            "generation": generation,
            "topic": topic,
            "population": np.full(n, self.index, dtype=np.int16),
            "watermarked": np.zeros(n, dtype=bool),
            "c2pa": np.zeros(n, dtype=np.int8),
            "edited_fraction": np.zeros(n, dtype=np.float32),
            "copied_from": np.full(n, -1, dtype=np.int64),
        }


def _topic_law(language) -> np.ndarray:
    return getattr(language, "topic_probs", np.ones(1))
