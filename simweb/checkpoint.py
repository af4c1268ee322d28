"""Checkpoints: everything a run needs to go on from a generation boundary, as plain arrays and JSON.

A checkpoint holds the driver's state (tick, site graph, recorder rows and
running totals, which model generations are released), every agent's state
(pages, trainers' pools, scrapers' progress) and the released model states.
Randomness needs no saving: every stream is derived from the seed and a name.

On disk: ``checkpoint/meta.json`` (schema version, rows, and a SHA-256 of every
array file), ``checkpoint/meta.sha256`` (the SHA-256 of meta.json itself: it
holds the recorded rows and the tick, so it is checked like every other byte)
and one ``.npz`` per group of arrays, read with ``allow_pickle=False``.
The agents write their own states to ``states/TICK-XXXXXXXX/`` beside the checkpoint, and state that only
grows (a trainer's pool, the ids a scraper has trained on) a part at a time to ``states/parts/``: each record lists its parts with their
SHA-256, oldest first, and loading joins them.
Pages are not in it: the publisher shards write each tick's chunk once — the
content and ground truth of their pages — to ``pages/`` beside the checkpoint
(see :mod:`simweb.web.store`), and the checkpoint lists those files with their
SHA-256.
A checkpoint is written to a temporary directory and renamed into place, so the
last good one survives a crash mid-write; a damaged or foreign one is refused.
On an object store (no rename) each checkpoint is written under a new prefix
``checkpoint/TICK-XXXXXXXX/`` and committed by one last PUT of
``checkpoint/CURRENT``, which names it; older prefixes are removed after.

A checkpoint is data from disk, so :func:`load` trusts none of it: meta.json's
checksum, its shape and types, every file it names (relative, inside the run
directory, symbolic links included) and every array's dtype are checked, and
anything wrong is one :class:`SimwebError`, never a traceback or a read
outside the run directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from simweb import storage
from simweb.errors import SimwebError, first_line

__all__ = ["save", "load", "exists", "pages_dir", "states_dir", "write_group", "SCHEMA"]

# 2: page content in per-shard, per-tick files beside the checkpoint; 3: meta.json checksummed; 4: the page
# index in the page files (no index/ parts), the recorder's totals among the arrays, the agents' states
# written by the agents to states/ (meta.states); 5: an agent's state may list parts of its appended arrays
# (states/parts/, meta.states[i].parts); 6: the same files, but the shards plan their own pages (stream keys
# changed, simweb.agents.publisher), so a run checkpointed by an earlier simweb would go on as another web:
# schemas 4 and 5 are refused, with a line saying why.
SCHEMA = 6
READS = (6,)


CURRENT = "CURRENT"  # on an object store: the name of the committed checkpoint's prefix
_SNAPSHOT = re.compile(r"[0-9]{6,}-[0-9a-f]{8}")


def pages_dir(directory: str | Path) -> Path:
    """Where the page files of the checkpoints in ``directory`` live."""
    return storage.location(directory).parent / "pages"


def states_dir(directory: str | Path) -> Path:
    """Where the agents write their states for the checkpoints in ``directory``: one folder per checkpoint."""
    return storage.location(directory).parent / "states"


def exists(directory: str | Path) -> bool:
    directory = storage.location(directory)
    return (directory / (CURRENT if storage.is_object(directory) else "meta.json")).is_file()


def tick_of(directory: str | Path) -> int | None:
    """The tick of the checkpoint in ``directory`` (unchecked: for a decision, not for a restore); None if
    there is none or it cannot be read."""
    try:
        body = (_snapshot(storage.location(directory), None) / "meta.json").read_bytes()
        return int(json.loads(body.decode("utf-8"))["meta"]["tick"])
    except (OSError, ValueError, KeyError, TypeError, SimwebError):
        return None


def _snapshot(directory, fail):
    """Where the files of the committed checkpoint are: ``directory`` itself, or on an object store the
    prefix ``CURRENT`` names."""
    if not storage.is_object(directory):
        return directory
    name = (directory / CURRENT).read_bytes().decode("ascii", "replace").strip()
    if not _SNAPSHOT.fullmatch(name):
        raise (fail or SimwebError)(f"{CURRENT} names {name[:80]!r}, not a checkpoint")
    return directory / name


def _reason(err: OSError) -> str:
    return err.strerror or first_line(err)


def _file_name(group: str) -> str:
    return group.replace("/", "__") + ".npz"


def write_group(directory, group: str, arrays: dict, *, durable: bool = True) -> tuple[str, str]:
    """One group's arrays as an ``.npz`` file in ``directory`` (a path or an object-storage location), written
    whole or not at all: (its file name, its SHA-256)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    data = buffer.getbuffer()
    name = _file_name(group)
    storage.atomic_write(directory / name, data, durable=durable)
    return name, hashlib.sha256(data).hexdigest()


