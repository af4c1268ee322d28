"""The README's table for scenarios/humans.toml: each lab's last generation, mean over seeds.

    PYTHONPATH=. python scripts/humans_table.py [--seeds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl

import simweb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    base = simweb.load_scenario("scenarios/humans.toml")
    rows: dict[str, list[dict]] = {}
    drift = []
    for seed in range(args.seeds):
        res = simweb.run(base.replace({"run.seed": seed, "run.executor": "local"}))
        last = res.generations.filter(pl.col("generation") == pl.col("generation").max().over("lab"))
        crawls = res.crawls.filter((pl.col("purpose") == "train") & (pl.col("step") > 0))
        for row in last.iter_rows(named=True):
            lab = row["lab"]
            mine = crawls.filter(pl.col("lab") == lab)
            fpr = {f: (d / n if n else None) for f, d, n in mine.group_by("filter", maintain_order=True).agg(
                pl.col("imitating_dropped").sum(), pl.col("imitating_in").sum()).iter_rows()}
            rows.setdefault(lab, []).append({
                "train_ai_fraction": row["train_ai_fraction"], "train_imitation_fraction": row["train_imitation_fraction"],
                "excess_nll": row["excess_nll"], "recall": row["filter_recall"],
                "wm_fpr": fpr.get("watermark"), "lik_fpr": fpr.get("likelihood"), "z": row["watermark_z"]["leader"]})
        w = res.ticks.filter((pl.col("population") == "writers") & (pl.col("tick") == res.ticks["tick"].max()))
        drift.append((w["human_imitation"][0], w["human_excess_nll"][0], w["pages"][0] - w["ai_pages"][0]))
    fmt = lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"
    mean = lambda xs: None if any(x is None for x in xs) else float(np.mean(xs))
    print(f"| lab (last generation, mean of seeds 0–{args.seeds - 1}) | train AI share | train imitation share | "
          "excess NLL | filter recall | FPR on imitating humans: watermark / likelihood | z of leader's key |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for lab, rs in rows.items():
        get = lambda k: mean([r[k] for r in rs])
        print(f"| {lab} | {fmt(get('train_ai_fraction'))} | {fmt(get('train_imitation_fraction'))} | "
              f"{fmt(get('excess_nll'))} | {fmt(get('recall'))} | {fmt(get('wm_fpr'))} / {fmt(get('lik_fpr'))} | "
              f"{fmt(get('z'))} |")
    d = np.array(drift, dtype=float).mean(axis=0)
    print(f"writers at the last tick: imitation {d[0]:.3f}, excess NLL {d[1]:.3f} nats/token, {d[2]:.0f} human pages")


if __name__ == "__main__":
    main()
