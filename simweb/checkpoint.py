"""Checkpoints: everything a run needs to go on from a generation boundary, as plain arrays and JSON.

A checkpoint holds the driver's state (tick, site graph, page index, recorder
rows, which model generations are released), every agent's state (page
content, trainers' pools, scrapers' progress) and the released model states.
Randomness needs no saving: every stream is derived from the seed and a name.

On disk: ``checkpoint/meta.json`` (schema version, rows, and a SHA-256 of every
array file) and one ``.npz`` per group of arrays, read with ``allow_pickle=False``.
Page content is not in it: the publisher shards write each tick's chunk once,
to ``pages/`` beside the checkpoint (see :mod:`simweb.web.store`), and the
checkpoint lists those files with their SHA-256. The page index, append-only
too, is written the same way: each checkpoint adds one ``index/`` part with the
pages published since the last (:func:`write_part`), and lists every part.
A checkpoint is written to a temporary directory and renamed into place, so the
last good one survives a crash mid-write; a damaged or foreign one is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from simweb.errors import SimwebError

__all__ = ["save", "load", "exists", "pages_dir", "write_part", "SCHEMA"]

SCHEMA = 2  # 2: page content in per-shard, per-tick files beside the checkpoint


def pages_dir(directory: str | Path) -> Path:
    """Where the page files of the checkpoints in ``directory`` live."""
    return Path(directory).parent / "pages"


def write_part(directory: str | Path, name: str, lo: int, hi: int, arrays: dict, *, durable: bool = True) -> dict:
    """Write rows ``lo``..``hi`` of an append-only group (``name``: "index") beside the checkpoint; its record.

    A part is immutable: rewriting it (after a resume) writes the same bytes under the same name.
    """
    from simweb.recorder import atomic_write

    rel = f"{name}/{lo:012d}-{hi:012d}.npz"
    path = Path(directory).parent / rel
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    data = buffer.getbuffer()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, durable=durable)
    except OSError as err:
        raise SimwebError(f"cannot write a checkpoint to {str(directory)!r}: {err.strerror or err}; the last good "
                          "checkpoint is intact; free some space and run 'simweb resume' on the run directory") from None
    return {"file": rel, "lo": lo, "hi": hi, "sha256": hashlib.sha256(data).hexdigest()}


def exists(directory: str | Path) -> bool:
    return (Path(directory) / "meta.json").is_file()


def _file_name(group: str) -> str:
    return group.replace("/", "__") + ".npz"


def save(directory: str | Path, checkpoint: dict, *, durable: bool = True) -> None:
    """Write ``checkpoint`` to ``directory``; on failure (a full disk) the previous checkpoint stays intact.

    ``durable``: flush every file to the disk before it is renamed into place (not needed for a
    checkpoint in a temporary directory, which only serves recovery within the run).
    """
    directory = Path(directory)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _save(directory, tmp, checkpoint, durable)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = "the last good checkpoint is intact" if (directory / "meta.json").is_file() else "none was kept"
        raise SimwebError(f"cannot write a checkpoint to {str(directory)!r}: {err.strerror or err}; {kept}; "
                          "free some space and run 'simweb resume' on the run directory") from None


def _save(directory: Path, tmp: Path, checkpoint: dict, durable: bool = True) -> None:
    tmp.mkdir(parents=True)
    try:
        sums = {}
        for group, arrays in checkpoint["arrays"].items():
            path = tmp / _file_name(group)
            with open(path, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
            sums[group] = _sha256(path)
        meta = {"schema": SCHEMA, "meta": checkpoint["meta"], "rows": checkpoint["rows"], "files": sums}
        with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        if directory.exists():
            os.rename(directory, old)
        os.rename(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(directory: str | Path) -> dict:
    directory = Path(directory)
    meta_path = directory / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SimwebError(f"checkpoint {str(directory)!r} cannot be read: {err}") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise SimwebError(f"checkpoint {str(directory)!r} has schema {meta.get('schema') if isinstance(meta, dict) else '?'}"
                          f", this simweb reads schema {SCHEMA}")
    arrays = {}
    for group, digest in meta["files"].items():
        path = _verified(directory, directory / _file_name(group), digest, _file_name(group))
        with np.load(path, allow_pickle=False) as npz:
            arrays[group] = {k: npz[k] for k in npz.files}
    parts = meta["meta"].get("index_parts", [])
    if parts:
        columns: dict[str, list] = {}
        for record in parts:
            path = _verified(directory, directory.parent / record["file"], record["sha256"], record["file"])
            with np.load(path, allow_pickle=False) as npz:
                for k in npz.files:
                    columns.setdefault(k, []).append(npz[k])
        arrays["index"] = {k: np.concatenate(v) for k, v in columns.items()}
    for record in meta["meta"].get("pages", []):
        _verified(directory, pages_dir(directory) / record["file"], record["sha256"], f"page file {record['file']}")
    return {"meta": meta["meta"], "rows": meta["rows"], "arrays": arrays}


def _verified(directory: Path, path: Path, digest: str, what: str) -> Path:
    """``path``, once its SHA-256 is ``digest``; else one message naming ``what`` (a file of the checkpoint)."""
    try:
        actual = _sha256(path)
    except OSError as err:
        raise SimwebError(f"checkpoint {str(directory)!r}: {what} cannot be read: {err.strerror}") from None
    if actual != digest:
        raise SimwebError(f"checkpoint {str(directory)!r}: {what} is damaged (checksum mismatch)")
    return path


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks (checkpoint files can be larger than the memory one wants to spend)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
