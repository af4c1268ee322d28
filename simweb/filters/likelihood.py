"""A likelihood-ratio detector: drops pages that look like the lab's own model wrote them.

s(doc) = mean log-probability per token under the lab's current model − under a unigram model of
human text; the threshold is the (1 − target_fpr) quantile of s on fresh human calibration
documents, so it flags that share of human pages. Before the lab's first model, it keeps everything.
It needs the tokens, the lab's model and calibration text — and nothing else of simweb: this module
is the whole of it.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import simweb.plugins as plugins

FLOOR = -30.0  # a token the model cannot produce counts as very unlike it, not as −inf


@plugins.filter("likelihood")
class Likelihood:
    class Config(plugins.PluginConfig):
        """A likelihood-ratio test on the tokens under the lab's own current model, calibrated on human text."""

        target_fpr: float = Field(0.05, gt=0.0, lt=1.0)  # share of human pages it may drop
        calibration_docs: int = Field(1000, ge=10, le=10_000_000)  # fresh human documents the lab calibrates on

        def check(self, scenario, where: str, fail) -> None:
            if scenario.language.family != "markov":
                fail(f"{where}.kind", f"a likelihood filter scores tokens and needs a markov language, "
                     f"got {scenario.language.family}")

    needs = ("tokens", "model", "calibration")

    def __init__(self, config):
        self.config = config
        self._unigram: tuple[int, np.ndarray] | None = None  # (id of the calibration set, its add-one unigram law)

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        model = batch.model
        if model is None or len(batch) == 0:
            return np.ones(len(batch), dtype=bool)
        calibration = batch.calibration
        unigram = self._reference(calibration, batch.vocab_size)

        def stat(docs):
            own = np.maximum(model.token_log_prob(docs), FLOOR).mean(axis=1)
            return own - np.log(unigram[docs.astype(np.int64)]).mean(axis=1)

        threshold = np.quantile(stat(calibration), 1.0 - self.config.target_fpr)
        return stat(batch.content) <= threshold

    def _reference(self, calibration: np.ndarray, vocab_size: int) -> np.ndarray:
        """The add-one unigram law of the human calibration text: the likelihood ratio's reference."""
        if self._unigram is None or self._unigram[0] != id(calibration):
            counts = np.bincount(calibration.ravel().astype(np.int64), minlength=vocab_size) + 1.0
            self._unigram = (id(calibration), counts / counts.sum())
        return self._unigram[1]
