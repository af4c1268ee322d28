"""What a filter sees: a :class:`Batch` of crawled pages, cut to what the filter declared it needs.

Every filter sees a page's id, site, publication tick and C2PA label (what any crawler reads off
a page). The rest is handed over only on request, through ``needs``:

- ``tokens``: the content;  ``graph``: the site graph;  ``model``: the lab's latest released model
  (None before its first release);  ``calibration``: fresh human documents, drawn once per lab;
- ``truth``: the ground truth of each page (``origin``, the writing ``lab`` and ``generation``,
  ``topic``, ``population``, ``watermarked``, ``edited_fraction``, ``copied_from``) and the true
  ``language``. Only a parametric stand-in for a detector (the ``classifier``) or an oracle (the
  ``verifier``) may need it; the README marks such filters as parametric.

Reading an attribute the filter did not declare raises :class:`~simweb.plugins.PluginError`, so a
filter cannot cheat without saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from simweb.plugins import PluginError

__all__ = ["Batch", "TRUTH_COLUMNS", "accounting", "accounting_of", "content_hash", "filter_names"]

# page columns that are ground truth: only a filter that needs "truth" gets them
TRUTH_COLUMNS = ("origin", "lab", "generation", "topic", "population", "watermarked", "edited_fraction",
                 "copied_from", "imitation")  # imitation: only when humans imitate (simweb.humans)

_GUARDED = {"content": "tokens", "graph": "graph", "model": "model", "calibration": "calibration",
            "truth": "truth", "language": "truth", "population_names": "truth"}


@dataclass(frozen=True)
class Batch:
    """Crawled pages under review. Columns are numpy arrays, one entry per page."""

    ids: np.ndarray
    site_id: np.ndarray
    tick: np.ndarray  # publication tick
    c2pa: np.ndarray  # the page's label: 0 none, 1 says human, 2 says AI
    crawl_tick: int  # when the lab crawls
    purpose: str  # "train" or "benchmark"
    lab: str  # the crawling lab
    vocab_size: int
    watermark_keys: dict  # lab name → (key, γ) of every watermarking lab; a detector uses the keys it holds
    filter: str = ""  # the filter this view is for (named in errors)
    granted: frozenset = frozenset()  # the filter's needs
    _content: np.ndarray | None = None
    _truth: dict | None = field(default=None, repr=False)
    _extra: dict = field(default_factory=dict, repr=False)  # graph, model, calibration, language, population_names

    def __len__(self) -> int:
        return len(self.ids)

    def _need(self, what: str):
        need = _GUARDED[what]
        if need not in self.granted:
            raise PluginError(f"filter {self.filter!r} reads batch.{what} but does not declare "
                              f"needs = ({need!r}, ...)")

    @property
    def content(self) -> np.ndarray:
        self._need("content")
        return self._content

    @property
    def truth(self) -> dict[str, np.ndarray]:
        self._need("truth")
        return self._truth

    def __getattr__(self, name: str) -> Any:  # graph, model, calibration, language, population_names
        if name.startswith("_") or name not in _GUARDED:
            raise AttributeError(name)
        self._need(name)
        return self._extra.get(name)

    def view(self, name: str, needs: frozenset) -> "Batch":
        """The same pages as seen by filter ``name``: only what it declared is in it at all."""
        needs = frozenset(needs)
        return replace(self, filter=name, granted=needs, _content=self._content if "tokens" in needs else None,
                       _truth=self._truth if "truth" in needs else None,
                       _extra={k: v for k, v in self._extra.items() if _GUARDED[k] in needs})

    def subset(self, keep: np.ndarray) -> "Batch":
        """The pages where ``keep`` is true."""
        return replace(self, ids=self.ids[keep], site_id=self.site_id[keep], tick=self.tick[keep],
                       c2pa=self.c2pa[keep], _content=None if self._content is None else self._content[keep],
                       _truth=None if self._truth is None else {k: v[keep] for k, v in self._truth.items()})


def filter_names(cfgs) -> list[str]:
    """One name per filter in a chain: its kind, numbered when a kind repeats (``classifier_2``)."""
    names, seen = [], {}
    for cfg in cfgs:
        seen[cfg.kind] = seen.get(cfg.kind, 0) + 1
        names.append(cfg.kind if seen[cfg.kind] == 1 else f"{cfg.kind}_{seen[cfg.kind]}")
    return names


def content_hash(content: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every content row (vectorised; collisions are negligible at web scale)."""
    rows = np.ascontiguousarray(content)
    if len(rows) == 0:
        return np.empty(0, dtype=np.uint64)
    words = rows.view(np.uint8).reshape(len(rows), -1)
    h = np.full(len(rows), 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):  # FNV-1a over the row's bytes, all rows at once
            h = (h ^ words[:, j].astype(np.uint64)) * prime
    return h


def accounting(is_ai_in: np.ndarray, keep: np.ndarray, imitating: np.ndarray | None = None) -> dict[str, float | int | None]:
    """Pages in, kept and dropped split by true origin, with the step's precision and recall; with
    ``imitating`` (human pages with imitation > 0), the step's false-positive rate on those."""
    extra = {}
    if imitating is not None:
        n_imitating, dropped_imitating = int(imitating.sum()), int((imitating & ~keep).sum())
        extra = {"imitating_in": n_imitating, "imitating_dropped": dropped_imitating,
                 "imitating_fpr": dropped_imitating / n_imitating if n_imitating else None}
    return {**accounting_of(len(keep), int(is_ai_in.sum()), int(keep.sum()), int((keep & is_ai_in).sum())), **extra}


def accounting_of(pages_in: int, ai_in: int, kept: int, kept_ai: int) -> dict[str, float | int | None]:
    """:func:`accounting` from its four counts (summed over the shards that counted them)."""
    n_dropped, dropped_ai = pages_in - kept, ai_in - kept_ai
    return {
        "pages_in": int(pages_in),
        "ai_in": int(ai_in),
        "kept": int(kept),
        "kept_ai": int(kept_ai),
        "dropped": int(n_dropped),
        "dropped_ai": int(dropped_ai),
        "precision": dropped_ai / n_dropped if n_dropped else None,
        "recall": dropped_ai / ai_in if ai_in else None,
    }
