"""Ground truths with closed forms, for the model-collapse literature: a gaussian and a categorical.

A "document" here is one sample: a row of ``dim`` reals, or one outcome.
"""

from __future__ import annotations

import math

import numpy as np

from simweb.language.drift import GaussianWalk
from simweb.language.markov import zipf

__all__ = ["GaussianLanguage", "CategoricalLanguage", "inverse_cdf"]


def inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Outcomes of uniforms ``u`` under ``probs`` (one law), by binary search in the cumulative sum."""
    cdf = np.cumsum(probs)
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(probs) - 1)


class GaussianLanguage:
    """N(mean, std² I) in ``dim`` dimensions (Shumailov et al. 2024's single-gaussian case)."""

    family = "gaussian"
    is_tokens = False
    topics = 1

    def __init__(self, *, dim: int, mean, std: float, walk: GaussianWalk | None = None):
        self.dim = self.width = int(dim)
        self.dtype = np.dtype(np.float64)
        self.mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), (self.dim,)).copy()
        self.var = np.full(self.dim, float(std) ** 2)
        self.std = float(std)
        self.walk = walk  # the mean's random walk (None: stationary)
        self._ticks: dict[int, GaussianLanguage] = {}
        self._root = self

    @classmethod
    def from_config(cls, cfg, *, rng: np.random.Generator, seed: int = 0) -> "GaussianLanguage":
        drift = getattr(cfg, "drift", None)
        walk = (GaussianWalk(seed, cfg.dim, drift.mean_step_sd)
                if drift is not None and drift.mean_step_sd > 0 else None)
        return cls(dim=cfg.dim, mean=cfg.mean, std=cfg.std, walk=walk)

    def at(self, tick: int) -> "GaussianLanguage":
        """The truth of ``tick``: N(mean + walk offset, std²); this very object when the mean does not drift."""
        root = self._root
        if root.walk is None:
            return root
        truth = root._ticks.get(tick)
        if truth is None:
            truth = GaussianLanguage(dim=root.dim, mean=root.mean + root.walk.offset(tick), std=root.std)
            truth._root = root
            root._ticks[tick] = truth
        return truth

    def sample(self, n: int, *, rng: np.random.Generator, topics: np.ndarray | None = None):
        return self.draw(self.noise(n, rng=rng)), np.zeros(n, dtype=np.int64)

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """One standard normal per dimension, shape (n, dim)."""
        return rng.standard_normal((n, self.dim))

    def draw(self, noise: np.ndarray, *, topics: np.ndarray | None = None) -> np.ndarray:
        return self.mean + np.sqrt(self.var) * np.asarray(noise)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return -0.5 * (((x - self.mean) ** 2 / self.var) + np.log(2 * math.pi * self.var)).sum(axis=1)

    def entropy(self, **_) -> tuple[float, float]:
        return float(0.5 * np.log(2 * math.pi * math.e * self.var).sum()), 0.0


class CategoricalLanguage:
    """K outcomes with fixed probabilities (Shumailov et al. 2024's discrete case)."""

    family = "categorical"
    is_tokens = False
    topics = 1
    width = 1

    def __init__(self, probs: np.ndarray, walk: GaussianWalk | None = None):
        self.probs = np.asarray(probs, dtype=np.float64)
        self.outcomes = len(self.probs)
        self.dtype = np.dtype(np.int32)
        self.walk = walk  # the logits' random walk (None: stationary)
        self._ticks: dict[int, CategoricalLanguage] = {}
        self._root = self

    @classmethod
    def from_config(cls, cfg, *, rng: np.random.Generator, seed: int = 0) -> "CategoricalLanguage":
        probs = np.array(cfg.probs) if cfg.probs is not None else zipf(cfg.outcomes, cfg.zipf_exponent)
        drift = getattr(cfg, "drift", None)
        walk = (GaussianWalk(seed, cfg.outcomes, drift.logit_step_sd, name="logits")
                if drift is not None and drift.logit_step_sd > 0 else None)
        return cls(probs / probs.sum(), walk)

    def sample(self, n: int, *, rng: np.random.Generator, topics: np.ndarray | None = None):
        return self.draw(self.noise(n, rng=rng)), np.zeros(n, dtype=np.int64)

    def at(self, tick: int) -> "CategoricalLanguage":
        """The truth of ``tick``: softmax(log p + walk offset) (an outcome of probability 0 stays at 0); this
        very object at tick 0 and when the logits do not drift."""
        root = self._root
        if root.walk is None or tick == 0:  # the truth of tick 0 is the configured one, exactly
            return root
        truth = root._ticks.get(tick)
        if truth is None:
            with np.errstate(divide="ignore"):
                logits = np.log(root.probs) + root.walk.offset(tick)
            p = np.exp(logits - logits.max())
            truth = CategoricalLanguage(p / p.sum())
            truth._root = root
            root._ticks[tick] = truth
        return truth

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """One uniform per sample, shape (n, 1)."""
        return rng.random((n, 1))

    def draw(self, noise: np.ndarray, *, topics: np.ndarray | None = None) -> np.ndarray:
        return inverse_cdf(self.probs, np.asarray(noise)[:, 0]).astype(self.dtype)[:, None]

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.probs[np.asarray(x)[:, 0]])

    def entropy(self, **_) -> tuple[float, float]:
        p = self.probs[self.probs > 0]
        return float(-(p * np.log(p)).sum()), 0.0
