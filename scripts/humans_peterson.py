"""Peterson 2024's direction in simweb: the more humans lean on AI, the further "public knowledge" drifts.

Peterson ("AI and the Problem of Knowledge Collapse", arXiv 2404.03502): a 20 % discount on AI content moves
public knowledge's Hellinger distance from the truth from 0.09 to 0.22 in 9 generations. simweb has no price:
its analogue of a deeper discount is a larger imitation share κ of the human writers (more of what they
write comes from a model). Two measures:

1. categorical: K = 20 Zipf outcomes, one population whose human samples come from the truth w.p. 1 − κ and
   from the lab's model w.p. κ (plus 30 % AI pages); the lab refits on the n newest pages each tick. Public
   knowledge = the human writers' distribution (1 − κ)p + κq̂, its Hellinger distance from the truth p after
   9 generations, mean ± SE over seeds.
2. markov (tokens): scenarios/quickstart.toml with the newsrooms imitating up to κ_end; the newsrooms' new
   human pages' excess NLL against the truth at the last tick (a KL rate, not a Hellinger distance).

    PYTHONPATH=. python scripts/humans_peterson.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import polars as pl

import simweb
from simweb.language import build_language
from simweb.scenario import parse_scenario

CATEGORICAL = """
[run]
name = "peterson"
ticks = 10
executor = "local"
[language]
family = "categorical"
outcomes = 20
zipf_exponent = 1.0
[web]
initial_sites = 1
sites_per_tick = 0
[[publishers]]
name = "public"
site_share = 1.0
initial_pages = 100
pages_per_tick = 100
ai_adoption = { start = 0.3, end = 0.3 }
[[labs]]
name = "ai"
release_every = 1
crawl_budget = 100
new_only = true
model = { family = "categorical" }
[evaluation]
human_docs = 100
benchmark_docs = 0
"""


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    return float(math.sqrt(max(0.0, 1 - np.sum(np.sqrt(p * q)))))


def categorical(seeds: int) -> None:
    print("categorical (K = 20, n = 100, 30 % AI pages, 9 generations): Hellinger of the human writers from the truth")
    print("| κ | Hellinger, generation 0 | Hellinger, generation 9 | model's Hellinger, generation 9 |")
    for kappa in (0.0, 0.2, 0.5, 0.8):
        first, last, model = [], [], []
        for seed in range(seeds):
            sc = parse_scenario(CATEGORICAL, [f"run.seed={seed}",
                                                     f"publishers.public.imitation={{start={kappa}, end={kappa}}}"])
            p = build_language(sc.language, seed).probs
            g = simweb.run(sc).generations.sort("generation")
            q0, q9 = np.array(g["probs"][0]), np.array(g["probs"][-1])
            first.append(hellinger((1 - kappa) * p + kappa * q0, p))
            last.append(hellinger((1 - kappa) * p + kappa * q9, p))
            model.append(hellinger(q9, p))
        se = lambda xs: np.std(xs, ddof=1) / math.sqrt(len(xs))
        print(f"| {kappa} | {np.mean(first):.3f} ± {se(first):.3f} | {np.mean(last):.3f} ± {se(last):.3f} | "
              f"{np.mean(model):.3f} ± {se(model):.3f} |")


def markov(seeds: int) -> None:
    base = simweb.load_scenario("scenarios/quickstart.toml")
    print("markov (quickstart, 19 ticks): newsrooms' human pages at the last tick")
    print("| κ_end | excess NLL against the truth (nats/token) | imitation | naive lab's excess NLL |")
    for kappa in (0.0, 0.2, 0.5, 0.8):
        drift, imit, naive = [], [], []
        for seed in range(seeds):
            sc = base.replace({"run.seed": 100 + seed, "run.ticks": 19, "run.executor": "local",
                               "publishers.newsrooms.imitation": {"start": 0.0, "end": kappa, "midpoint": 4.0,
                                                                  "rate": 1.0}})
            res = simweb.run(sc)
            last = res.ticks.filter((pl.col("population") == "newsrooms") & (pl.col("tick") == 18))
            drift.append(last["human_excess_nll"][0])
            imit.append(last["human_imitation"][0])
            naive.append(res.generations.filter(pl.col("lab") == "naive")["excess_nll"][-1])
        se = np.std(drift, ddof=1) / math.sqrt(len(drift)) if len(drift) > 1 else float("nan")
        print(f"| {kappa} | {np.mean(drift):.4f} ± {se:.4f} | {np.mean(imit):.3f} | {np.mean(naive):.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--markov-seeds", type=int, default=3)
    args = parser.parse_args()
    categorical(args.seeds)
    if args.markov_seeds:
        markov(args.markov_seeds)


if __name__ == "__main__":
    main()
