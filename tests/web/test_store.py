from __future__ import annotations

import numpy as np
import pytest

from simweb.web import PAGE_COLUMNS, PageStore


def _cols(k, **over):
    cols = {name: np.zeros(k, dtype=dt) for name, dt in PAGE_COLUMNS.items()}
    cols.update(over)
    return cols


def test_append_grows_and_keeps_rows():
    store = PageStore(width=3, dtype=np.uint16, capacity=2)
    ids = [store.append(np.full((k, 3), k), **_cols(k, tick=np.full(k, k))) for k in (1, 2, 5)]
    assert [i.tolist() for i in ids] == [[0], [1, 2], [3, 4, 5, 6, 7]]
    assert len(store) == 8
    assert store.column("tick").tolist() == [1, 2, 2, 5, 5, 5, 5, 5]
    assert store.content([0, 2, 7]).tolist() == [[1] * 3, [2] * 3, [5] * 3]
    frame = store.frame()
    assert frame.columns[0] == "page_id" and frame.height == 8 and set(PAGE_COLUMNS) <= set(frame.columns)


def test_columns_are_read_only_views_and_missing_columns_are_refused():
    store = PageStore(width=1, dtype=np.int32)
    store.append(np.zeros((2, 1)), **_cols(2))
    with pytest.raises(ValueError):
        store.column("tick")[0] = 3
    bad = _cols(1)
    del bad["lab"]
    with pytest.raises(ValueError, match="missing"):
        store.append(np.zeros((1, 1)), **bad)


def test_memory_per_page_is_close_to_the_raw_tokens():
    store = PageStore(width=64, dtype=np.uint16, capacity=1)
    n = 10_000
    store.append(np.zeros((n, 64)), **_cols(n))
    meta = sum(np.dtype(dt).itemsize for dt in PAGE_COLUMNS.values())
    assert meta < 0.5 * 64 * 2  # metadata per page is under half the 128 token bytes
