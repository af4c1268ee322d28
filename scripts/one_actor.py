"""Where running a Ray run whole in one actor stops paying: the quickstart at 1×, 3× and 8× its pages.

    python scripts/one_actor.py [--json FILE]

For each size, in one process and one local Ray instance: the local executor's simulation time, and the Ray
executor's with the agents spread over host actors (``one_actor=False``) and in one actor (``one_actor=True``):
the simulation (``wall_time_s``) and the time the driver waits for the run (the actors' start included), best
of 2 each. The rule in
``simweb.executors.fits_one_actor`` (at most ``ONE_ACTOR_TOKENS`` tokens) comes from these figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = (1, 3, 8)


def overrides(k: int) -> list[str]:
    return [f"web.initial_sites={150 * k}", f"web.sites_per_tick={10 * k}",
            f"publishers.newsrooms.initial_pages={1500 * k}", f"publishers.newsrooms.pages_per_tick={300 * k}",
            f"publishers.content_farms.initial_pages={2500 * k}", f"publishers.content_farms.pages_per_tick={2000 * k}",
            f"labs.naive.crawl_budget={3000 * k}", f"labs.careful.crawl_budget={3000 * k}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import simweb
    from simweb.executors.ray_executor import RayExecutor

    spread, whole = RayExecutor(one_actor=False), RayExecutor(one_actor=True)
    rows = []
    try:
        for k in SIZES:
            sc = simweb.load_scenario(REPO / "scenarios" / "quickstart.toml", overrides(k))
            local = min(simweb.run(sc, executor="local").manifest["wall_time_s"] for _ in range(2))
            row = {"size": k, "local_sim_s": local}
            for name, ex in (("spread", spread), ("one_actor", whole)):
                runs = []
                for _ in range(2):
                    start = time.perf_counter()
                    res = simweb.run(sc, executor=ex)
                    runs.append((res.manifest["wall_time_s"], round(time.perf_counter() - start, 3)))
                row[f"{name}_sim_s"], row[f"{name}_wait_s"] = min(r[0] for r in runs), min(r[1] for r in runs)
            row.update(pages=res.manifest["pages"], tokens=res.manifest["pages"] * sc.language.doc_length)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        spread.shutdown()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
