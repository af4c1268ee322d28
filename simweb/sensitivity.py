"""Global sensitivity analysis: which scenario parameter moves a metric most?

Sobol indices (Sobol 2001; Saltelli et al. 2010): the first-order index S1 of a
parameter is the share of the metric's variance it explains alone, the total
index ST the share it explains with all its interactions (ST ≈ 0: it cannot
matter). Parameters are drawn uniformly in [LOW, HIGH] by Saltelli's scheme
(SALib's ``sample.sobol``: N·(D+2) samples for D parameters), every sample runs
as a point of a sweep — resumable, a failing run recorded and the rest going on
— and SALib estimates the indices with bootstrap confidence intervals.

Every sample runs with the same replicate seeds (common random numbers), so a
parameter that changes nothing leaves the output identical. Integer parameters
are rounded, and samples whose rounded values coincide run once. The pseudo
parameter ``gen`` varies the generation the metric is read at: samples that
differ only in it share a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import polars as pl

from simweb.errors import SimwebError

__all__ = ["Param", "parse_params", "saltelli", "run_sensitivity", "sobol_indices", "print_indices"]

GEN = "gen"  # the pseudo parameter: the generation the metric is read at


@dataclass(frozen=True)
class Param:
    path: str      # a scenario path (``labs.lab.crawl_budget``) or ``gen``
    low: float
    high: float
    integer: bool  # rounded to the nearest integer before it is set

    def raw(self, x: float) -> str:
        return str(int(round(x))) if self.integer else repr(float(x))


def parse_params(text: str, specs: Sequence[str], *, source: str | None = None,
                 overrides: Sequence[str] = ()) -> list[Param]:
    """``PATH=LOW,HIGH`` items, each checked against the scenario (unknown paths get "did you mean")."""
    from simweb.scenario.load import parse_scenario

    if not specs:
        raise SimwebError("--param: give at least one PATH=LOW,HIGH")
    params = []
    for spec in specs:
        path, _, rng = spec.partition("=")
        path = path.strip()
        parts = rng.split(",")
        if not path or len(parts) != 2:
            raise SimwebError(f"--param: expected PATH=LOW,HIGH, got {spec!r}")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise SimwebError(f"--param {path}: LOW and HIGH must be numbers, got {rng!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SimwebError(f"--param {path}: LOW and HIGH must be finite, got {rng!r}")
        if low >= high:
            raise SimwebError(f"--param {path}: LOW must be < HIGH, got {low:g} >= {high:g}")
        if path in (p.path for p in params):
            raise SimwebError(f"--param: {path} given twice")
        if path == GEN:
            if low < 0:
                raise SimwebError(f"--param gen: generations start at 0, got LOW = {low:g}")
            params.append(Param(path, low, high, True))
            continue
        integer = _is_integer(parse_scenario(text, overrides, source=source), path)
        for x in (low, high):  # both ends through the scenario's own validation
            parse_scenario(text, [*overrides, f"{path}={Param(path, low, high, integer).raw(x)}"], source=source)
        params.append(Param(path, low, high, integer))
    return params


def _is_integer(scenario, path: str) -> bool:
    """Whether the value at ``path`` is an integer in the resolved scenario (else: a float)."""
    from simweb.scenario.load import _split_path

    node = scenario.model_dump()
    for seg in _split_path(path):
        if isinstance(node, (list, tuple)):  # the frozen scenario holds tables as tuples
            names = [e.get("name") if isinstance(e, dict) else None for e in node]
            node = node[seg] if isinstance(seg, int) else (node[names.index(seg)] if seg in names else None)
        elif isinstance(node, dict):
            node = node.get(seg)
        else:
            node = None
        if node is None:
            return False
    return isinstance(node, int) and not isinstance(node, bool)


def _problem(params: Sequence[Param]) -> dict:
    return {"num_vars": len(params), "names": [p.path for p in params], "bounds": [[p.low, p.high] for p in params]}


def saltelli(params: Sequence[Param], samples: int, *, seed: int) -> np.ndarray:
    """Saltelli's N·(D+2) sample matrix (first and total order only); integer columns rounded."""
    from SALib.sample import sobol

    if samples < 2 or samples & (samples - 1):
        raise SimwebError(f"--samples: expected a power of 2 >= 2 (Sobol sequences need one), got {samples}")
    X = sobol.sample(_problem(params), samples, calc_second_order=False, seed=seed % 2**32)
    for j, p in enumerate(params):
        if p.integer:
            X[:, j] = np.round(X[:, j])
    return X


