"""Sweeps: one scenario over a grid of values and many seeds, every point a run.

A point is a set of ``--set`` overrides plus a seed. Replicate seeds come from
the sweep's seed through the stream tree (``SeedSequence(seed, spawn_key=
("replicate", i))``), never ``seed + i``, and each is an ordinary seed: ``simweb
run SCENARIO --seed S`` reproduces that replicate alone. Results are combined
in point order, whatever order the runs finish in.
"""

from __future__ import annotations

import itertools
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import polars as pl

from simweb.errors import ScenarioError
from simweb.outputs import contamination_frame, grid_column
from simweb.scenario.load import _parse_value, parse_scenario

__all__ = ["Point", "expand_grid", "replicate_seed", "run_points", "combine", "run_sweep", "run_into", "simulate_points",
           "worker_pool"]


@dataclass(frozen=True)
class Point:
    index: int
    grid: tuple[tuple[str, str], ...]  # (path, raw value) pairs, in --grid order
    replicate: int
    seed: int

    @property
    def name(self) -> str:
        return f"p{self.index:05d}"

    @property
    def overrides(self) -> list[str]:
        return [f"{path}={value}" for path, value in self.grid] + [f"run.seed={self.seed}"]


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of replicate ``replicate`` of a sweep with seed ``seed`` (63 bits, so TOML can hold it)."""
    state = np.random.SeedSequence(seed, spawn_key=(0x5EED, replicate)).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def _split_values(path: str, raw: str) -> list[str]:
    """``v1,v2,...`` split on commas outside brackets, braces and quotes."""
    values, depth, quote, cur = [], 0, None, ""
    for ch in raw:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(cur.strip())
            cur = ""
            continue
        cur += ch
    values.append(cur.strip())
    if any(v == "" for v in values):
        raise ScenarioError("--grid", f"{path}: empty value in {raw!r}")
    return values


def expand_grid(grid: Sequence[str], seeds: int, seed: int) -> list[Point]:
    """Every combination of the grid values (first --grid varies slowest) × ``seeds`` replicates."""
    axes = []
    for item in grid:
        if "=" not in item:
            raise ScenarioError("--grid", f"expected path=v1,v2,..., got {item!r}")
        path, raw = item.split("=", 1)
        path = path.strip()
        if not path or not re.fullmatch(r"[A-Za-z0-9_.\[\]-]+", path):
            raise ScenarioError("--grid", f"cannot read the path {path!r}")
        axes.append([(path, v) for v in _split_values(path, raw)])
    paths = [a[0][0] for a in axes]
    if len(set(paths)) != len(paths):
        raise ScenarioError("--grid", f"a path appears twice: {paths}")
    columns = [grid_column(p) for p in paths]
    for i, column in enumerate(columns):
        if column in columns[:i]:
            raise ScenarioError("--grid", f"{paths[columns.index(column)]!r} and {paths[i]!r} would both be the "
                                f"column {column!r}; name the lab or population by its index instead")
    points = []
    for combo in itertools.product(*axes) if axes else [()]:
        for r in range(seeds):
            points.append(Point(len(points), tuple(combo), r, replicate_seed(seed, r) if seeds > 1 else seed))
    return points


def validate_points(text: str, points: Iterable[Point], source: str | None = None) -> None:
    """Validate every point before any runs, so a bad grid value fails at once with its path."""
    seen = set()
    for p in points:
        if p.grid in seen:
            continue
        seen.add(p.grid)
        parse_scenario(text, p.overrides, source=source)


def worker_pool(workers: int) -> ProcessPoolExecutor | None:
    """``workers`` spawned processes to hand to several :func:`run_points` calls (None for one worker).

    Each process imports simweb, numpy, polars and pydantic once (about a second of CPU): a caller
    with many small batches, like ``simweb reproduce`` with its nine targets, pays that once.
    Spawn, not fork: polars and torch keep thread pools that a fork would copy mid-flight.
    """
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) if workers > 1 else None


def run_points(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int,
               on_done: Callable[[int, Any], None] | None = None, executor: str = "local",
               address: str | None = None, pool: ProcessPoolExecutor | None = None) -> list[Any]:
    """Apply ``fn`` to every item — on ``workers`` processes, or as Ray tasks — and return results in item order.

    ``pool`` (from :func:`worker_pool`) runs them on processes already started, and stays open.
    """
    if executor == "ray":
        from simweb.executors.ray_executor import map_tasks

        return map_tasks(fn, items, address=address, on_done=on_done)
    results: list[Any] = [None] * len(items)
    if pool is None and (workers <= 1 or len(items) <= 1):
        for i, item in enumerate(items):
            results[i] = fn(item)
            if on_done:
                on_done(i, results[i])
        return results
    own = pool is None
    pool = worker_pool(workers) if own else pool
    try:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_done:
                on_done(i, results[i])
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    return results


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def combine(frames: Sequence[pl.DataFrame | None], points: Sequence[Point]) -> pl.DataFrame | None:
    """Stack per-point frames with the grid values and the replicate as leading columns, in point order.

    A grid value's column is named by :func:`~simweb.outputs.grid_column`
    (``labs.careful.reserve_fraction`` → ``grid_labs_careful_reserve_fraction``), so that
    SQL and pandas read it unquoted; ``sweep.json`` keeps the paths as given.
    """
    parts = []
    for frame, point in zip(frames, points):
        if frame is None:
            continue
        lead = {"point": point.index, "replicate": point.replicate}
        for path, raw in point.grid:
            value = _parse_value(raw)
            lead[grid_column(path)] = value if isinstance(value, (bool, int, float, str)) else raw
        parts.append(frame.with_columns([pl.lit(v).alias(k) for k, v in lead.items()]).select(
            list(lead) + frame.columns))
    if not parts:
        return None
    # diagonal: a grid that turns a mechanism on in some points only (opt-outs, licences, distillation) gives
    # those runs more columns; the others get nulls there
    return pl.concat(parts, how="diagonal_relaxed")


# ---------------------------------------------------------------- running points
def _run_point(task: tuple) -> dict:
    """Worker: run one point; write its run directory (if any); never raise."""
    import time
    import traceback

    import simweb
    from simweb.errors import SimwebError

    text, source, overrides, run_dir, keep_frames, plugins = task
    start = time.perf_counter()
    if run_dir is not None and (Path(run_dir) / "manifest.json").is_file():
        return {"state": "done", "error": None, "wall_time_s": 0.0, "skipped": True, "generations": None}
    try:
        simweb.load_plugins(plugins)
        scenario = parse_scenario(text, overrides, source=source)
        from simweb.recorder import partial_dir

        # a sweep spreads its runs over processes or Ray tasks; inside one, the run itself is in-process.
        # A run whose worker died goes on from its last checkpoint: it loses at most one generation.
        # SIMWEB_CRASH_AT_TICK (a test hook, simweb.cli) kills the worker once that tick is complete: a resumed
        # run starts past it, so a retried task is not killed again
        from simweb.cli import _crash_hook

        resumed = run_dir is not None and (partial_dir(run_dir) / "checkpoint" / "meta.json").is_file()
        if resumed:
            results = simweb.resume(run_dir, executor="local", plugins=plugins, on_tick=_crash_hook())
        else:
            results = simweb.run(scenario, out=run_dir, overwrite=run_dir is not None and
                                 partial_dir(run_dir).exists(), executor="local", plugins=plugins,
                                 on_tick=_crash_hook())
    except SimwebError as err:
        return {"state": "failed", "error": str(err), "wall_time_s": time.perf_counter() - start, "skipped": False,
                "generations": None}
    except Exception as err:  # recorded, so one broken point does not stop the sweep
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        return {"state": "failed", "error": f"internal error: {last}", "wall_time_s": time.perf_counter() - start,
                "skipped": False, "generations": None}
    return {"state": "done", "error": None, "wall_time_s": time.perf_counter() - start, "skipped": False,
            "resumed": resumed, "generations": results.generations if keep_frames else None}


def _run_point_light(task: tuple) -> dict:
    """Worker: run one point in memory and write only its generations table; never raise."""
    from simweb.recorder import atomic_write

    text, source, overrides, path, plugins = task
    if Path(path).is_file():
        return {"state": "done", "error": None, "wall_time_s": 0.0, "skipped": True, "generations": None}
    outcome = _run_point((text, source, overrides, None, True, plugins))
    if outcome["state"] == "done":
        atomic_write(path, outcome["generations"])
        outcome["generations"] = None
    return outcome


def simulate_points(text: str, points: Sequence[Point], *, workers: int, source: str | None = None,
                    on_done: Callable[[int, dict], None] | None = None, plugins=(),
                    pool: ProcessPoolExecutor | None = None) -> pl.DataFrame:
    """Run every point in memory and return their combined generations frame (no files written).

    ``pool``: processes from :func:`worker_pool` to run them on (else ``workers`` new ones).
    """
    tasks = [(text, source, p.overrides, None, True, tuple(plugins)) for p in points]
    outcomes = run_points(_run_point, tasks, workers=workers, on_done=on_done, pool=pool)
    failed = [(p, o) for p, o in zip(points, outcomes) if o["state"] != "done"]
    if failed:
        point, outcome = failed[0]
        raise RuntimeError(f"{len(failed)} of {len(points)} runs failed; {point.name}: {outcome['error']}")
    return combine([o["generations"] for o in outcomes], points)


STATUS = {"point": pl.Int64, "name": pl.String, "replicate": pl.Int64, "seed": pl.Int64, "overrides": pl.String,
          "state": pl.String, "error": pl.String, "wall_time_s": pl.Float64}


def run_sweep(path: str | Path, grid: Sequence[str], *, seeds: int, out: str | Path, workers: int,
              seed: int | None = None, on_done: Callable[[int, int, dict], None] | None = None,
              executor: str = "local", address: str | None = None, plugins=()) -> pl.DataFrame:
    """Run (or resume) a sweep into ``out``; returns the status table.

    ``out`` holds ``runs/<point>/`` run directories, ``status.parquet`` (queued /
    done / failed with the error), ``sweep.json`` (what was asked) and the combined
    ``generations.parquet``, ``ticks.parquet`` and ``contamination.parquet`` with the
    grid values as columns.
    Running the same command again skips the points already done.
    """
    from simweb.plugins import load_plugins
    from simweb.scenario.load import load_scenario

    path = Path(path)
    plugins = load_plugins(plugins)
    base = load_scenario(path, seed=seed)
    text = path.read_text(encoding="utf-8")
    points = expand_grid(grid, seeds, base.run.seed)
    validate_points(text, points, source=str(path))
    spec = {"scenario": text, "grid": list(grid), "seeds": seeds, "seed": base.run.seed}
    if plugins:
        spec["plugins"] = [p.record() for p in plugins]
    return run_into(out, text, str(path), points, spec, workers=workers, on_done=on_done, executor=executor,
                    address=address, plugins=plugins)


def run_into(out: str | Path, text: str, source: str, points: Sequence[Point], spec: dict, *, workers: int,
             on_done: Callable[[int, int, dict], None] | None = None, executor: str = "local",
             address: str | None = None, light: bool = False, plugins=()) -> pl.DataFrame:
    """Run (or resume) any list of points into the sweep directory ``out``; returns the status table.

    ``spec`` (JSON) says what was asked; a directory holding a different spec is refused.
    Sweeps and sensitivity analyses (:mod:`simweb.sensitivity`) both run through here.
    ``light``: keep only each point's generations table (``runs/<point>.parquet``), not a
    whole run directory — a tenth of the time for the many small runs of a sensitivity analysis.
    """
    import json

    from simweb.errors import SimwebError
    from simweb.recorder import atomic_write, child
    from simweb.storage import local_only

    out = local_only(out, "--out")  # a sweep's worker processes write local run directories only
    spec_file = out / "sweep.json"
    if spec_file.is_file():
        try:
            same = json.loads(spec_file.read_text(encoding="utf-8")) == spec
        except (OSError, ValueError) as err:
            raise SimwebError(f"--out: {str(spec_file)!r} cannot be read: {err}") from None
        if not same:
            raise SimwebError(f"--out: {str(out)!r} holds a different sweep (scenario, grid or seeds differ); "
                              "choose another directory")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SimwebError(f"--out: {str(out)!r} exists and is not a sweep directory")

    def write(name: str, data) -> None:
        """Write a file of the sweep; an unwritable directory or a full disk is one line, not a traceback."""
        try:
            atomic_write(out / name, data)
        except (OSError, pl.exceptions.PolarsError) as err:
            reason = (err.strerror if isinstance(err, OSError) else None) or str(err).strip().splitlines()[0]
            raise SimwebError(f"--out: cannot write {str(out / name)!r}: {reason}; rerun the same command to "
                              "go on where it stopped") from None

    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SimwebError(f"--out: cannot write {str(out)!r}: {err.strerror or err}") from None
    write("sweep.json", json.dumps(spec, indent=2) + "\n")

    status = {p.index: {"point": p.index, "name": p.name, "replicate": p.replicate, "seed": p.seed,
                        "overrides": " ".join(p.overrides[:-1]), "state": "queued", "error": None,
                        "wall_time_s": None} for p in points}

    def write_status() -> pl.DataFrame:
        frame = pl.DataFrame([status[i] for i in sorted(status)], schema=STATUS, orient="row")
        write("status.parquet", frame)
        return frame

    write_status()
    plugins = tuple(plugins)
    if light:
        fn, tasks = _run_point_light, [(text, source, p.overrides, str(child(out / "runs", f"{p.name}.parquet")),
                                        plugins) for p in points]
    else:
        fn, tasks = _run_point, [(text, source, p.overrides, str(child(out / "runs", p.name)), False, plugins)
                                 for p in points]
    done = 0

    def finished(i: int, outcome: dict) -> None:
        nonlocal done
        done += 1
        status[i].update(state=outcome["state"], error=outcome["error"], wall_time_s=round(outcome["wall_time_s"], 3))
        write_status()
        if on_done:
            on_done(done, len(points), outcome)

    run_points(fn, tasks, workers=workers, on_done=finished, executor=executor, address=address)
    final = write_status()
    ok = [p for p in points if status[p.index]["state"] == "done"]
    if light:
        tables = {"generations": [pl.read_parquet(out / "runs" / f"{p.name}.parquet") for p in ok]}
    else:
        tables = {table: [pl.read_parquet(out / "runs" / p.name / f"{table}.parquet") for p in ok]
                  for table in ("generations", "ticks")}
        # from each run's generations, so that runs written before contamination.parquet existed combine too
        tables["contamination"] = [contamination_frame(frame) for frame in tables["generations"]]
    for table, frames in tables.items():
        combined = combine(frames, ok)
        if combined is not None:
            write(f"{table}.parquet", combined)
    return final
