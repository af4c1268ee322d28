"""An agent writes its own state to a checkpoint; the arrays that only grow go a part at a time, each row once."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from simweb import checkpoint as ckpt
from simweb.agents.base import PARTS, Agent
from simweb.agents.trainer import Trainer
from simweb.checkpointer import Checkpointer
from simweb.engine import Engine
from simweb.errors import SimwebError
from simweb.timing import Busy
from tests.helpers import COLLAPSE, scenario


class Growing(Agent):
    """A state with a scalar, and two arrays that grow together (``rows`` and ``grid``) by ``grow``."""

    def __init__(self):
        self.busy = Busy()
        self.count = np.zeros(0, dtype=np.int64)
        self.grid = np.zeros((0, 3), dtype=np.float32)

    def grow(self, k: int) -> None:
        start = len(self.count)
        self.count = np.concatenate([self.count, np.arange(start, start + k)])
        self.grid = np.concatenate([self.grid, (start + np.arange(k, dtype=np.float32))[:, None].repeat(3, axis=1)])

    def appended(self):
        return ("count", "grid")

    def state(self):
        return {"n": np.array(len(self.count)), "count": self.count, "grid": self.grid}


def _load(root, record) -> dict:
    """The agent's arrays as a checkpoint listing ``record`` gives them back."""
    ckpt.save(root / "checkpoint", {"meta": {"tick": 1, "run_id": "r", "pages": [], "page_count": 0,
                                             "states": [record], "registry": {}},
                                    "rows": {}, "arrays": {}}, durable=False)
    return ckpt.load(root / "checkpoint")["arrays"][record["group"]]


def _part_rows(root, record) -> list[int]:
    """The rows each listed part holds, read from its file (not from the record)."""
    return [len(np.load(root / "states" / p["file"])["count"]) for p in record["parts"]]


def test_each_checkpoint_writes_only_the_rows_added_since_the_last(tmp_path):
    agent, states = Growing(), tmp_path / "states"
    records = []
    for i, k in enumerate([5, 0, 7, 8]):  # nothing added before the second write: no part for it
        agent.grow(k)
        records.append(agent.write_state(states / f"00000{i}-0000000{i}", "agent/0", durable=False))
    assert [len(r["parts"]) for r in records] == [1, 1, 2, 3]
    assert _part_rows(tmp_path, records[-1]) == [5, 7, 8] == [p["rows"] for p in records[-1]["parts"]]
    # every row was written once, so the parts together hold as many rows as the state
    assert sum(_part_rows(tmp_path, records[-1])) == len(agent.count)
    main = np.load(tmp_path / "states" / records[-1]["file"])
    assert sorted(main.files) == ["n"]  # the grown arrays are only in the parts
    back = _load(tmp_path, records[-1])
    assert np.array_equal(back["count"], agent.count) and np.array_equal(back["grid"], agent.grid)
    assert int(back["n"]) == 20 and back["grid"].dtype == np.float32


def test_an_empty_state_still_writes_a_part_that_keeps_the_arrays_shapes(tmp_path):
    agent = Growing()
    record = agent.write_state(tmp_path / "states" / "000000-00000000", "agent/0", durable=False)
    back = _load(tmp_path, record)
    assert back["grid"].shape == (0, 3) and back["count"].dtype == np.int64


def test_after_a_restore_the_next_write_holds_every_row_in_one_part(tmp_path):
    agent, states = Growing(), tmp_path / "states"
    agent.grow(4)
    agent.write_state(states / "000001-00000001", "agent/0", durable=False)
    agent.grow(3)
    agent.forget_parts()  # what a restore does: the arrays come from a checkpoint, not from these parts
    record = agent.write_state(states / "000002-00000002", "agent/0", durable=False)
    assert [p["rows"] for p in record["parts"]] == [7]
    assert np.array_equal(_load(tmp_path, record)["count"], np.arange(7))


def test_arrays_that_shrank_are_written_whole_again(tmp_path):
    agent, states = Growing(), tmp_path / "states"
    agent.grow(6)
    agent.write_state(states / "000001-00000001", "agent/0", durable=False)
    agent.count, agent.grid = agent.count[:2], agent.grid[:2]
    record = agent.write_state(states / "000002-00000002", "agent/0", durable=False)
    assert [p["rows"] for p in record["parts"]] == [2]
    assert np.array_equal(_load(tmp_path, record)["count"], [0, 1])


def test_arrays_given_explicitly_are_written_whole_in_one_file(tmp_path):
    agent = Growing()
    agent.grow(3)
    record = agent.write_state(tmp_path / "states" / "000001-00000001", "model/0", {"w": np.ones(4)}, durable=False)
    assert "parts" not in record and agent._parts == ()


# ---------------------------------------------------------------- through the real loop

def _pool_rows(engine) -> list[int]:
    """The trainers' pool sizes, then the scrapers' counts of pages trained on."""
    return [len(t.pool_ids) for t in engine.fleet.trainers] + [len(s.trained) for s in engine.fleet.scrapers]


