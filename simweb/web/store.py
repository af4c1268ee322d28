"""The page store: every page on the simulated web as a row of numpy columns plus a content matrix.

No Python object per page. Columns grow by doubling, so appending a tick's
pages costs amortised O(pages). Ground truth travels with every page: who wrote
it (``origin``, ``lab``, ``generation``), when (``tick``), where (``site_id``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["PageStore", "PAGE_COLUMNS", "HUMAN", "AI"]

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


class PageStore:
    def __init__(self, *, width: int, dtype: np.dtype, capacity: int = 1024):
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.n = 0
        self._cols = {name: np.empty(capacity, dtype=dt) for name, dt in PAGE_COLUMNS.items()}
        self._content = np.empty((capacity, self.width), dtype=self.dtype)

    def __len__(self) -> int:
        return self.n

    def append(self, content: np.ndarray, **columns: np.ndarray) -> np.ndarray:
        """Add pages; every column of PAGE_COLUMNS must be given (scalars broadcast). Returns the new page ids."""
        content = np.asarray(content, dtype=self.dtype).reshape(-1, self.width)
        k = len(content)
        missing = set(PAGE_COLUMNS) - set(columns)
        extra = set(columns) - set(PAGE_COLUMNS)
        if missing or extra:
            raise ValueError(f"page columns: missing {sorted(missing)}, unknown {sorted(extra)}")
        self._reserve(self.n + k)
        lo, hi = self.n, self.n + k
        for name, values in columns.items():
            self._cols[name][lo:hi] = values
        self._content[lo:hi] = content
        self.n = hi
        return np.arange(lo, hi, dtype=np.int64)

    def _reserve(self, size: int) -> None:
        cap = len(self._content)
        if size <= cap:
            return
        new_cap = max(size, 2 * cap)
        for name, col in self._cols.items():
            grown = np.empty(new_cap, dtype=col.dtype)
            grown[: self.n] = col[: self.n]
            self._cols[name] = grown
        grown = np.empty((new_cap, self.width), dtype=self.dtype)
        grown[: self.n] = self._content[: self.n]
        self._content = grown

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column over all pages."""
        view = self._cols[name][: self.n]
        view.flags.writeable = False
        return view

    def content(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Content rows of ``ids`` (a copy), or a read-only view of all content."""
        if ids is None:
            view = self._content[: self.n]
            view.flags.writeable = False
            return view
        return self._content[np.asarray(ids, dtype=np.int64)]

    def frame(self) -> pl.DataFrame:
        """All page metadata (no content) as a polars frame, with ``page_id`` first."""
        data = {"page_id": np.arange(self.n, dtype=np.int64)}
        data.update({name: col[: self.n] for name, col in self._cols.items()})
        return pl.DataFrame(data)
