"""Writing a run directory atomically: everything goes to a temporary sibling, then one rename.

A crash or a bad value never leaves a half-written run directory under the
final name, and an existing run is replaced only when the caller says so.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import polars as pl

from simweb import __version__, runlock, storage
from simweb.errors import SimwebError, first_line
from simweb.outputs import contamination_frame
from simweb.storage import atomic_write

__all__ = ["write_run", "check_out_dir", "atomic_write", "start_run", "lock", "partial_dir", "remove_temporaries",
           "child", "writable"]

FILES = ("generations.parquet", "ticks.parquet", "crawls.parquet", "contamination.parquet", "scenario.toml",
         "manifest.json")


def partial_dir(out: str | Path) -> Path:
    """Where a run writes until it is complete: a hidden sibling of its directory, with its checkpoints.

    On an object store (no rename), the run directory itself: its ``manifest.json``, written last, is what
    makes it a complete run (see :func:`start_run`).
    """
    out = storage.location(out)
    if storage.is_object(out):
        return out
    return out.parent / f".{out.name}.partial"


# Names of simweb's own temporaries: atomic_write's ".NAME.tmp-XXXXXXXX" files, checkpoint.save's
# ".checkpoint.tmp-XXXXXXXX" and ".checkpoint.old-XXXXXXXX" directories. Nothing else is ever removed as one.
_TEMPORARY = re.compile(r"\..+\.tmp-[0-9a-f]{8}|\.checkpoint\.old-[0-9a-f]{8}")


def child(parent: str | Path, name: str) -> Path:
    """``parent / name``, once it is sure to be a directory directly inside ``parent`` (a default output path).

    Names are validated not to be '.' or '..' nor to hold a separator; this checks the path itself too.
    """
    path = Path(parent) / name
    if name in ("", ".", "..") or os.sep in name or (os.altsep and os.altsep in name) or \
            Path(os.path.abspath(path)).parent != Path(os.path.abspath(parent)):
        raise SimwebError(f"{name!r} cannot name a directory inside {str(parent)!r}")
    return path


def writable(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output file that cannot be written: probe its nearest existing directory."""
    path = Path(path)
    if path.is_dir():
        raise SimwebError(f"{flag}: {str(path)!r} is a directory; name a file")
    where = path.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        if not where.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory")
        fd, probe = tempfile.mkstemp(dir=where, prefix=f".{path.name}.tmp-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise SimwebError(f"{flag}: cannot write {str(path)!r}: {err.strerror or err}") from None
    return path


def check_out_dir(out: str | Path, *, overwrite: bool) -> Path:
    """Refuse an output directory that cannot be this run's, before any work is done.

    An existing ``out`` is replaced only with ``overwrite`` and only when it is a simweb run (it holds
    ``manifest.json``) or empty; the current directory, its parents and a symbolic link never are.
    """
    out = storage.location(out)
    if storage.is_object(out):
        return _check_object_out(out, overwrite=overwrite)
    _check_target(out, overwrite=overwrite)
    shown = repr(str(out))
    partial = partial_dir(out)
    if os.path.lexists(partial):
        if partial.is_symlink() or not partial.is_dir() or not _is_partial(partial):
            raise SimwebError(f"--out: {str(partial)!r} is in the way and is not a simweb run; move it away")
        if runlock.held_elsewhere(partial):
            raise SimwebError(runlock.busy_message(partial))
        if not overwrite:
            raise SimwebError(f"--out: an interrupted run into {shown} can be continued with "
                              f"'simweb resume {out}'; or pass --overwrite to start over")
    return out


def _check_target(out: Path, *, overwrite: bool) -> None:
    """``out`` can become this run's directory: a new name, or a run to replace with ``overwrite``."""
    shown = repr(str(out))
    if out.name in ("", ".", "..") or _holds_cwd(out):
        raise SimwebError(f"--out: {shown} is the current directory or one above it; name a new directory")
    if out.is_symlink():
        target = os.readlink(out)
        what = "to a missing " if not out.exists() else "to "
        raise SimwebError(f"--out: {shown} is a symbolic link {what}{target!r}; give the directory itself")
    if out.exists():
        if not overwrite:
            raise SimwebError(f"--out: {shown} already exists; choose another directory or pass --overwrite")
        if not out.is_dir():
            raise SimwebError(f"--out: {shown} exists and is not a directory")
        if not _is_run(out):
            raise SimwebError(f"--out: {shown} is not a simweb run (it has no manifest.json); --overwrite "
                              "replaces only a run directory, so choose another directory")


def _holds_cwd(out: Path) -> bool:
    try:
        here, there = Path.cwd().resolve(), out.resolve()
    except OSError:
        return False
    return there == here or there in here.parents


def _is_run(out: Path) -> bool:
    """A complete simweb run directory (its manifest), or an empty directory: nothing of the user's in it."""
    try:
        return (out / "manifest.json").is_file() or not any(out.iterdir())
    except OSError:
        return False


def _is_partial(partial: Path) -> bool:
    """A run's partial directory: it holds the run's lock or resolved scenario (or nothing at all)."""
    try:
        names = {p.name for p in partial.iterdir()}
    except OSError:
        return False
    return not names or runlock.LOCK_FILE in names or "scenario.toml" in names


def start_run(out: str | Path, scenario_toml: str, *, overwrite: bool) -> Path:
    """Create the run's partial directory (with the resolved scenario), locked; returns its checkpoint directory.

    The directory is made complete and locked under a temporary name, then renamed into place: that rename
    is the atomic test of who starts the run (it fails when another process's partial is there), so a
    partial directory is locked from the moment it exists. A loser removes nothing but its own temporary.
    An interrupted run is replaced (with ``overwrite``) only once its lock is ours, i.e. its writer is dead.
    The lock is held until :func:`write_run` has put the run in place, or until the process ends.
    """
    out = check_out_dir(out, overwrite=overwrite)
    if storage.is_object(out):
        return _start_object_run(out, scenario_toml, overwrite=overwrite)
    partial = partial_dir(out)
    staging = out.parent / f"{partial.name}.tmp-{uuid.uuid4().hex[:8]}"
    held = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        held = runlock.acquire(staging / runlock.LOCK_FILE)  # a directory nobody else knows: never contended
        atomic_write(staging / "scenario.toml", scenario_toml)
    except OSError as err:
        _discard(staging, held)
        raise SimwebError(f"--out: cannot write {str(out)!r}: {err.strerror or err}") from None
    stale = trash = None
    try:
        if os.path.lexists(partial):  # an interrupted run (check_out_dir allowed replacing it) or a racing start
            if not overwrite:
                raise SimwebError(f"--out: an interrupted run into {str(out)!r} can be continued with "
                                  f"'simweb resume {out}'; or pass --overwrite to start over")
            try:
                stale = runlock.acquire(partial / runlock.LOCK_FILE)
            except FileNotFoundError:  # taken over and moved away by another process just now
                stale = None
            else:
                if stale is None:
                    raise SimwebError(runlock.busy_message(partial))
                trash = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
                os.rename(partial, trash)  # ours to remove: we hold its lock, so its writer is dead
        os.rename(staging, partial)  # the atomic test: fails if another start put its partial here first
    except OSError as err:
        _discard(staging, held)
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise SimwebError(f"{str(out)!r} was just started by another simweb process; wait for it, "
                              "or stop it first") from None
        raise SimwebError(f"--out: cannot write {str(out)!r}: {err.strerror or err}") from None
    except BaseException:
        _discard(staging, held)
        raise
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        if stale is not None and stale is not held:
            stale.release()
    return partial / "checkpoint"


def _discard(staging: Path, held: runlock.RunLock | None) -> None:
    """Remove this process's own unused staging directory (and drop its lock)."""
    shutil.rmtree(staging, ignore_errors=True)
    if held is not None:
        held.release()


def lock(partial: str | Path) -> runlock.RunLock:
    """Claim a partial run directory for this process; a second live writer is refused (see :mod:`simweb.runlock`).

    The lock is held until the run is written or the process ends, whether or not the handle is kept.
    """
    return runlock.lock(partial)


def write_run(out: str | Path, results, *, overwrite: bool = False) -> Path:
    """Write ``results`` to ``out`` (generations / ticks / crawls Parquet, scenario.toml, manifest.json).

    Everything is written into the run's partial directory first (where its checkpoints already are),
    then one rename puts it in place; an existing ``out`` is replaced only with ``overwrite``, and only
    when it is a simweb run. Temporaries a killed process left in the partial directory are removed
    first, so they never reach the run directory. The run's lock is released once it is in place.
    """
    out = storage.location(out)
    if storage.is_object(out):
        return _write_object_run(out, results)
    _check_target(out, overwrite=overwrite)
    tmp = partial_dir(out)
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        held = runlock.lock(tmp)
        _write_files(tmp, results)
        remove_temporaries(tmp)
        _check_target(out, overwrite=overwrite)  # again: the user had the whole run to put something there
        if out.exists():
            old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except (OSError, pl.exceptions.PolarsError) as err:  # polars reports a full disk as a ComputeError
        reason = (err.strerror if isinstance(err, OSError) else None) or str(err).strip().splitlines()[0]
        raise SimwebError(f"--out: cannot write {str(out)!r}: {reason}; the checkpoints in {str(tmp)!r} are "
                          f"intact: 'simweb resume {out}' will finish the run once this is fixed") from None
    # the lock went with the directory; unlinking the file (after the rename, so no second writer can take
    # the partial directory meanwhile) and closing it ends the run
    (out / runlock.LOCK_FILE).unlink(missing_ok=True)
    held.release()
    return out


def remove_temporaries(directory: Path) -> list[Path]:
    """Remove simweb's own temporaries (names matching ``_TEMPORARY``) under ``directory``; returns them.

    Only for a directory this process has locked: any temporary in it belongs to a process that died.
    """
    removed = []
    for root, dirs, files in os.walk(directory):
        for name in [*files, *dirs]:
            if _TEMPORARY.fullmatch(name):
                path = Path(root) / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        dirs[:] = [d for d in dirs if not _TEMPORARY.fullmatch(d)]
    return removed


def _write_files(directory, results) -> None:
    """The run's outputs, ``manifest.json`` last (on an object store, it is what commits the run)."""
    atomic_write(directory / "generations.parquet", results.generations)
    atomic_write(directory / "ticks.parquet", results.ticks)
    atomic_write(directory / "crawls.parquet", results.crawls)
    atomic_write(directory / "contamination.parquet", contamination_frame(results.generations))
    atomic_write(directory / "scenario.toml", results.scenario_toml)
    manifest = {"simweb_version": __version__, "numpy_version": np.__version__,
                "polars_version": pl.__version__, **results.manifest}
    atomic_write(directory / "manifest.json", json.dumps(manifest, indent=2) + "\n")


# ---------------------------------------------------------------- a run directory on an object store
# No rename: the run is written in place under its own prefix, checkpoints and page files included, and
# ``manifest.json`` (written last, one atomic PUT) is what makes it a complete run; until then it is an
# interrupted run, held by a lease (see simweb.runlock) rather than a flock.

def _check_object_out(out, *, overwrite: bool):
    shown = repr(str(out))
    storage.check_reachable(out)
    try:
        names = {p.name for p in out.iterdir()}
    except OSError as err:
        raise SimwebError(f"--out: cannot reach {shown}: {first_line(err)}") from None
    if not names:
        return out
    if runlock.LOCK_FILE in names and runlock.held_elsewhere(out):
        raise SimwebError(runlock.busy_message(out))
    if "manifest.json" in names:
        if not overwrite:
            raise SimwebError(f"--out: {shown} already exists; choose another directory or pass --overwrite")
    elif runlock.LOCK_FILE in names or "scenario.toml" in names:
        if not overwrite:
            raise SimwebError(f"--out: an interrupted run into {shown} can be continued with "
                              f"'simweb resume {out}'; or pass --overwrite to start over")
    else:
        raise SimwebError(f"--out: {shown} is not a simweb run (it has no manifest.json); --overwrite "
                          "replaces only a run directory, so choose another directory")
    return out


def _start_object_run(out, scenario_toml: str, *, overwrite: bool):
    """Take the run's lease, clear what an earlier run left (with ``overwrite``: its manifest first, so it is
    no longer a complete run while it is removed), write the resolved scenario."""
    try:
        held = runlock.acquire(out / runlock.LOCK_FILE)
        if held is None:
            raise SimwebError(runlock.busy_message(out))
        try:
            old = [p for p in out.walk_files() if p.name != runlock.LOCK_FILE or p.parent != out]
            if old and not overwrite:  # another start got here between the check and the lease
                raise SimwebError(f"{str(out)!r} was just started by another simweb process; wait for it, "
                                  "or stop it first")
            (out / "manifest.json").unlink(missing_ok=True)
            for path in old:
                path.unlink(missing_ok=True)
            atomic_write(out / "scenario.toml", scenario_toml)
        except BaseException:
            held.release()
            raise
    except OSError as err:
        raise SimwebError(f"--out: cannot write {str(out)!r}: {first_line(err)}") from None
    return out / "checkpoint"


def _write_object_run(out, results):
    held = runlock.lock(out)
    try:
        held.check()
        _write_files(out, results)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise SimwebError(f"--out: cannot write {str(out)!r}: {first_line(err)}; its last checkpoint "
                          f"is intact: 'simweb resume {out}' will finish the run once this is fixed") from None
    held.release()
    return out