def _saves(monkeypatch, fail_at: int | None = None) -> list:
    """Record, at every checkpoint, the trainers' pool sizes and state records; make save ``fail_at`` fail
    after the agents wrote their states (the driver's commit refused, as by a full disk)."""
    seen, original = [], Checkpointer.save

    def save(self, engine):
        if fail_at is not None and len(seen) == fail_at:
            def refuse(*args, **kwargs):
                raise SimwebError("cannot write a checkpoint (the test's full disk)")
            monkeypatch.setattr(ckpt, "save", refuse)
        original(self, engine)
        meta = ckpt.load(self.directory)["meta"]
        seen.append((_pool_rows(engine), {r["group"]: r for r in meta["states"]}))
    monkeypatch.setattr(Checkpointer, "save", save)
    return seen


def test_an_accumulating_pool_is_written_once_across_checkpoints(tmp_path, monkeypatch):
    """COLLAPSE's lab ``keep`` accumulates every crawl; ``replace`` keeps the latest only (no parts)."""
    sc = scenario(COLLAPSE, "run.ticks=6")
    seen = _saves(monkeypatch)
    engine = Engine(sc, checkpoint_dir=tmp_path / "checkpoint")
    engine.run()
    assert len(seen) == 7  # tick 0's, then one a generation
    for (before, _), (now, records) in zip(seen, seen[1:]):
        assert "parts" not in records["trainer/0"]
        added = now[1] - before[1]
        assert added > 0
        # the newest part holds exactly the pool's rows added since the last checkpoint, no more; the same for
        # the ids each scraper has trained on
        assert records["trainer/1"]["parts"][-1]["rows"] == added
        for lab in (0, 1):
            assert records[f"scraper/{lab}"]["parts"][-1]["rows"] == now[2 + lab] - before[2 + lab] > 0
    records = seen[-1][1]
    files = {p["file"].split("/")[-1] for r in records.values() for p in r.get("parts", ())}
    assert {p.name for p in (tmp_path / "states" / PARTS).iterdir()} == files  # nothing else kept there
    pool = [p["file"] for p in records["trainer/1"]["parts"]]
    written = sum(len(np.load(tmp_path / "states" / f)["pool_ids"]) for f in pool)
    assert written == len(engine.fleet.trainers[1].pool_ids)
    back = ckpt.load(tmp_path / "checkpoint")["arrays"]
    for lab, scraper in enumerate(engine.fleet.scrapers):  # the ids as they came, each once
        log = back[f"scraper/{lab}"]["trained_log"]
        assert len(np.unique(log)) == len(log) and np.array_equal(np.sort(log), scraper.trained)


def test_a_checkpoint_whose_commit_failed_leaves_the_last_good_one_and_resume_gives_the_same_run(
        tmp_path, monkeypatch):
    sc = scenario(COLLAPSE, "run.ticks=6")
    whole = Engine(sc).run()
    seen = _saves(monkeypatch, fail_at=3)
    with pytest.raises(SimwebError, match="full disk"):
        Engine(sc, checkpoint_dir=tmp_path / "checkpoint").run()
    monkeypatch.undo()
    good = ckpt.load(tmp_path / "checkpoint")
    listed = {p["file"].split("/")[-1] for r in good["meta"]["states"] for p in r.get("parts", ())}
    on_disk = {p.name for p in (tmp_path / "states" / PARTS).iterdir()}
    assert listed < on_disk  # the failed attempt's part is there, and the good checkpoint does not list it
    assert len(good["arrays"]["trainer/1"]["pool_ids"]) == seen[-1][0][1]

    engine = Engine(sc, checkpoint_dir=tmp_path / "checkpoint")
    engine.restore(engine.checkpoints.load())
    resumed = engine.run()
    for name in ("generations", "ticks", "crawls"):
        assert getattr(resumed, name).equals(getattr(whole, name)), name
    final = ckpt.load(tmp_path / "checkpoint")
    listed = {p["file"].split("/")[-1] for r in final["meta"]["states"] for p in r.get("parts", ())}
    assert {p.name for p in (tmp_path / "states" / PARTS).iterdir()} == listed  # the stale parts are gone
    assert np.array_equal(final["arrays"]["trainer/1"]["pool_ids"], engine.fleet.trainers[1].pool_ids)


def test_a_file_in_the_parts_that_cannot_be_removed_fails_nothing(tmp_path):
    """Removing what no checkpoint lists is tidying: a file that will not go (here a folder where a part would be)
    stays, and the run and its checkpoints go on as if it were not there."""
    (tmp_path / "states" / PARTS / "stuck").mkdir(parents=True)
    sc = scenario(COLLAPSE, "run.ticks=3")
    engine = Engine(sc, checkpoint_dir=tmp_path / "checkpoint")
    res = engine.run()
    assert res.generations.equals(Engine(sc).run().generations)
    assert engine.checkpoints.tick == 3 and ckpt.load(tmp_path / "checkpoint")["meta"]["tick"] == 3
    assert (tmp_path / "states" / PARTS / "stuck").is_dir()
