"""Is policy A better than policy B? Paired comparisons of arms in a run or a sweep.

An *arm* is one lab in a run, or one grid point × lab in a sweep. Each arm is
compared with a baseline arm on one metric read at one moment (the last
generation, generation N, or the model in use at tick T). Arms that share seeds
are compared *paired by seed*: simweb's seed tree gives grid points with the
same replicate seed the same streams wherever the policy does not change them
(common random numbers), so the per-seed difference cancels most of the noise.
Arms without shared seeds get Welch's unpaired test. The tests and intervals
are scipy.stats' (``ttest_rel``, ``ttest_ind(equal_var=False)``); p-values are
adjusted across arms by Holm's step-down method (Holm 1979).

A t interval assumes the mean difference is near normal. For strongly skewed
differences (squared errors are χ²-like) it undercovers at few seeds; Cochran's
rule of thumb (n > 25·G1², G1 the skewness) says how many seeds it needs, and
the table flags comparisons below it.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from simweb.errors import SimwebError

__all__ = ["At", "parse_at", "load_frame", "compare", "compare_dir", "forest_png", "holm", "print_compare"]

CONFIDENCE = 0.95
_LEAD = {"point", "replicate", "run_id", "scenario", "seed"}  # sweep columns that are not grid values

COLUMNS = {
    "by": pl.String, "lab": pl.String, "grid": pl.String, "arm": pl.String, "baseline": pl.String,
    "metric": pl.String, "at": pl.String, "method": pl.String, "n": pl.Int64, "n_baseline": pl.Int64,
    "mean": pl.Float64, "baseline_mean": pl.Float64, "diff": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64, "p_value": pl.Float64, "p_holm": pl.Float64, "variance_reduction": pl.Float64,
    "skewness": pl.Float64, "cochran_seeds": pl.Int64, "target_halfwidth": pl.Float64,
    "seeds_needed": pl.Int64, "seeds_needed_unpaired": pl.Int64,
}


@dataclass(frozen=True)
class At:
    """When to read the metric: ``last`` generation, generation ``value``, or the model in use at tick ``value``."""

    kind: str  # "last" | "gen" | "tick"
    value: int | None = None

    def __str__(self) -> str:
        return "last" if self.kind == "last" else f"{self.kind} {self.value}"


def parse_at(text: str | At) -> At:
    """``last``, ``gen N`` / ``gen=N`` / ``genN``, ``tick T`` (also ``generation N``)."""
    if isinstance(text, At):
        return text
    raw = " ".join(str(text).split()).lower()
    if raw == "last":
        return At("last")
    match = re.fullmatch(r"(gen|generation|tick)\s*[= ]?\s*(-?\d+)", raw)
    if not match:
        raise SimwebError(f"--at: expected 'last', 'gen N' or 'tick T', got {text!r}")
    kind = "tick" if match.group(1) == "tick" else "gen"
    value = int(match.group(2))
    if value < 0:
        raise SimwebError(f"--at: {kind} must be >= 0, got {value}")
    return At(kind, value)


def load_frame(directory: str | Path) -> tuple[pl.DataFrame, str, list[str]]:
    """A run's or sweep's generations frame, its kind (``run`` / ``sweep``) and its grid columns."""
    directory = Path(directory)
    path = directory / "generations.parquet"
    if not directory.is_dir():
        raise SimwebError(f"{directory}: no such directory")
    if not path.is_file():
        raise SimwebError(f"{directory}: not a run or sweep directory (no generations.parquet)")
    frame = pl.read_parquet(path)
    if "lab" not in frame.columns or "run_id" not in frame.columns:
        raise SimwebError(f"{path}: not a simweb generations table (no lab / run_id columns)")
    if "point" in frame.columns and "replicate" in frame.columns:
        grid = [c for c in frame.columns[: frame.columns.index("run_id")] if c not in _LEAD]
        return frame, "sweep", grid
    return frame, "run", []


# ---------------------------------------------------------------- picking rows
def _check_metric(frame: pl.DataFrame, metric: str) -> None:
    from simweb.scenario.load import _did_you_mean

    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c not in _LEAD | {"generation", "tick", "point"}]
    if metric not in frame.columns:
        raise SimwebError(f"--metric: no column {metric!r}{_did_you_mean(metric, numeric)}")
    if metric not in numeric:
        raise SimwebError(f"--metric: {metric!r} is not a numeric column")
    if frame[metric].null_count() == frame.height:
        raise SimwebError(f"--metric: {metric!r} is null in every row (it does not apply to this model family)")


def _pick(frame: pl.DataFrame, at: At, arm_key: list[str]) -> pl.DataFrame:
    """One row per (arm, seed): the generation ``at`` names."""
    runs = arm_key + ["seed"]
    if at.kind == "last":
        return frame.filter(pl.col("generation") == pl.col("generation").max().over(runs))
    if at.kind == "gen":
        top = frame.group_by(arm_key).agg(pl.col("generation").max())["generation"].min()
        if at.value > top:
            raise SimwebError(f"--at: gen {at.value} is out of range; every arm has generations 0..{top}")
        return frame.filter(pl.col("generation") == at.value)
    first, last = frame.group_by(arm_key).agg(pl.col("tick").min())["tick"].max(), frame["tick"].max()
    if not first <= at.value <= last:
        raise SimwebError(f"--at: tick {at.value} is out of range; every arm has a model from tick {first} to {last}")
    before = frame.filter(pl.col("tick") <= at.value)
    return before.filter(pl.col("tick") == pl.col("tick").max().over(runs))


def _grid_label(row: dict, grid: list[str]) -> str:
    return ", ".join(f"{g}={row[g]}" for g in grid)


# ---------------------------------------------------------------- statistics
def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979); NaN stays NaN and is not counted."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _seeds_for(halfwidth: float, sd: float, df_of=lambda m: m - 1) -> int | None:
    """Fewest seeds m >= 2 with t(0.975, df) · sd / √m <= halfwidth."""
    if not (halfwidth > 0 and np.isfinite(sd)):
        return None
    if sd == 0:
        return 2
    q = 1 - (1 - CONFIDENCE) / 2
    m = max(2, math.ceil((stats.norm.ppf(q) * sd / halfwidth) ** 2))
    while stats.t.ppf(q, df_of(m)) * sd / math.sqrt(m) > halfwidth:
        m += 1
    return m


def _contrast(a: dict[int, float], b: dict[int, float], halfwidth: float | None) -> dict:
    """Arm ``a`` minus baseline ``b``, values keyed by seed."""
    common = sorted(set(a) & set(b))
    xa_all, xb_all = np.array(list(a.values())), np.array(list(b.values()))
    out = {"mean": float(xa_all.mean()), "baseline_mean": float(xb_all.mean()), "n_baseline": len(b)}
    if len(common) >= 2:
        xa, xb = np.array([a[s] for s in common]), np.array([b[s] for s in common])
        d = xa - xb
        sd_d, sd_u = float(d.std(ddof=1)), float(math.sqrt(xa.var(ddof=1) + xb.var(ddof=1)))
        out.update(method="paired", n=len(common), diff=float(d.mean()))
        if sd_d > 0:
            res = stats.ttest_rel(xa, xb)
            ci = res.confidence_interval(CONFIDENCE)
            skew = float(stats.skew(d, bias=False)) if len(d) >= 3 else float("nan")
            out.update(ci_low=float(ci.low), ci_high=float(ci.high), p_value=float(res.pvalue),
                       variance_reduction=sd_u**2 / sd_d**2, skewness=skew,
                       cochran_seeds=math.ceil(25 * skew**2) if np.isfinite(skew) else None)
        else:  # identical in every seed: the policy changed nothing this metric sees
            out.update(ci_low=out["diff"], ci_high=out["diff"], p_value=float("nan"),
                       variance_reduction=float("inf") if sd_u > 0 else float("nan"))
        if halfwidth:
            out.update(seeds_needed=_seeds_for(halfwidth, sd_d), seeds_needed_unpaired=_seeds_for(halfwidth, sd_u))
        return out
    if len(a) >= 2 and len(b) >= 2:
        res = stats.ttest_ind(xa_all, xb_all, equal_var=False)
        ci = res.confidence_interval(CONFIDENCE)
        va, vb = xa_all.var(ddof=1), xb_all.var(ddof=1)
        skew = float(stats.skew(xa_all, bias=False)) if len(xa_all) >= 3 else float("nan")
        out.update(method="welch", n=len(a), diff=float(xa_all.mean() - xb_all.mean()), ci_low=float(ci.low),
                   ci_high=float(ci.high), p_value=float(res.pvalue), skewness=skew)
        if halfwidth:
            sd_u = float(math.sqrt(va + vb))
            # Welch–Satterthwaite degrees of freedom with m seeds in each arm
            df = (lambda m: (va + vb) ** 2 * (m - 1) / (va**2 + vb**2)) if va + vb > 0 else (lambda m: m - 1)
            out.update(seeds_needed=_seeds_for(halfwidth, sd_u, df), seeds_needed_unpaired=_seeds_for(halfwidth, sd_u, df))
        return out
    out.update(method="n=1", n=len(a), diff=float(xa_all.mean() - xb_all.mean()))
    return out


def compare(frame: pl.DataFrame, *, metric: str = "excess_nll", at: str | At = "last", baseline: str | None = None,
            by: str | None = None, grid: list[str] | None = None, target_halfwidth: float | None = None) -> pl.DataFrame:
    """Every arm against the baseline arm; one row per comparison (columns: :data:`COLUMNS`).

    ``frame`` is a run's or a sweep's ``generations.parquet``; ``grid`` its grid columns
    (found from the frame when None). ``by="lab"`` compares labs within each grid point
    against the lab ``baseline``; ``by="grid"`` compares grid points within each lab
    against the grid point ``baseline`` (written ``path=value, ...`` or just its values).
    The default is ``grid`` for a sweep with a grid, else ``lab``; the default baseline
    is the first lab or the first grid point.
    """
    at = parse_at(at)
    if grid is None:
        grid = [c for c in frame.columns[: frame.columns.index("run_id")] if c not in _LEAD] \
            if "point" in frame.columns else []
    by = by or ("grid" if grid else "lab")
    if by not in ("lab", "grid"):
        raise SimwebError(f"--by: expected 'lab' or 'grid', got {by!r}")
    if by == "grid" and not grid:
        raise SimwebError("--by grid: this directory has no grid (a run, or a sweep without --grid); use --by lab")
    _check_metric(frame, metric)
    if target_halfwidth is not None and not target_halfwidth > 0:
        raise SimwebError(f"--target-halfwidth: expected a number > 0, got {target_halfwidth}")
    rows = _pick(frame.filter(pl.col(metric).is_not_null()), at, grid + ["lab"])
    rows = rows.with_columns(pl.struct(grid).map_elements(lambda r: _grid_label(r, grid), return_dtype=pl.String)
                             .alias("_grid") if grid else pl.lit("").alias("_grid"))
    labs = list(dict.fromkeys(frame["lab"].to_list()))
    points = list(dict.fromkeys(rows["_grid"].to_list()))
    values: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows.select("_grid", "lab", "seed", metric).iter_rows():
        values.setdefault((r[0], r[1]), {})[r[2]] = r[3]

    if by == "lab":
        arms, groups, within = labs, points, lambda group, arm: (group, arm)
    else:
        arms, groups, within = points, labs, lambda group, arm: (arm, group)
    base = _resolve_baseline(baseline, arms, by)
    out = []
    for group in groups:
        b = values.get(within(group, base))
        for arm in arms:
            a = values.get(within(group, arm))
            if arm == base or a is None or b is None:
                continue
            point, lab = within(group, arm)
            row = {"by": by, "lab": lab, "grid": point, "arm": arm, "baseline": base, "metric": metric,
                   "at": str(at), "target_halfwidth": target_halfwidth}
            row.update(_contrast(a, b, target_halfwidth))
            out.append(row)
    if not out:
        raise SimwebError(f"nothing to compare: no {by} but the baseline {base!r} has values of {metric!r}")
    table = pl.DataFrame([{k: r.get(k) for k in COLUMNS} for r in out], schema=COLUMNS, orient="row")
    return table.with_columns(pl.Series("p_holm", holm(table["p_value"].fill_null(float("nan")).to_numpy()))
                              .fill_nan(None))


def _resolve_baseline(baseline: str | None, arms: list[str], by: str) -> str:
    from simweb.scenario.load import _did_you_mean

    if baseline is None:
        return arms[0]
    if baseline in arms:
        return baseline
    if by == "grid":  # "0" names the point "reserve_fraction=0.0"; "a=1, b=x" or "1, x" a point of two axes
        wanted = [_value(v.split("=", 1)[-1]) for v in baseline.split(",")]
        for arm in arms:
            if [_value(part.split("=", 1)[1]) for part in arm.split(", ")] == wanted:
                return arm
    what = "lab" if by == "lab" else "grid point"
    hint = _did_you_mean(baseline, arms) or _did_you_mean(baseline, [", ".join(
        part.split("=", 1)[1] for part in a.split(", ")) for a in arms] if by == "grid" else [])
    raise SimwebError(f"--baseline: no {what} {baseline!r}{hint}; "
                      f"{what}s: {'; '.join(arms)}")


def _value(text: str):
    """A grid value for matching: numbers by value (``0`` = ``0.0``), anything else as stripped text."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- output
