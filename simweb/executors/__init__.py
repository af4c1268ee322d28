"""Where the agents run. The engine speaks to agents only through an :class:`Executor`.

``local`` calls the agent objects in this process. ``ray`` (``simweb/executors/ray_executor.py``,
the one module that imports Ray) makes each agent a Ray actor. Both take the same agent classes,
and the engine calls an agent's methods by reference (``ex.call(scraper, Scraper.crawl, ...)``),
with named, nested arguments: the Ray side resolves references nested in them itself.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["ActorLost", "ClusterFull", "Executor", "LocalExecutor", "make_executor", "local_cpus", "fits_one_actor",
           "ONE_ACTOR_TOKENS"]

# a run that writes at most this many tokens runs whole in one Ray actor when Ray would give it one node. On 2
# cores (scripts/one_actor.py), the driver waited 1.5 s for the quickstart (3.3 M tokens) in one actor against
# 2.2 s spread over host actors, 2.0 against 2.7 s at 10 M tokens, 3.1 against 4.4 s at 27 M: spreading pays only
# when more cores than that work on a longer run. The bound keeps one actor to runs of a few seconds. A lab that
# trains a transformer is work that tokens do not measure: transformer_small (0.4 M tokens) took 87 s in one actor
# against 68 s spread, its two labs training side by side.
ONE_ACTOR_TOKENS = 2**24


class ActorLost(RuntimeError):
    """An agent's process died; the engine restores every agent from its last checkpoint."""


class ClusterFull(RuntimeError):
    """The cluster had no room for an object its agents pass each other (a node's object store full, its disk
    refusing the overflow): restoring would meet the same wall, so the run stops with its checkpoint kept."""

    def say(self, then: str) -> str:
        """The one line for the user: what happened, what to do, ``then`` what."""
        return (f"{self}; free disk space on the nodes (Ray overflows under its temporary directory) or give them "
                f"larger object stores (ray start --object-store-memory), then {then}")


@runtime_checkable
class Executor(Protocol):
    name: str
    needs_checkpoints: bool  # agents can die under it: the engine checkpoints even without --out

    def plan(self, counts: dict[str, int]) -> None:
        """How many agents of each role will start (to size their reservations)."""

    def start(self, cls: type, /, *args: Any, role: str, gpus: float = 0.0, **kwargs: Any) -> Any:
        """An agent ``cls(*args, **kwargs)``; returns a handle."""

    def ready(self, handles: list) -> None:
        """Wait until every agent runs (an error, not a hang, if one cannot start)."""

    def call(self, handle: Any, method: Callable, /, *args: Any, returns: int = 1, **kwargs: Any) -> Any:
        """``method`` (e.g. ``Scraper.crawl``) on the agent: a result, or a reference to one."""

    def gather(self, results: Any) -> Any:
        """The values of results (a list or a dict of them); raises :class:`ActorLost` if an agent died,
        :class:`ClusterFull` if the cluster had no room for an object."""

    def share(self, value: Any) -> Any:
        """``value`` put once where every agent can read it; a reference."""

    def kill(self, handle: Any) -> None: ...

    def default_shards(self) -> int: ...

    def cluster(self) -> dict: ...

    def shutdown(self) -> None: ...


def fits_one_actor(scenario, cluster: dict) -> bool:
    """Whether a Ray run of ``scenario`` on ``cluster`` (:meth:`Executor.cluster`) runs whole in one actor with
    the local executor rather than as agents spread over actors: a small run (at most :data:`ONE_ACTOR_TOKENS`
    tokens — values, for a gaussian or categorical language — published) on one node, whose shards were not asked for (``run.shards``), with no lab training a
    transformer and no trainer wanting a GPU. The output is the same either way; only where the work runs
    changes."""
    from simweb.engine import expected_pages
    from simweb.models import resources

    if scenario.run.shards is not None or cluster.get("nodes", 1) != 1:
        return False
    if any(lab.model.family == "transformer" for lab in scenario.labs):
        return False
    if any(resources(lab.model, cluster).get("gpus", 0.0) for lab in scenario.labs):
        return False
    return expected_pages(scenario) * scenario.language.width <= ONE_ACTOR_TOKENS


def local_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class LocalExecutor:
    name = "local"
    needs_checkpoints = False  # in-process agents cannot die on their own

    def plan(self, counts: dict[str, int]) -> None:
        pass

    def start(self, cls, /, *args, role: str = "", gpus: float = 0.0, **kwargs):
        return cls(*args, **kwargs)

    def ready(self, handles: list) -> None:
        pass

    def call(self, handle, method, /, *args, returns: int = 1, **kwargs):
        return getattr(handle, method.__name__)(*args, **kwargs)

    def gather(self, results):
        return results

    def share(self, value):
        return value

    def kill(self, handle) -> None:
        pass

    def default_shards(self) -> int:
        return 1

    def cluster(self) -> dict:
        return {"nodes": 1, "cpus": local_cpus()}

    def node_of(self, handle) -> str:
        return "local"

    def shutdown(self) -> None:
        pass


def make_executor(name: str, *, address: str | None = None, say: Callable[[str], None] | None = None) -> Executor:
    if name == "local":
        return LocalExecutor()
    from simweb.executors.ray_executor import RayExecutor

    return RayExecutor(address=address, say=say)
