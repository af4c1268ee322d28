"""Where the agents run. The engine speaks to agents only through an executor.

``local`` calls the agent objects in this process. ``ray`` (``simweb/executors/ray_executor.py``,
the one module that imports Ray) makes each agent a Ray actor. Both take the same agent classes.

An executor offers ``start(cls, *args, role=...)``, ``call(handle, method, *args, returns=1)``
(a result, or a reference to one), ``get(results)``, ``put(value)``, ``kill(handle)`` and
``shutdown()``. ``get`` raises :class:`ActorLost` when an agent died under it.
"""

from __future__ import annotations

import os

__all__ = ["ActorLost", "LocalExecutor", "make_executor"]


class ActorLost(RuntimeError):
    """An agent's process died; the engine restores every agent from its last checkpoint."""


class LocalExecutor:
    name = "local"

    def start(self, cls, *args, role: str = "", cpus: float = 0.0, gpus: float = 0.0):
        return cls(*args)

    def call(self, handle, method: str, *args, returns: int = 1):
        return getattr(handle, method)(*args)

    def get(self, results):
        return results

    def put(self, value):
        return value

    def kill(self, handle) -> None:
        pass

    def cluster(self) -> dict:
        return {"nodes": 1, "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}

    def node_of(self, handle) -> str:
        return "local"

    def shutdown(self) -> None:
        pass


def make_executor(name: str, *, address: str | None = None):
    if name == "local":
        return LocalExecutor()
    from simweb.executors.ray_executor import RayExecutor

    return RayExecutor(address=address)
