"""Models with closed-form fits, for the model-collapse literature: gaussian and categorical."""

from __future__ import annotations

import math

from typing import Literal

import numpy as np

import simweb.plugins as plugins
from simweb.language.simple import inverse_cdf
from simweb.sampling import shape_probs

__all__ = ["GaussianModel", "CategoricalModel"]


@plugins.model("gaussian")
class GaussianModel:
    """A diagonal gaussian fitted by its sample mean and variance.

    ``variance="mle"`` divides by n (the estimator whose expectation shrinks by
    (n−1)/n per generation, Shumailov et al. 2024); ``"unbiased"`` by n − 1.
    """

    class Config(plugins.PluginConfig):
        """A diagonal gaussian fitted by its sample mean and variance."""

        variance: Literal["mle", "unbiased"] = "mle"

    languages = ("gaussian",)
    family = "gaussian"
    is_tokens = False

    def __init__(self, *, dim: int, variance: str = "mle"):
        self.dim = int(dim)
        self.variance = variance
        self.mean: np.ndarray | None = None
        self.var: np.ndarray | None = None

    @classmethod
    def from_config(cls, cfg, language) -> "GaussianModel":
        return cls(dim=language.dim, variance=cfg.variance)

    def fit(self, x: np.ndarray, *, rng: np.random.Generator, prior=None) -> "GaussianModel":
        x = np.asarray(x, dtype=np.float64)
        n = len(x)
        ddof = 1 if self.variance == "unbiased" else 0
        if n <= ddof:
            raise ValueError(f"a gaussian fit with variance={self.variance!r} needs more than {ddof} samples, got {n}")
        self.mean = x.mean(axis=0)
        self.var = x.var(axis=0, ddof=ddof)
        if prior is not None and prior.strength > 0:
            if prior.reference is None:
                raise ValueError("a gaussian prior needs a reference model (there is no uniform gaussian)")
            c = prior.strength
            mu0, var0 = np.asarray(prior.reference["mean"]), np.asarray(prior.reference["var"])
            spread = x.var(axis=0) * n  # sum of squares about the sample mean
            self.var = (spread + c * var0 + n * c / (n + c) * (self.mean - mu0) ** 2) / (n + c - ddof)
            self.mean = (n * self.mean + c * mu0) / (n + c)
        return self

    def sample(self, n: int, *, rng: np.random.Generator, temperature: float = 1.0, top_p: float = 1.0,
               watermark=None) -> np.ndarray:
        return self.draw(self.noise(n, rng=rng), temperature=temperature)

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """One standard normal per dimension, shape (n, dim)."""
        return rng.standard_normal((n, self.dim))

    def draw(self, noise: np.ndarray, *, temperature: float = 1.0, top_p: float = 1.0, watermark=None) -> np.ndarray:
        """Temperature scales the variance, as it scales the log-density."""
        self._require()
        return self.mean + np.sqrt(self.var * temperature) * np.asarray(noise)

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Log-density per sample; a dimension with zero variance is a point mass (+inf at the mean, −inf off it)."""
        self._require()
        x = np.asarray(x, dtype=np.float64)
        point = self.var == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = -0.5 * ((x - self.mean) ** 2 / self.var + np.log(2 * math.pi * self.var))
        if not point.any() and not np.isneginf(dens).any():  # the usual case, the same sums without the masks
            return dens.sum(axis=1)
        dens = np.where(point, np.where(x == self.mean, np.inf, -np.inf), dens)
        impossible = np.isneginf(dens).any(axis=1)
        with np.errstate(invalid="ignore"):
            return np.where(impossible, -np.inf, np.where(np.isneginf(dens), 0.0, dens).sum(axis=1))

    def state_dict(self) -> dict[str, np.ndarray]:
        self._require()
        return {"mean": self.mean, "var": self.var}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> "GaussianModel":
        self.mean = np.asarray(state["mean"], dtype=np.float64).reshape(self.dim)
        self.var = np.asarray(state["var"], dtype=np.float64).reshape(self.dim)
        return self

    def _require(self) -> None:
        if self.mean is None:
            raise RuntimeError("the gaussian model has not been fitted")


@plugins.model("categorical")
class CategoricalModel:
    """Outcome frequencies by maximum likelihood: an outcome never seen is gone for good."""

    class Config(plugins.PluginConfig):
        """Outcome frequencies by maximum likelihood."""

    languages = ("categorical",)
    family = "categorical"
    is_tokens = False

    def __init__(self, *, outcomes: int):
        self.outcomes = int(outcomes)
        self.probs: np.ndarray | None = None

    @classmethod
    def from_config(cls, cfg, language) -> "CategoricalModel":
        return cls(outcomes=language.outcomes)

    def fit(self, x: np.ndarray, *, rng: np.random.Generator, prior=None) -> "CategoricalModel":
        counts = np.bincount(np.asarray(x, dtype=np.int64).ravel(), minlength=self.outcomes).astype(np.float64)
        if prior is not None and prior.strength > 0:
            counts += prior.strength * prior.probs(counts.shape)
        if counts.sum() == 0:
            raise ValueError("a categorical fit needs at least one sample")
        self.probs = counts / counts.sum()
        return self

    def sample(self, n: int, *, rng: np.random.Generator, temperature: float = 1.0, top_p: float = 1.0,
               watermark=None) -> np.ndarray:
        return self.draw(self.noise(n, rng=rng), temperature=temperature, top_p=top_p)

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """One uniform per sample, shape (n, 1)."""
        return rng.random((n, 1))

    def draw(self, noise: np.ndarray, *, temperature: float = 1.0, top_p: float = 1.0, watermark=None) -> np.ndarray:
        p = self._require()
        if (temperature, top_p) != (1.0, 1.0):
            p = shape_probs(p, temperature=temperature, top_p=top_p)[0]
        return inverse_cdf(p, np.asarray(noise)[:, 0]).astype(np.int32)[:, None]

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self._require()[np.asarray(x, dtype=np.int64)[:, 0]])

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"probs": self._require()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> "CategoricalModel":
        self.probs = np.asarray(state["probs"], dtype=np.float64).reshape(self.outcomes)
        return self

    def _require(self) -> np.ndarray:
        if self.probs is None:
            raise RuntimeError("the categorical model has not been fitted")
        return self.probs
