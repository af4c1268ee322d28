"""C2PA-style provenance metadata: drop pages whose label says AI."""

from __future__ import annotations

import numpy as np

import simweb.plugins as plugins


@plugins.filter("provenance")
class Provenance:
    """Drops pages whose C2PA label says AI; pages labelled human, or unlabelled, pass."""

    needs = ()

    def __init__(self, config):
        self.config = config

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        return batch.c2pa != 2