def run_sensitivity(path: str | Path, specs: Sequence[str], *, samples: int, out: str | Path, workers: int,
                    metric: str = "excess_nll", at: str = "last", lab: str | None = None, seeds: int = 1,
                    seed: int | None = None, overrides: Sequence[str] = (), executor: str = "local",
                    address: str | None = None,
                    on_done: Callable[[int, int, dict], None] | None = None) -> pl.DataFrame:
    """Run (or resume) a Sobol analysis into ``out``; writes and returns ``sensitivity.parquet``.

    ``out`` is a sweep directory (``status.parquet``, ``runs/``, the combined
    ``generations.parquet`` with the parameters as columns) plus ``samples.parquet``
    (each Saltelli sample, its point and the metric) and ``sensitivity.parquet``.
    The metric of a sample is its mean over ``seeds`` replicates.
    """
    from simweb.recorder import atomic_write
    from simweb.scenario.load import load_scenario
    from simweb.sweep import Point, replicate_seed, run_into

    path = Path(path)
    base = load_scenario(path, overrides, seed=seed)
    text = path.read_text(encoding="utf-8")
    params = parse_params(text, specs, source=str(path), overrides=overrides)
    X = saltelli(params, samples, seed=base.run.seed)
    real = [j for j, p in enumerate(params) if p.path != GEN]
    gen_col = next((j for j, p in enumerate(params) if p.path == GEN), None)
    if gen_col is not None and at != "last":
        raise SimwebError("--at: the generation is a parameter (--param gen=...); leave --at out")
    if gen_col is not None and round(params[gen_col].high) > base.run.ticks - 1:
        raise SimwebError(f"--param gen: a run of {base.run.ticks} ticks has generations below {base.run.ticks}; "
                          f"raise run.ticks to read {round(params[gen_col].high)}")

    # one point per distinct set of rounded values × replicate; samples that coincide share it
    settings: dict[tuple[str, ...], int] = {}
    sample_setting = []
    for row in X:
        key = tuple(params[j].raw(row[j]) for j in real)
        sample_setting.append(settings.setdefault(key, len(settings)))
    points = []
    for key, s in settings.items():
        grid = tuple(zip([params[j].path for j in real], key)) + tuple((o.split("=", 1)[0], o.split("=", 1)[1])
                                                                     for o in overrides)
        for r in range(seeds):
            points.append(Point(len(points), grid, r, replicate_seed(base.run.seed, r) if seeds > 1 else base.run.seed))
    from simweb.sweep import validate_points

    validate_points(text, points, source=str(path))
    spec = {"kind": "sensitivity", "scenario": text, "params": list(specs), "samples": samples, "seeds": seeds,
            "seed": base.run.seed, "overrides": list(overrides)}
    status = run_into(out, text, str(path), points, spec, workers=workers, on_done=on_done, executor=executor,
                      address=address, light=True)
    failed = status.filter(pl.col("state") != "done")
    if failed.height:
        first = failed.row(0, named=True)
        raise SimwebError(f"{failed.height} of {status.height} runs failed (see {Path(out) / 'status.parquet'}; "
                          f"rerun to retry); {first['name']}: {first['error']}")
    frame = pl.read_parquet(Path(out) / "generations.parquet")
    Y, table = _outputs(frame, X, params, sample_setting, seeds, metric=metric, at=at, lab=lab, gen_col=gen_col)
    atomic_write(Path(out) / "samples.parquet", table)
    indices = sobol_indices(params, Y, seed=base.run.seed, metric=metric, at=at)
    atomic_write(Path(out) / "sensitivity.parquet", indices)
    return indices


