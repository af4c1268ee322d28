"""A checkpoint is data from disk: every byte checked, every malformation one line, no read outside the run.

Most cases forge meta.sha256 after the edit, as someone who knows the format would, so that the checks behind
the checksum are the ones tested.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import simweb
from simweb import checkpoint
from simweb.errors import SimwebError
from simweb.recorder import partial_dir
from tests.helpers import COLLAPSE, scenario


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    simweb.run(scenario(COLLAPSE, "run.ticks=3"), out=out)
    return out


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A copy of a finished run laid out as an interrupted one (``.run.partial``), which resume continues."""
    partial = partial_dir(tmp_path / "run")
    shutil.copytree(finished, partial)
    return partial


def _meta(run: Path) -> dict:
    return json.loads((run / "checkpoint" / "meta.json").read_text())


def _forge(run: Path, edit) -> None:
    """Edit meta.json and write the checksum that matches the edit."""
    meta = _meta(run)
    edit(meta)
    body = json.dumps(meta).encode()
    (run / "checkpoint" / "meta.json").write_bytes(body)
    (run / "checkpoint" / "meta.sha256").write_text(hashlib.sha256(body).hexdigest() + "\n")


def _refused(run: Path, *words: str) -> str:
    with pytest.raises(SimwebError) as info:
        checkpoint.load(run / "checkpoint")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"checkpoint {str(run / 'checkpoint')!r}"), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def test_the_untouched_checkpoint_loads(run):
    state = checkpoint.load(run / "checkpoint")
    assert state["meta"]["tick"] == 3 and (run / "checkpoint" / "meta.sha256").is_file()


