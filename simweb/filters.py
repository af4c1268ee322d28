"""The provenance and contamination filters a lab's scraper applies, each with its own accounting.

A filter looks at a batch of crawled pages and returns which to keep. Its
accounting treats it as a detector of AI pages: precision = AI share of what it
dropped, recall = share of the AI pages it saw that it dropped.
"""

from __future__ import annotations

import numpy as np

from simweb.web.store import AI, PageIndex

__all__ = ["build_filter", "filter_names", "accounting"]


class DateCutoff:
    """Keep only pages published at or before a tick (a training-data cut-off date)."""

    def __init__(self, cfg):
        self.tick = cfg.tick

    def keep(self, ids: np.ndarray, store: PageIndex, *, rng: np.random.Generator) -> np.ndarray:
        return store.column("tick")[ids] <= self.tick


class Classifier:
    """A parametric AI-text detector: flags an AI page with probability TPR, a human page with FPR."""

    def __init__(self, cfg):
        self.tpr, self.fpr = cfg.tpr, cfg.fpr

    def keep(self, ids: np.ndarray, store: PageIndex, *, rng: np.random.Generator) -> np.ndarray:
        is_ai = store.column("origin")[ids] == AI
        flagged = rng.random(len(ids)) < np.where(is_ai, self.tpr, self.fpr)
        return ~flagged


_KINDS = {"date_cutoff": DateCutoff, "classifier": Classifier}


def build_filter(cfg):
    return _KINDS[cfg.kind](cfg)


def filter_names(cfgs) -> list[str]:
    """One name per filter in a chain: its kind, numbered when a kind repeats (``classifier_2``)."""
    names, seen = [], {}
    for cfg in cfgs:
        seen[cfg.kind] = seen.get(cfg.kind, 0) + 1
        names.append(cfg.kind if seen[cfg.kind] == 1 else f"{cfg.kind}_{seen[cfg.kind]}")
    return names


def accounting(is_ai_in: np.ndarray, keep: np.ndarray) -> dict[str, float | int | None]:
    """Pages in, kept and dropped split by true origin, with the step's precision and recall."""
    ai_in = int(is_ai_in.sum())
    dropped = ~keep
    dropped_ai = int((dropped & is_ai_in).sum())
    n_dropped = int(dropped.sum())
    return {
        "pages_in": int(len(keep)),
        "ai_in": ai_in,
        "kept": int(keep.sum()),
        "kept_ai": int((keep & is_ai_in).sum()),
        "dropped": n_dropped,
        "dropped_ai": dropped_ai,
        "precision": dropped_ai / n_dropped if n_dropped else None,
        "recall": dropped_ai / ai_in if ai_in else None,
    }
