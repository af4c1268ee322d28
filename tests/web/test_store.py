from __future__ import annotations

import numpy as np
import pytest

from simweb.web import PAGE_COLUMNS, ContentStore, PageIndex


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
    store = ContentStore(width=3, dtype=np.uint16, capacity=1)
    store.append(np.array([2, 5, 9]), np.array([[2] * 3, [5] * 3, [9] * 3]))
    store.append(np.array([11]), np.array([[11] * 3]))
    assert store.fetch(np.array([9, 2, 11]))[:, 0].tolist() == [9, 2, 11]
    with pytest.raises(KeyError):
        store.fetch(np.array([3]))
    with pytest.raises(ValueError):
        store.append(np.array([4]), np.zeros((1, 3)))  # ids must keep increasing


def test_metadata_per_page_is_small_beside_the_tokens():
    meta = sum(np.dtype(dt).itemsize for dt in PAGE_COLUMNS.values())
    assert meta < 0.5 * 64 * 2  # under half of a 64-token page's 128 bytes of uint16 tokens
