"""A truth that moves: random walks of a language's parameters, one step per tick.

Each tick's step is drawn from its own named stream ``("drift", tick)``, so turning drift on changes no
other draw of the run, and any process rebuilds the same path from the seed alone. The truth at tick t is
exact: ``language.at(t)`` is the language of tick t, a cached object, and the very same object as
``language`` when nothing drifts (so a stationary run does exactly what it did before drift existed).
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs

__all__ = ["GaussianWalk", "Births", "event_multiplier"]


class GaussianWalk:
    """Cumulative sums τ·(z_1 + … + z_t) of independent standard normal steps z_s of ``size`` numbers each.

    The offset of tick 0 is zero: the truth of tick 0 is the configured one. A step's variance per tick and
    per number is τ², so after t ticks a coordinate has moved by N(0, t·τ²).
    """

    def __init__(self, seed: int, size: int, sd: float, *, name: str = "mean"):
        self.seed, self.size, self.sd, self.name = seed, int(size), float(sd), name
        self._offsets = [np.zeros(self.size)]  # tick → offset, grown on demand

    def offset(self, tick: int) -> np.ndarray:
        if tick < 0:
            raise ValueError(f"the truth has no tick {tick}")
        while len(self._offsets) <= tick:
            t = len(self._offsets)
            step = rngs.stream(self.seed, "drift", self.name, t).standard_normal(self.size)
            self._offsets.append(self._offsets[-1] + self.sd * step)
        return self._offsets[tick]


class Births:
    """New topics born at a Poisson rate: N_t ~ Poisson(rate) of them at each tick t >= 1, from the stream
    ``("drift", "births", t)``, in order, until ``capacity`` topics are born (then none: the reserved part of the
    vocabulary is used up; the scenario check makes that unlikely, see README). Over ticks 1..t the count is
    Poisson(rate · t) as long as the capacity is not reached."""

    def __init__(self, seed: int, rate: float, capacity: int):
        self.seed, self.rate, self.capacity = seed, float(rate), int(capacity)
        self._born_by = [0]  # tick → topics born at or before it, grown on demand

    def born_by(self, tick: int) -> int:
        if tick < 0:
            raise ValueError(f"the truth has no tick {tick}")
        while len(self._born_by) <= tick:
            t = len(self._born_by)
            n = int(rngs.stream(self.seed, "drift", "births", t).poisson(self.rate)) if self.rate > 0 else 0
            self._born_by.append(min(self.capacity, self._born_by[-1] + n))
        return self._born_by[tick]

    def birth_ticks(self, tick: int) -> np.ndarray:
        """The tick each topic born by ``tick`` was born, in birth order (int64, length ``born_by(tick)``)."""
        self.born_by(tick)
        counts = np.diff(np.asarray(self._born_by[:tick + 1]))
        return np.repeat(np.arange(1, tick + 1), counts)


def event_multiplier(events, half_life: float, tick: int, topics: int) -> np.ndarray:
    """Each topic's popularity multiplier at ``tick`` from scheduled events: an event (tick e, topic k, surge s)
    multiplies topic k's weight by 1 + (s − 1) · 2^(−(tick − e) / half_life) from tick e on (s at tick e, back
    towards 1 with that half-life), and 1 before; events on one topic multiply."""
    m = np.ones(topics)
    for event in events:
        if tick >= event.tick:
            m[event.topic] *= 1.0 + (event.surge - 1.0) * 2.0 ** (-(tick - event.tick) / half_life)
    return m
