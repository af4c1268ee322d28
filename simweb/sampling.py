"""Drawing from many discrete distributions at once: alias tables, temperature and top-p.

The alias method (Walker 1977; Vose 1991) draws from a row of V probabilities
in O(1): one uniform picks a column and, against that column's threshold,
either the column or its alias. Every page on the simulated web is written
through :meth:`AliasTable.draw_split` (the truth's pages and the models'), so it is the
hot loop of the simulator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AliasTable", "DRAW_CHUNK", "choice", "chunks", "inverse_cdf", "shape_probs"]


def choice(p: np.ndarray, size: int, *, rng: np.random.Generator) -> np.ndarray:
    """``size`` outcomes drawn from the law ``p``: the same draws as ``rng.choice(len(p), size=size, p=p)``.

    numpy's ``choice`` draws one uniform per outcome and inverts the normalised cumulative sum, so
    this does the same, without its checks of ``p`` (about 15 µs a call; a publisher plans with it
    every tick). ``p`` must be a law: non-negative, summing to 1. tests/test_sampling.py checks the
    equality against numpy, draw for draw.
    """
    return inverse_cdf(p, rng.random(size))


def inverse_cdf(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The outcomes of the law ∝ ``weights`` (non-negative, not all 0) at uniforms ``u`` in [0, 1): the inverse of
    the normalised cumulative sum, as :func:`choice` and numpy's ``choice`` draw. An outcome of weight 0 is never
    returned."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    return cdf.searchsorted(u, side="right")


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


DRAW_CHUNK = 4096  # documents a writer draws at once: a step's arrays stay in the core's cache


def chunks(n: int) -> list[slice]:
    """Consecutive slices of at most :data:`DRAW_CHUNK` documents covering ``range(n)``: a writer draws each in
    turn (document i depends on row i of the noise alone, so the output is the same). On one core, 100,000
    first-order documents at V = 2048: 25.8 M tokens/s at once, 33 M in chunks of 2,048 to 16,384
    (``scripts/draw_chunks.py``)."""
    return [slice(lo, min(lo + DRAW_CHUNK, n)) for lo in range(0, n, DRAW_CHUNK)]


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
        return self.draw_split(np.asarray(rows, dtype=np.int64) * self.width, *self.split(uniforms))

    def split(self, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column, fraction) of every uniform — the part of a draw that does not depend on the row, so a
        writer computes it for a whole (steps, documents) block at once (C order) and each step only looks
        up its rows (:meth:`draw_split`): the same numbers, element for element, as :meth:`draw`."""
        scaled = np.multiply(uniforms, self.width, order="C")
        col = scaled.astype(np.int64)
        np.minimum(col, self.width - 1, out=col)
        scaled -= col  # the fraction that picks the column itself or its alias
        return col, scaled

    def draw_split(self, offsets: np.ndarray, col: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """:meth:`draw` for the rows starting at flat ``offsets`` (row × width), with :meth:`split`'s parts."""
        flat = offsets + col
        return np.where(frac < self._threshold[flat], col, self._alias[flat])

    def nbytes(self) -> int:
        return self._threshold.nbytes + self._alias.nbytes


def _build(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias construction, vectorised across rows.

    Each row is sorted once; a pointer ``s`` walks up the small entries and ``l``
    down the large ones. A large entry whose residual drops below 1 becomes the
    next small one, paired with its neighbour ``l - 1`` (which must then be
    large: the remaining mass equals the remaining count). V - 1 steps finish
    every row.

    Every step moves exactly one pointer of a row, so s - l grows by one a step;
    the pointers are flat indices into the raveled rows, so a step is a handful of
    1-D ``take``/``put`` calls over the rows still going (a table is rebuilt every
    tick when a truth's boosts drift). Impossible entries sort first and each
    takes exactly 1 off its large, so they are handed out a large at a time
    (:func:`_hand_out_zeros`) rather than a step each: a model's rows are mostly
    zeros, and a drifting truth's reserved tokens are zero until their topic is
    born. The arithmetic per row is the same as the textbook loop's, so the tables
    are too, bit for bit.
    """
    R, V = p.shape
    order = np.argsort(p, axis=1, kind="stable")
    row_start = np.arange(R, dtype=np.int64) * V
    flat_order = (order + row_start[:, None]).ravel()  # where each sorted entry sits in the raveled rows
    q = p.ravel().take(flat_order) * V
    alias_sorted = np.arange(R * V, dtype=np.int64)  # flat index of the alias in the sorted rows
    zeros_first = R and V > 1 and np.all((q >= 0.0) & (q < np.inf))  # no negative (nor nan) entry sorts before 0
    state = _hand_out_zeros(q, alias_sorted, row_start) if zeros_first else None
    if state is None:  # every step below, from the start
        q = p.ravel().take(flat_order) * V
        alias_sorted = np.arange(R * V, dtype=np.int64)
        state = row_start + (V - 1), np.full(R, -(V - 1), dtype=np.int64), np.zeros(R, dtype=np.int64)
    l, s_minus_l, steps = state
    left = V - 1 - steps
    by_left = np.argsort(-left, kind="stable")  # most steps left first: the rows still going are a prefix
    l, s_minus_l, left = l[by_left], s_minus_l[by_left], left[by_left]
    going = R - np.searchsorted(left[::-1], np.arange(left[0] if R else 0), side="right")  # rows with > k left
    for n in going:
        large = l[:n]  # a view: moved down in place below
        use_l = q.take(large) < 1.0
        small = np.where(use_l, large, large + s_minus_l[:n])
        np.subtract(large, use_l, out=large)  # l moves down exactly where the large entry became small
        s_minus_l[:n] += 1
        alias_sorted.put(small, large)
        q.put(large, q.take(large) - (1.0 - q.take(small)))
    # only large entries change, so an entry keeps the value it had when it became small: its threshold; the
    # entry left over at the end (where l stopped) pairs with itself
    q[l[l >= 0]] = 1.0  # (no entry at all when V = 0)
    np.clip(q, 0.0, 1.0, out=q)
    out_threshold = np.empty(R * V)
    out_threshold[flat_order] = q
    out_alias = np.empty(R * V, dtype=alias_dtype(V))
    out_alias[flat_order] = order.ravel()[alias_sorted]  # alias_sorted is flat: order.ravel() maps it into its row
    return out_threshold.reshape(R, V), out_alias.reshape(R, V)


def alias_dtype(width: int) -> np.dtype:
    """The narrowest unsigned integer that holds a column of a row ``width`` wide: uint16 for every vocabulary up to
    65,536 tokens, so a table is 10 bytes a cell (an 8-byte threshold and the alias), not 12 with int32 aliases.
    Draws are the same either way (:meth:`AliasTable.draw_split` returns int64)."""
    for dtype in (np.uint16, np.uint32):
        if width <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _hand_out_zeros(q: np.ndarray, alias_sorted: np.ndarray, row_start: np.ndarray, rounds: int = 8):
    """The textbook's first steps, where a row's zero entries (sorted first) go to its larges, a large at a time.

    A zero takes 1 − 0 = 1 off its large's residual x, exactly (x < 2^53), so a large takes floor(x) zeros in one
    go, then turns small (its neighbour becomes the large) if zeros are left. The ``rounds`` largest larges of a
    row take most of its zeros; the step loop hands out the rest. Updates ``q`` and ``alias_sorted`` in place;
    returns each row's (l, s − l, steps done), or None when rounding would make a zero a large (a row nearly all
    zeros can): ``q`` and ``alias_sorted`` are then spoilt and the caller starts over.
    """
    R = len(row_start)
    V = len(q) // R
    zeros = V - np.count_nonzero(q.reshape(R, V), axis=1)
    l = row_start + (V - 1)
    x = q.take(l)  # each row's large residual
    handed = np.zeros(R, dtype=np.int64)  # zeros handed out
    given = []  # (first zero, how many, their large), flat: one fill at the end
    rows = np.flatnonzero(zeros)  # the rows handing out zeros, and their large, its residual, zeros left
    lr, xr, left = l[rows], x[rows], zeros[rows]
    for _ in range(rounds):
        if not len(rows):
            break
        take = np.minimum(np.floor(np.maximum(xr, 0.0)).astype(np.int64), left)
        given.append((row_start[rows] + zeros[rows] - left, take, lr))
        xr = xr - take
        left = left - take
        l[rows], x[rows], handed[rows] = lr, xr, zeros[rows] - left
        more = left > 0  # a large below 1 with zeros left: it turns small, l − 1 takes over
        rows, lr, xr, left = rows[more], lr[more], xr[more], left[more]
        if np.any(lr - 1 < row_start[rows] + zeros[rows]):
            return None
        q[lr] = xr
        alias_sorted[lr] = lr - 1
        xr = q.take(lr - 1) - (1.0 - xr)
        lr = lr - 1
        l[rows], x[rows] = lr, xr
    if given:
        first, count, large = (np.concatenate(a) for a in zip(*given))
        alias_sorted[np.arange(count.sum()) + np.repeat(first - (np.cumsum(count) - count), count)] = np.repeat(
            large, count)
    q[l] = x
    return l, row_start + handed - l, handed + (row_start + V - 1 - l)  # steps: zeros handed and larges turned
