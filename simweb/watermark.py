"""The green-list watermark of Kirchenbauer et al. (ICML 2023), on simweb's token models.

A watermarking lab's sampler adds δ to the logits of a "green" fraction γ of the
vocabulary; which tokens are green depends on the previous token and the lab's
secret key (a keyed hash of the pair). A detector that holds the key counts
green tokens in a document of T scored tokens and computes the one-proportion
z-score z = (G − γT) / sqrt(T γ (1 − γ)); z ≥ 4 flags it (false-positive rate
1 − Φ(4) ≈ 3·10⁻⁵ per document on text written without the key). Edits and
paraphrase replace tokens and break the (previous, next) pairs, lowering z.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Watermark", "green_list", "z_scores", "pooled_z", "key_of"]

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def key_of(seed: int, lab: str) -> int:
    """A lab's secret key: stable across processes, different for every lab and seed."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{lab}".encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Watermark:
    key: int
    gamma: float = 0.25  # green share of the vocabulary (Kirchenbauer et al. 2023)
    delta: float = 2.0  # logit bias of green tokens


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash, vectorised."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=16)
def green_list(key: int, gamma: float, vocab_size: int) -> np.ndarray:
    """Bool (V+1, V): row p (p = V is the start of a document) marks the tokens green after token p."""
    prev = np.arange(vocab_size + 1, dtype=np.uint64)[:, None]
    tok = np.arange(vocab_size, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(key) ^ _mix(prev * np.uint64(vocab_size + 1) + tok + np.uint64(1)))
    green = (h >> np.uint64(11)).astype(np.float64) / 2.0**53 < gamma
    green.flags.writeable = False
    return green


def z_scores(docs: np.ndarray, key: int, gamma: float, vocab_size: int) -> np.ndarray:
    """The detector's z-score of every document (all tokens scored, the first against the start symbol)."""
    docs = np.asarray(docs, dtype=np.int64)
    prev = np.concatenate([np.full((len(docs), 1), vocab_size, dtype=np.int64), docs[:, :-1]], axis=1)
    green = green_list(key, gamma, vocab_size)[prev, docs].sum(axis=1)
    t = docs.shape[1]
    return (green - gamma * t) / np.sqrt(t * gamma * (1 - gamma))


def pooled_z(docs: np.ndarray, key: int, gamma: float, vocab_size: int) -> tuple[float, int]:
    """The z-score of green pairs among the *distinct* (previous, token) pairs of ``docs``, and how many.

    Counting every token would test against the wrong null: on text with frequent pairs (any Zipf-like
    language) a model that never saw the key still writes a green share far from γ, because a few pairs
    repeat thousands of times. Each distinct pair's colour is a fresh hash, so under the null the green
    count of the distinct pairs is Binomial(U, γ) whatever the text (Sander et al., arXiv 2402.14904,
    deduplicate the scored tuples for the same reason).
    """
    docs = np.asarray(docs, dtype=np.int64)
    prev = np.concatenate([np.full((len(docs), 1), vocab_size, dtype=np.int64), docs[:, :-1]], axis=1)
    pairs = np.unique(prev.ravel() * vocab_size + docs.ravel())
    green = int(green_list(key, gamma, vocab_size)[pairs // vocab_size, pairs % vocab_size].sum())
    u = len(pairs)
    return (green - gamma * u) / np.sqrt(u * gamma * (1 - gamma)), u


def bias(probs: np.ndarray, last_token: np.ndarray, mark: Watermark) -> np.ndarray:
    """Rows of ``probs`` (one per context, whose newest token is ``last_token``) with green logits raised by δ."""
    green = green_list(mark.key, mark.gamma, probs.shape[1])[last_token]
    out = probs * np.where(green, np.exp(mark.delta), 1.0)
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)
