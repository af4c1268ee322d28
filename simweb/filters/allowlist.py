"""An allowlist of reputable sites: only pages on the top-k sites by PageRank or by age."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

import simweb.plugins as plugins


@plugins.filter("allowlist")
class Allowlist:
    """Only pages on the top-k sites by reputation: PageRank, or age (oldest first)."""

    class Config(plugins.PluginConfig):
        """Keeps pages on the top-k sites by reputation."""

        top_k: int = Field(ge=1, le=2**31 - 1)
        reputation: Literal["pagerank", "age"] = "pagerank"

    needs = ("graph",)

    def __init__(self, config):
        self.config = config

    def keep(self, batch, *, rng: np.random.Generator) -> np.ndarray:
        graph = batch.graph
        rank = graph.pagerank_rank() if self.config.reputation == "pagerank" else _age_rank(graph.created)
        return rank[batch.site_id] < self.config.top_k


def _age_rank(created: np.ndarray) -> np.ndarray:
    order = np.lexsort((np.arange(len(created)), created))
    rank = np.empty(len(created), dtype=np.int64)
    rank[order] = np.arange(len(created))
    return rank
