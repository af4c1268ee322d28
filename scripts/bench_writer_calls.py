"""Where the one-core publish stage stands against the bare sampler: the same calls, sized as a tick gives them.

    python scripts/bench_writer_calls.py [--seed N] [--repeats K]

Issue 16's one-core goal compares the publish stage (``scripts/bench_single_core.py``) with the bare numpy alias
sampler drawing 100,000 documents a call. A tick of that web gives its writers far smaller calls: each (lab,
population) model and the truth write only their own pages of the tick. This script takes one run of the same
web (``PUBLISH_WEB``), records every draw the publish stage makes (the writer, its sampling settings and the
number of documents), and then, alternating, best of ``--repeats`` each, on one pinned core:

1. **simweb's writers** make the same calls again, each with fresh uniforms (``noise``) drawn in the call, as
   the bare sampler draws its own;
2. **the bare sampler** (``bench.AliasSampler`` at the web's V) draws the same numbers of documents, call by call;
3. **the bare sampler** draws 100,000 documents a call, as in the goal;
4. **the publish stage** itself (whole runs, the manifest's ``stage_time_s["publish"]``).

So 4 / 3 is the goal's ratio, 2 / 3 what the call sizes alone cost the bare sampler, 1 / 2 simweb's writers against
the bare sampler at equal calls (both drawing their uniforms), and 4 / 1 how much of the stage is neither: planning,
each (population, block)'s stream, copying its uniforms into the writers' order, grouping pages by writer,
storing, and the truth's sampling tables, built in its first draw of a run (the replay finds them built). The web
publishes no copies (``copy_rate`` is 0), so every page counted in 4 was drawn. Only the token families this web
uses are recorded (the ngram models and the Markov truth). One JSON line at the end.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def _record(draws: list):
    """Wrap the token families' ``draw`` so that a call made inside ``PublisherShard.publish`` is recorded as
    (the writer, its keyword arguments, documents); returns a function that undoes it."""
    from simweb.agents.publisher import PublisherShard
    from simweb.language.markov import MarkovLanguage
    from simweb.models.ngram import NgramModel

    inside = [False]
    saved = [(PublisherShard, "publish", PublisherShard.publish), (NgramModel, "draw", NgramModel.draw),
             (MarkovLanguage, "draw", MarkovLanguage.draw)]
    publish = PublisherShard.publish

    @functools.wraps(publish)
    def publishing(*args, **kwargs):
        inside[0] = True
        try:
            return publish(*args, **kwargs)
        finally:
            inside[0] = False

    def recording(draw):
        @functools.wraps(draw)
        def wrapped(self, noise, **kwargs):
            if inside[0]:
                draws.append((self, kwargs, len(noise)))
            return draw(self, noise, **kwargs)
        return wrapped

    PublisherShard.publish = publishing
    NgramModel.draw = recording(NgramModel.draw)
    MarkovLanguage.draw = recording(MarkovLanguage.draw)
    return lambda: [setattr(owner, name, fn) for owner, name, fn in saved]


def run(seed: int = 0, repeats: int = 5) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    import numpy as np

    import simweb
    from bench import AliasSampler, zipf_table
    from bench_single_core import PUBLISH_WEB
    from simweb.engine import Engine
    from simweb.executors import LocalExecutor

    sc = simweb.load_scenario(REPO / "scenarios" / "quickstart.toml", PUBLISH_WEB, seed=seed)
    width = sc.language.doc_length
    draws: list = []
    undo = _record(draws)
    try:
        Engine(sc, executor=LocalExecutor()).run()  # the recorded run (its writers' tables stay built)
    finally:
        undo()
    sizes = [n for _, _, n in draws]
    if not sizes:
        raise SystemExit("bench_writer_calls: the publish stage made no ngram or Markov draw to replay")
    rng = np.random.default_rng(seed)
    ref = AliasSampler(zipf_table(sc.language.vocab_size, rng=rng))
    times = {"writers": [], "bare_calls": [], "bare_100k": [], "publish": []}
    pages = 0
    for _ in range(repeats):
        start = time.perf_counter()
        for writer, kwargs, n in draws:
            writer.draw(writer.noise(n, rng=rng), **kwargs)
        times["writers"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for n in sizes:
            ref.sample(n, width, rng=rng)
        times["bare_calls"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ref.sample(100_000, width, rng=rng)
        times["bare_100k"].append(time.perf_counter() - start)
        manifest = Engine(sc, executor=LocalExecutor()).run().manifest
        times["publish"].append(manifest["stage_time_s"]["publish"])
        pages = manifest["pages"]
    tokens = {"writers": sum(sizes) * width, "bare_calls": sum(sizes) * width, "bare_100k": 100_000 * width,
              "publish": pages * width}
    speed = {k: tokens[k] / min(v) for k, v in times.items()}
    return {"calls": len(sizes), "documents": sum(sizes), "mean_call": sum(sizes) / len(sizes),
            "largest_call": max(sizes), "tokens_per_s": speed,
            "ratios": {"publish / bare_100k (the goal)": speed["publish"] / speed["bare_100k"],
                       "bare_calls / bare_100k (call sizes)": speed["bare_calls"] / speed["bare_100k"],
                       "writers / bare_calls (equal calls)": speed["writers"] / speed["bare_calls"],
                       "publish / writers (the rest of the stage)": speed["publish"] / speed["writers"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    r = run(args.seed, args.repeats)
    print(f"{r['calls']} draw calls in the publish stage, {r['documents']:,} documents "
          f"(mean {r['mean_call']:.0f} a call, largest {r['largest_call']:,})")
    for name, value in r["tokens_per_s"].items():
        print(f"  {name:<12} {value / 1e6:6.1f} M tokens/s")
    for name, value in r["ratios"].items():
        print(f"  {name:<44} {value:.3f}")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