def _outputs(frame: pl.DataFrame, X: np.ndarray, params: Sequence[Param], sample_setting: list[int], seeds: int,
             *, metric: str, at: str, lab: str | None, gen_col: int | None) -> tuple[np.ndarray, pl.DataFrame]:
    """The metric of every sample: its run(s) read at ``at`` (or at the sampled generation), mean over seeds."""
    from simweb.compare import _check_metric, _pick, parse_at
    from simweb.scenario.load import _did_you_mean

    _check_metric(frame, metric)
    labs = list(dict.fromkeys(frame["lab"].to_list()))
    lab = lab or labs[0]
    if lab not in labs:
        raise SimwebError(f"--lab: no lab {lab!r}{_did_you_mean(lab, labs)}; labs: {', '.join(labs)}")
    frame = frame.filter(pl.col("lab") == lab).with_columns((pl.col("point") // seeds).alias("setting"))
    if gen_col is None:
        picked = _pick(frame, parse_at(at), ["setting"])
        by_setting = dict(picked.group_by("setting").agg(pl.col(metric).mean()).iter_rows())
        y = [by_setting.get(s) for s in sample_setting]
    else:
        top = int(frame.group_by("point").agg(pl.col("generation").max())["generation"].min())
        high = int(round(params[gen_col].high))
        if high > top:
            raise SimwebError(f"--param gen: the runs have generations 0..{top}; raise run.ticks to read {high}")
        means = {(s, g): v for s, g, v in frame.group_by("setting", "generation").agg(pl.col(metric).mean())
                 .iter_rows()}
        y = [means.get((s, int(X[i, gen_col]))) for i, s in enumerate(sample_setting)]
    if any(v is None or not math.isfinite(v) for v in y):
        raise SimwebError(f"--metric: {metric!r} is missing or not finite for some samples of lab {lab!r}")
    Y = np.array(y, dtype=float)
    table = pl.DataFrame({"sample": np.arange(len(Y)), "setting": sample_setting,
                          **{p.path: X[:, j] for j, p in enumerate(params)}, metric: Y})
    return Y, table


def sobol_indices(params: Sequence[Param], Y: np.ndarray, *, seed: int, metric: str = "", at: str = "last",
                  resamples: int = 1000) -> pl.DataFrame:
    """First-order and total Sobol indices with 95 % bootstrap intervals (SALib ``analyze.sobol``)."""
    from SALib.analyze import sobol

    if np.var(Y) == 0:
        raise SimwebError(f"--metric: {metric!r} is the same in every sample; no parameter moves it")
    res = sobol.analyze(_problem(params), Y, calc_second_order=False, num_resamples=resamples, conf_level=0.95,
                        seed=seed % 2**32)
    return pl.DataFrame({
        "param": [p.path for p in params], "low": [p.low for p in params], "high": [p.high for p in params],
        "integer": [p.integer for p in params], "metric": [metric] * len(params), "at": [at] * len(params),
        "S1": res["S1"], "S1_conf": res["S1_conf"], "ST": res["ST"], "ST_conf": res["ST_conf"],
        "samples": [len(Y)] * len(params),
    }).with_columns(pl.col("S1_conf", "ST_conf").fill_nan(0.0))


def print_indices(table: pl.DataFrame, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    first = table.row(0, named=True)
    view = Table(title=f"Sobol indices of {first['metric']} at {first['at']} ({first['samples']} samples; "
                       "95 % bootstrap intervals)", title_justify="left")
    for c in ("parameter", "range", "first order S1", "total ST"):
        view.add_column(c, justify="left" if c == "parameter" else "right")
    for r in table.sort("ST", descending=True).iter_rows(named=True):
        view.add_row(escape(r["param"]), f"{r['low']:g} – {r['high']:g}", f"{r['S1']:.3f} ± {r['S1_conf']:.3f}",
                     f"{r['ST']:.3f} ± {r['ST_conf']:.3f}")
    console.print(view)
    console.print("ST ≈ 0 (within its interval): the parameter cannot matter on this range; ST − S1: its share "
                  "through interactions", highlight=False)
