"""A user's own policies, written as simweb plugins in one file.

- ``self_similarity`` (a filter): drops the pages the lab's own latest model finds likeliest — it
  needs the lab's **model** — against a bar set by every page it has scored in earlier crawls — it
  needs **history**, which simweb checkpoints and restores with the run.
- ``newest_generations`` (a regime): trains on the pages kept by the lab's k most recent crawls.
- ``paraphrase`` (a publisher behaviour): a content farm that swaps neighbouring tokens of its AI
  drafts before publishing them (word order changes; a green-list watermark loses its pairs).

Use it with ``simweb run examples/my_policies.toml --plugin examples/my_policies.py``, or from
Python (``examples/run_my_policies.py``). Nothing here runs on import but the registrations.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

import simweb


@simweb.filter("self_similarity")
class SelfSimilarity:
    """Drop a page whose mean log-probability per token under the lab's latest model is above the
    ``quantile`` of the scores of the last ``memory`` pages this filter has seen."""

    class Config(simweb.PluginConfig):
        quantile: float = Field(0.9, gt=0.0, lt=1.0)  # share of pages kept, judged against past crawls
        memory: int = Field(20_000, ge=1)  # scores remembered across crawls

    needs = ("tokens", "model", "history")

    def __init__(self, config):
        self.config = config
        self.scores = np.empty(0)

    def keep(self, batch, *, rng):
        if batch.model is None or len(batch) == 0:  # before the lab's first release
            return np.ones(len(batch), dtype=bool)
        score = batch.model.log_prob(batch.content) / batch.content.shape[1]
        self.scores = np.concatenate([self.scores, score])[-self.config.memory:]
        return score <= np.quantile(self.scores, self.config.quantile)

    def state(self):
        return {"scores": self.scores}

    def restore(self, state):
        self.scores = np.asarray(state["scores"], dtype=np.float64)


@simweb.regime("newest_generations")
class NewestGenerations:
    """Train on the pages kept by the lab's ``k`` most recent crawls (a sliding window of crawls)."""

    class Config(simweb.PluginConfig):
        k: int = Field(2, ge=1)

    needs = ("pool",)

    def __init__(self, config, lab):
        self.config = config

    def select(self, pool, *, generation, rng):
        return np.flatnonzero(pool.crawl > generation - self.config.k)


@simweb.publisher_behaviour("paraphrase")
class Paraphrase:
    """Swap each token of an AI draft with its right neighbour with probability ``rate``."""

    class Config(simweb.PluginConfig):
        rate: float = Field(0.2, ge=0.0, le=0.5)

    def __init__(self, config):
        self.config = config

    def apply(self, drafts, *, rng):
        content = drafts.content
        swap = rng.random((len(content), content.shape[1] - 1)) < self.config.rate
        swap &= drafts.is_draft[:, None]
        rows, cols = np.nonzero(swap)
        left = content[rows, cols].copy()
        content[rows, cols] = content[rows, cols + 1]
        content[rows, cols + 1] = left