def save(directory: str | Path, checkpoint: dict, *, durable: bool = True) -> None:
    """Write ``checkpoint`` to ``directory``; on failure (a full disk) the previous checkpoint stays intact.

    ``durable``: flush every file to the disk before it is renamed into place (not needed for a
    checkpoint in a temporary directory, which only serves recovery within the run).
    """
    directory = storage.location(directory)
    if storage.is_object(directory):
        tmp = directory / f"{int(checkpoint['meta']['tick']):06d}-{uuid.uuid4().hex[:8]}"
    else:
        tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        (_save_object if storage.is_object(directory) else _save)(directory, tmp, checkpoint, durable)
    except OSError as err:
        storage.remove_tree(tmp)
        kept = "the last good checkpoint is intact" if exists(directory) else "none was kept"
        raise SimwebError(f"cannot write a checkpoint to {str(directory)!r}: {_reason(err)}; {kept}; "
                          "free some space (or wait for the storage to answer) and run 'simweb resume' on the run directory") from None


def _save_object(directory, snap, checkpoint: dict, durable: bool = True) -> None:
    """Every file under a new prefix, then ``CURRENT`` (one PUT) names it: the commit; then older prefixes go."""
    from simweb import runlock

    sums = {group: write_group(snap, group, arrays)[1] for group, arrays in checkpoint["arrays"].items()}
    meta = {"schema": SCHEMA, "meta": checkpoint["meta"], "rows": checkpoint["rows"], "files": sums}
    body = json.dumps(meta).encode("utf-8")
    storage.atomic_write(snap / "meta.json", body)
    storage.atomic_write(snap / "meta.sha256", hashlib.sha256(body).hexdigest() + "\n")
    held = runlock._LEASES.get(str(directory.parent / runlock.LOCK_FILE))
    if held is not None:
        held.check()  # a process that lost the run commits nothing
    storage.atomic_write(directory / CURRENT, snap.name + "\n")
    for old in directory.iterdir():
        if old.name != snap.name and _SNAPSHOT.fullmatch(old.name):
            storage.remove_tree(old)


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
            sums[group] = storage.sha256_of(path)
        meta = {"schema": SCHEMA, "meta": checkpoint["meta"], "rows": checkpoint["rows"], "files": sums}
        body = json.dumps(meta).encode("utf-8")
        # meta.json, then its checksum; both inside the temporary directory, renamed into place together
        for name, data in (("meta.json", body), ("meta.sha256", hashlib.sha256(body).hexdigest() + "\n")):
            with open(tmp / name, "wb") as fh:
                fh.write(data if isinstance(data, bytes) else data.encode("ascii"))
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
    """Read and check the checkpoint in ``directory``; any damage or malformation is one SimwebError."""
    directory = storage.location(directory)
    root = directory.parent  # the run's (partial) directory: every file a checkpoint names is inside it

    def fail(what: str) -> SimwebError:
        return SimwebError(f"checkpoint {str(directory)!r}: {what}")

    try:
        snap = _snapshot(directory, fail)
    except OSError as err:
        raise fail(f"{CURRENT} cannot be read: {_reason(err)}") from None
    body = _read_inside(root, snap / "meta.json", "meta.json", fail)
    try:
        meta = json.loads(body.decode("utf-8"))
    except ValueError as err:
        raise fail(f"meta.json cannot be read: {err}") from None
    schema = meta.get("schema") if isinstance(meta, dict) else None
    if schema not in READS:
        why = (": it was written by an earlier simweb, which planned pages from other streams, so the run would "
               "not go on as the same web; run it again from the start" if schema in (4, 5) else "")
        raise SimwebError(f"checkpoint {str(directory)!r} has schema {schema if schema is not None else '?'}, "
                          f"this simweb reads schema {' or '.join(map(str, READS))}{why}")
    digest = _read_inside(root, snap / "meta.sha256", "meta.sha256", fail).decode("ascii", "replace").strip()
    if digest != hashlib.sha256(body).hexdigest():
        raise fail("meta.json is damaged (checksum mismatch with meta.sha256)")
    _check_meta(meta, fail)

    arrays = {}
    for group, digest in meta["files"].items():
        path = _verified(directory, root, snap / _file_name(group), digest, _file_name(group), fail)
        arrays[group] = _arrays(path, _file_name(group), fail)
    for record in meta["meta"]["states"]:  # the groups the agents wrote themselves, beside the checkpoint
        what = f"state file {record['file']}"
        path = _verified(directory, root, states_dir(directory) / record["file"], record["sha256"], what, fail)
        arrays[record["group"]] = _arrays(path, what, fail)
        if "parts" in record:
            joined = _joined(directory, root, record, fail)
            both = sorted(set(joined) & set(arrays[record["group"]]))
            if both:
                raise fail(f"{what} and its parts both hold {both}")
            arrays[record["group"]].update(joined)
    for record in meta["meta"]["pages"]:
        _verified(directory, root, pages_dir(directory) / record["file"], record["sha256"],
                  f"page file {record['file']}", fail)
    return {"meta": meta["meta"], "rows": meta["rows"], "arrays": arrays}


