"""A parametric AI-text detector: flags an AI page with probability TPR, a human page with FPR.

A human page that imitates a model (``publishers[].imitation``: a share κ of its tokens drawn from one) is
flagged with probability FPR + κ·(TPR − FPR): it reads that much like AI text (detectors' false positives
on human text rise as humans write like models; Kobak et al., Geng & Trotta 2025).

It stands in for a detector by its published error rates, so it must read each page's true origin
(``needs = ("truth",)``): the README marks it as parametric.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

import simweb.plugins as plugins
from simweb.web.store import AI

__all__ = ["Classifier", "CLASSIFIER_PRESETS"]

# published operating points (REFERENCES.md): (TPR, FPR)
CLASSIFIER_PRESETS = {
    "classifier_2023": (0.26, 0.09),  # OpenAI's 2023 AI-text classifier, withdrawn July 2023
    "commercial": (0.90, 0.02),  # modern commercial detectors, vendor-reported 0.85–0.99 / 0.01–0.04 (assumption)
    "after_paraphrase": (0.05, 0.01),  # DetectGPT after DIPPER paraphrasing, Krishna et al. 2023
}


@plugins.filter("classifier")
class Classifier:
    """``fpr_multiplier`` raises the FPR for some publisher populations (detectors flag non-native
    writers far more often, Liang et al. 2023); ``tpr_decay`` lowers the TPR by that factor per
    generation of the model that wrote the page (detectors fall behind better models)."""

    class Config(plugins.PluginConfig):
        """A parametric AI-text detector applied to each page's true origin."""

        preset: Literal["classifier_2023", "commercial", "after_paraphrase"] | None = None  # sets tpr and fpr
        tpr: float = Field(0.85, ge=0.0, le=1.0)  # ~0.85-0.99: modern commercial detectors (REFERENCES.md, an assumption)
        fpr: float = Field(0.02, ge=0.0, le=1.0)  # ~0.01-0.04: same source
        fpr_multiplier: dict[str, float] = {}  # population → FPR factor (61 % of TOEFL essays flagged, Liang et al. 2023)
        tpr_decay: float = Field(0.0, ge=0.0, le=1.0)  # TPR × (1 − decay)^generation of the page's model

        def check(self, scenario, where: str, fail) -> None:
            from simweb.scenario.load import _did_you_mean

            pub_names = [p.name for p in scenario.publishers]
            for name, factor in self.fpr_multiplier.items():
                if name not in pub_names:
                    fail(f"{where}.fpr_multiplier.{name}",
                         f"no publisher population named {name!r}{_did_you_mean(name, pub_names)}")
                if not math.isfinite(factor) or factor < 0:
                    fail(f"{where}.fpr_multiplier.{name}", f"expected a number >= 0, got {factor}")

    needs = ("truth",)

    def __init__(self, config):
        self.config = config
        self.tpr, self.fpr = (config.tpr, config.fpr) if config.preset is None else CLASSIFIER_PRESETS[config.preset]

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        truth = batch.truth
        is_ai = truth["origin"] == AI
        tpr = self.tpr * (1.0 - self.config.tpr_decay) ** np.maximum(truth["generation"], 0)
        names = batch.population_names
        mult = np.array([self.config.fpr_multiplier.get(name, 1.0) for name in names] or [1.0])
        fpr = np.minimum(1.0, self.fpr * mult[truth["population"].astype(np.int64)]) if names else self.fpr
        if "imitation" in truth:  # a human page with a share κ of model tokens looks that much like AI text
            fpr = fpr + truth["imitation"].astype(np.float64) * np.maximum(self.tpr - fpr, 0.0)
        flagged = rng.random(len(batch)) < np.where(is_ai, tpr, fpr)
        return ~flagged
