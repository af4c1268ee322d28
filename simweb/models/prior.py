"""Priors toward a reference model: the MAP fix of Jangjoo, Marsili & Roudi (PRL 2026).

A prior of ``strength`` c adds c pseudo-observations drawn from the reference
to every fit: Dirichlet pseudo-counts c·p_ref for ngram rows and categorical
outcomes (a Beta(a, a) prior on two outcomes is c = 2a with a uniform
reference), and c pseudo-samples at the reference mean and variance for the
gaussian (the normal-inverse-gamma conjugate form). With c > 0 no outcome or
transition can be lost for good, so retraining has no absorbing state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Prior"]


@dataclass(frozen=True)
class Prior:
    strength: float  # pseudo-observations (per context row for ngram)
    reference: dict[str, np.ndarray] | None = None  # a model state; None = uniform over outcomes

    def probs(self, shape: tuple[int, ...]) -> np.ndarray:
        """The reference probabilities (rows over the last axis), uniform when there is no reference."""
        if self.reference is None:
            return np.full(shape, 1.0 / shape[-1])
        ref = np.asarray(self.reference["probs"], dtype=np.float64)
        if ref.shape != shape:
            raise ValueError(f"prior reference has shape {ref.shape}, expected {shape}")
        return ref
