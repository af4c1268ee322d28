"""Exact deduplication: drop a page whose content hash the lab has seen before, in this crawl or an earlier one.

Its memory — the hashes of every page the lab kept for training — is its own state, carried across
crawls and checkpoints (``needs = ("history",)``). It is kept as a few sorted runs of hashes that
merge when one grows past half the size of the run before it (a log-structured merge), so
remembering a crawl costs O(k log n) amortised, not a merge with everything seen so far.
"""

from __future__ import annotations

import numpy as np

import simweb.plugins as plugins
from simweb.filters.base import content_hash


class HashSet:
    """A set of uint64 hashes as sorted runs; ``add`` amortised O(k log n), ``contains`` O(k log n)."""

    def __init__(self, hashes: np.ndarray | None = None):
        self.runs: list[np.ndarray] = []
        if hashes is not None and len(hashes):
            self.runs.append(np.unique(np.asarray(hashes, dtype=np.uint64)))

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def add(self, hashes: np.ndarray) -> None:
        new = np.unique(np.asarray(hashes, dtype=np.uint64))
        if len(new) == 0:
            return
        new = new[~self.contains(new)]
        if len(new) == 0:
            return
        self.runs.append(new)
        while len(self.runs) > 1 and 2 * len(self.runs[-1]) >= len(self.runs[-2]):
            last = self.runs.pop()
            self.runs[-1] = np.union1d(self.runs[-1], last)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        hashes = np.asarray(hashes, dtype=np.uint64)
        found = np.zeros(len(hashes), dtype=bool)
        for run in self.runs:
            if len(run):
                pos = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
                found |= run[pos] == hashes
        return found

    def values(self) -> np.ndarray:
        return np.sort(np.concatenate(self.runs)) if self.runs else np.empty(0, dtype=np.uint64)


@plugins.filter("dedup")
class Dedup:
    """Drops exact copies by content hash."""

    needs = ("tokens", "history")

    def __init__(self, config):
        self.config = config
        self.seen = HashSet()

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        hashes = content_hash(batch.content)
        _, first = np.unique(hashes, return_index=True)
        keep = np.zeros(len(batch), dtype=bool)
        keep[first] = True
        keep &= ~self.seen.contains(hashes)
        return keep

    def after_crawl(self, kept) -> None:
        """Remember what the lab trains on (not what a benchmark crawl kept)."""
        if kept.purpose == "train" and len(kept):
            self.seen.add(content_hash(kept.content))

    def state(self) -> dict[str, np.ndarray]:
        return {"seen": self.seen.values()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.seen = HashSet(state["seen"])
