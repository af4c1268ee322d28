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

__all__ = ["write_run", "check_out_dir", "atomic_write"]

FILES = ("generations.parquet", "ticks.parquet", "crawls.parquet", "scenario.toml", "manifest.json")


def atomic_write(path: str | Path, data) -> None:
    """Write text, bytes or a polars frame (as Parquet) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if isinstance(data, pl.DataFrame):
            data.write_parquet(tmp)
        elif isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_out_dir(out: str | Path, *, overwrite: bool) -> Path:
    """Refuse an existing output directory unless ``overwrite``; say so before any work is done."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise SimwebError(f"--out: {str(out)!r} already exists; choose another directory or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise SimwebError(f"--out: {str(out)!r} exists and is not a directory")
    return out


def write_run(out: str | Path, results, *, overwrite: bool = False) -> Path:
    """Write ``results`` to ``out`` (generations / ticks / crawls Parquet, scenario.toml, manifest.json)."""
    out = check_out_dir(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        results.generations.write_parquet(tmp / "generations.parquet")
        results.ticks.write_parquet(tmp / "ticks.parquet")
        results.crawls.write_parquet(tmp / "crawls.parquet")
        (tmp / "scenario.toml").write_text(results.scenario_toml, encoding="utf-8")
        manifest = {"simweb_version": __version__, "numpy_version": np.__version__,
                    "polars_version": pl.__version__, **results.manifest}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for name in FILES:
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            old = out.parent / f".{out.name}.replaced-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SimwebError(f"--out: cannot write {str(out)!r}: {err.strerror or err}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
