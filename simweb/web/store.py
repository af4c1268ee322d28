"""Pages on the simulated web: a metadata index of numpy columns, and content stores beside it.

No Python object per page. A :class:`PageIndex` holds the ground truth of
pages (who wrote it, when, where) in numpy columns; page ids are numbered in
publication order, so one tick's pages are one contiguous id range. Each
publisher shard holds the index rows (with their ``page_id``) and the content
(tokens, reals) of the pages on its sites, in a :class:`ContentStore`: pages
stay where they were published, and no process holds a column over every page.

A content store keeps one chunk per tick. Chunks are immutable once written,
so each is written to disk at most once — an Arrow IPC file
``tick=T/shard=S-of-N.arrow`` (``page_id``, ``content`` and the pages' ground
truth, when the store is given its shard's index rows) under the store's
directory — when a checkpoint is taken or when the store's resident content
passes its memory budget. The directory may be on an object store (:mod:`simweb.storage`): a chunk is then one object, read
back whole. A chunk over budget is *spilled*: only its id range
stays in memory, and a crawl reads its pages back from the file. Memory per
page is therefore the token bytes plus 8 bytes of page id for resident
chunks, and nothing for spilled ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simweb import storage
from simweb.storage import atomic_write

if TYPE_CHECKING:
    import polars as pl

__all__ = ["PageIndex", "ContentStore", "Chunk", "PAGE_COLUMNS", "OPTIONAL_COLUMNS", "HUMAN", "AI", "join_parts",
           "join_rows", "page_columns"]

HUMAN, AI = 0, 1

PAGE_COLUMNS: dict[str, np.dtype] = {
    "site_id": np.dtype(np.int32),
    "tick": np.dtype(np.int32),
    "origin": np.dtype(np.int8),  # 0 human, 1 AI
    "lab": np.dtype(np.int16),  # index of the lab whose model wrote it; -1 for human pages
    "generation": np.dtype(np.int16),  # that model's generation; -1 for human pages
    "topic": np.dtype(np.int16),  # the human writer's topic; -1 for AI pages (models write without one)
    "population": np.dtype(np.int16),  # publisher population
    "watermarked": np.dtype(np.bool_),
    "c2pa": np.dtype(np.int8),  # provenance label: 0 none, 1 says human, 2 says AI
    "edited_fraction": np.dtype(np.float32),  # share of tokens rewritten by a human
    "copied_from": np.dtype(np.int64),  # page id of the original; -1 if original
}

# columns of mechanisms that are off by default: an index holds them only when it is asked to
OPTIONAL_COLUMNS: dict[str, np.dtype] = {
    "imitation": np.dtype(np.float32),  # human pages: share of tokens drawn from a model (simweb.humans)
}

PAGE_ID = {"page_id": np.dtype(np.int64)}  # a shard's index: the global id of each of its rows



def page_columns(humans: bool) -> tuple[str, ...]:
    """The ground-truth columns a run keeps of every page: all of PAGE_COLUMNS, and the optional ones when its
    humans imitate or are displaced (:mod:`simweb.humans`)."""
    return (*PAGE_COLUMNS, *(OPTIONAL_COLUMNS if humans else ()))


GROWTH = 1.5  # when the capacity hint was too small: geometric growth keeps appends amortised O(1)


def _grow(array: np.ndarray, n: int, size: int) -> np.ndarray:
    if size <= len(array):
        return array
    grown = np.empty((max(size, int(GROWTH * len(array))),) + array.shape[1:], dtype=array.dtype)
    grown[:n] = array[:n]
    return grown


class PageIndex:
    """Metadata of pages, or of the ``columns`` a replica needs: rows in publication order. Without a
    ``page_id`` column, page ids are row numbers (a replica of every page); a shard's index has one.

    ``capacity`` is a hint: a run knows how many pages its scenario publishes, so its columns are
    allocated once and never copied.
    """

    def __init__(self, capacity: int = 1024, columns=None):
        self.n = 0
        names = tuple(PAGE_COLUMNS) if columns is None else tuple(columns)
        dtypes = {**PAGE_ID, **PAGE_COLUMNS, **OPTIONAL_COLUMNS}
        self._cols = {name: np.empty(max(int(capacity), 1), dtype=dtypes[name]) for name in names}

    def __len__(self) -> int:
        return self.n

    def append(self, **columns: np.ndarray) -> np.ndarray:
        """Add pages; every column this index keeps must be given (scalars broadcast). Returns the new page ids."""
        if columns.keys() != self._cols.keys():
            missing = set(self._cols) - set(columns)
            extra = set(columns) - set(self._cols)
            raise ValueError(f"page columns: missing {sorted(missing)}, unknown {sorted(extra)}")
        columns = {name: np.asarray(v) for name, v in columns.items()}  # no copy of an array
        k = max((v.size for v in columns.values() if v.ndim > 0), default=0)
        lo, hi = self.n, self.n + k
        for name, values in columns.items():
            self._cols[name] = _grow(self._cols[name], self.n, hi)
            self._cols[name][lo:hi] = values
        self.n = hi
        return np.arange(lo, hi, dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column over all pages."""
        view = self._cols[name][: self.n]
        view.flags.writeable = False
        return view

    def rows(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """All columns of the pages ``ids`` (copies)."""
        ids = np.asarray(ids, dtype=np.int64)
        return {name: col[: self.n][ids] for name, col in self._cols.items()}

    def frame(self) -> pl.DataFrame:
        """All page metadata as a polars frame, with ``page_id`` first."""
        import polars as pl  # here only: the agents' processes never need it

        data = {"page_id": np.arange(self.n, dtype=np.int64)}
        data.update({name: col[: self.n] for name, col in self._cols.items()})
        return pl.DataFrame(data)

    def find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For an index with a ``page_id`` column: (mask of ``ids`` it holds, their row numbers)."""
        ids = np.asarray(ids, dtype=np.int64)
        held = self._cols["page_id"][: self.n]
        if self.n == 0:
            return np.zeros(len(ids), dtype=bool), np.empty(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(held, ids), self.n - 1)
        hit = held[pos] == ids
        return hit, pos[hit]

    def select(self, rows: np.ndarray, columns=None) -> dict[str, np.ndarray]:
        """The ``columns`` (default: all) of rows ``rows`` (row numbers, not page ids), copied."""
        names = self._cols if columns is None else columns
        return {name: self._cols[name][: self.n][rows] for name in names}

    def state(self, since: int = 0) -> dict[str, np.ndarray]:
        """Columns of pages ``since`` onwards (copies): a delta for a replica."""
        return {name: col[since: self.n].copy() for name, col in self._cols.items()}

    def columns(self) -> dict[str, np.ndarray]:
        """Read-only views of every column, for writing a checkpoint without copying."""
        return {name: self.column(name) for name in self._cols}

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        """Append a delta (or a whole index); columns this index does not keep are ignored."""
        if len(columns["tick"]):
            self.append(**{name: columns[name] for name in self._cols})

    @property
    def nbytes(self) -> int:
        """Bytes allocated for the columns."""
        return sum(col.nbytes for col in self._cols.values())


@dataclass
class Chunk:
    """One tick's pages in a content store: resident (``ids``, ``content``), on disk (``record``), or both."""

    tick: int
    lo: int  # first page id
    hi: int  # last page id + 1
    pages: int
    ids: np.ndarray | None = None
    content: np.ndarray | None = None
    record: dict | None = None  # the file holding it, once written

    @property
    def resident_bytes(self) -> int:
        return 0 if self.content is None else self.content.nbytes + self.ids.nbytes


class ContentStore:
    """Content rows of a set of pages (one shard's), looked up by page id; ids arrive in increasing order.

    ``directory`` is where chunks are written (None: never); ``budget`` caps the resident content in
    bytes (None: no cap), oldest chunks spilling first. ``name`` (shard, shards) names the files;
    ``durable`` fsyncs them (a temporary directory needs not). ``rows(lo, hi)``, when given, returns the
    ground-truth columns of the pages with ids in [lo, hi) that this store holds (its shard's index rows):
    a chunk's file then carries them beside the content, so a checkpoint needs no index of its own.
    """

    def __init__(self, *, width: int, dtype: np.dtype, directory: str | Path | None = None,
                 budget: int | None = None, name: tuple[int, int] = (0, 1), durable: bool = True, rows=None):
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.directory = storage.location(directory) if directory is not None else None
        self.budget = budget
        self.name = name
        self.durable = durable  # flush files to the disk before renaming them into place
        self.rows = rows
        self.chunks: list[Chunk] = []
        self._his = np.empty(0, dtype=np.int64)  # each chunk's hi, rebuilt when a chunk is added
        if budget is not None and self.directory is None:
            raise ValueError("a memory budget needs a directory to spill to")

    def __len__(self) -> int:
        return sum(c.pages for c in self.chunks)

    @property
    def resident_bytes(self) -> int:
        return sum(c.resident_bytes for c in self.chunks)

    def append(self, tick: int, ids: np.ndarray, content: np.ndarray) -> None:
        """Add one tick's pages (ids increasing, above every id held)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        if self.chunks and ids[0] < self.chunks[-1].hi or np.any(ids[1:] <= ids[:-1]):
            raise ValueError("content must be appended in increasing page-id order")
        content = np.ascontiguousarray(content, dtype=self.dtype).reshape(len(ids), self.width)
        self.chunks.append(Chunk(int(tick), int(ids[0]), int(ids[-1]) + 1, len(ids), ids, content))
        self._keep_budget()

    def fetch(self, ids: np.ndarray) -> np.ndarray:
        """Content of ``ids`` in the order given; every id must be held here."""
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        wanted = ids[order]
        out = np.empty((len(ids), self.width), dtype=self.dtype)
        found = np.zeros(len(ids), dtype=bool)
        if len(self._his) != len(self.chunks):  # chunks are only ever added
            added = [c.hi for c in self.chunks[len(self._his):]]
            self._his = np.concatenate([self._his, np.array(added, dtype=np.int64)])
        where = np.searchsorted(self._his, wanted, side="right")  # the chunk whose range may hold each id
        # wanted is sorted, so each chunk's ids are one run of it: O(ids), whatever the number of chunks
        starts = np.flatnonzero(np.concatenate(([True], where[1:] != where[:-1]))) if len(where) else where
        for lo, hi in zip(starts.tolist(), starts[1:].tolist() + [len(where)]):
            k = int(where[lo])
            if k >= len(self.chunks):  # past every chunk: not held
                continue
            chunk, sel = self.chunks[k], np.arange(lo, hi)
            if chunk.content is not None:
                hit, rows = _lookup(chunk.ids, chunk.content, wanted[sel])
            else:
                hit, rows = self._read(chunk.record, wanted[sel])
            out[order[sel[hit]]] = rows
            found[order[sel[hit]]] = True
        if not found.all():
            missing = ids[~found]
            raise KeyError(f"{len(missing)} pages are not in this store (first: {missing[0]})")
        return out

    # ------------------------------------------------------------ disk
    def flush(self) -> list[dict]:
        """Write every chunk not yet on disk; returns the records of all chunks (for a checkpoint)."""
        for chunk in self.chunks:
            if chunk.record is None:
                chunk.record = self._write(chunk)
        return [c.record for c in self.chunks]

    def adopt(self, records: list[dict]) -> None:
        """Take over chunks already on disk (this store's own layout), spilled until read."""
        for rec in sorted(records, key=lambda r: r["lo"]):
            self.chunks.append(Chunk(rec["tick"], rec["lo"], rec["hi"], rec["pages"], record=rec))

    def read(self, record: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(ids, content, ground-truth columns) of one written chunk (any store's, in the same directory)."""
        return self._read(record, columns=True)

    def read_rows(self, record: dict) -> dict[str, np.ndarray]:
        """The ground-truth columns of one written chunk, ``page_id`` included, without its content."""
        with storage.open_arrow(self.directory / record["file"]) as source:
            table = storage.read_arrow(source)
            return {name: table.column(name).to_numpy().copy() for name in table.column_names if name != "content"}

    def _keep_budget(self) -> None:
        if self.budget is None:
            return
        for chunk in self.chunks:  # oldest first; the newest chunk may stay over budget on its own
            if self.resident_bytes <= self.budget or chunk is self.chunks[-1]:
                break
            if chunk.content is not None:
                if chunk.record is None:
                    chunk.record = self._write(chunk)
                chunk.ids = chunk.content = None

    def _write(self, chunk: Chunk) -> dict:
        import pyarrow as pa

        if self.directory is None:
            raise RuntimeError("this content store has no directory to write to")
        shard, shards = self.name
        rel = f"tick={chunk.tick:05d}/shard={shard:04d}-of-{shards:04d}.arrow"
        values = pa.array(chunk.content.reshape(-1))
        columns = {"page_id": pa.array(chunk.ids), "content": pa.FixedSizeListArray.from_arrays(values, self.width)}
        if self.rows is not None:
            rows = self.rows(chunk.lo, chunk.hi)
            if not np.array_equal(rows["page_id"], chunk.ids):
                raise RuntimeError(f"the index rows of tick {chunk.tick} do not match its content")
            columns.update({name: pa.array(values) for name, values in rows.items() if name != "page_id"})
        table = pa.table(columns)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue()
        path = self.directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, durable=self.durable)
        return {"file": rel, "tick": chunk.tick, "shard": shard, "shards": shards, "lo": chunk.lo, "hi": chunk.hi,
                "pages": chunk.pages, "sha256": hashlib.sha256(memoryview(data)).hexdigest()}

    def _read(self, record: dict, wanted: np.ndarray | None = None, columns: bool = False):
        """From a written chunk: with ``wanted`` (sorted), which of them it holds and their content; without,
        all its ids and content (and with ``columns``, its ground-truth columns). Only the rows returned are
        copied out of the mapped file.
        """
        with storage.open_arrow(self.directory / record["file"]) as source:
            table = storage.read_arrow(source)
            ids = table.column("page_id").to_numpy()
            flat = table.column("content").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            content = flat.reshape(len(ids), self.width)
            if wanted is None:
                out = ids.copy(), np.array(content, dtype=self.dtype)
                if columns:
                    out += ({name: table.column(name).to_numpy().copy() for name in table.column_names
                             if name not in ("page_id", "content")},)
                return out
            hit, rows = _lookup(ids, content, wanted)
            return hit, np.array(rows, dtype=self.dtype)  # a copy, so nothing points into the mapped file


def _lookup(ids: np.ndarray, content: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of ``wanted`` found in sorted ``ids``, their content rows)."""
    if len(ids) == 0:
        return np.zeros(len(wanted), dtype=bool), content[:0]
    if ids[-1] - ids[0] == len(ids) - 1:  # consecutive ids (one shard's tick, the usual case): no search
        pos = wanted - ids[0]
        hit = (pos >= 0) & (pos < len(ids))
        return hit, content[pos[hit]]
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    hit = ids[pos] == wanted
    return hit, content[pos[hit]]


def join_rows(ids: np.ndarray, parts) -> dict[str, np.ndarray]:
    """Columns of ``ids`` (any order, repeats allowed) from shard parts [(held ids, {column: values}), ...]
    that together hold every one of them."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids) and parts:  # the columns, empty, with their dtypes
        return {name: np.asarray(values)[:0] for name, values in parts[0][1].items()}
    parts = [p for p in parts if len(p[0])]
    if not parts:
        if len(ids):
            raise RuntimeError("the shards hold none of the pages asked for")
        return {}
    held = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts])
    columns = {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]}
    order = np.argsort(held, kind="stable")
    held = held[order]
    pos = np.minimum(np.searchsorted(held, ids), len(held) - 1)
    if not np.array_equal(held[pos], ids):
        raise RuntimeError("the shards returned other pages than were asked for")
    rows = order[pos]
    return {name: values[rows] for name, values in columns.items()}


def join_parts(ids: np.ndarray, parts, width: int, dtype) -> np.ndarray:
    """Content of ``ids`` (sorted) from shard parts [(ids, content), ...] in any order."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.empty((0, width), dtype=dtype)
    if len(parts) == 1 and np.array_equal(parts[0][0], ids):  # one shard held them all, in order: no sort
        return parts[0][1].copy()  # a copy, as below: a part may be a read-only view of Ray's object store
    all_ids = np.concatenate([p[0] for p in parts])
    content = np.concatenate([p[1] for p in parts])
    order = np.argsort(all_ids, kind="stable")
    if not np.array_equal(all_ids[order], ids):
        raise RuntimeError("the shards returned other pages than the crawl selected")
    return content[order]
