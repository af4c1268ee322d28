"""The typed values that pass between the stages of a generation: crawl → filter → train → report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CrawlPlan", "Selection", "Kept", "GenerationReport"]


@dataclass(frozen=True)
class CrawlPlan:
    """What a crawl asks every shard for: its pages with ids in [first, last), less those in ``trained``
    (sorted ids; a benchmark's) and those on ``refused`` sites (per site; opt-outs), and of them the
    ``budget`` first in crawl order — by (``site_rank``, age, id), where a site ranked −1 is never
    reached — or all of them for a random crawl (``site_rank`` None), which the scraper orders itself."""

    crawl_tick: int
    purpose: str  # "train" or "benchmark"
    crawl: int  # the generation the crawl is for
    budget: int
    first: int
    last: int
    ticks: int  # ticks with pages so far: a page of tick t is ticks − 1 − t old
    pages: int  # pages on the web: the key's last factor
    site_rank: np.ndarray | None = None
    trained: np.ndarray | None = None
    refused: np.ndarray | None = None


@dataclass(frozen=True)
class Selection:
    """The page ids a crawl picked (in id order), before any content is fetched."""

    ids: np.ndarray
    crawl_tick: int
    purpose: str  # "train" or "benchmark"
    crawl: int  # the generation the crawl is for
    steps: tuple[dict, ...] = ()  # accounting of what the crawl left out before the fetch (the blocked step)


@dataclass(frozen=True)
class Kept:
    """What a lab's filter chain kept: the pages with their content, and the chain's accounting."""

    ids: np.ndarray
    content: np.ndarray
    tick: np.ndarray  # publication tick
    site_id: np.ndarray
    truth: dict[str, np.ndarray]  # origin, lab, generation: for the trainer's accounting, never its choices
    steps: tuple[dict, ...]  # one accounting row per step: [blocked,] the fetch, then each filter
    crawl_tick: int
    purpose: str

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class GenerationReport:
    """A trained generation: its training set's composition, its metrics, and its crawls' accounting."""

    composition: dict
    metrics: dict
    steps: tuple[dict, ...]
    bench_steps: tuple[dict, ...] | None = None
    extra: dict = field(default_factory=dict)