def _joined(directory: Path, root: Path, record: dict, fail) -> dict[str, np.ndarray]:
    """The appended arrays of an agent's state: its parts' rows, verified, in order."""
    pieces = []
    for part in record["parts"]:
        what = f"state part {part['file']}"
        path = _verified(directory, root, states_dir(directory) / part["file"], part["sha256"], what, fail)
        piece = _arrays(path, what, fail)
        keys = sorted(pieces[0]) if pieces else sorted(piece)
        if sorted(piece) != keys or not keys:
            raise fail(f"{what}: arrays {sorted(piece)}, expected {keys} like the group's other parts")
        for key, value in piece.items():
            if value.ndim == 0 or len(value) != part["rows"]:
                raise fail(f"{what}: array {key!r} has {len(value) if value.ndim else 'no'} rows, "
                           f"the record says {part['rows']}")
            if pieces and value.dtype != pieces[0][key].dtype:
                raise fail(f"{what}: array {key!r} is {value.dtype}, the first part's {pieces[0][key].dtype}")
        pieces.append(piece)
    group = record["group"]
    try:
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
    except ValueError as err:  # rows of other widths than the first part's
        raise fail(f"the parts of {group!r} do not join: {first_line(err)}") from None


# ---------------------------------------------------------------- what a checkpoint may hold
_GROUP = re.compile(r"[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*")  # its file name (/ -> __) stays in the checkpoint
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DTYPES = "biufU"  # bool, integers, floats, text: no objects, records, complex or dates
_INT = (int,)  # a record's integer fields (bool excluded below)


