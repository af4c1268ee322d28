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

__all__ = ["Busy", "STAGES", "timed"]

STAGES = ("publish", "crawl", "filter", "train", "evaluate", "checkpoint")


class Busy:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str) -> "_Span":
        """A context that adds its duration to ``stage``."""
        return _Span(self.seconds, stage)

    def add(self, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + s


class _Span:
    """One timed stretch of work. A plain class, not @contextmanager: agents enter a dozen a tick, and a
    generator-based context costs several times as much to enter and leave."""

    __slots__ = ("seconds", "stage", "start")

    def __init__(self, seconds: dict[str, float], stage: str):
        self.seconds, self.stage = seconds, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + time.perf_counter() - self.start


def timed(stage: str):
    """Decorate an agent's method: its calls count as ``stage`` work in the agent's ``busy``."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            with self.busy(stage):
                return method(self, *args, **kwargs)
        return wrapper
    return decorate
