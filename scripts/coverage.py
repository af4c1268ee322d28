"""How often does `simweb compare`'s 95 % interval cover a difference known in closed form?

Run from the repository root::

    python scripts/coverage.py --comparison regime --repetitions 1000 --per 10 --gen 4
    python scripts/coverage.py --comparison variance --repetitions 1000 --per 10 --gen 4

One batch of paired runs goes through simweb's own loop (a sweep of
``scenarios/papers/shumailov_gaussian_unbiased.toml`` over two arms × R·per replicate
seeds, in memory); it is partitioned into R disjoint comparisons of ``per`` seeds, each
passed to ``simweb.compare.compare``, and the share of intervals that hold the closed
form's difference is reported with its binomial standard error. Comparisons:

``regime``   replace vs accumulate, metric ``mean_sq_error`` = μ² (σ = 1, n = 100, t = gen + 1):
             E[μ²] = t/n (Shumailov et al. 2024) vs (1/n) Σ_{k≤t} 1/k² (Gerstgrasser et al. 2024).
``variance`` the MLE vs the unbiased variance, replace, metric ``var_ratio`` = σ̂²/σ²:
             E = ((n−1)/n)^t vs 1 (the unbiased variance is a martingale).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from simweb.compare import compare
from simweb.sweep import default_workers, expand_grid, simulate_points

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "papers" / "shumailov_gaussian_unbiased.toml"
N = 100  # crawl_budget: samples per generation

COMPARISONS = {
    # name: (grid, metric, baseline, closed-form difference arm − baseline at t = gen + 1)
    "regime": ("labs.lab.regime=replace,accumulate", "mean_sq_error", "accumulate",
               lambda t: t / N - sum(1 / k**2 for k in range(1, t + 1)) / N),
    "variance": ("labs.lab.model.variance=mle,unbiased", "var_ratio", "unbiased",
                 lambda t: ((N - 1) / N) ** t - 1),
}


def batch(comparison: str, seeds: int, gen: int, *, workers: int, seed: int = 1002) -> pl.DataFrame:
    """The sweep's generations frame: both arms × ``seeds`` replicates, ``gen + 1`` ticks."""
    grid = COMPARISONS[comparison][0]
    text = SCENARIO.read_text(encoding="utf-8").replace("ticks = 100", f"ticks = {gen + 1}")
    points = expand_grid([grid], seeds, seed)
    return simulate_points(text, points, workers=workers, source=str(SCENARIO))


def coverage(frame: pl.DataFrame, comparison: str, gen: int, per: int) -> dict:
    """Partition the replicates into comparisons of ``per`` seeds; the share whose interval holds the truth."""
    _, metric, baseline, truth_of = COMPARISONS[comparison]
    truth = truth_of(gen + 1)
    reps = frame["replicate"].max() + 1
    groups = reps // per
    frame = frame.with_columns((pl.col("replicate") // per).alias("_group")).filter(pl.col("_group") < groups)
    hits, widths, vr = [], [], []
    for part in frame.partition_by("_group", maintain_order=True):
        row = compare(part.drop("_group"), metric=metric, at=f"gen {gen}", baseline=baseline).row(0, named=True)
        hits.append(row["ci_low"] <= truth <= row["ci_high"])
        widths.append(row["ci_high"] - row["ci_low"])
        vr.append(row["variance_reduction"])
    share = float(np.mean(hits))
    return {"comparison": comparison, "gen": gen, "per": per, "repetitions": groups, "truth": truth,
            "coverage": share, "se": math.sqrt(0.95 * 0.05 / groups), "mean_width": float(np.mean(widths)),
            "median_variance_reduction": float(np.median(vr))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comparison", choices=list(COMPARISONS), default="regime")
    ap.add_argument("--repetitions", type=int, default=1000, help="comparisons at the smallest --per")
    ap.add_argument("--per", type=int, nargs="+", default=[10], help="seeds per comparison; several give one line each, from the same batch of repetitions × min(per) seeds")
    ap.add_argument("--gen", type=int, default=4)
    ap.add_argument("--workers", type=int, default=default_workers())
    args = ap.parse_args()
    start = time.perf_counter()
    frame = batch(args.comparison, args.repetitions * min(args.per), args.gen, workers=args.workers)
    print(f"{frame.height} rows from {args.repetitions * min(args.per) * 2} runs in {time.perf_counter() - start:.0f} s")
    _, metric, _, _ = COMPARISONS[args.comparison]
    skew = stats.skew(frame.filter(pl.col("generation") == args.gen).sort("replicate")
                      .group_by("replicate", maintain_order=True).agg(pl.col(metric).first() - pl.col(metric).last())
                      [metric].to_numpy())
    print(f"skewness of the per-seed differences: {skew:.2f} (Cochran: a t interval wants n > {25 * skew**2:.0f})")
    for per in args.per:
        r = coverage(frame, args.comparison, args.gen, per)
        print(f"{r['comparison']} at gen {r['gen']}, {r['per']} seeds × {r['repetitions']} repetitions: "
              f"coverage {r['coverage']:.1%} ± {r['se']:.1%} (binomial SE at 95 %); truth {r['truth']:.5g}; "
              f"mean width {r['mean_width']:.3g}; median variance reduction {r['median_variance_reduction']:.2f}×")


if __name__ == "__main__":
    main()
