"""Named random streams: the same key gives the same draws in any process, another key other draws."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from simweb.rng import key_int, stream, streams

KEYS = [("publish", "farms", 3), ("write", "farms", 3, 0), ("fit", "lab", 0), ("fit", "lab", 1), ("fit", "lab2", 0),
        ("lab", "fit", 0), ("fit",), ("fit", 0), ("3",), (3,), ()]


def _draws(seed: int, *key) -> list[int]:
    return stream(seed, *key).integers(0, 2**62, size=4).tolist()


def test_a_stream_is_the_same_in_another_process_whatever_its_hash_seed():
    # Python's str hash is salted per process (PYTHONHASHSEED); a stream keyed by names must not be
    here = {repr(k): _draws(11, *k) for k in KEYS}
    code = ("import json; from tests.test_rng import KEYS, _draws; "
            "print(json.dumps({repr(k): _draws(11, *k) for k in KEYS}))")
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert json.loads(out.stdout) == here, f"PYTHONHASHSEED={hash_seed}"


def test_distinct_keys_and_seeds_give_distinct_streams():
    # 4 draws of 62 bits: two independent streams agree on all of them with probability 2^-248
    firsts = {repr(k): tuple(_draws(11, *k)) for k in KEYS}
    for (a, da), (b, db) in itertools.combinations(firsts.items(), 2):
        assert da != db, f"keys {a} and {b} give the same stream"
    assert _draws(11, "fit", "lab", 0) != _draws(12, "fit", "lab", 0)


def test_the_same_key_twice_gives_the_same_draws():
    assert _draws(5, "fit", "lab", 7) == _draws(5, "fit", "lab", 7)


def test_a_string_part_and_the_int_it_spells_are_different_names():
    assert key_int("3") != 3
    assert _draws(0, "3") != _draws(0, 3)


def test_numpy_integers_and_bools_name_the_same_stream_as_python_ints():
    # ticks and generations often arrive as numpy scalars: they must not start a new stream
    assert _draws(0, "tick", np.int64(4)) == _draws(0, "tick", 4)
    assert _draws(0, "tick", np.uint16(4)) == _draws(0, "tick", 4)
    assert key_int(True) == 1 and key_int(False) == 0 and key_int(np.bool_(True)) == 1
    assert _draws(0, "flag", True) == _draws(0, "flag", 1)


def test_string_hash_is_stable_and_spread():
    # a stable 64-bit hash: the same value every call, different for near-identical names
    assert key_int("lab") == key_int("lab")
    names = [f"lab{i}" for i in range(1000)]
    assert len({key_int(n) for n in names}) == 1000
    assert all(0 <= key_int(n) < 2**64 for n in names)


@pytest.mark.parametrize("part", [-1, np.int64(-5)])
def test_a_negative_key_part_is_refused_by_name(part):
    with pytest.raises(ValueError, match=f"must be >= 0, got {int(part)}"):
        stream(0, "fit", part)


@pytest.mark.parametrize("part", [1.0, None, b"lab", ("a",)])
def test_a_key_part_that_is_neither_int_nor_string_is_refused(part):
    with pytest.raises(TypeError, match=type(part).__name__):
        stream(0, part)


def _random_keys(rng: np.random.Generator, n: int) -> list[tuple]:
    """Keys of 0 to 6 parts: names (one of them empty, one long), numpy and Python ints of 1 to 62 bits."""
    names = ["write", "farms", "newsrooms", "x" * 40, ""]
    keys = []
    for _ in range(n):
        key = []
        for _ in range(int(rng.integers(0, 7))):
            if rng.random() < 0.4:
                key.append(str(rng.choice(names)))
            elif rng.random() < 0.1:  # a bool, or a part of 64 to 130 bits
                key.append(bool(rng.random() < 0.5) if rng.random() < 0.5 else
                           int(rng.integers(0, 2**62)) << int(rng.integers(2, 69)))
            else:
                part = int(rng.integers(0, 2**62)) >> int(rng.integers(0, 62))
                key.append(np.int64(part) if rng.random() < 0.2 else part)
        keys.append(tuple(key))
    return keys


@pytest.mark.parametrize("seed", [0, 1, 7, 2**32 - 1, 2**32, 2**64 + 3, 2**130 + 17])
def test_streams_made_together_are_the_streams_made_one_by_one(seed):
    # streams() reimplements SeedSequence's hashing over arrays: every generator state must be numpy's own,
    # for seeds of one to five words and keys of any length (grouped by length inside)
    keys = _random_keys(np.random.default_rng(seed % 1000), 400) + [(), ("write", "farms", 3, 0)]
    for few in (keys, keys[:1], keys[-2:]):  # a few keys go one by one (FEW_KEYS), more through the pass
        for key, got in zip(few, streams(seed, few), strict=True):
            assert got.bit_generator.state == stream(seed, *key).bit_generator.state, f"seed {seed}, key {key}"
    assert streams(seed, []) == []


def test_a_stream_made_together_draws_what_the_one_made_alone_draws():
    together = streams(3, [("write", "farms", 5, b) for b in range(3)])
    assert [g.random(5).tolist() for g in together] == [stream(3, "write", "farms", 5, b).random(5).tolist()
                                                       for b in range(3)]


def test_streams_refuse_what_stream_refuses():
    with pytest.raises(ValueError, match="must be >= 0, got -2"):
        streams(0, [("fit", 1), ("fit", -2)])
    with pytest.raises(ValueError, match="must be >= 0, got -1"):
        streams(-1, [("fit",)])
    with pytest.raises(TypeError, match="float"):
        streams(0, [("fit", 1.0)])
    with pytest.raises(TypeError, match="a seed is an int, got float"):
        streams(1.5, [("fit",)])
