"""A truth that moves: random walks of a language's parameters, one step per tick.

Each tick's step is drawn from its own named stream ``("drift", tick)``, so turning drift on changes no
other draw of the run, and any process rebuilds the same path from the seed alone. The truth at tick t is
exact: ``language.at(t)`` is the language of tick t, a cached object, and the very same object as
``language`` when nothing drifts (so a stationary run does exactly what it did before drift existed).
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs

__all__ = ["GaussianWalk"]


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
