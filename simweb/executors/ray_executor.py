"""The Ray executor: every agent a Ray actor, on a laptop or a cluster.

With no cluster it starts a local one (no dashboard) and shuts it down when the
run ends; with ``RAY_ADDRESS`` or ``--address`` it joins an existing cluster and
leaves it running. Each actor reserves a fraction of a CPU small enough that
all of a run's actors would fit on the cluster's smallest node — so however the
scheduler packs them, none is left pending (a 2-core laptop included) — and at
most one CPU. Reservations only place actors; they do not cap what an actor
uses. Shards are spread across nodes.
"""

from __future__ import annotations

import logging
import os

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from simweb.executors import ActorLost

__all__ = ["RayExecutor"]

READY_TIMEOUT_S = 120  # an actor not running by then is reported, not waited on forever


class RayExecutor:
    name = "ray"

    def __init__(self, *, address: str | None = None):
        address = address or os.environ.get("RAY_ADDRESS")
        self._started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:
                # "local": always a fresh instance of our own, never another process's cluster by accident
                ray.init(address="local", num_cpus=_local_cpus(), include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
                self._started = True
        self.counts: dict[str, int] = {}
        self._remote: dict[type, object] = {}

    def plan(self, counts: dict[str, int]) -> None:
        """Tell the executor how many actors of each role will start, to size their CPU reservations."""
        self.counts = dict(counts)

    def _cpus(self, role: str) -> float:
        smallest = min((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0)
        actors = max(sum(self.counts.values()), 1)
        return max(0.01, round(min(1.0, 0.9 * smallest / actors), 4))

    def ready(self, handles: list) -> None:
        """Wait until every actor runs; a clear error instead of a hang when the cluster cannot place one."""
        pending = {h.__ray_ready__.remote(): h for h in handles}
        done, waiting = ray.wait(list(pending), num_returns=len(pending), timeout=READY_TIMEOUT_S)
        if waiting:
            from simweb.errors import SimwebError

            raise SimwebError(f"{len(waiting)} of {len(handles)} Ray actors could not start within "
                              f"{READY_TIMEOUT_S} s; the cluster has {self.cluster()}: free some CPUs or use fewer "
                              "shards (--shards)")
        self.get(done)

    def start(self, cls, *args, role: str = "", cpus: float | None = None, gpus: float = 0.0):
        remote = self._remote.get(cls)
        if remote is None:
            remote = self._remote[cls] = ray.remote(cls)
        options = {"num_cpus": cpus if cpus is not None else self._cpus(role), "max_restarts": 0}
        if gpus:
            options["num_gpus"] = gpus
        if role == "shard":
            options["scheduling_strategy"] = "SPREAD"
        return remote.options(**options).remote(*args)

    def call(self, handle, method: str, *args, returns: int = 1):
        fn = getattr(handle, method)
        return fn.options(num_returns=returns).remote(*args) if returns != 1 else fn.remote(*args)

    def get(self, results):
        try:
            if isinstance(results, dict):
                keys = list(results)
                return dict(zip(keys, ray.get([results[k] for k in keys])))
            return ray.get(results)
        except (ActorDiedError, ActorUnavailableError, RayActorError) as err:
            raise ActorLost(_first_line(err)) from None

    def put(self, value):
        return ray.put(value)

    def kill(self, handle) -> None:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # already gone
            pass

    def cluster(self) -> dict:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {"nodes": len(nodes), "cpus": ray.cluster_resources().get("CPU", 0.0),
                "gpus": ray.cluster_resources().get("GPU", 0.0)}

    def node_of(self, handle) -> str:
        return ray.get(handle.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()))

    def shutdown(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()


def _local_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def map_tasks(fn, items, *, address: str | None = None, on_done=None) -> list:
    """Run ``fn`` over ``items`` as Ray tasks of one CPU each (a sweep's small runs); results in item order."""
    ex = RayExecutor(address=address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        pending = {remote.remote(item): i for i, item in enumerate(items)}
        results: list = [None] * len(items)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except Exception as err:  # a worker lost mid-run: that run is recorded as failed
                    results[i] = {"state": "failed", "error": f"worker lost: {_first_line(err)}",
                                  "wall_time_s": 0.0, "skipped": False, "generations": None}
                if on_done:
                    on_done(i, results[i])
        return results
    finally:
        ex.shutdown()
