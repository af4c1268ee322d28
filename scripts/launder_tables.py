"""Laundering tables (issue 19): the watermark's mean z after paraphrase against the law, the length needed
to reach z = 4, and the recall the watermark and likelihood filters keep as ρ grows (quickstart, 7 ticks).

    PYTHONPATH=. python scripts/launder_tables.py
"""

from __future__ import annotations

import math

import polars as pl

import simweb
from tests.test_launder import _g, _laundered_z, expected_z, length_needed


def main() -> None:
    g = _g()
    print(f"g = {g:.4f} (γ = 0.25, δ = 2, V = 1024, uniform sampler)")
    print("| ρ | T | E[z] law | mean z ± SE (3000 docs) |")
    for rho in (0.0, 0.2, 0.5, 0.8):
        for T in (16, 64, 256):
            z = _laundered_z(rho, T, 3000, seed=7)
            print(f"| {rho} | {T} | {expected_z(rho, T, g):.3f} | {z.mean():.3f} ± {z.std(ddof=1) / math.sqrt(len(z)):.3f} |")
    print("| ρ | tokens needed for E[z] ≥ 4 |")
    for rho in (0.0, 0.2, 0.4, 0.5, 0.6, 0.7):
        print(f"| {rho} | {length_needed(rho, g)} |")
    base = simweb.load_scenario("scenarios/quickstart.toml")
    print("| ρ | paraphraser | watermark recall | likelihood recall |")
    for who in ("truth", "careful"):
        for rho in (0.0, 0.1, 0.3, 0.6):
            sc = base.replace({"publishers.content_farms.launder": {"fraction": rho, "with": who}, "run.ticks": 7,
                               "run.executor": "local", "labs.naive.watermark": {"gamma": 0.25, "delta": 2.0},
                               "labs.careful.filters": [{"kind": "watermark", "keys": ["naive"]}, {"kind": "likelihood"}]})
            crawls = simweb.run(sc).crawls.filter((pl.col("lab") == "careful") & (pl.col("purpose") == "train")
                                                  & (pl.col("step") > 0))
            rec = {r["filter"]: r["dropped_ai"] / r["ai_in"] for r in crawls.group_by("filter").agg(
                pl.col("dropped_ai").sum(), pl.col("ai_in").sum()).iter_rows(named=True)}
            print(f"| {rho} | {who} | {rec['watermark']:.3f} | {rec['likelihood']:.3f} |")


if __name__ == "__main__":
    main()
