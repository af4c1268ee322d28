"""A training-data cut-off date: keep only pages published at or before a tick."""

from __future__ import annotations

import numpy as np
from pydantic import Field

import simweb.plugins as plugins


@plugins.filter("date_cutoff")
class DateCutoff:
    """Keep only pages published at or before ``tick``."""

    class Config(plugins.PluginConfig):
        """Keep only pages published at or before ``tick``."""

        tick: int = Field(ge=0, le=32_767)

    needs = ()

    def __init__(self, config):
        self.config = config

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        return batch.tick <= self.config.tick
