"""Checkpoints on disk: arrays and JSON come back exactly; a foreign, damaged or unreadable one is refused by name."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from simweb import checkpoint as ckpt
from simweb.errors import SimwebError


def _arrays() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        "driver": {"tick": np.array(7), "released": np.array([2, -1], dtype=np.int16)},
        "shard/0": {"content": rng.integers(0, 2**16, size=(50, 32)).astype(np.uint16),
                    "origin": (rng.random(50) < 0.3).astype(np.int8)},
        "trainer/lab": {"pool_content": np.empty((0, 32), dtype=np.uint16), "mask": rng.random(9) < 0.5,
                        "state.var": np.array([0.5, np.nan, np.inf, -0.0]), "probs": rng.random((3, 4)).astype(np.float32),
                        "names": np.array(["a", "bé"])},
    }


def _meta(tick: int = 7) -> dict:
    """The smallest meta a checkpoint must hold (the engine's keys)."""
    return {"tick": tick, "run_id": "abc123", "pages": [], "page_count": 0, "states": [], "registry": {}}


def _save(directory, arrays=None, meta=None, rows=None):
    ckpt.save(directory, {"meta": meta if meta is not None else _meta(),
                          "rows": rows if rows is not None else {"generations": [{"lab": "a", "generation": 0}]},
                          "arrays": arrays if arrays is not None else _arrays()}, durable=False)


def test_arrays_meta_and_rows_come_back_exactly(tmp_path):
    arrays = _arrays()
    _save(tmp_path / "checkpoint", arrays)
    back = ckpt.load(tmp_path / "checkpoint")
    assert back["meta"] == _meta()
    assert back["rows"] == {"generations": [{"lab": "a", "generation": 0}]}
    assert set(back["arrays"]) == set(arrays)
    for group, want in arrays.items():
        got = back["arrays"][group]
        assert set(got) == set(want), group
        for name, a in want.items():
            b = got[name]
            assert b.dtype == a.dtype and b.shape == a.shape, f"{group}/{name}: {b.dtype}{b.shape} vs {a.dtype}{a.shape}"
            # byte equality: nan, inf and -0.0 must survive too
            assert b.tobytes() == a.tobytes(), f"{group}/{name}"
    assert ckpt.exists(tmp_path / "checkpoint")


def test_a_second_save_replaces_the_first_and_leaves_no_temporary_files(tmp_path):
    _save(tmp_path / "checkpoint", meta=_meta(1))
    _save(tmp_path / "checkpoint", {"driver": {"tick": np.array(2)}}, meta=_meta(2))
    back = ckpt.load(tmp_path / "checkpoint")
    assert back["meta"] == _meta(2) and set(back["arrays"]) == {"driver"}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def _edit_meta(directory, edit):
    """Edit meta.json and sign it again (meta.sha256), as a forger would: the checks behind the checksum must hold."""
    import hashlib

    path = directory / "meta.json"
    body = json.dumps(edit(json.loads(path.read_text()))).encode()
    path.write_bytes(body)
    (directory / "meta.sha256").write_text(hashlib.sha256(body).hexdigest() + "\n")


@pytest.mark.parametrize("schema", [ckpt.SCHEMA + 1, 3, None, "6", True])
def test_a_checkpoint_of_another_schema_version_is_refused_naming_both(tmp_path, schema):
    _save(tmp_path / "checkpoint")
    _edit_meta(tmp_path / "checkpoint", lambda m: {**m, "schema": schema})
    shown = re.escape("?" if schema is None else str(schema))  # an absent or null schema is shown as "?"
    with pytest.raises(SimwebError, match=f"has schema {shown}, this simweb reads schema {ckpt.SCHEMA}$"):
        ckpt.load(tmp_path / "checkpoint")


@pytest.mark.parametrize("schema", [4, 5])
def test_a_checkpoint_of_an_earlier_simweb_is_refused_saying_why(tmp_path, schema):
    """Schema 6 changed no file, but the shards plan their pages from other streams: a run checkpointed before
    would go on as another web, so it is refused, not resumed into a mixture."""
    _save(tmp_path / "checkpoint")
    _edit_meta(tmp_path / "checkpoint", lambda m: {**m, "schema": schema})
    with pytest.raises(SimwebError, match=f"has schema {schema}, this simweb reads schema 6: it was written by an "
                                          "earlier simweb.*run it again from the start"):
        ckpt.load(tmp_path / "checkpoint")


def test_a_checkpoint_without_a_schema_version_is_refused(tmp_path):
    _save(tmp_path / "checkpoint")
    _edit_meta(tmp_path / "checkpoint", lambda m: {k: v for k, v in m.items() if k != "schema"})
    with pytest.raises(SimwebError, match="schema"):
        ckpt.load(tmp_path / "checkpoint")


@pytest.mark.parametrize("text", ["", "{", '{"schema": 2, "meta": ', "\x00\xff", "[2]", "null", "2"])
def test_a_meta_json_that_is_not_a_checkpoint_is_refused_with_a_simweb_error(tmp_path, text):
    _save(tmp_path / "checkpoint")
    (tmp_path / "checkpoint" / "meta.json").write_text(text, encoding="latin-1")
    with pytest.raises(SimwebError, match="checkpoint"):
        ckpt.load(tmp_path / "checkpoint")


@pytest.mark.parametrize("missing", ["files", "meta", "rows"])
def test_a_meta_json_of_the_right_schema_missing_a_field_is_refused(tmp_path, missing):
    _save(tmp_path / "checkpoint")
    _edit_meta(tmp_path / "checkpoint", lambda m: {k: v for k, v in m.items() if k != missing})
    with pytest.raises(SimwebError, match="checkpoint"):
        ckpt.load(tmp_path / "checkpoint")


def test_a_missing_checkpoint_is_refused(tmp_path):
    assert not ckpt.exists(tmp_path / "nothing")
    with pytest.raises(SimwebError, match="cannot be read"):
        ckpt.load(tmp_path / "nothing")


def test_a_flipped_byte_or_a_missing_array_file_is_refused_naming_the_file(tmp_path):
    _save(tmp_path / "checkpoint")
    path = tmp_path / "checkpoint" / "shard__0.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SimwebError, match=r"shard__0\.npz is damaged"):
        ckpt.load(tmp_path / "checkpoint")
    path.unlink()
    with pytest.raises(SimwebError, match=r"shard__0\.npz cannot be read"):
        ckpt.load(tmp_path / "checkpoint")
