"""Run the policies of ``my_policies.py`` from Python: a scenario built without a TOML file, on both
executors, with the policies side by side.  ``python examples/run_my_policies.py [--ticks N]``"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

import simweb

HERE = Path(__file__).resolve().parent


def scenario(ticks: int) -> "simweb.Scenario":
    """The scenario of my_policies.toml, built from plain Python values."""
    return simweb.build_scenario(
        run={"name": "my_policies_py", "seed": 5, "ticks": ticks},
        language={"vocab_size": 128, "topics": 4, "doc_length": 32},
        web={"initial_sites": 120, "sites_per_tick": 5},
        publishers=[
            {"name": "humans", "site_share": 0.4, "initial_pages": 1500, "pages_per_tick": 300,
             "ai_adoption": {"start": 0.0, "end": 0.2, "midpoint": 4.0}},
            {"name": "paraphrasing_farm", "site_share": 0.6, "initial_pages": 500, "pages_per_tick": 1200,
             "top_p": 0.95, "ai_adoption": {"start": 0.3, "end": 0.95, "midpoint": 2.0, "rate": 1.5},
             "behaviours": [{"kind": "paraphrase", "rate": 0.2}]},
        ],
        labs=[
            {"name": "plain", "crawl_budget": 1500, "model": {"alpha": 0.0}},
            {"name": "self_similarity", "crawl_budget": 1500, "model": {"alpha": 0.0},
             "filters": [{"kind": "self_similarity", "quantile": 0.7}]},
            {"name": "newest_two", "crawl_budget": 1500, "model": {"alpha": 0.0},
             "regime": {"kind": "newest_generations", "k": 2}},
            {"name": "likelihood", "crawl_budget": 1500, "model": {"alpha": 0.0},
             "filters": [{"kind": "likelihood", "target_fpr": 0.3}]},
        ],
        evaluation={"human_docs": 500, "sample_docs": 500, "benchmark_docs": 200},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=13)
    args = parser.parse_args()
    plugins = [HERE / "my_policies.py"]
    simweb.load_plugins(plugins)  # registers its kinds, so the scenario may name them
    sc = scenario(args.ticks)
    print(f"the scenario as TOML (simweb.dump_scenario): {len(simweb.dump_scenario(sc).splitlines())} lines")
    local = simweb.run(sc, executor="local", plugins=plugins)
    on_ray = simweb.run(sc, executor="ray", plugins=plugins)  # the plugins travel to every Ray worker
    same = all(getattr(local, t).equals(getattr(on_ray, t)) for t in ("generations", "ticks", "crawls"))
    print(f"local and Ray executors give identical frames: {same}")
    last = (local.generations.sort("generation").group_by("lab", maintain_order=True).last()
            .select("lab", "generation", "train_ai_fraction", "filter_recall", "excess_nll", "tail_mass_ratio"))
    with pl.Config(tbl_rows=20, float_precision=3):
        print(last)


if __name__ == "__main__":
    main()