def forest_png(frame: pl.DataFrame) -> bytes:
    """A forest plot of a :func:`compare` table: each arm's difference from its baseline with its 95 % interval."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [_row_label(r) for r in frame.iter_rows(named=True)]
    n = max(1, frame.height)
    fig = Figure(figsize=(7.5, 1.2 + 0.32 * n), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    diff = frame["diff"].to_numpy().astype(float)
    lo = frame["ci_low"].fill_null(float("nan")).to_numpy().astype(float)
    hi = frame["ci_high"].fill_null(float("nan")).to_numpy().astype(float)
    has = ~np.isnan(lo)
    ax.errorbar(diff[has], y[has], xerr=[diff[has] - lo[has], hi[has] - diff[has]], fmt="o", color="C0",
                capsize=3, label=f"{CONFIDENCE:.0%} interval")
    if (~has).any():
        ax.plot(diff[~has], y[~has], "s", color="C1", label="n = 1 (no interval)")
    ax.axvline(0.0, color="0.4", lw=1, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    first = frame.row(0, named=True) if frame.height else {"metric": "", "at": "", "baseline": ""}
    ax.set_xlabel(f"{first['metric']} − baseline ({first['at']})")
    ax.set_title(f"difference from baseline {first['baseline']!s}", fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _row_label(row: dict) -> str:
    if row["by"] == "grid":
        return f"{row['grid']} · {row['lab']}"
    return f"{row['lab']} · {row['grid']}" if row["grid"] else row["lab"]


def compare_dir(directory: str | Path, *, metric: str = "excess_nll", at: str | At = "last",
                baseline: str | None = None, by: str | None = None,
                target_halfwidth: float | None = None) -> pl.DataFrame:
    """:func:`compare` on a run or sweep directory; writes ``compare.parquet`` and ``compare.png`` into it."""
    from simweb.recorder import atomic_write

    frame, _, grid = load_frame(directory)
    table = compare(frame, metric=metric, at=at, baseline=baseline, by=by, grid=grid,
                    target_halfwidth=target_halfwidth)
    atomic_write(Path(directory) / "compare.parquet", table)
    atomic_write(Path(directory) / "compare.png", forest_png(table))
    return table


def print_compare(table: pl.DataFrame, console) -> None:
    """The comparison as a terminal table, with a line saying how it was paired."""
    from rich.markup import escape
    from rich.table import Table

    first = table.row(0, named=True)
    view = Table(title=f"{first['metric']} at {first['at']}: each arm − {first['baseline']}", title_justify="left")
    halfwidth = first["target_halfwidth"]
    cols = ["arm", "method", "n", "mean", "diff", f"{CONFIDENCE:.0%} CI", "p", "p (Holm)", "var. reduction"]
    if halfwidth:
        cols.append(f"seeds for ±{halfwidth:g}")
    for c in cols:
        view.add_column(c, justify="left" if c in ("arm", "method") else "right")
    fmt = lambda v, spec: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)  # noqa: E731
    skewed = []
    for r in table.iter_rows(named=True):
        ci = "–" if r["ci_low"] is None else f"[{r['ci_low']:+.4g}, {r['ci_high']:+.4g}]"
        cells = [escape(_row_label(r)), r["method"], str(r["n"]), fmt(r["mean"], ".4g"), fmt(r["diff"], "+.4g"), ci,
                 fmt(r["p_value"], ".3g"), fmt(r["p_holm"], ".3g"),
                 fmt(r["variance_reduction"], ".2f") + ("×" if r["variance_reduction"] is not None else "")]
        if halfwidth:
            seeds = r["seeds_needed"]
            cells.append("–" if seeds is None else f"{seeds}" + (f" (unpaired {r['seeds_needed_unpaired']})"
                                                                    if r["method"] == "paired" else ""))
        view.add_row(*cells)
        if r["cochran_seeds"] is not None and r["n"] < r["cochran_seeds"]:
            skewed.append(f"{_row_label(r)} (skewness {r['skewness']:.1f}, wants n > {r['cochran_seeds']})")
    console.print(view)
    methods = set(table["method"].to_list())
    if "paired" in methods:
        console.print("paired: differences per seed (scipy.stats.ttest_rel); var. reduction = unpaired ÷ paired "
                      "variance of the difference", highlight=False)
    if "welch" in methods:
        console.print("welch: no shared seeds, unpaired (scipy.stats.ttest_ind, equal_var=False)", highlight=False)
    if "n=1" in methods:
        console.print("n=1: one seed per arm, so no interval or p-value is possible; run a sweep with --seeds N "
                      "(e.g. simweb sweep SCENARIO --seeds 10) to get them", highlight=False)
    if skewed:
        console.print("skewed differences, the t interval may undercover (Cochran: n > 25·skewness²): "
                      + "; ".join(skewed), highlight=False)
    console.print(f"p (Holm): adjusted across the {table['p_value'].is_not_null().sum()} comparisons", highlight=False)