def _check_meta(meta: dict, fail) -> None:
    """The shape and types of meta.json, and every file it names relative and inside the run directory."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise fail(f"meta.json: {what}")

    def is_int(v: Any, lo: int = 0) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= lo

    need(set(meta) == {"schema", "meta", "rows", "files"},
         f"expected the keys files, meta, rows, schema, got {sorted(map(str, meta))}")
    files, inner, rows = meta["files"], meta["meta"], meta["rows"]
    need(isinstance(files, dict), f"files: expected a table, got {type(files).__name__}")
    for group, digest in files.items():
        need(bool(_GROUP.fullmatch(group)), f"files: {group!r} is not a group name")
        need(isinstance(digest, str) and bool(_SHA256.fullmatch(digest)), f"files.{group}: expected a SHA-256")
    need(isinstance(rows, dict), f"rows: expected a table, got {type(rows).__name__}")
    for table, entries in rows.items():
        need(isinstance(entries, list) and all(isinstance(e, dict) for e in entries),
             f"rows.{table}: expected a list of tables")
    need(isinstance(inner, dict), f"meta: expected a table, got {type(inner).__name__}")
    for key in ("tick", "run_id", "pages", "page_count", "states", "registry"):
        need(key in inner, f"meta.{key}: required, but missing")
    need(is_int(inner["tick"]), f"meta.tick: expected an integer >= 0, got {inner['tick']!r}")
    need(isinstance(inner["run_id"], str), f"meta.run_id: expected a string, got {inner['run_id']!r}")
    registry = inner["registry"]
    need(isinstance(registry, dict) and all(re.fullmatch(r"[0-9]+", k) and is_int(v) for k, v in registry.items()),
         "meta.registry: expected a table of lab index -> generation")
    need(isinstance(inner["states"], list), "meta.states: expected a list")
    groups = set(files)
    for i, record in enumerate(inner["states"]):
        where = f"meta.states[{i}]"
        _check_record(record, where, {"group": str, "file": str, "sha256": str}, need)
        need(bool(_GROUP.fullmatch(record["group"])) and record["group"] not in groups,
             f"{where}.group: {record['group']!r} is not a group name, or a second one")
        groups.add(record["group"])
        if "parts" in record:
            parts = record["parts"]
            need(isinstance(parts, list) and len(parts) > 0, f"{where}.parts: expected a non-empty list")
            for j, part in enumerate(parts):
                _check_record(part, f"{where}.parts[{j}]", {"file": str, "sha256": str, "rows": _INT}, need)
            files = [part["file"] for part in parts]
            need(len(set(files)) == len(files), f"{where}.parts: a file listed twice")
    for lab in registry:
        need(f"model/{lab}" in groups, f"meta.registry: lab {lab}'s model is not among the files")
    need(is_int(inner["page_count"]), f"meta.page_count: expected an integer >= 0, got {inner['page_count']!r}")
    need(isinstance(inner["pages"], list), "meta.pages: expected a list")
    for i, record in enumerate(inner["pages"]):
        where = f"meta.pages[{i}]"
        _check_record(record, where, {"file": str, "tick": _INT, "shard": _INT, "shards": _INT, "lo": _INT,
                                      "hi": _INT, "pages": _INT, "sha256": str}, need)
        need(record["shard"] < record["shards"] and record["lo"] <= record["hi"],
             f"{where}: shard {record['shard']} of {record['shards']}, rows {record['lo']}..{record['hi']}")
    held = sum(record["pages"] for record in inner["pages"])
    need(held == inner["page_count"], f"meta.page_count: {inner['page_count']} pages, but the page files hold {held}")


def _check_record(record: Any, where: str, fields: dict[str, tuple], need) -> None:
    need(isinstance(record, dict), f"{where}: expected a table, got {type(record).__name__}")
    for key, kind in fields.items():
        need(key in record, f"{where}.{key}: required, but missing")
        value = record[key]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is _INT:
            ok = ok and value >= 0
        need(ok, f"{where}.{key}: expected {'an integer >= 0' if kind is _INT else 'a string'}, got {value!r}")
    need(bool(_SHA256.fullmatch(record["sha256"])), f"{where}.sha256: expected a SHA-256, got {record['sha256']!r}")
    rel = PurePosixPath(record["file"])
    need(bool(record["file"]) and not rel.is_absolute() and "\\" not in record["file"] and "\0" not in record["file"]
         and all(part not in ("", ".", "..") for part in record["file"].split("/")),
         f"{where}.file: {record['file']!r} leaves the run directory")


def _inside(root: Path, path: Path, what: str, fail) -> Path:
    """``path``, once it is a regular file inside ``root`` with every symbolic link resolved."""
    if storage.is_object(path):  # no links: a key is inside the run's prefix when it is built from it
        try:
            if not path.is_file():
                raise fail(f"{what} cannot be read: no such file")
        except OSError as err:
            raise fail(f"{what} cannot be read: {_reason(err)}") from None
        return path
    try:
        real, base = path.resolve(strict=True), root.resolve(strict=True)
    except (OSError, RuntimeError) as err:
        raise fail(f"{what} cannot be read: {getattr(err, 'strerror', None) or err}") from None
    if not real.is_relative_to(base):
        raise fail(f"{what} leaves the run directory (it is {str(real)!r})")
    if not real.is_file():
        raise fail(f"{what} is not a file")
    return real


def _read_inside(root: Path, path: Path, what: str, fail) -> bytes:
    real = _inside(root, path, what, fail)
    try:
        return real.read_bytes()
    except OSError as err:
        raise fail(f"{what} cannot be read: {_reason(err)}") from None


def _arrays(path: Path, what: str, fail) -> dict[str, np.ndarray]:
    """The arrays of a verified ``.npz``: plain numbers or text only (never pickled objects)."""
    try:
        with np.load(io.BytesIO(path.read_bytes()) if storage.is_object(path) else path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise fail(f"{what} cannot be read as arrays: {str(err).splitlines()[0] if str(err) else type(err).__name__}") \
            from None
    except (AttributeError, TypeError):  # np.load of a lone .npy gives an array, which is no archive
        raise fail(f"{what} is not an archive of arrays") from None
    for key, value in arrays.items():
        if value.dtype.kind not in _DTYPES or value.dtype.fields is not None:
            raise fail(f"{what}: array {key!r} has dtype {value.dtype}, expected numbers or text")
    return arrays


def _verified(directory: Path, root: Path, path: Path, digest: str, what: str, fail) -> Path:
    """``path``, once it is inside the run directory and its SHA-256 is ``digest``; else one message."""
    real = _inside(root, path, what, fail)
    try:
        actual = storage.sha256_of(real)
    except OSError as err:
        raise SimwebError(f"checkpoint {str(directory)!r}: {what} cannot be read: {_reason(err)}") from None
    if actual != digest:
        raise SimwebError(f"checkpoint {str(directory)!r}: {what} is damaged (checksum mismatch)")
    return real
