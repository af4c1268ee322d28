"""The page store at scale: memory per page, spilling to disk, and checkpoints that list page files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import simweb
from simweb import checkpoint as ckpt
from simweb.engine import Engine
from simweb.errors import SimwebError
from tests.helpers import COLLAPSE, scenario

FRAMES = ("generations", "ticks", "crawls")


def _same(a, b):
    for name in FRAMES:
        assert getattr(a, name).equals(getattr(b, name)), name


def test_a_run_that_spills_nearly_every_page_gives_the_same_frames():
    whole = simweb.run(scenario())
    # 0.01 MB for all content: every tick but the newest lives on disk and is crawled from there
    spilled = simweb.run(scenario(COLLAPSE, "run.page_memory_mb=0.01"))
    _same(whole, spilled)
    memory = spilled.manifest["page_memory"]
    assert memory["spilled_pages"] > 0.6 * memory["pages"]
    assert memory["content_bytes"] < 0.4 * whole.manifest["page_memory"]["content_bytes"]


def test_memory_per_page_is_within_one_and_a_half_times_the_token_bytes():
    # 64-token pages of uint16 and three labs, as in scenarios/web_1m.toml, at 1/50 of its size
    sc = scenario(COLLAPSE, "language.doc_length=64", "language.vocab_size=1024", "run.ticks=4",
                  "publishers[0].initial_pages=6000", "publishers[0].pages_per_tick=6000",
                  "labs.replace.crawl_budget=2000", "labs.keep.crawl_budget=2000")
    sc = sc.model_copy(update={"labs": sc.labs + (sc.labs[0].model_copy(update={"name": "third"}),)})
    memory = simweb.run(sc).manifest["page_memory"]
    assert memory["pages"] == 30000 and memory["token_bytes"] == 30000 * 64 * 2
    held = memory["index_bytes"] + memory["replica_bytes"] + memory["content_bytes"]
    assert held / memory["token_bytes"] == pytest.approx(memory["bytes_per_token_byte"], abs=1e-3)
    assert memory["bytes_per_token_byte"] <= 1.5


def test_a_checkpoint_restores_into_another_number_of_shards(tmp_path):
    sc = scenario(COLLAPSE, "run.ticks=6")
    whole = simweb.run(sc)
    first = Engine(sc, shards=1, checkpoint_dir=tmp_path / "checkpoint")
    for _ in range(3):
        first.step()
    state = ckpt.load(tmp_path / "checkpoint")
    assert state["meta"]["tick"] == 3 and {r["shards"] for r in state["meta"]["pages"]} == {1}
    second = Engine(sc, shards=3, checkpoint_dir=tmp_path / "checkpoint")
    second.restore(state)
    _same(whole, second.run())
    # its next checkpoint lists every page in the new layout, each tick's pages split over 3 shards
    records = ckpt.load(tmp_path / "checkpoint")["meta"]["pages"]
    assert {r["shards"] for r in records} == {3}
    assert sum(r["pages"] for r in records) == whole.manifest["pages"]


def test_a_damaged_page_file_is_refused(tmp_path):
    sc = scenario(COLLAPSE, "run.ticks=3")
    Engine(sc, checkpoint_dir=tmp_path / "checkpoint").run()
    records = ckpt.load(tmp_path / "checkpoint")["meta"]["pages"]
    path = ckpt.pages_dir(tmp_path / "checkpoint") / records[-1]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SimwebError, match="page file .* is damaged"):
        ckpt.load(tmp_path / "checkpoint")
    path.unlink()
    with pytest.raises(SimwebError, match="cannot be read"):
        ckpt.load(tmp_path / "checkpoint")


def test_stage_times_cover_every_stage():
    # which stages are timed, not how long they take: a comparison of timings depends on the machine's load
    res = simweb.run(scenario())
    stages = res.manifest["stage_time_s"]
    assert set(stages) == {"publish", "crawl", "filter", "train", "evaluate", "checkpoint"}
    assert all(np.isfinite(v) and v >= 0 for v in stages.values())
    assert stages["train"] > 0 and stages["publish"] > 0  # stages that ran were timed at all


def test_page_files_carry_every_page_s_ground_truth_and_are_never_rewritten(tmp_path):
    # the driver holds no page index: each page file holds its pages' content and index rows, and a checkpoint
    # lists the files (each written once) and how many pages they hold
    import polars as pl

    sc = scenario(COLLAPSE, "run.ticks=4")
    engine = Engine(sc, checkpoint_dir=tmp_path / "checkpoint")
    engine.step()
    first = ckpt.load(tmp_path / "checkpoint")["meta"]["pages"]
    stamp = (tmp_path / "pages" / first[0]["file"]).stat().st_mtime_ns
    engine.run()
    state = ckpt.load(tmp_path / "checkpoint")
    records = state["meta"]["pages"]
    assert records[0] == first[0] and (tmp_path / "pages" / first[0]["file"]).stat().st_mtime_ns == stamp
    assert "index" not in state["arrays"] and not (tmp_path / "index").exists()
    assert state["meta"]["page_count"] == engine.n_pages == sum(r["pages"] for r in records)
    files = pl.concat([pl.read_ipc(tmp_path / "pages" / r["file"]) for r in records]).sort("page_id")
    truth = engine.pages()
    assert files["page_id"].to_list() == list(range(engine.n_pages))
    for name, values in truth.items():
        assert np.array_equal(files[name].to_numpy(), values), name
    meta = json.loads((tmp_path / "checkpoint" / "meta.json").read_text())
    meta["meta"]["page_count"] += 1
    body = json.dumps(meta).encode()
    (tmp_path / "checkpoint" / "meta.json").write_bytes(body)
    (tmp_path / "checkpoint" / "meta.sha256").write_text(hashlib.sha256(body).hexdigest())
    with pytest.raises(SimwebError, match="page_count: .* but the page files hold"):
        ckpt.load(tmp_path / "checkpoint")
