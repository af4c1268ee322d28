"""Peterson 2024's direction in simweb: the more humans lean on AI, the further "public knowledge" drifts.

Peterson ("AI and the Problem of Knowledge Collapse", arXiv 2404.03502): a 20 % discount on AI content moves
public knowledge's Hellinger distance from the truth from 0.09 to 0.22 in 9 generations. simweb has no price:
its analogue of a deeper discount is a larger imitation share κ of the human writers, and its distance is the
human pages' excess NLL against the truth (a KL rate, nats per token; not a Hellinger distance). This runs
scenarios/quickstart.toml with the newsrooms imitating up to κ_end and prints the newsrooms' distance at the
last tick, mean ± SE over seeds.

    PYTHONPATH=. python scripts/humans_peterson.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import polars as pl

import simweb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=19)  # nine generations of each lab (release every 2 ticks)
    args = parser.parse_args()
    base = simweb.load_scenario("scenarios/quickstart.toml")
    print("kappa_end  human_excess_nll(last tick)  human_imitation  naive excess_nll(last gen)")
    for kappa in (0.0, 0.2, 0.5, 0.8):
        drift, imit, naive = [], [], []
        for seed in range(args.seeds):
            sc = base.replace({"run.seed": 100 + seed, "run.ticks": args.ticks, "run.executor": "local",
                               "publishers.newsrooms.imitation": {"start": 0.0, "end": kappa, "midpoint": 4.0,
                                                                  "rate": 1.0}})
            res = simweb.run(sc)
            last = res.ticks.filter((pl.col("population") == "newsrooms") & (pl.col("tick") == args.ticks - 1))
            drift.append(last["human_excess_nll"][0])
            imit.append(last["human_imitation"][0])
            naive.append(res.generations.filter(pl.col("lab") == "naive")["excess_nll"][-1])
        se = np.std(drift, ddof=1) / math.sqrt(len(drift)) if len(drift) > 1 else float("nan")
        print(f"{kappa:9.1f}  {np.mean(drift):.4f} ± {se:.4f}              {np.mean(imit):.3f}            "
              f"{np.mean(naive):.4f}")


if __name__ == "__main__":
    main()
