"""Drawing from many discrete distributions at once: alias tables, temperature and top-p.

The alias method (Walker 1977; Vose 1991) draws from a row of V probabilities
in O(1): one uniform picks a column and, against that column's threshold,
either the column or its alias. Every AI page on the simulated web is written
through :meth:`AliasTable.sample`, so it is the hot loop of the simulator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AliasTable", "choice", "shape_probs"]


def choice(p: np.ndarray, size: int, *, rng: np.random.Generator) -> np.ndarray:
    """``size`` outcomes drawn from the law ``p``: the same draws as ``rng.choice(len(p), size=size, p=p)``.

    numpy's ``choice`` draws one uniform per outcome and inverts the normalised cumulative sum, so
    this does the same, without its checks of ``p`` (about 15 µs a call; a publisher plans with it
    every tick). ``p`` must be a law: non-negative, summing to 1. tests/test_sampling.py checks the
    equality against numpy, draw for draw.
    """
    cdf = np.cumsum(np.asarray(p, dtype=np.float64))
    cdf /= cdf[-1]
    return cdf.searchsorted(rng.random(size), side="right")


def shape_probs(probs: np.ndarray, *, temperature: float = 1.0, top_p: float = 1.0) -> np.ndarray:
    """Rows of ``probs`` after temperature scaling (p^(1/T), renormalised) and nucleus (top-p) truncation.

    Top-p keeps, per row, the most probable tokens whose mass first reaches ``top_p``
    (Holtzman et al. 2020). Zero-probability tokens stay at zero.
    """
    p = np.array(probs, dtype=np.float64, copy=True, ndmin=2)
    if temperature != 1.0:
        with np.errstate(divide="ignore"):
            logits = np.log(p) / temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of strictly more probable tokens
        keep_sorted = before < top_p
        keep = np.empty_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p


class AliasTable:
    """Alias tables for R rows of V probabilities each; ``sample(rows)`` draws one token per entry."""

    def __init__(self, probs: np.ndarray):
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim == 1:
            probs = probs[None, :]
        self.rows, self.width = probs.shape
        threshold, alias = _build(probs / probs.sum(axis=1, keepdims=True))
        # flat arrays: one gather per draw instead of a 2-D fancy index
        self._threshold = threshold.ravel()
        self._alias = alias.ravel()

    @classmethod
    def stacked(cls, *blocks: np.ndarray) -> tuple["AliasTable", ...]:
        """One table per block of rows (all of one width), built in one pass: the construction costs
        mostly per step of its loop, not per row, so a small block rides along with a large one almost
        for free (a drifting truth builds its start and transition tables together every tick)."""
        blocks = [np.asarray(b, dtype=np.float64) for b in blocks]
        blocks = [b[None, :] if b.ndim == 1 else b for b in blocks]
        whole = cls(np.concatenate(blocks))
        tables, lo = [], 0
        for b in blocks:
            part = cls.__new__(cls)
            part.rows, part.width = len(b), whole.width
            part._threshold = whole._threshold[lo * whole.width:(lo + len(b)) * whole.width]
            part._alias = whole._alias[lo * whole.width:(lo + len(b)) * whole.width]
            tables.append(part)
            lo += len(b)
        return tuple(tables)

    def sample(self, rows: np.ndarray | int, *, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """One draw from each row named in ``rows`` (or ``size`` draws from a single row)."""
        if size is not None:
            rows = np.full(size, int(rows), dtype=np.int64)
        return self.draw(rows, rng.random(len(rows)))

    def draw(self, rows: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """One draw from each row named in ``rows``, each driven by one uniform in [0, 1)."""
        u = uniforms * self.width
        col = u.astype(np.int64)
        np.minimum(col, self.width - 1, out=col)
        flat = col + np.asarray(rows, dtype=np.int64) * self.width
        return np.where(u - col < self._threshold[flat], col, self._alias[flat])

    def nbytes(self) -> int:
        return self._threshold.nbytes + self._alias.nbytes


def _build(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias construction, vectorised across rows.

    Each row is sorted once; a pointer ``s`` walks up the small entries and ``l``
    down the large ones. A large entry whose residual drops below 1 becomes the
    next small one, paired with its neighbour ``l - 1`` (which must then be
    large: the remaining mass equals the remaining count). V - 1 steps finish
    every row at once.

    Every step moves exactly one pointer of every row, so all rows are active for
    all V - 1 steps, none needs masking, and after k steps s = l - (V - 1) + k; the
    pointers are flat indices into the raveled rows, so a step is a handful of 1-D
    ``take``/``put`` calls (a table is
    rebuilt every tick when a truth's boosts drift). The arithmetic per row is the
    same as the textbook loop's, so the tables are too, bit for bit.
    """
    R, V = p.shape
    order = np.argsort(p, axis=1, kind="stable")
    q = (np.take_along_axis(p, order, axis=1) * V).ravel()
    threshold = np.ones(R * V)
    alias_sorted = np.arange(R * V, dtype=np.int64)  # flat index of the alias, row start subtracted at the end
    row_start = np.arange(R, dtype=np.int64) * V
    l = row_start + (V - 1)
    for k in range(V - 1):
        use_l = q.take(l) < 1.0
        small = np.where(use_l, l, l + (k - (V - 1)))  # s = l − (V − 1) + k: k steps moved s up or l down
        large = l - use_l
        q_small = q.take(small)
        threshold.put(small, q_small)
        alias_sorted.put(small, large)
        q.put(large, q.take(large) - (1.0 - q_small))
        l = large  # the large pointer moves down exactly where the large entry became small
    threshold = threshold.reshape(R, V)
    alias_sorted = alias_sorted.reshape(R, V) - row_start[:, None]
    np.clip(threshold, 0.0, 1.0, out=threshold)
    out_threshold = np.empty_like(threshold)
    out_alias = np.empty((R, V), dtype=np.int64)
    np.put_along_axis(out_threshold, order, threshold, axis=1)
    np.put_along_axis(out_alias, order, np.take_along_axis(order, alias_sorted, axis=1), axis=1)
    dtype = np.int32 if V < 2**31 else np.int64
    return out_threshold, out_alias.astype(dtype)
