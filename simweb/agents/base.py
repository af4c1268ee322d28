"""What every agent has: a tally of its seconds of work per stage (:mod:`simweb.timing`)."""

from __future__ import annotations

from simweb.timing import Busy

__all__ = ["Agent"]


class Agent:
    busy: Busy

    def busy_seconds(self) -> dict[str, float]:
        return dict(self.busy.seconds)
