"""The agent fleet: the publisher shards, one scraper and one trainer per lab — started, killed,
restarted.

The fleet owns the handles and talks to the executor; it knows nothing of the tick loop. It also
collects what the agents measure of themselves: seconds of work per stage, and page memory.
"""

from __future__ import annotations

import numpy as np

from simweb.agents.base import Agent
from simweb.agents.publisher import PublisherShard
from simweb.agents.scraper import Scraper
from simweb.agents.trainer import Trainer
from simweb.models import resources
from simweb.timing import STAGES, Busy

__all__ = ["Fleet"]


class Fleet:
    def __init__(self, ex, context, *, shards: int, capacity: int, store_dir, shard_budget, durable: bool):
        self.ex, self.context = ex, context
        self.n_shards, self.capacity = shards, capacity
        self.store_dir, self.shard_budget, self.durable = store_dir, shard_budget, durable
        self.gpus = [resources(lab.model, ex.cluster()).get("gpus", 0.0) for lab in context.scenario.labs]
        self.start()

    def start(self) -> None:
        ex, labs = self.ex, self.context.scenario.labs
        ex.plan({"shard": self.n_shards, "scraper": len(labs), "trainer": len(labs),
                 "gpu_trainer": sum(1 for g in self.gpus if g)})
        # a hint of each shard's pages: a little over an even share, as blocks of sites split unevenly
        held = self.capacity if self.n_shards == 1 else int(1.2 * self.capacity / self.n_shards) + 1024
        self.shards = [ex.start(PublisherShard, self.context, s, self.n_shards, self.store_dir, self.shard_budget,
                                self.durable, held, role="shard") for s in range(self.n_shards)]
        self.scrapers = [ex.start(Scraper, self.context, i, role="scraper") for i in range(len(labs))]
        self.trainers = [ex.start(Trainer, self.context, i, role="trainer", gpus=self.gpus[i])
                         for i in range(len(labs))]
        ex.ready(self.agents)

    @property
    def agents(self) -> list:
        return self.shards + self.scrapers + self.trainers

    def kill(self) -> None:
        for handle in self.agents:
            self.ex.kill(handle)

    def restart(self) -> None:
        self.kill()
        self.start()

    def on_all(self, method, agents: list, **kwargs) -> list:
        """``method`` on each of ``agents``, in order; their results."""
        ex = self.ex
        return ex.gather([ex.call(a, method, **kwargs) for a in agents])

    def stage_times(self, driver: Busy) -> dict[str, float]:
        """Seconds of work per stage, summed over the driver and every agent (see :mod:`simweb.timing`)."""
        busy = Busy()
        busy.add(driver.seconds)
        for part in self.on_all(Agent.busy_seconds, self.agents):
            busy.add(part)
        return {stage: round(busy.seconds.get(stage, 0.0), 3) for stage in STAGES}

    def page_memory(self, pages: int) -> dict[str, int | float]:
        """Bytes the page store holds in memory: the shards' index rows, the scrapers' trained ids and tick starts
        (``replica_bytes``), resident content."""
        shards = self.on_all(PublisherShard.footprint, self.shards)
        replicas = self.on_all(Scraper.footprint, self.scrapers)
        language = self.context.language
        token_bytes = pages * language.width * np.dtype(language.dtype).itemsize
        index_bytes = sum(f["index_bytes"] for f in shards)
        held = index_bytes + sum(replicas) + sum(f["resident_bytes"] for f in shards)
        return {"pages": pages, "token_bytes": int(token_bytes), "index_bytes": int(index_bytes),
                "replica_bytes": int(sum(replicas)), "content_bytes": int(sum(f["resident_bytes"] for f in shards)),
                "spilled_pages": int(sum(f["spilled_pages"] for f in shards)),
                "bytes_per_token_byte": round(held / token_bytes, 3) if token_bytes else None}

