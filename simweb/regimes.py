"""Trainer regimes: which of the pages a lab has kept it trains each generation on. Registered plugins.

Gerstgrasser et al. (2024) and Kazdan et al. (2024): ``replace`` trains on the latest crawl only;
``accumulate`` on every page the lab has ever kept; ``accumulate_subsample`` on a fresh uniform
subsample (without replacement) of that pool, of ``train_docs`` pages (default: the crawl budget);
``window`` on the pages kept by the crawls of the last ``window_ticks`` ticks (a sliding window: replace
is a window of one release period, accumulate an infinite one).

A regime sees a :class:`Pool` — the pages the lab kept, with what a lab knows of them (ids, site,
publication tick, which crawl kept them, content) and never their ground truth — and returns the
rows to train on. Without ``needs = ("pool",)`` the pool holds the latest crawl only. The trainer
adds the reserve, anchors and self-augmentation on top, and does the accounting against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

import simweb.plugins as plugins

__all__ = ["Pool"]


@dataclass(frozen=True)
class Pool:
    """Pages a lab has kept for training, one row each (in the order they were kept)."""

    ids: np.ndarray
    crawl: np.ndarray  # the generation whose crawl kept the page
    crawl_tick: np.ndarray  # the tick of that crawl
    tick: np.ndarray  # the page's publication tick
    site_id: np.ndarray
    content: np.ndarray
    now: int = 0  # the tick of the crawl being trained on: the present

    def __len__(self) -> int:
        return len(self.ids)


@plugins.regime("replace")
class Replace:
    """Train on the latest crawl only."""

    needs = ()

    def __init__(self, config, lab):
        self.config = config

    def select(self, pool: Pool, *, generation: int, rng: np.random.Generator) -> np.ndarray:
        return np.arange(len(pool))


@plugins.regime("accumulate")
class Accumulate:
    """Train on every page ever kept."""

    needs = ("pool",)

    def __init__(self, config, lab):
        self.config = config

    def select(self, pool: Pool, *, generation: int, rng: np.random.Generator) -> np.ndarray:
        return np.arange(len(pool))


@plugins.regime("accumulate_subsample")
class AccumulateSubsample:
    """A fresh uniform subsample, without replacement, of ``train_docs`` pages of everything ever kept."""

    needs = ("pool",)
    stream = "subsample"  # the name of its random stream (default: the regime's kind)

    def __init__(self, config, lab):
        self.config = config
        self.size = lab.train_docs or lab.crawl_budget

    def select(self, pool: Pool, *, generation: int, rng: np.random.Generator) -> np.ndarray:
        if len(pool) <= self.size:
            return np.arange(len(pool))
        return np.sort(rng.choice(len(pool), size=self.size, replace=False))


@plugins.regime("window")
class Window:
    """Train on the pages kept by the crawls of the last ``window_ticks`` ticks, the present's included."""

    class Config(plugins.PluginConfig):
        window_ticks: int = Field(ge=1, le=1_000_000)  # W: ticks of crawls kept in the training window

    needs = ("pool",)

    def __init__(self, config, lab):
        self.config = config

    def select(self, pool: Pool, *, generation: int, rng: np.random.Generator) -> np.ndarray:
        return np.flatnonzero(pool.crawl_tick > pool.now - self.config.window_ticks)
