"""The README's consent figures: Longpre et al.'s two shares over seeds, and scenarios/consent.toml's labs
side by side (mean ± SD over seeds at the last generation).  python scripts/consent_tables.py [--seeds 4]"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl

import simweb
from simweb import consent
from simweb.engine import Engine
from simweb.executors import LocalExecutor


def longpre(seeds: int) -> None:
    for seed in range(seeds):
        sc = simweb.load_scenario("scenarios/consent_longpre.toml", seed=seed)
        engine = Engine(sc, executor=LocalExecutor())
        engine.run()
        tokens, top = consent.restricted(engine.graph, engine.pages(["site_id"])["site_id"], sc.run.ticks - 1)
        print(f"longpre seed {seed}: tokens restricted {tokens:.1%}, top sources restricted {top:.1%}")


def side_by_side(seeds: int) -> None:
    rows = []
    for seed in range(seeds):
        g = simweb.run(simweb.load_scenario("scenarios/consent.toml", seed=seed)).generations
        last = g.filter(pl.col("generation") == g["generation"].max())
        base = last.filter(pl.col("lab") == "compliant")["excess_nll"][0]
        spend = g.group_by("lab").agg(pl.col("spend").sum().alias("total_spend"))
        rude = [d.get("rude") if d else None for d in last["lab_divergence"].to_list()]
        # the divergence goes on its own rows before the join, which need not keep their order
        last = last.with_columns(pl.Series("js_rude", rude, dtype=pl.Float64))
        rows.append(last.join(spend, on="lab").with_columns(
            (pl.col("excess_nll") - base).alias("vs_compliant"), pl.lit(seed).alias("seed")))
    frame = pl.concat(rows, how="diagonal_relaxed")
    summary = frame.group_by("lab", maintain_order=True).agg(
        *[f(pl.col(c)).alias(f"{c}_{n}") for c in ("blocked_human_fraction", "train_ai_fraction", "excess_nll",
                                                    "vs_compliant", "js_rude", "total_spend")
          for n, f in (("mean", lambda e: e.mean()), ("sd", lambda e: e.std()))])
    with pl.Config(tbl_cols=20, tbl_width_chars=250, float_precision=4):
        print(summary)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    longpre(args.seeds)
    side_by_side(args.seeds)
