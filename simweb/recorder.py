"""Writing a run directory atomically: everything goes to a temporary sibling, then one rename.

A crash or a bad value never leaves a half-written run directory under the
final name, and an existing run is replaced only when the caller says so.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import polars as pl

from simweb import __version__
from simweb.errors import SimwebError
from simweb.outputs import contamination_frame

__all__ = ["write_run", "check_out_dir", "atomic_write"]

FILES = ("generations.parquet", "ticks.parquet", "crawls.parquet", "scenario.toml", "manifest.json")


def atomic_write(path: str | Path, data, *, durable: bool = True) -> None:
    """Write text, bytes or a polars frame (as Parquet) to ``path`` through a temporary file and a rename.

    ``durable``: flush the file to the disk before the rename (a temporary directory needs not).
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if isinstance(data, pl.DataFrame):
            data.write_parquet(tmp)
            if durable:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
        else:
            with open(tmp, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def partial_dir(out: str | Path) -> Path:
    """Where a run writes until it is complete: a hidden sibling of its directory, with its checkpoints."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


def check_out_dir(out: str | Path, *, overwrite: bool) -> Path:
    """Refuse an existing output directory unless ``overwrite``; say so before any work is done."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise SimwebError(f"--out: {str(out)!r} already exists; choose another directory or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise SimwebError(f"--out: {str(out)!r} exists and is not a directory")
    if partial_dir(out).exists() and not overwrite:
        raise SimwebError(f"--out: an interrupted run into {str(out)!r} can be continued with "
                          f"'simweb resume {out}'; or pass --overwrite to start over")
    return out


def start_run(out: str | Path, scenario_toml: str, *, overwrite: bool) -> Path:
    """Create the run's partial directory (with the resolved scenario) and lock it; returns its checkpoint directory."""
    out = check_out_dir(out, overwrite=overwrite)
    partial = partial_dir(out)
    if partial.exists():
        lock(partial)  # refuse to wipe a run another process is writing
        shutil.rmtree(partial)
    try:
        partial.mkdir(parents=True)
        lock(partial)
        atomic_write(partial / "scenario.toml", scenario_toml)
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise SimwebError(f"--out: cannot write {str(out)!r}: {err.strerror or err}") from None
    return partial / "checkpoint"


def lock(partial: Path) -> None:
    """Claim a partial run directory for this process; a second live writer is refused.

    The lock is a file holding the owner's pid, created with O_EXCL; a lock whose process is gone
    (a crash, kill -9) is stale and taken over.
    """
    path = partial / "lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner == os.getpid():
                return
            if owner and _alive(owner):
                raise SimwebError(f"{str(partial.parent / partial.name[1:-len('.partial')])!r} is being written by "
                                  f"another simweb process (pid {owner}); wait for it, or stop it first") from None
            path.unlink(missing_ok=True)  # stale
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_run(out: str | Path, results, *, overwrite: bool = False) -> Path:
    """Write ``results`` to ``out`` (generations / ticks / crawls Parquet, scenario.toml, manifest.json).

    Everything is written into the run's partial directory first (where its checkpoints already are),
    then one rename puts it in place; an existing ``out`` is replaced only with ``overwrite``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise SimwebError(f"--out: {str(out)!r} already exists; choose another directory or pass --overwrite")
    tmp = partial_dir(out)
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        atomic_write(tmp / "generations.parquet", results.generations)
        atomic_write(tmp / "ticks.parquet", results.ticks)
        atomic_write(tmp / "crawls.parquet", results.crawls)
        atomic_write(tmp / "contamination.parquet", contamination_frame(results.generations))
        atomic_write(tmp / "scenario.toml", results.scenario_toml)
        manifest = {"simweb_version": __version__, "numpy_version": np.__version__,
                    "polars_version": pl.__version__, **results.manifest}
        atomic_write(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        (tmp / "lock").unlink(missing_ok=True)
        if out.exists():
            old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except OSError as err:
        raise SimwebError(f"--out: cannot write {str(out)!r}: {err.strerror or err}; the checkpoints in "
                          f"{str(tmp)!r} are intact") from None
    return out
