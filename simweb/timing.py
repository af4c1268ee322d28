"""Busy time per stage: what each agent (and the driver) spent its seconds on.

Every agent keeps a :class:`Busy` and times its work by stage (``publish``,
``crawl``, ``filter``, ``train``, ``evaluate``, ``checkpoint``); the engine sums
them over agents into the manifest's ``stage_time_s``. With the local executor
the sum is wall-clock time; under Ray, agents work in parallel and the sum is
the work done, which can exceed the run's wall time.
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager

__all__ = ["Busy", "STAGES", "timed"]

STAGES = ("publish", "crawl", "filter", "train", "evaluate", "checkpoint")


class Busy:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def add(self, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + s


def timed(stage: str):
    """Decorate an agent's method: its calls count as ``stage`` work in the agent's ``busy``."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self.busy(stage):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate
