"""A verifier (Feng et al. 2025): keeps documents whose quality passes a bar.

Quality is the true language's log-probability per token, seen through Gaussian noise of sd
``noise`` (0 = a perfect verifier); the bar is the ``quantile`` of that score on fresh human
documents. It is an oracle by construction, so it needs the truth (the language) — parametric.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import simweb.plugins as plugins


@plugins.filter("verifier")
class Verifier:
    class Config(plugins.PluginConfig):
        """Keeps documents whose (noisy) ground-truth quality passes a bar (Feng et al. 2025)."""

        quantile: float = Field(0.1, ge=0.0, lt=1.0)  # the bar: this quantile of human documents' quality
        noise: float = Field(0.0, ge=0.0, le=1e6)  # sd of the verifier's error, nats per token (0 = ground truth)
        calibration_docs: int = Field(1000, ge=10, le=10_000_000)

        def check(self, scenario, where: str, fail) -> None:
            if scenario.language.family != "markov":
                fail(f"{where}.kind", f"a verifier filter scores tokens and needs a markov language, "
                     f"got {scenario.language.family}")

    needs = ("tokens", "calibration", "truth")

    def __init__(self, config):
        self.config = config

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        language, calibration = batch.language, batch.calibration
        width = calibration.shape[1]

        def score(docs, noise_rng):
            return language.log_prob(docs) / width + self.config.noise * noise_rng.standard_normal(len(docs))

        bar = np.quantile(score(calibration, rng), self.config.quantile)
        return score(batch.content, rng) >= bar