def test_editing_a_recorded_row_is_refused_through_the_cli(run):
    meta_path = run / "checkpoint" / "meta.json"
    text = meta_path.read_text()
    meta = json.loads(text)
    meta["rows"]["generations"][1]["human_nll"] += 1.0  # what a careless or hostile edit would do
    meta_path.write_text(json.dumps(meta))
    _refused(run, "meta.json is damaged (checksum mismatch with meta.sha256)")
    result = subprocess.run([sys.executable, "-m", "simweb", "resume", str(run.parent / "run")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "checksum mismatch" in result.stderr
    assert not (run.parent / "run").exists()


@pytest.mark.parametrize("key, value", [("tick", 2), ("run_id", "000000000000"), ("registry", {"0": 0})])
def test_editing_any_value_of_meta_is_refused(run, key, value):
    meta = _meta(run)
    meta["meta"][key] = value
    (run / "checkpoint" / "meta.json").write_text(json.dumps(meta))
    _refused(run, "checksum mismatch")


def test_a_missing_checksum_and_an_older_schema_are_refused(run):
    (run / "checkpoint" / "meta.sha256").unlink()
    _refused(run, "meta.sha256 cannot be read")
    _forge(run, lambda m: m.update(schema=2))
    _refused(run, "has schema 2, this simweb reads schema 6")


def _set(path: str, value):
    """An edit that sets ``path`` (keys and list indices, dotted) in meta.json, or deletes it for DELETE."""
    def edit(meta):
        *head, last = [int(p) if p.isdigit() and not path.startswith("meta.registry") else p for p in path.split(".")]
        node = meta
        for p in head:
            node = node[p]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return edit


DELETE = object()
MALFORMED = [
    ("files", DELETE, "expected the keys files, meta, rows, schema"),
    ("rows", [1, 2], "rows: expected a table"),
    ("rows.generations", [1], "rows.generations: expected a list of tables"),
    ("meta", [], "meta: expected a table"),
    ("meta.tick", DELETE, "meta.tick: required, but missing"),
    ("meta.tick", "3", "meta.tick: expected an integer >= 0, got '3'"),
    ("meta.tick", -1, "meta.tick: expected an integer >= 0, got -1"),
    ("meta.tick", True, "meta.tick: expected an integer >= 0, got True"),
    ("meta.run_id", 7, "meta.run_id: expected a string"),
    ("meta.registry", {"0": "x"}, "meta.registry: expected a table of lab index -> generation"),
    ("meta.registry", {"7": 0}, "lab 7's model is not among the files"),
    ("meta.pages", {}, "meta.pages: expected a list"),
    ("meta.pages.0", "x", "meta.pages[0]: expected a table"),
    ("meta.pages.0.file", "/etc/passwd", "meta.pages[0].file: '/etc/passwd' leaves the run directory"),
    ("meta.pages.0.file", "../../../outside.arrow", "leaves the run directory"),
    ("meta.pages.0.file", "tick=00000/../../x", "leaves the run directory"),
    ("meta.pages.0.sha256", "abc", "meta.pages[0].sha256: expected a SHA-256"),
    ("meta.pages.0.shard", 5, "shard 5 of 1"),
    ("meta.pages.0.hi", DELETE, "meta.pages[0].hi: required, but missing"),
    ("meta.pages.0.lo", 1.5, "meta.pages[0].lo: expected an integer >= 0, got 1.5"),
    ("meta.states", {}, "meta.states: expected a list"),
    ("meta.states.0.file", "/etc/passwd", "meta.states[0].file: '/etc/passwd' leaves the run directory"),
    ("meta.states.0.group", "graph", "meta.states[0].group: 'graph' is not a group name, or a second one"),
    ("meta.states.0.sha256", DELETE, "meta.states[0].sha256: required, but missing"),
    ("meta.page_count", -1, "meta.page_count: expected an integer >= 0, got -1"),
    ("meta.page_count", DELETE, "meta.page_count: required, but missing"),
    ("files.graph", "0" * 63, "files.graph: expected a SHA-256"),
]


@pytest.mark.parametrize("path, value, words", MALFORMED, ids=[f"{p}={v!r}"[:60] for p, v, _ in MALFORMED])
def test_a_malformed_meta_is_one_line(run, path, value, words):
    _forge(run, _set(path, value))
    _refused(run, words)


def test_a_group_name_that_would_leave_the_checkpoint_is_refused(run):
    _forge(run, lambda m: m["files"].update({"../../x": "0" * 64}))
    _refused(run, "'../../x' is not a group name")


def test_json_that_is_not_a_table_is_refused(run):
    (run / "checkpoint" / "meta.json").write_text("[1, 2]")
    with pytest.raises(SimwebError, match="has schema \\?, this simweb reads schema 6"):
        checkpoint.load(run / "checkpoint")
    (run / "checkpoint" / "meta.json").write_bytes(b"\xff\xfe not json")
    _refused(run, "meta.json cannot be read")


def _state_file(run: Path, group: str) -> tuple[Path, int]:
    """The file an agent wrote for ``group`` beside the checkpoint, and its record's place in meta.states."""
    states = _meta(run)["meta"]["states"]
    i = next(i for i, r in enumerate(states) if r["group"] == group)
    return run / "states" / states[i]["file"], i


def _replace_group(run: Path, group: str, write) -> None:
    """Write another file for ``group`` (an agent's, in states/) and forge its checksum, so only the content
    checks can refuse it."""
    path, i = _state_file(run, group)
    path.unlink()
    write(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _forge(run, lambda m: m["meta"]["states"][i].update(sha256=digest))


@pytest.mark.parametrize("what, write, words", [
    ("pickled objects", lambda p: np.savez(p, probs=np.array([{"a": 1}], dtype=object)), "cannot be read as arrays"),
    ("complex numbers", lambda p: np.savez(p, probs=np.zeros(3, dtype=complex)), "dtype complex128"),
    ("records", lambda p: np.savez(p, probs=np.zeros(3, dtype=[("a", "i4"), ("b", "f8")])), "expected numbers"),
    ("dates", lambda p: np.savez(p, probs=np.zeros(3, dtype="datetime64[s]")), "dtype datetime64"),
    ("a lone .npy", lambda p: np.save(open(p, "wb"), np.zeros(3)), "model__0.npz"),
    ("not an archive", lambda p: p.write_bytes(b"PK\x03\x04 truncated"), "cannot be read as arrays"),
])
def test_an_array_file_of_an_odd_kind_is_one_line(run, what, write, words):
    _replace_group(run, "model/0", write)
    _refused(run, words)



def test_symbolic_links_out_of_the_run_directory_are_not_followed(run, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    model, _ = _state_file(run, "model/0")
    shutil.copy(model, outside / "model__0.npz")  # same bytes, same checksum: only the place is wrong
    model.unlink()
    model.symlink_to(outside / "model__0.npz")
    opened = _spy_on_reads(monkeypatch)
    _refused(run, "model__0.npz leaves the run directory")
    assert not [p for p in opened if Path(p).resolve().is_relative_to(outside)], opened

    model.unlink()
    shutil.copy(outside / "model__0.npz", model)
    shutil.move(run / "pages", outside / "pages")
    (run / "pages").symlink_to(outside / "pages")
    opened.clear()  # the copies above were the test's own
    _refused(run, "leaves the run directory")
    assert not [p for p in opened if Path(p).resolve().is_relative_to(outside)], opened


def test_a_meta_json_linked_from_outside_is_not_read(run, tmp_path, monkeypatch):
    secret = tmp_path / "secret.json"
    shutil.move(run / "checkpoint" / "meta.json", secret)
    (run / "checkpoint" / "meta.json").symlink_to(secret)
    opened = _spy_on_reads(monkeypatch)
    _refused(run, "meta.json leaves the run directory")
    assert str(secret) not in map(str, opened)


def _spy_on_reads(monkeypatch) -> list:
    """Every path opened for reading from now on (builtins.open, Path.read_bytes, np.load)."""
    opened: list = []
    real_open, real_load, real_read = builtins.open, np.load, Path.read_bytes

    def spy_open(file, *args, **kw):
        if isinstance(file, (str, os.PathLike)):
            opened.append(os.fspath(file))
        return real_open(file, *args, **kw)

    def spy_read(self):
        opened.append(str(self))
        return real_read(self)

    def spy_load(file, *args, **kw):
        if isinstance(file, (str, os.PathLike)):
            opened.append(os.fspath(file))
        return real_load(file, *args, **kw)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(Path, "read_bytes", spy_read)
    monkeypatch.setattr(np, "load", spy_load)
    return opened


def test_a_forged_but_well_formed_checkpoint_still_resumes_to_the_same_output(run, finished):
    """The checks refuse only what is wrong: rewriting meta.json as it was (with its checksum) still resumes."""
    _forge(run, lambda m: None)
    assert simweb.resume(run.parent / "run").generations.equals(simweb.run(scenario(COLLAPSE, "run.ticks=3")).generations)


def test_a_damaged_state_file_an_agent_wrote_is_refused_by_name(run):
    path, _ = _state_file(run, "trainer/0")
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    _refused(run, "state file", "trainer__0.npz is damaged (checksum mismatch)")


@pytest.mark.parametrize("arrays, words", [
    ({"totals": np.zeros((5, 2), np.int64), "site_human": np.zeros(3, np.int64)}, "expected integers of shapes [1, 2]"),
    ({"totals": np.zeros((1, 2)), "site_human": np.zeros(3, np.int64)}, "totals float64[1, 2]"),
    ({"totals": np.zeros((1, 2), np.int64)}, "expected the arrays site_human and totals"),
])
def test_recorder_totals_that_do_not_fit_the_run_are_one_line_on_resume(run, arrays, words):
    # well-formed arrays with a forged checksum: only the restore can tell they do not fit this run
    path = run / "checkpoint" / "recorder.npz"
    np.savez(path, **arrays)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _forge(run, lambda m: m["files"].update(recorder=digest))
    with pytest.raises(SimwebError) as info:
        simweb.resume(run.parent / "run")
    assert "\n" not in str(info.value) and "recorder: " in str(info.value) and words in str(info.value), str(info.value)


# ---------------------------------------------------------------- the parts of a trainer's growing pool

def _pool_parts(run: Path) -> tuple[int, list[dict]]:
    """COLLAPSE's lab ``keep`` accumulates: its trainer's record lists the parts of its pool."""
    _, i = _state_file(run, "trainer/1")
    return i, _meta(run)["meta"]["states"][i]["parts"]


def test_the_pool_comes_back_joined_from_its_parts(run):
    _, parts = _pool_parts(run)
    assert len(parts) == 4  # tick 0's (empty), then a crawl a generation
    pool = checkpoint.load(run / "checkpoint")["arrays"]["trainer/1"]
    ids = np.concatenate([np.load(run / "states" / p["file"])["pool_ids"] for p in parts])
    assert np.array_equal(pool["pool_ids"], ids) and len(ids) == sum(p["rows"] for p in parts) > 0
    assert len(pool["pool_content"]) == len(ids) and len(np.unique(ids)) == len(ids)


def test_a_damaged_or_missing_part_is_refused_by_name(run):
    _, parts = _pool_parts(run)
    path = run / "states" / parts[1]["file"]
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    _refused(run, "state part", f"{parts[1]['file']} is damaged (checksum mismatch)")
    path.unlink()
    _refused(run, f"state part {parts[1]['file']} cannot be read")


def _replace_part(run: Path, j: int, arrays: dict) -> None:
    """Write other arrays in part ``j`` of the pool and forge its checksum: only the content checks can refuse."""
    i, parts = _pool_parts(run)
    path = run / "states" / parts[j]["file"]
    np.savez(path, **arrays)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _forge(run, lambda m: m["meta"]["states"][i]["parts"][j].update(sha256=digest))


def test_a_part_that_does_not_match_its_record_or_the_others_is_one_line(run):
    i, parts = _pool_parts(run)
    good = dict(np.load(run / "states" / parts[2]["file"]))
    _forge(run, lambda m: m["meta"]["states"][i]["parts"][2].update(rows=parts[2]["rows"] + 1))
    _refused(run, "has", "rows, the record says", str(parts[2]["rows"] + 1))
    _forge(run, lambda m: m["meta"]["states"][i]["parts"][2].update(rows=parts[2]["rows"]))
    _replace_part(run, 2, {k: v for k, v in good.items() if k != "pool_tick"})
    _refused(run, "expected", "'pool_tick'", "like the group's other parts")
    _replace_part(run, 2, {**good, "pool_content": good["pool_content"][:, :3]})
    _refused(run, "the parts of 'trainer/1' do not join")
    _replace_part(run, 2, {**good, "pool_ids": good["pool_ids"].astype(str)})
    _refused(run, "array 'pool_ids' is <U", "the first part's int64")
    _replace_part(run, 2, {**good, "pool_ids": np.array(7)})
    _refused(run, "array 'pool_ids' has no rows")


def test_a_part_listed_twice_is_refused(run):
    i, parts = _pool_parts(run)
    _forge(run, lambda m: m["meta"]["states"][i].update(parts=[*parts, parts[1]]))
    _refused(run, f"meta.states[{i}].parts: a file listed twice")


@pytest.mark.parametrize("value, words", [
    ([], "parts: expected a non-empty list"),
    ({"file": "x"}, "parts: expected a non-empty list"),
    ([{"file": "../../x.npz", "sha256": "0" * 64, "rows": 1}], "parts[0].file: '../../x.npz' leaves the run"),
    ([{"file": "parts/x.npz", "sha256": "0" * 64, "rows": -1}], "parts[0].rows: expected an integer >= 0"),
    ([{"file": "parts/x.npz", "rows": 1}], "parts[0].sha256: required, but missing"),
])
def test_a_malformed_list_of_parts_is_one_line(run, value, words):
    i, _ = _pool_parts(run)
    _forge(run, lambda m: m["meta"]["states"][i].update(parts=value))
    _refused(run, f"meta.states[{i}].", words)


def test_a_state_file_holding_what_its_parts_hold_is_refused(run):
    path, _ = _state_file(run, "trainer/1")
    main = dict(np.load(path))
    _replace_group(run, "trainer/1", lambda p: np.savez(p, **main, pool_ids=np.arange(3)))
    _refused(run, "and its parts both hold ['pool_ids']")
