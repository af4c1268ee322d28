"""One scenario seed, a tree of named random streams.

Every random draw in simweb takes a ``numpy.random.Generator`` built here from
``SeedSequence(seed, spawn_key=key)``. Keys are tuples of names and ids
(``("publish", "farms", tick)``), so a stream depends only on what it is for,
never on how many other streams were made before it or in which process.

:func:`streams` makes many streams at once, the same generators as :func:`stream` gives one by one: it runs
numpy's ``SeedSequence`` hashing over all their keys together (a writer needs a stream per site block, and
one ``SeedSequence`` costs more than drawing a block's noise).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from numpy.random.bit_generator import ISeedSequence

__all__ = ["stream", "streams", "key_int"]


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


FEW_KEYS = 2  # up to this many, streams() makes each with numpy's SeedSequence: faster than the vectorised pass


def streams(seed: int, keys) -> list[np.random.Generator]:
    """``[stream(seed, *key) for key in keys]``, bit for bit, at a fraction of the cost.

    The state of each generator is :class:`numpy.random.SeedSequence`'s (numpy's ``bit_generator.pyx``:
    ``mix_entropy`` over the assembled entropy, then ``generate_state(4, uint64)``, which PCG64 seeds from),
    computed for every key at once with uint32 arrays: its hash constants depend only on the position of a
    word, never on its value, so keys with as many entropy words go through one vectorised pass.
    ``tests/test_rng.py`` compares the two on random keys and seeds. A few keys go one by one: the vectorised
    pass costs ~150 µs whatever the count, numpy's own SeedSequence ~50 µs a key.
    """
    keys = list(keys)
    run = _seed_words(seed)  # checks the seed as the vectorised pass would
    if len(keys) <= FEW_KEYS:
        return [stream(seed, *key) for key in keys]
    entropy = [_entropy(run, key) for key in keys]
    state = np.empty((len(entropy), 8), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for i, words in enumerate(entropy):
        by_length.setdefault(len(words), []).append(i)
    for rows in by_length.values():
        state[rows] = _seed_state(np.array([entropy[i] for i in rows], dtype=np.uint32).T)
    state64 = state.astype("<u4").view("<u8").astype(np.uint64)  # as generate_state returns uint64 words
    return [np.random.Generator(np.random.PCG64(_Hashed(row))) for row in state64]


# numpy's SeedSequence constants (bit_generator.pyx), for a pool of 4 uint32 words
_POOL, _INIT_A, _MULT_A, _INIT_B, _MULT_B = 4, 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _MASK = np.uint32(0xCA01F9DD), np.uint32(0x4973F715), 0xFFFFFFFF


def _words(n: int) -> list[int]:
    """An int as SeedSequence reads it: uint32 words, lowest first; 0 is one word."""
    out = [n & _MASK]
    while n > _MASK:
        n >>= 32
        out.append(n & _MASK)
    return out


def _seed_words(seed: int) -> list[int]:
    """The seed as SeedSequence reads it (refused where SeedSequence refuses it)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"a seed is an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"a seed must be >= 0, got {seed}")
    return _words(int(seed))


def _entropy(run: list[int], key) -> list[int]:
    """SeedSequence(seed, spawn_key=key)'s assembled entropy, from the seed's words ``run``: those, padded to the
    pool's size when there is a key, then the key's."""
    spawn = [w for part in key for w in _words(key_int(part))]
    if spawn and len(run) < _POOL:
        run = run + [0] * (_POOL - len(run))
    return run + spawn


@functools.lru_cache(maxsize=64)
def _powers(init: int, mult: int, n: int) -> np.ndarray:
    """init, init·mult, init·mult², … (mod 2³²): n + 1 hash constants, as a column of uint32."""
    out, h = [], init
    for _ in range(n + 1):
        out.append(h)
        h = (h * mult) & _MASK
    column = np.array(out, dtype=np.uint32)[:, None]
    column.flags.writeable = False  # memoised: shared by every call
    return column


def _seed_state(entropy: np.ndarray) -> np.ndarray:
    """``generate_state(8, uint32)`` of the SeedSequences whose assembled entropy are the columns of ``entropy``
    (words × keys, every key as many words); returns (keys, 8).

    SeedSequence's k-th hashmix xors its value with the k-th constant and multiplies by the next; its order is
    fixed: the pool's four words, then each word into the three others, then each remaining entropy word into
    all four. Within one of those steps the mixes are independent, so each step is one array operation.
    """
    length, keys = entropy.shape
    extra = max(0, length - _POOL)
    a = _powers(_INIT_A, _MULT_A, _POOL + _POOL * (_POOL - 1) + _POOL * extra)
    shift = np.uint32(16)

    def hashmix(value, k0, k1):  # hashmix calls k0 … k1 − 1, one per row (a row of keys is broadcast)
        value = (value ^ a[k0:k1]) * a[k0 + 1:k1 + 1]
        return value ^ (value >> shift)

    def mix(x, y):
        r = _MIX_L * x - _MIX_R * y
        return r ^ (r >> shift)

    first = np.zeros((_POOL, keys), dtype=np.uint32)
    first[:min(length, _POOL)] = entropy[:_POOL]
    pool = hashmix(first, 0, _POOL)
    k = _POOL
    for src in range(_POOL):
        dst = [d for d in range(_POOL) if d != src]
        pool[dst] = mix(pool[dst], hashmix(pool[src], k, k + len(dst)))
        k += len(dst)
    for src in range(_POOL, length):
        pool = mix(pool, hashmix(entropy[src], k, k + _POOL))
        k += _POOL
    b = _powers(_INIT_B, _MULT_B, 2 * _POOL)
    out = (np.concatenate([pool, pool]) ^ b[:-1]) * b[1:]
    return (out ^ (out >> shift)).T


class _Hashed(ISeedSequence):
    """A seed sequence whose state :func:`streams` computed: all PCG64 asks of it is ``generate_state(4, uint64)``.
    (A generator built on it cannot ``spawn``; :func:`streams`' callers only draw.)"""

    def __init__(self, state: np.ndarray):
        self._state = state

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words != 4 or np.dtype(dtype) != np.uint64:
            raise ValueError(f"a precomputed seed has 4 uint64 words, asked for {n_words} {np.dtype(dtype)}")
        return self._state.copy()


@functools.lru_cache(maxsize=4096)
def _name_int(name: str) -> int:
    """A name's stable hash. Python's hash() is salted per process; blake2b is the same everywhere.

    Memoised: a run names the same few streams ("publish", a population, a lab) every tick. The cache
    is a pure function's, so it holds no state a run could see.
    """
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
