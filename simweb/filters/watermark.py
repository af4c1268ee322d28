"""Kirchenbauer et al.'s green-list z-test on the tokens, with every key the lab holds."""

from __future__ import annotations

import numpy as np
from pydantic import Field

import simweb.plugins as plugins


@plugins.filter("watermark")
class WatermarkDetector:
    """Drops pages whose z-score under any key the lab holds reaches the threshold."""

    class Config(plugins.PluginConfig):
        """Kirchenbauer et al.'s z-test on the tokens, with the keys the lab holds."""

        z_threshold: float = Field(4.0, gt=0.0, le=1e6)  # z = 4: FPR ≈ 3e-5 per document (Kirchenbauer et al. 2023)
        keys: tuple[str, ...] | None = None  # labs whose keys it holds; default: its own

        def check(self, scenario, where: str, fail) -> None:
            from simweb.scenario.load import _did_you_mean

            if scenario.language.family != "markov":
                fail(f"{where}.kind", "a watermark detector reads tokens and needs a markov language, "
                     f"got {scenario.language.family}")
            lab_names = [lab.name for lab in scenario.labs]
            for k, name in enumerate(self.keys or ()):
                if name not in lab_names:
                    fail(f"{where}.keys[{k}]", f"no lab named {name!r}{_did_you_mean(name, lab_names)}")

    needs = ("tokens",)

    def __init__(self, config):
        self.config = config

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        from simweb.watermark import z_scores

        keys = batch.watermark_keys
        names = self.config.keys if self.config.keys is not None else [batch.lab]
        flagged = np.zeros(len(batch), dtype=bool)
        for name in names:
            if name in keys:  # a key of a lab that does not watermark detects nothing
                key, gamma = keys[name]
                flagged |= z_scores(batch.content, key, gamma, batch.vocab_size) >= self.config.z_threshold
        return ~flagged
