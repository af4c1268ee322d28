"""The ngram family: a Markov model of order k fitted by counting, with add-α smoothing.

Contexts are the k previous tokens, padded with a begin-of-document symbol
(id V) at the start, so the first token has a law of its own. With α = 0 a
transition never seen in training has probability zero for good: retrained on
its own samples, the model can only lose transitions — the discrete collapse
of Shumailov et al. (2024).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import simweb.plugins as plugins
from simweb.sampling import AliasTable, chunks, shape_probs

__all__ = ["NgramModel"]

MAX_CELLS = 2**25  # dense tables past this (32 M cells, ~256 MB of sampling tables) do not fit a laptop


@plugins.model("ngram")
class NgramModel:
    class Config(plugins.PluginConfig):
        """A Markov model of order k fitted by counting, with add-alpha smoothing."""

        order: int = Field(1, ge=1, le=8)  # Markov order: tokens of context
        alpha: float = Field(0.01, ge=0.0, le=1e6)  # add-alpha smoothing; 0 = unseen transitions vanish for good

        def check(self, scenario, where: str, fail) -> None:
            V = scenario.language.vocab_size
            cells = (V + 1) ** self.order * V
            if cells > MAX_CELLS:
                fail(f"{where}.order", f"(vocab_size+1)^order x vocab_size = {cells:,} table cells, more than "
                     f"{MAX_CELLS:,}; got order {self.order} with vocab_size {V}")

    languages = ("markov",)
    family = "ngram"
    is_tokens = True

    @classmethod
    def memory_bytes(cls, cfg, scenario) -> int:
        """Peak bytes of one model (for :mod:`simweb.cost`): per table cell, its probabilities and two held
        states (24), plus the larger of fitting (32: counts, float counts, a temporary) and building one set of
        alias tables (74: 10 kept — an 8-byte threshold, a uint16 alias — and 64 while building)."""
        V = scenario.language.vocab_size
        return 98 * (V + 1) ** cfg.order * V

    def __init__(self, *, vocab_size: int, doc_length: int, order: int = 1, alpha: float = 0.0):
        self.vocab_size = int(vocab_size)
        self.doc_length = int(doc_length)
        self.order = int(order)
        self.alpha = float(alpha)
        self.contexts = (self.vocab_size + 1) ** self.order
        self.probs: np.ndarray | None = None  # (contexts, V), rows sum to 1
        self._tables: dict[tuple[float, float], AliasTable] = {}

    @classmethod
    def from_config(cls, cfg, language) -> "NgramModel":
        return cls(vocab_size=language.vocab_size, doc_length=language.doc_length, order=cfg.order, alpha=cfg.alpha)

    # ------------------------------------------------------------ contexts
    def context_ids(self, docs: np.ndarray) -> np.ndarray:
        """The context id of every position, shape (n, L): Σ_i x_{t-i} (V+1)^(i-1), BOS-padded."""
        docs = np.asarray(docs, dtype=np.int64)
        n, L = docs.shape
        base = self.vocab_size + 1
        padded = np.full((n, L + self.order), self.vocab_size, dtype=np.int64)
        padded[:, self.order:] = docs
        ctx = np.zeros((n, L), dtype=np.int64)
        for i in range(1, self.order + 1):
            ctx += padded[:, self.order - i:self.order - i + L] * base ** (i - 1)
        return ctx

    # ------------------------------------------------------------ fit
    def fit(self, docs: np.ndarray, *, rng: np.random.Generator, prior=None) -> "NgramModel":
        """Maximum-likelihood counts plus α per cell (plus a :class:`Prior`'s pseudo-counts).

        A context never seen, with α = 0 and no prior, falls back to the corpus unigram law.
        """
        docs = np.asarray(docs)
        V = self.vocab_size
        counts = self.count(docs).astype(np.float64)
        if prior is not None and prior.strength > 0:
            counts += prior.strength * prior.probs(counts.shape)
        totals = counts.sum(axis=1, keepdims=True) + self.alpha * V
        with np.errstate(invalid="ignore", divide="ignore"):
            probs = (counts + self.alpha) / totals
        empty = totals[:, 0] == 0
        if empty.any():
            unigram = np.bincount(docs.ravel().astype(np.int64), minlength=V).astype(np.float64)
            unigram = unigram / unigram.sum() if unigram.sum() > 0 else np.full(V, 1.0 / V)
            probs[empty] = unigram
        self.probs = probs
        self._tables = {}
        return self

    def count(self, docs: np.ndarray) -> np.ndarray:
        """Transition counts, shape (contexts, V)."""
        V = self.vocab_size
        flat = self.context_ids(docs) * V + np.asarray(docs, dtype=np.int64)
        return np.bincount(flat.ravel(), minlength=self.contexts * V).reshape(self.contexts, V)

    # ------------------------------------------------------------ sample
    def sample(self, n: int, *, rng: np.random.Generator, temperature: float = 1.0, top_p: float = 1.0,
               watermark=None) -> np.ndarray:
        """``n`` documents of ``doc_length`` tokens (uint16), shape (n, L)."""
        return self.draw(self.noise(n, rng=rng), temperature=temperature, top_p=top_p, watermark=watermark)

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """The randomness of ``n`` documents: one uniform per token, shape (n, L)."""
        return rng.random((self.doc_length, n)).T  # drawn step-major, so draw() reads it without a copy

    def draw(self, noise: np.ndarray, *, temperature: float = 1.0, top_p: float = 1.0, watermark=None) -> np.ndarray:
        """Documents written from rows of ``noise``: row i alone decides document i."""
        table = self._table(temperature, top_p, watermark)
        noise = np.asarray(noise)
        V, base, W = self.vocab_size, self.vocab_size + 1, table.width
        out = np.empty((len(noise), self.doc_length), dtype=np.uint16)
        wrap = base ** self.order
        bos = sum(V * base ** i for i in range(self.order))  # the all-BOS context; the newest token: lowest digit
        for part in chunks(len(noise)):
            col, frac = table.split(noise[part].T)  # (L, n): one contiguous row per step
            ctx = np.full(col.shape[1], bos, dtype=np.int64)
            for t in range(self.doc_length):
                x = table.draw_split(ctx * W, col[t], frac[t])
                out[part, t] = x
                ctx = x if self.order == 1 else (ctx * base + x) % wrap
        return out

    def _table(self, temperature: float, top_p: float, watermark=None) -> AliasTable:
        key = (float(temperature), float(top_p), watermark)
        if key not in self._tables:
            probs = self._require()
            if (temperature, top_p) != (1.0, 1.0):
                probs = shape_probs(probs, temperature=temperature, top_p=top_p)
            if watermark is not None:
                from simweb.watermark import bias

                # the newest token of a context is its lowest digit (the start symbol V for the first token)
                last = np.arange(self.contexts) % (self.vocab_size + 1)
                probs = bias(probs, last, watermark)
            self._tables[key] = AliasTable(probs)
        return self._tables[key]

    def sampling_tables(self, settings) -> dict:
        """The alias tables of every (temperature, top_p, watermark) in ``settings`` (the optional model hook a
        trainer calls at release): built once there and shipped with the released state, so a process that
        rebuilds this model from the same state takes them with :meth:`adopt_tables` instead of building them."""
        return {(float(t), float(p), w): self._table(t, p, w) for t, p, w in settings}

    def adopt_tables(self, tables: dict) -> None:
        """Use ``tables`` (from :meth:`sampling_tables` of a model with the same state): a table is a
        deterministic function of the probabilities, so adopting it draws exactly what building it would."""
        for key, table in tables.items():
            self._tables.setdefault(key, table)

    # ------------------------------------------------------------ score
    def token_log_prob(self, docs: np.ndarray) -> np.ndarray:
        """log P(x_t | context) for every token, shape (n, L); −inf where the model gives zero."""
        probs = self._require()
        docs = np.asarray(docs, dtype=np.int64)
        with np.errstate(divide="ignore"):
            return np.log(probs[self.context_ids(docs), docs])

    def log_prob(self, docs: np.ndarray) -> np.ndarray:
        return self.token_log_prob(docs).sum(axis=1)

    def next_token_probs(self, docs: np.ndarray) -> np.ndarray:
        """The model's law of the next token at every position of ``docs``, shape (n, L, V)."""
        return self._require()[self.context_ids(docs)]

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        return {"probs": self._require()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> "NgramModel":
        probs = np.asarray(state["probs"], dtype=np.float64)
        if probs.shape != (self.contexts, self.vocab_size):
            raise ValueError(f"ngram state has shape {probs.shape}, expected {(self.contexts, self.vocab_size)}")
        self.probs = probs
        self._tables = {}
        return self

    def _require(self) -> np.ndarray:
        if self.probs is None:
            raise RuntimeError("the ngram model has not been fitted")
        return self.probs
