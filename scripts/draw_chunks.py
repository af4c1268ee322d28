"""How many documents a writer should draw at once (``simweb.sampling.DRAW_CHUNK``), measured on one pinned core.

    python scripts/draw_chunks.py [--vocab 2048] [--docs 100000] [--chunks 100000,16384,4096,1024]

``NgramModel.draw`` of the same noise with each chunk size (the output checked equal), against bench.py's
plain numpy alias sampler; best of 5, alternating. A whole batch of 100,000 documents keeps a step's arrays
(800 kB each) out of the core's cache; chunks of a few thousand keep them in.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--chunks", default="100000,16384,4096,1024")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    from bench import AliasSampler, zipf_table

    from simweb import sampling
    from simweb.models.ngram import NgramModel

    rng = np.random.default_rng(0)
    table = zipf_table(args.vocab, rng=rng)
    model = NgramModel(vocab_size=args.vocab, doc_length=64, order=1)
    model.load_state_dict({"probs": table})
    model.sample(1, rng=rng)  # builds the alias tables
    ref = AliasSampler(table)
    noise = model.noise(args.docs, rng=rng)
    sizes = [int(c) for c in args.chunks.split(",")]
    times: dict[str, list[float]] = {**{str(c): [] for c in sizes}, "bare alias sampler": []}
    expected = None
    for _ in range(5):
        for c in sizes:
            sampling.DRAW_CHUNK = c
            start = time.perf_counter()
            out = model.draw(noise)
            times[str(c)].append(time.perf_counter() - start)
            expected = out if expected is None else expected
            assert np.array_equal(out, expected), c
        start = time.perf_counter()
        ref.sample(args.docs, 64, rng=rng)
        times["bare alias sampler"].append(time.perf_counter() - start)
    for name, t in times.items():
        label = name if not name.isdigit() else f"chunks of {int(name):,}"
        print(f"{label:>22}: {args.docs * 64 / min(t) / 1e6:5.1f} M tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
