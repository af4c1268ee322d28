"""Bytes and seconds the checkpoints of a long accumulating run cost, at G and 2G generations.

The quickstart with crawl budgets of 20,000 pages, a checkpoint at every generation boundary (as with
``--out``), local executor. It counts the bytes the agents' state files take (``write_group``, wrapped) and
the driver's wall time in the checkpoint phase. A pool written whole at every checkpoint costs O(G²) bytes
over a run (2G generations: ~4× G's), one written a part at a time O(G) (~2×).

    python scripts/checkpoint_growth.py [--generations 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simweb  # noqa: E402
from simweb import checkpoint  # noqa: E402
from simweb.engine import Engine  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"


def measure(generations: int, seed: int) -> dict:
    sc = simweb.load_scenario(QUICKSTART, [f"run.ticks={2 * generations - 1}", "labs.careful.crawl_budget=20000",
                                           "labs.naive.crawl_budget=20000", "evaluation.benchmark_docs=0"], seed=seed)
    written = {"trainer": 0, "other": 0}
    original = checkpoint.write_group

    def counted(directory, group, arrays, **kwargs):
        name, digest = original(directory, group, arrays, **kwargs)
        written["trainer" if group.startswith("trainer/") else "other"] += (directory / name).stat().st_size
        return name, digest

    checkpoint.write_group = counted
    try:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Engine(sc, checkpoint_dir=Path(tmp) / "checkpoint").run().manifest
    finally:
        checkpoint.write_group = original
    return {"generations": generations, "trainer_state_mb": written["trainer"] / 2**20,
            "other_state_mb": written["other"] / 2**20, "checkpoint_s": manifest["phase_wall_s"]["checkpoint"],
            "sim_s": manifest["wall_time_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = [measure(g, args.seed) for g in (args.generations, 2 * args.generations)]
    for r in runs:
        print(f"{r['generations']:4d} generations: trainers' state files {r['trainer_state_mb']:8.1f} MB, other "
              f"states {r['other_state_mb']:6.1f} MB, checkpoint phase {r['checkpoint_s']:.2f} s, simulation "
              f"{r['sim_s']:.2f} s")
    growth = runs[1]["trainer_state_mb"] / runs[0]["trainer_state_mb"]
    print(f"trainers' bytes, 2G / G generations: {growth:.2f}x (whole pools each time: ~4x; parts: ~2x)")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "trainer_growth": growth}, indent=1))


if __name__ == "__main__":
    main()
