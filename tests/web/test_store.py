from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pytest

from simweb.web import PAGE_COLUMNS, ContentStore, PageIndex
from simweb.web.store import join_parts


def _cols(k, **over):
    cols = {name: np.zeros(k, dtype=dt) for name, dt in PAGE_COLUMNS.items()}
    cols.update(over)
    return cols


def test_index_appends_grows_and_replicates():
    index = PageIndex(capacity=2)
    ids = [index.append(**_cols(k, tick=np.full(k, k))) for k in (1, 2, 5)]
    assert [i.tolist() for i in ids] == [[0], [1, 2], [3, 4, 5, 6, 7]]
    assert index.column("tick").tolist() == [1, 2, 2, 5, 5, 5, 5, 5]
    frame = index.frame()
    assert frame.columns[0] == "page_id" and frame.height == 8 and set(PAGE_COLUMNS) <= set(frame.columns)
    replica = PageIndex()
    replica.extend(index.state())
    assert replica.column("tick").tolist() == index.column("tick").tolist()
    assert index.rows([3, 0])["tick"].tolist() == [5, 1]


def test_columns_are_read_only_and_missing_columns_are_refused():
    index = PageIndex()
    index.append(**_cols(2))
    with pytest.raises(ValueError):
        index.column("tick")[0] = 3
    bad = _cols(1)
    del bad["lab"]
    with pytest.raises(ValueError, match="missing"):
        index.append(**bad)


def test_content_store_fetches_by_id_in_any_order():
    store = ContentStore(width=3, dtype=np.uint16)
    store.append(0, np.array([2, 5, 9]), np.array([[2] * 3, [5] * 3, [9] * 3]))
    store.append(1, np.array([11]), np.array([[11] * 3]))
    assert store.fetch(np.array([9, 2, 11]))[:, 0].tolist() == [9, 2, 11]
    with pytest.raises(KeyError):
        store.fetch(np.array([3]))
    with pytest.raises(ValueError):
        store.append(2, np.array([4]), np.zeros((1, 3)))  # ids must keep increasing


def _filled(tmp_path, budget, ticks=6, per_tick=50, width=8):
    rng = np.random.default_rng(0)
    store = ContentStore(width=width, dtype=np.uint16, directory=tmp_path, budget=budget, name=(1, 3))
    truth = {}
    next_id = 0
    for tick in range(ticks):
        ids = np.sort(rng.choice(np.arange(next_id, next_id + 3 * per_tick), size=per_tick, replace=False))
        content = rng.integers(0, 1000, size=(per_tick, width)).astype(np.uint16)
        store.append(tick, ids, content)
        truth.update(zip(ids.tolist(), content))
        next_id += 3 * per_tick
    return store, truth


def test_content_over_budget_spills_oldest_ticks_and_is_fetched_back_from_disk(tmp_path):
    chunk_bytes = 50 * (8 * 2 + 8)  # tokens and page ids of one tick
    store, truth = _filled(tmp_path, budget=2 * chunk_bytes)
    assert store.resident_bytes <= 2 * chunk_bytes
    spilled = [c for c in store.chunks if c.content is None]
    assert [c.tick for c in spilled] == [0, 1, 2, 3]  # the oldest first
    assert (tmp_path / "tick=00000" / "shard=0001-of-0003.arrow").is_file()
    ids = np.array(sorted(truth))[::7][::-1]  # spilled and resident pages, in any order
    assert np.array_equal(store.fetch(ids), np.stack([truth[i] for i in ids.tolist()]))


def test_flush_writes_each_chunk_once_and_another_store_adopts_the_files(tmp_path):
    store, truth = _filled(tmp_path, budget=None)
    records = store.flush()
    assert len(records) == 6 and all(store.chunks[k].content is not None for k in range(6))  # still resident
    stamps = {r["file"]: (tmp_path / r["file"]).stat().st_mtime_ns for r in records}
    assert store.flush() == records
    assert {r["file"]: (tmp_path / r["file"]).stat().st_mtime_ns for r in records} == stamps
    for r in records:
        assert hashlib.sha256((tmp_path / r["file"]).read_bytes()).hexdigest() == r["sha256"]
    other = ContentStore(width=8, dtype=np.uint16, directory=tmp_path, name=(1, 3))
    other.adopt(records)
    ids = np.array(sorted(truth))
    assert other.resident_bytes == 0 and np.array_equal(other.fetch(ids), store.fetch(ids))


def test_page_files_are_plain_arrow_that_polars_reads(tmp_path):
    store, truth = _filled(tmp_path, budget=None, ticks=2)
    store.flush()
    frame = pl.read_ipc(tmp_path / "tick=00001" / "shard=0001-of-0003.arrow")
    first = frame.row(0, named=True)
    assert frame.columns == ["page_id", "content"]
    assert list(first["content"]) == truth[first["page_id"]].tolist()


def test_a_budget_without_a_directory_is_refused():
    with pytest.raises(ValueError, match="directory"):
        ContentStore(width=2, dtype=np.uint16, budget=10)


def test_an_index_sized_by_its_hint_never_grows_and_a_replica_keeps_only_its_columns():
    index = PageIndex(capacity=8)
    index.append(**_cols(8))
    assert index.nbytes == 8 * sum(dt.itemsize for dt in PAGE_COLUMNS.values())
    replica = PageIndex(capacity=8, columns=("site_id",))
    replica.extend(index.state())
    assert replica.nbytes == 8 * 4 and len(replica) == 8


def test_join_parts_puts_shard_parts_back_in_id_order():
    ids = np.array([1, 4, 6, 9])
    parts = [(np.array([4, 9]), np.array([[40], [90]])), (np.array([1, 6]), np.array([[10], [60]]))]
    assert join_parts(ids, parts, 1, np.int64).ravel().tolist() == [10, 40, 60, 90]
    with pytest.raises(RuntimeError):
        join_parts(np.array([1, 4]), parts, 1, np.int64)


def test_metadata_per_page_is_small_beside_the_tokens():
    meta = sum(np.dtype(dt).itemsize for dt in PAGE_COLUMNS.values())
    assert meta < 0.5 * 64 * 2  # under half of a 64-token page's 128 bytes of uint16 tokens
