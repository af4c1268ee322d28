"""Pages on the simulated web: a metadata index of numpy columns, and content stores beside it.

No Python object per page. The :class:`PageIndex` holds the ground truth of
every page (who wrote it, when, where); it is small and every lab's scraper
keeps a replica. Page content (tokens, reals) lives in :class:`ContentStore` s,
one per publisher shard, so pages stay where they were published. Columns grow
by doubling, so appending costs amortised O(pages).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["PageIndex", "ContentStore", "PAGE_COLUMNS", "HUMAN", "AI"]

HUMAN, AI = 0, 1

PAGE_COLUMNS: dict[str, np.dtype] = {
    "site_id": np.dtype(np.int32),
    "tick": np.dtype(np.int32),
    "origin": np.dtype(np.int8),  # 0 human, 1 AI
    "lab": np.dtype(np.int16),  # index of the lab whose model wrote it; -1 for human pages
    "generation": np.dtype(np.int16),  # that model's generation; -1 for human pages
    "topic": np.dtype(np.int16),  # the human writer's topic; -1 for AI pages (models write without one)
    "population": np.dtype(np.int16),  # publisher population
    "watermarked": np.dtype(np.bool_),
    "c2pa": np.dtype(np.int8),  # provenance label: 0 none, 1 says human, 2 says AI
    "edited_fraction": np.dtype(np.float32),  # share of tokens rewritten by a human
    "copied_from": np.dtype(np.int64),  # page id of the original; -1 if original
}


def _grow(array: np.ndarray, n: int, size: int) -> np.ndarray:
    if size <= len(array):
        return array
    grown = np.empty((max(size, 2 * len(array)),) + array.shape[1:], dtype=array.dtype)
    grown[:n] = array[:n]
    return grown


class PageIndex:
    """Metadata of every page; page ids are row numbers, in publication order."""

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self._cols = {name: np.empty(capacity, dtype=dt) for name, dt in PAGE_COLUMNS.items()}

    def __len__(self) -> int:
        return self.n

    def append(self, **columns: np.ndarray) -> np.ndarray:
        """Add pages; every column of PAGE_COLUMNS must be given (scalars broadcast). Returns the new page ids."""
        missing = set(PAGE_COLUMNS) - set(columns)
        extra = set(columns) - set(PAGE_COLUMNS)
        if missing or extra:
            raise ValueError(f"page columns: missing {sorted(missing)}, unknown {sorted(extra)}")
        k = max((np.size(v) for v in columns.values() if np.ndim(v) > 0), default=0)
        lo, hi = self.n, self.n + k
        for name, values in columns.items():
            self._cols[name] = _grow(self._cols[name], self.n, hi)
            self._cols[name][lo:hi] = values
        self.n = hi
        return np.arange(lo, hi, dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column over all pages."""
        view = self._cols[name][: self.n]
        view.flags.writeable = False
        return view

    def rows(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """All columns of the pages ``ids`` (copies)."""
        ids = np.asarray(ids, dtype=np.int64)
        return {name: col[: self.n][ids] for name, col in self._cols.items()}

    def frame(self) -> pl.DataFrame:
        """All page metadata as a polars frame, with ``page_id`` first."""
        data = {"page_id": np.arange(self.n, dtype=np.int64)}
        data.update({name: col[: self.n] for name, col in self._cols.items()})
        return pl.DataFrame(data)

    def state(self, since: int = 0) -> dict[str, np.ndarray]:
        """Columns of pages ``since`` onwards: a delta for a replica, or everything for a checkpoint."""
        return {name: col[since: self.n].copy() for name, col in self._cols.items()}

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        if len(columns["tick"]):
            self.append(**columns)


class ContentStore:
    """Content rows of a set of pages, looked up by page id (ids arrive in increasing order)."""

    def __init__(self, *, width: int, dtype: np.dtype, capacity: int = 1024):
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.n = 0
        self._ids = np.empty(capacity, dtype=np.int64)
        self._content = np.empty((capacity, self.width), dtype=self.dtype)

    def __len__(self) -> int:
        return self.n

    @property
    def ids(self) -> np.ndarray:
        return self._ids[: self.n]

    def append(self, ids: np.ndarray, content: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        if self.n and ids[0] <= self._ids[self.n - 1] or np.any(np.diff(ids) <= 0):
            raise ValueError("content must be appended in increasing page-id order")
        hi = self.n + len(ids)
        self._ids = _grow(self._ids, self.n, hi)
        self._content = _grow(self._content, self.n, hi)
        self._ids[self.n:hi] = ids
        self._content[self.n:hi] = np.asarray(content, dtype=self.dtype).reshape(len(ids), self.width)
        self.n = hi

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        """Content of ``ids`` in the order given; every id must be held here."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, ids)
        if len(ids) and (pos.max() >= self.n or not np.array_equal(self._ids[pos], ids)):
            missing = ids[(pos >= self.n) | (self._ids[np.minimum(pos, self.n - 1)] != ids)]
            raise KeyError(f"{len(missing)} pages are not in this store (first: {missing[0]})")
        return self._content[pos]

    def state(self) -> dict[str, np.ndarray]:
        return {"ids": self.ids.copy(), "content": self._content[: self.n].copy()}
