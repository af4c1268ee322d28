"""One scenario seed, a tree of named random streams.

Every random draw in simweb takes a ``numpy.random.Generator`` built here from
``SeedSequence(seed, spawn_key=key)``. Keys are tuples of names and ids
(``("publish", "farms", tick)``), so a stream depends only on what it is for,
never on how many other streams were made before it or in which process.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

__all__ = ["stream", "key_int"]


def key_int(part: int | str) -> int:
    """Map one key part to a non-negative integer; strings by a stable hash."""
    if type(part) is int and part >= 0:  # the usual part (a tick, an id): no further checks
        return part
    if isinstance(part, (bool, np.bool_)):
        return int(part)
    if isinstance(part, (int, np.integer)):
        if part < 0:
            raise ValueError(f"stream key parts must be >= 0, got {part}")
        return int(part)
    if isinstance(part, str):
        return _name_int(part)
    raise TypeError(f"stream key parts are ints or strings, got {type(part).__name__}")


def stream(seed: int, *key: int | str) -> np.random.Generator:
    """The generator for the stream named ``key`` under scenario ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key_int(k) for k in key)))


@functools.lru_cache(maxsize=4096)
def _name_int(name: str) -> int:
    """A name's stable hash. Python's hash() is salted per process; blake2b is the same everywhere.

    Memoised: a run names the same few streams ("publish", a population, a lab) every tick. The cache
    is a pure function's, so it holds no state a run could see.
    """
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
