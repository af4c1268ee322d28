"""Benchmarks for simweb: how large a synthetic web one laptop can simulate, and what bounds it.

Run from the repository root::

    python scripts/bench.py                         # every section, full sizes
    python scripts/bench.py --quick --only sampler  # one section, smaller sizes
    python scripts/bench.py --json runs/bench.json  # also write every figure as JSON

Sections (each prints a plain-text table and the command line that reproduces it):

``quickstart``
    ``scenarios/quickstart.toml`` end to end through the Python API
    (``simweb.load_scenario`` then ``simweb.run``), each repetition in a fresh
    interpreter so that the peak resident set size is that run's alone and no
    import or allocator state carries over. Reports the median of 3 runs of the
    process wall time (interpreter start included), the import+run time, the
    simulation-only time (``Results.manifest["wall_time_s"]``), and the peak RSS
    in MB. This is the cost a new user pays for the first run.

``sampler``
    First-order ngram sampling throughput in tokens/s. Every AI-written page on
    the simulated web is drawn token by token from a lab's model, so this loop
    bounds how many pages per tick — and so how large a web — a laptop can
    simulate. One random transition table of shape (V+1, V) (row V is the
    begin-of-document context; rows drawn from Dirichlet(0.05), a Zipf-like
    heavy tail) feeds three samplers, timed in the same process on the same
    table:

    - simweb's ``NgramModel.sample`` (alias tables, Walker 1977 / Vose 1991),
      with the one-off alias-table build excluded and reported separately;
    - a plain numpy inverse-CDF reference: one binary search per token,
      vectorised over documents by shifting row r's CDF by r so that all rows
      form one sorted array (O(log V·R) per token);
    - a plain numpy alias reference, its tables built here by a per-row Python
      Vose loop (slow to build, excluded from timing; O(1) per token).

    Tokens/s are the best of 3 repetitions. The project's goal is simweb at
    >= 0.5x the alias reference. Before timings are reported, each sampler's
    empirical first-token frequencies (and second-token marginals) are checked
    against the table within 6 standard errors for the 20 most probable tokens;
    a sampler that draws from the wrong law stops the script.

``shards``, ``pure_loop``, ``sweep``, ``transformer``
    Publishing on 1 and 2 Ray shards; the papers' smallest loops beside the same fits in bare numpy, and
    ``simweb reproduce`` (full size only); a sweep on 1 and 2 CPUs; the torch trainer beside a bare torch
    loop (each function's docstring says what it times).

Figures and ratios. ``--json`` writes every figure with the machine and commit it was measured on;
``scripts/figures.py`` turns such a file into README.md's and BENCHMARKS.md's tables, checks them,
and checks a quick run's ratios (simweb against its own references, measured in the same process)
against the documented ones. Absolute times are never compared across machines.

``web_1m``, ``web_10m``
    ``scenarios/web_1m.toml`` and ``scenarios/web_10m.toml`` end to end in a fresh process with the
    local executor, writing a run directory (in ``$SIMWEB_BENCH_DIR`` if set, else the system's
    temporary directory; removed afterwards): wall time, peak RSS, pages/s and tokens/s, the
    manifest's stage seconds and its ``page_memory`` (bytes of the page store per token byte), pages
    spilled, and the run directory's size on disk. ``--quick`` runs web_10m for 3 ticks.

``web_100m``
    ``scenarios/web_100m.toml`` (101 M pages) on a simulated cluster of two one-CPU nodes, every process's
    memory sampled: ``scripts/bench_web100m.py``. ``--quick`` runs 4 ticks.

``web_10m_ray``
    The same file on the Ray executor (a local instance, 2 shards on 2 cores): the driver's peak RSS
    (goal <= 300 MB: it holds no page) and the simulation against the local executor's (goal >= 1.5x
    faster): three runs on each executor, alternating, the ratio of the medians (``--quick``: one, 3 ticks).

``scaling``
    Weak scaling on a simulated Ray cluster of 1, 2 and 4 nodes: ``scripts/bench_scaling.py``.

``single_core``
    Issue 16's goals for one core, on one pinned core: the publish stage's tokens/s against the bare alias
    sampler (goal >= 0.6), and the quickstart's local simulation against a ``git worktree`` of the commit the
    issue started from (goal >= 1.5x faster): ``scripts/bench_single_core.py``.

``drift``
    What a moving truth costs: the quickstart with the local executor, stationary and drifting, each run in
    a fresh process, interleaved (so machine load hits both alike); the median simulation time of each and
    their ratio (goal <= 1.3x). Two drifting variants: popularity walks, births and events (the chains do not
    move, so ticks share their tables) and the same with the boosts walking too (tables rebuilt every tick).

Sections are functions registered in ``SECTIONS``; a new one takes a
:class:`Config` and returns a :class:`Section`. Nothing here sets thread counts
or seeds globally: every draw uses a generator from ``simweb.rng.stream``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "scenarios" / "quickstart.toml"


@dataclass(frozen=True)
class Config:
    quick: bool
    seed: int
    script: str  # how to name this script in a reproducing command line

    def command(self, section: str) -> str:
        parts = ["python", self.script, "--only", section, "--seed", str(self.seed)]
        return " ".join(parts + (["--quick"] if self.quick else []))


@dataclass
class Section:
    """One section's result: a table to print, notes under it, and every figure for the JSON file."""

    title: str
    header: list[str]
    rows: list[list[str]]
    figures: dict
    notes: list[str] = field(default_factory=list)
    command: str = ""


# ------------------------------------------------------------------ quickstart

def child_quickstart(arg: str) -> None:
    """Child mode: one end-to-end run (``PATH@EXECUTOR``, or ``PATH@EXECUTOR@SET|SET...`` with ``--set``
    overrides), its figures printed back as one JSON line."""
    path, executor, *rest = arg.split("@", 2)
    overrides = rest[0].split("|") if rest and rest[0] else []
    start = time.perf_counter()
    import simweb

    scenario = simweb.load_scenario(path, overrides)
    cpu = time.process_time()
    results = simweb.run(scenario, executor=executor)
    cpu = time.process_time() - cpu  # this process's CPU seconds: the whole run under local, the driver's under Ray
    total = time.perf_counter() - start
    from bench_scaling import own_peak_rss_mb

    rss_mb = own_peak_rss_mb()
    print(json.dumps({"import_run_s": total, "sim_s": results.manifest["wall_time_s"], "cpu_s": cpu,
                      "peak_rss_mb": rss_mb,
                      "pages": results.manifest["pages"], "stage_time_s": results.manifest["stage_time_s"],
                      "one_actor": results.manifest.get("one_actor", False)}))


def child_ray_floor(arg: str) -> None:
    """Child mode: Ray's own start and stop as simweb does them (a local instance), with no agents and no run."""
    start = time.perf_counter()
    from simweb.executors.ray_executor import RayExecutor

    ex = RayExecutor()
    ex.shutdown()
    print(json.dumps({"import_run_s": time.perf_counter() - start, "startup_s": ex.startup_s,
                      "shutdown_s": ex.shutdown_s}))


def bench_quickstart(cfg: Config) -> Section:
    """The quickstart under both executors, each run in a fresh process (Ray: a local cluster started and stopped)."""
    reps = 3  # the scenario has one size; --quick does not shrink it (a run takes a few seconds)
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    floor: list[dict] = []  # Ray started and stopped as simweb does it, nothing run: what no change to simweb removes
    for _ in range(reps):
        for executor in (*runs, "floor"):  # interleaved, so changes in machine load hit them alike
            child = ["ray_floor", "-"] if executor == "floor" else ["quickstart", f"{QUICKSTART}@{executor}"]
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--child", *child], capture_output=True, text=True,
                                  cwd=REPO)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"quickstart child failed (exit {proc.returncode}):\n{proc.stderr}")
            row = {"process_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}
            (floor if executor == "floor" else runs[executor]).append(row)
    keys = ("process_s", "import_run_s", "sim_s", "peak_rss_mb")
    med = {ex: {k: statistics.median(r[k] for r in rs) for k in keys} for ex, rs in runs.items()}
    rows = []
    for ex in runs:
        fmt = lambda k, spec: " ".join(format(r[k], spec) for r in runs[ex])  # noqa: E731
        rows += [[f"{ex}: process wall (interpreter + import + run)", f"{med[ex]['process_s']:.3f}", "s",
                  fmt("process_s", ".3f")],
                 [f"{ex}: simulation only (manifest wall_time_s)", f"{med[ex]['sim_s']:.3f}", "s", fmt("sim_s", ".3f")],
                 [f"{ex}: peak RSS of the driver", f"{med[ex]['peak_rss_mb']:.1f}", "MB", fmt("peak_rss_mb", ".1f")]]
    for ex in runs:
        pages = runs[ex][0]["pages"]
        rows.append([f"{ex}: pages/s, tokens/s (simulation)", f"{pages / med[ex]['sim_s']:,.0f} / "
                     f"{pages * 64 / med[ex]['sim_s']:,.0f}", "1/s", ""])
        stages = {k: statistics.median(r["stage_time_s"][k] for r in runs[ex]) for k in runs[ex][0]["stage_time_s"]}
        rows.append([f"{ex}: stage seconds (work summed over agents)",
                     " ".join(f"{k} {v:.2f}" for k, v in stages.items()), "s", ""])
    ratio_sim = med["ray"]["sim_s"] / med["local"]["sim_s"]
    ratio_all = med["ray"]["process_s"] / med["local"]["process_s"]
    floor_s = statistics.median(r["process_s"] for r in floor)
    ratio_floor = floor_s / med["local"]["process_s"]
    rows.append(["Ray alone: a process that starts and stops a local Ray instance, nothing run", f"{floor_s:.3f}", "s",
                 " ".join(f"{r['process_s']:.3f}" for r in floor)])
    return Section(
        title=f"quickstart: {QUICKSTART.relative_to(REPO)} end to end, median of {reps} fresh processes per executor",
        header=["measure", "median", "unit", "runs"],
        rows=rows,
        figures={"scenario": str(QUICKSTART.relative_to(REPO)), "reps": reps, "median": med, "runs": runs,
                 "ray_over_local_sim": ratio_sim, "ray_over_local_process": ratio_all, "ray_floor": floor,
                 "ray_floor_s": floor_s, "ray_floor_over_local_process": ratio_floor},
        notes=[f"pages on the web at the end: {runs['local'][0]['pages']}",
               f"ray / local: simulation {ratio_sim:.2f}x, whole process {ratio_all:.2f}x (goals: <= 1.25x and <= 2x); the Ray "
               "process includes starting a local cluster and the actors' worker processes",
               "the Ray runs " + ("ran whole in one actor (a small run on one node)"
                                  if all(r.get("one_actor") for r in runs["ray"]) else
                                  "were spread over host actors") + " (manifest one_actor)",
               f"Ray alone (start and stop, no agents, no run) is {ratio_floor:.2f}x the local executor's whole "
               "process: the floor under the Ray quickstart's whole-process ratio",
               "peak RSS is the driver's; Ray's actor processes come on top"],
    )


# ------------------------------------------------------------------ a moving truth

DRIFTS = {  # --set overrides of the quickstart: how its truth moves
    "stationary": "",
    "walks, births, events": "language.drift={topic_sigma=0.1, new_topics_per_tick=0.3, reserved_vocab=96, "
                             "events=[{tick=6, topic=2, surge=4.0}], half_life=2.0}",
    "... and boosts walk": "language.drift={topic_sigma=0.1, boost_sigma=0.03, new_topics_per_tick=0.3, "
                           "reserved_vocab=96, events=[{tick=6, topic=2, surge=4.0}], half_life=2.0}",
}


def bench_drift(cfg: Config) -> Section:
    """The quickstart (local executor) stationary and drifting, fresh processes, interleaved; goal <= 1.3x."""
    reps = 3 if cfg.quick else 5
    runs: dict[str, list[dict]] = {name: [] for name in DRIFTS}
    for _ in range(reps):
        for name, override in DRIFTS.items():
            arg = f"{QUICKSTART}@local" + (f"@{override}" if override else "")
            proc = subprocess.run([sys.executable, __file__, "--child", "quickstart", arg], capture_output=True,
                                  text=True, cwd=REPO)
            if proc.returncode != 0:
                raise SystemExit(f"drift child failed (exit {proc.returncode}):\n{proc.stderr}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = {name: statistics.median(r["sim_s"] for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r["cpu_s"] for r in rs) for name, rs in runs.items()}
    rows = [[name, f"{med[name]:.3f}", f"{med[name] / med['stationary']:.2f}x", f"{cpu[name]:.3f}",
             f"{cpu[name] / cpu['stationary']:.2f}x", " ".join(format(r["cpu_s"], ".3f") for r in runs[name])]
            for name in DRIFTS]
    return Section(
        title=f"drift: {QUICKSTART.relative_to(REPO)} stationary and drifting, median of {reps} fresh processes",
        header=["truth", "simulation s", "/ stationary", "CPU s", "/ stationary", "CPU s of each run"],
        rows=rows,
        figures={"scenario": str(QUICKSTART.relative_to(REPO)), "reps": reps, "overrides": DRIFTS,
                 "median_sim_s": med, "median_cpu_s": cpu, "ratio": {n: med[n] / med["stationary"] for n in DRIFTS},
                 "cpu_ratio": {n: cpu[n] / cpu["stationary"] for n in DRIFTS}, "runs": runs},
        notes=["goal: a drifting quickstart costs <= 1.3x the stationary one (issue 17)",
               "simulation time is the manifest's wall_time_s (no interpreter start, no import); CPU time is the "
               "run's own process time, which a machine shared with other work disturbs less"],
    )


# ------------------------------------------------------------------ publisher shards

def bench_shards(cfg: Config) -> Section:
    """Publishing throughput under the Ray executor with 1 and 2 publisher shards (goal: >= 1.7x on 2 CPUs)."""
    import simweb
    from simweb.engine import Engine
    from simweb.executors.ray_executor import RayExecutor

    pages = 20_000 if cfg.quick else 100_000
    # a web of 2,000 sites: 32 site blocks to share between the shards (the quickstart's 150 sites are 3 blocks,
    # and a block is the unit a shard owns: 2 blocks against 1, whatever simweb does)
    sc = simweb.load_scenario(QUICKSTART, [
        "language.vocab_size=1024", "run.ticks=8", "web.initial_sites=2000",
        f"publishers.content_farms.pages_per_tick={pages}", "publishers.newsrooms.pages_per_tick=0",
        "labs.naive.release_every=100", "labs.careful.release_every=100",
        "evaluation.benchmark_docs=0", "evaluation.human_docs=100", "evaluation.sample_docs=100"], seed=cfg.seed)
    ex = RayExecutor()
    try:
        figures = {}
        for shards in (1, 2):
            runs = [Engine(sc, executor=ex, shards=shards).run().manifest for _ in range(3)]
            best = min(runs, key=lambda m: m["phase_wall_s"]["publish"])
            n_pages = best["pages"]
            publish, sim = best["phase_wall_s"]["publish"], min(m["wall_time_s"] for m in runs)
            figures[shards] = {"publish_s": publish, "sim_s": sim, "pages": n_pages,
                               "pages_per_s": n_pages / publish, "sim_pages_per_s": n_pages / sim}
    finally:
        ex.shutdown()
    speedup = figures[2]["pages_per_s"] / figures[1]["pages_per_s"]
    sim_speedup = figures[2]["sim_pages_per_s"] / figures[1]["sim_pages_per_s"]
    return Section(
        title=f"publisher shards: {pages:,} AI pages a tick of 64 tokens (V = 1024) on 2,000 sites, 8 ticks, "
              "Ray executor, best of 3",
        header=["shards", "publishing s", "simulation s", "pages", "pages/s (publishing)"],
        rows=[[str(k), f"{v['publish_s']:.2f}", f"{v['sim_s']:.2f}", f"{v['pages']:,}", f"{v['pages_per_s']:,.0f}"]
              for k, v in figures.items()],
        figures={"pages_per_tick": pages, "sites": 2000, "by_shards": figures, "speedup_2_over_1": speedup,
                 "sim_speedup_2_over_1": sim_speedup},
        notes=[f"publishing throughput, 2 shards / 1 shard = {speedup:.2f}x (goal >= 1.7x with 2 CPUs): the driver's "
               "wall time in the publish phase (manifest phase_wall_s: the driver counting each site's pages, the counts "
               "and the models moving through the object store, the shards planning and writing the pages), best of "
               "3 runs; the whole "
               f"simulation {sim_speedup:.2f}x (it also trains and evaluates both labs at tick 0)"],
    )


# ------------------------------------------------------------------ sampler

def zipf_table(V: int, *, rng: np.random.Generator) -> np.ndarray:
    """A (V+1, V) transition table, rows ~ Dirichlet(0.05): a few tokens carry most of each row's mass."""
    table = rng.dirichlet(np.full(V, 0.05), size=V + 1)
    return table / table.sum(axis=1, keepdims=True)


class InverseCdfSampler:
    """Reference: per token, a binary search in the current row's CDF, vectorised across documents.

    Row r's CDF is stored shifted by r, so all rows concatenate into one sorted
    array and ``searchsorted(flat, u + r)`` searches row r alone.
    """

    def __init__(self, table: np.ndarray):
        R, self.V = table.shape
        cdf = np.cumsum(table, axis=1)
        cdf[:, -1] = 1.0  # no draw may fall past a row's end through rounding
        self.flat = (cdf + np.arange(R)[:, None]).ravel()

    def sample(self, n: int, L: int, *, rng: np.random.Generator) -> np.ndarray:
        V = self.V
        out = np.empty((n, L), dtype=np.uint16)
        x = np.full(n, V, dtype=np.int64)  # begin-of-document row
        for t in range(L):
            i = np.searchsorted(self.flat, rng.random(n) + x, side="right")
            # u + x can round up to x + 1 when x is large; that draw belongs to the row's last token
            x = np.minimum(i - x * V, V - 1)
            out[:, t] = x
        return out


class AliasSampler:
    """Reference: alias tables built by a plain per-row Vose loop; per token one uniform and one comparison."""

    def __init__(self, table: np.ndarray):
        R, self.V = table.shape
        thresholds, aliases = zip(*(vose(row) for row in table))
        self.threshold = np.array(thresholds, dtype=np.float64).ravel()
        self.alias = np.array(aliases, dtype=np.int64).ravel()

    def sample(self, n: int, L: int, *, rng: np.random.Generator) -> np.ndarray:
        V = self.V
        out = np.empty((n, L), dtype=np.uint16)
        x = np.full(n, V, dtype=np.int64)
        for t in range(L):
            s = rng.random(n) * V
            col = np.minimum(s.astype(np.int64), V - 1)
            cell = x * V + col
            x = np.where(s - col < self.threshold[cell], col, self.alias[cell])
            out[:, t] = x
        return out


def vose(p: np.ndarray) -> tuple[list[float], list[int]]:
    """Vose (1991) for one row: column i keeps itself with probability threshold[i], else gives alias[i]."""
    V = len(p)
    q = (p * (V / p.sum())).tolist()
    small = [i for i, v in enumerate(q) if v < 1.0]
    large = [i for i, v in enumerate(q) if v >= 1.0]
    threshold, alias = [1.0] * V, list(range(V))
    while small and large:
        s, l = small.pop(), large.pop()
        threshold[s], alias[s] = q[s], l
        q[l] -= 1.0 - q[s]
        (small if q[l] < 1.0 else large).append(l)
    return threshold, alias  # leftovers (rounding) keep threshold 1


def check_law(name: str, docs: np.ndarray, table: np.ndarray, *, top: int = 20, z_max: float = 6.0) -> float:
    """Largest |z| over the ``top`` likeliest first tokens and second-token marginals; stops the script beyond z_max."""
    n = len(docs)
    first = table[-1]
    second = first @ table[:-1]  # P(x2 = j) = Σ_i P(x1 = i) P(j | i)
    worst = 0.0
    for pos, law in ((0, first), (1, second)):
        freq = np.bincount(docs[:, pos], minlength=len(law)) / n
        for tok in np.argsort(-law)[:top]:
            z = (freq[tok] - law[tok]) / np.sqrt(law[tok] * (1 - law[tok]) / n)
            if abs(z) > z_max:
                raise SystemExit(f"sanity check FAILED: sampler {name!r}, token {tok} at position {pos}: "
                                 f"frequency {freq[tok]:.5f}, expected {law[tok]:.5f} (z = {z:+.1f}, n = {n})")
            worst = max(worst, abs(z))
    return worst


def thread_notes() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [f"threads: threadpoolctl not importable, pool info skipped (os.cpu_count() = {os.cpu_count()})"]
    return ["threads: " + "; ".join(f"{p.get('internal_api')} {p.get('num_threads')} threads ({p.get('filepath')})"
                                    for p in threadpool_info()) or "threads: no native thread pools loaded"]


def bench_sampler(cfg: Config) -> Section:
    from simweb.models import NgramModel
    from simweb.rng import stream

    V, L, reps = 2048, 64, 3  # vocabulary, tokens per document, timed repetitions per sampler
    n = 20_000 if cfg.quick else 100_000  # documents drawn at once, as a lab writing one tick's pages would
    table = zipf_table(V, rng=stream(cfg.seed, "bench", "sampler", "table"))

    builds = {}
    model = NgramModel(vocab_size=V, doc_length=L, order=1)
    model.load_state_dict({"probs": table})
    start = time.perf_counter()
    model.sample(1, rng=stream(cfg.seed, "bench", "sampler", "warm"))  # builds and caches the alias tables
    builds["simweb"] = time.perf_counter() - start
    start = time.perf_counter()
    icdf = InverseCdfSampler(table)
    builds["inverse_cdf"] = time.perf_counter() - start
    start = time.perf_counter()
    alias = AliasSampler(table)
    builds["alias_ref"] = time.perf_counter() - start

    samplers = {"simweb": lambda rng: model.sample(n, rng=rng),
                "inverse_cdf": lambda rng: icdf.sample(n, L, rng=rng),
                "alias_ref": lambda rng: alias.sample(n, L, rng=rng)}
    times = {name: [] for name in samplers}
    worst_z = {}
    for rep in range(reps):  # interleaved, so drift in machine load hits every sampler alike
        for name, draw in samplers.items():
            rng = stream(cfg.seed, "bench", "sampler", name, rep)
            start = time.perf_counter()
            docs = draw(rng)
            times[name].append(time.perf_counter() - start)
            if rep == 0:
                if docs.shape != (n, L):
                    raise SystemExit(f"sampler {name!r} returned shape {docs.shape}, expected {(n, L)}")
                worst_z[name] = check_law(name, docs, table)
            del docs

    tps = {name: n * L / min(t) for name, t in times.items()}
    labels = {"simweb": "simweb NgramModel.sample (alias)", "inverse_cdf": "numpy inverse-CDF reference",
              "alias_ref": "numpy alias reference"}
    rows = [[labels[k], f"{tps[k] / 1e6:.1f}", f"{min(times[k]):.3f}", " ".join(f"{t:.3f}" for t in times[k]),
             f"{builds[k]:.3f}", f"{worst_z[k]:.1f}"] for k in samplers]
    ratios = {"simweb_over_alias_ref": tps["simweb"] / tps["alias_ref"],
              "simweb_over_inverse_cdf": tps["simweb"] / tps["inverse_cdf"]}
    goal = "meets" if ratios["simweb_over_alias_ref"] >= 0.5 else "MISSES"
    return Section(
        title=f"sampler: first-order ngram, V={V}, {L}-token documents, {n:,} documents per call, best of {reps}",
        header=["sampler", "Mtokens/s", "best s", "all reps s", "build s", "max |z|"],
        rows=rows,
        figures={"vocab_size": V, "doc_length": L, "docs": n, "reps": reps, "tokens_per_s": tps, "times_s": times,
                 "build_s": builds, "sanity_max_abs_z": worst_z, **ratios},
        notes=[f"simweb / alias reference = {ratios['simweb_over_alias_ref']:.2f}x "
               f"(goal >= 0.5x: {goal}); simweb / inverse-CDF = {ratios['simweb_over_inverse_cdf']:.2f}x",
               "build s: simweb = first sample(1) call (alias tables for all rows, cached); inverse-CDF = cumsum; "
               "alias reference = per-row Python Vose loop. Builds are not in the timings.",
               "sanity: first-token and second-token frequencies of the 20 likeliest tokens within 6 SE "
               "of the table, for every sampler: passed",
               *thread_notes()],
    )


# ------------------------------------------------------------------ pure loop (issue: reproduce the literature)

PURE_LOOP = REPO / "scenarios" / "papers" / "shumailov_gaussian_mle.toml"
PURE_LOOPS = {"gaussian": PURE_LOOP,  # the papers' two kinds of loop: n = 100 reals, and n = 20 outcomes
              "categorical": REPO / "scenarios" / "papers" / "shumailov_fixation.toml"}


def bare_loop(sc, *, rng: np.random.Generator) -> None:
    """The scenario's loop in bare numpy: each generation samples n from the previous fit, refits by maximum
    likelihood and scores the new fit on the human sample (as the evaluator does). No web, no crawl, no
    records: the reference for what the engine adds around the same fits."""
    n, gens = sc.labs[0].crawl_budget, sc.run.ticks
    human_n = sc.evaluation.human_docs
    if sc.language.family == "gaussian":
        mu, var = sc.language.mean, sc.language.std ** 2
        human = mu + math.sqrt(var) * rng.standard_normal(human_n)
        for _ in range(gens):
            x = mu + math.sqrt(var) * rng.standard_normal(n)
            mu, var = x.mean(), x.var()
            float(-(-0.5 * ((human - mu) ** 2 / var + math.log(2 * math.pi * var))).mean())
    else:
        from simweb.language import build_language

        p = build_language(sc.language, sc.run.seed).probs
        human = np.cumsum(p).searchsorted(rng.random(human_n), side="right")
        log_floor = math.log(sc.evaluation.prob_floor)
        for _ in range(gens):
            cdf = np.cumsum(p)
            x = np.minimum(cdf.searchsorted(rng.random(n) * cdf[-1], side="right"), len(p) - 1)
            p = np.bincount(x, minlength=len(p)) / n
            with np.errstate(divide="ignore"):
                float(-np.maximum(np.log(p[human]), log_floor).mean())


def bench_pure_loop(cfg: Config) -> Section:
    """Per-generation cost of the papers' smallest loops against the same fits in bare numpy, R replicates x
    100 generations as a sweep, and (full size only) ``simweb reproduce`` at its 400 replicates.

    The literature targets run hundreds of replicates of such loops, so this cost bounds how fast
    `simweb reproduce` can be: the goals are <= 1 ms a generation and `simweb reproduce` (400 replicates,
    every target) in <= 3 minutes on 2 cores. simweb / bare is a speed ratio measured in one process,
    interleaved, so machine load hits both alike: CI checks it (scripts/figures.py --ratios).
    """
    import simweb
    from simweb.engine import Engine
    from simweb.rng import stream
    from simweb.sweep import default_workers, expand_grid, simulate_points

    reps = 5
    loops, rows = {}, []
    for kind, path in PURE_LOOPS.items():
        sc = simweb.load_scenario(path)
        Engine(sc).run()  # warm caches and imports
        ours, bare = [], []
        for rep in range(reps):  # interleaved, so drift in machine load hits both alike
            start = time.perf_counter()
            Engine(sc).run()
            ours.append((time.perf_counter() - start) / sc.run.ticks)
            start = time.perf_counter()
            bare_loop(sc, rng=stream(cfg.seed, "bench", "bare", kind, rep))
            bare.append((time.perf_counter() - start) / sc.run.ticks)
        ratio = min(bare) / min(ours)
        loops[kind] = {"scenario": str(path.relative_to(REPO)), "generations": sc.run.ticks,
                       "n": sc.labs[0].crawl_budget, "ms_per_generation": [x * 1e3 for x in ours],
                       "bare_ms_per_generation": [x * 1e3 for x in bare], "simweb_over_bare": ratio}
        rows += [[f"{kind} (n = {sc.labs[0].crawl_budget}): one generation, local executor (best of {reps} runs, "
                  "incl. run set-up)", f"{min(ours) * 1e3:.3f}", "ms", "<= 1 ms"],
                 [f"{kind}: the same fits in a bare numpy loop", f"{min(bare) * 1e3:.4f}", "ms", "-"],
                 [f"{kind}: simweb / bare numpy (speed)", f"{ratio:.3f}", "x", "-"]]
    sc = simweb.load_scenario(PURE_LOOP)
    replicates = 100 if cfg.quick else 400
    workers = default_workers()
    start = time.perf_counter()
    frame = simulate_points(PURE_LOOP.read_text(), expand_grid([], replicates, sc.run.seed), workers=workers)
    sweep_s = time.perf_counter() - start
    generations = frame.height
    rows += [[f"gaussian: {replicates} replicates x {sc.run.ticks} generations on {workers} processes",
              f"{sweep_s:.1f}", "s", "-"],
             ["generations per second in that sweep", f"{generations / sweep_s:,.0f}", "1/s", "-"]]
    figures = {"loops": loops, "ms_per_generation": loops["gaussian"]["ms_per_generation"],
               "replicates": replicates, "workers": workers, "sweep_s": sweep_s, "generations": generations}
    if not cfg.quick:
        figures["reproduce"] = reproduce_run(400, workers)
        rows.append([f"simweb reproduce --replicates 400 --workers {workers} (every target, "
                     f"{figures['reproduce']['generations']:,} generations; whole process)",
                     f"{figures['reproduce']['wall_s']:.1f}", "s", "<= 180 s"])
    return Section(
        title="pure loop: the papers' loops, gaussian (shumailov_gaussian_mle) and categorical (shumailov_fixation)",
        header=["measure", "value", "unit", "goal"],
        rows=rows,
        figures=figures,
        notes=["bare numpy: the same sampling, maximum-likelihood fit and human-sample score per generation, "
               "without the web; simweb / bare = bare time / simweb time, in one process, interleaved",
               "the sweep and reproduce include starting the worker processes (spawn) and building the frames"],
    )


def reproduce_run(replicates: int, workers: int) -> dict:
    """``simweb reproduce`` as a user runs it, in a fresh process: its wall time and its generations."""
    import tempfile

    from simweb.reproduce import TARGETS

    import simweb

    generations = sum(simweb.load_scenario(REPO / "scenarios" / "papers" / f"{t.name}.toml").run.ticks
                      for t in TARGETS) * replicates
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "simweb", "reproduce", "--replicates", str(replicates),
                               "--workers", str(workers), "--quiet", "--out", str(Path(tmp) / "table.parquet")],
                              capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: a check failed, which is the table's business, not the timing's
        raise SystemExit(f"simweb reproduce failed (exit {proc.returncode}):\n{proc.stderr}")
    return {"replicates": replicates, "workers": workers, "wall_s": wall, "generations": generations,
            "checks_passed": proc.returncode == 0}


# ------------------------------------------------------------------ sweep

def bench_sweep(cfg: Config) -> Section:
    """A sweep of 32 small runs (quickstart, 5 ticks) on 1 and on 2 CPUs: local process pool and Ray tasks."""
    import tempfile

    from simweb.sweep import run_sweep

    runs = 8 if cfg.quick else 32
    grid = ["run.ticks=5", "labs.naive.crawl_budget=1000,2000,3000,4000"]
    seeds = runs // 4
    figures = {}
    for executor in ("local", "ray"):
        for cpus in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                if executor == "ray":
                    import ray

                    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                             logging_level="ERROR")
                try:
                    status = run_sweep(QUICKSTART, grid, seeds=seeds, out=Path(tmp) / "sweep", workers=cpus,
                                       seed=cfg.seed, executor=executor)
                finally:
                    if executor == "ray":
                        ray.shutdown()
                wall = time.perf_counter() - start
            assert (status["state"] == "done").all(), status
            figures[f"{executor}_{cpus}"] = wall
    rows = [[ex, str(c), f"{figures[f'{ex}_{c}']:.1f}", f"{figures[f'{ex}_1'] / figures[f'{ex}_{c}']:.2f}x"]
            for ex in ("local", "ray") for c in (1, 2)]
    return Section(
        title=f"sweep: {runs} runs of the quickstart (5 ticks, 4 grid points x {seeds} seeds), 1 vs 2 CPUs",
        header=["executor", "CPUs", "wall s", "speed-up"],
        rows=rows, figures={"runs": runs, "ticks": 5, **figures},
        notes=["goal: >= 1.7x on 2 CPUs; wall time includes starting the worker processes (and Ray) and "
               "writing every run directory and the combined tables"],
    )


# ------------------------------------------------------------------ transformer trainer

def bench_transformer(cfg: Config) -> Section:
    """simweb's transformer fit in tokens/s beside a bare torch loop of the same model on the same batches."""
    import numpy as np
    import torch

    from simweb.language import MarkovLanguage
    from simweb.models import build_model
    from simweb.models.transformer import _threads, _torch
    from simweb.plugins import config_model
    from simweb.rng import stream
    from simweb.scenario.models import MarkovLanguage as MarkovConfig

    TransformerConfig = config_model("model", "transformer")
    _Net = _torch()[2]

    V, L, n = 64, 32, (1000 if cfg.quick else 3000)
    lang = MarkovLanguage.from_config(MarkovConfig(vocab_size=V, topics=4, doc_length=L), rng=stream(cfg.seed, "lang"))
    docs, _ = lang.sample(n, rng=stream(cfg.seed, "docs"))
    tcfg = TransformerConfig(layers=2, width=64, heads=4, epochs=2, batch_size=64, threads=2)
    tokens = tcfg.epochs * n * L

    def simweb_fit() -> float:
        start = time.perf_counter()
        build_model(tcfg, lang).fit(docs, rng=stream(cfg.seed, "fit"))
        return time.perf_counter() - start

    def bare_loop() -> float:
        gen = torch.Generator().manual_seed(0)
        with _threads(tcfg.threads):
            net = _Net(V, L, tcfg.width, tcfg.heads, tcfg.layers)
            opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=0.0)
            data = torch.as_tensor(docs.astype(np.int64))
            bos = torch.full((n, 1), V, dtype=torch.long)
            inputs = torch.cat([bos, data[:, :-1]], dim=1)
            start = time.perf_counter()
            for _ in range(tcfg.epochs):
                order = torch.randperm(n, generator=gen)
                for lo in range(0, n, tcfg.batch_size):
                    idx = order[lo:lo + tcfg.batch_size]
                    logits = net(inputs[idx])
                    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), data[idx].reshape(-1))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            return time.perf_counter() - start

    simweb_fit(), bare_loop()  # warm-up
    ours = min(simweb_fit() for _ in range(3))
    bare = min(bare_loop() for _ in range(3))
    ratio = bare / ours
    return Section(
        title=f"transformer trainer: {n} documents of {L} tokens, V = {V}, 2 layers x 64 wide, 2 epochs, 2 threads",
        header=["loop", "best s", "tokens/s"],
        rows=[["simweb TransformerModel.fit", f"{ours:.2f}", f"{tokens / ours:,.0f}"],
              ["bare torch loop, same model and batches", f"{bare:.2f}", f"{tokens / bare:,.0f}"]],
        figures={"simweb_s": ours, "bare_s": bare, "tokens": tokens, "ratio": ratio},
        notes=[f"simweb / bare = {ratio:.2f}x (goal >= 0.8x); best of 3 after a warm-up"],
    )


# ------------------------------------------------------------------ web_1m

WEB_1M = REPO / "scenarios" / "web_1m.toml"
WEB_10M = REPO / "scenarios" / "web_10m.toml"


def child_web(arg: str) -> None:
    """Child mode: one run of ``PATH@EXECUTOR[@OVERRIDE;...]`` written to a run directory; one JSON line back."""
    import shutil
    import tempfile

    path, executor, *rest = arg.split("@")
    overrides = [o for o in rest[0].split(";") if o] if rest else []
    import simweb

    tmp = tempfile.mkdtemp(prefix="simweb-bench-", dir=os.environ.get("SIMWEB_BENCH_DIR"))
    try:
        start = time.perf_counter()
        res = simweb.run(simweb.load_scenario(path, overrides), executor=executor, out=Path(tmp) / "run")
        wall = time.perf_counter() - start
        on_disk = sum(f.stat().st_size for f in (Path(tmp) / "run").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from bench_scaling import own_peak_rss_mb

    rss = own_peak_rss_mb()
    print(json.dumps({"wall_s": wall, "sim_s": res.manifest["wall_time_s"], "peak_rss_mb": rss,
                      "pages": res.manifest["pages"], "stage_time_s": res.manifest["stage_time_s"],
                      "page_memory": res.manifest["page_memory"], "disk_mb": on_disk / 2**20,
                      "cluster": res.manifest["cluster"]}))


def web_run(path: Path, *, executor: str, overrides: list[str]) -> dict:
    """One big web end to end in a fresh process, written to a run directory (checkpoints and page files on)."""
    arg = f"{path}@{executor}" + ("@" + ";".join(overrides) if overrides else "")
    proc = subprocess.run([sys.executable, __file__, "--child", "web", arg], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{path.name} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def web_section(path: Path, *, executor: str, overrides: list[str], goals: dict[str, str], title: str,
                run: dict | None = None) -> Section:
    """A big web's table, from ``run`` (one of :func:`web_run`'s) or from a run made now."""
    r = run or web_run(path, executor=executor, overrides=overrides)
    tokens = r["pages"] * 64
    mem = r["page_memory"]
    rows = [["pages", f"{r['pages']:,}", "", goals.get("pages", "-")],
            ["wall time (run + writing)", f"{r['wall_s']:.1f}", "s", goals.get("wall", "-")],
            ["peak RSS (driver; local executor, so every agent)", f"{r['peak_rss_mb']:.0f}", "MB",
             goals.get("rss", "-")],
            ["pages/s, tokens/s (simulation)", f"{r['pages'] / r['sim_s']:,.0f} / {tokens / r['sim_s']:,.0f}", "1/s",
             "-"],
            ["page store in memory / token bytes", f"{mem['bytes_per_token_byte']:.2f}", "x", "≤ 1.5"],
            ["  index / scrapers (trained ids) / resident content",
             f"{mem['index_bytes'] / 2**20:,.0f} / {mem['replica_bytes'] / 2**20:,.0f} / "
             f"{mem['content_bytes'] / 2**20:,.0f}", "MB", "-"],
            ["pages spilled to disk", f"{mem['spilled_pages']:,}", "", "-"],
            ["run directory on disk", f"{r['disk_mb']:,.0f}", "MB", "-"]]
    rows += [[f"stage: {k}", f"{v:.1f}", "s", "-"] for k, v in r["stage_time_s"].items()]
    return Section(title=title, header=["measure", "value", "unit", "goal"], rows=rows, figures=r,
                   notes=["stages are seconds of work summed over the driver and every agent (simweb/timing.py); "
                          "with the local executor they add up to most of the wall time",
                          "page store = the shards' page index + every scraper's trained ids + page content resident "
                          "in the shards; token bytes = pages x 64 tokens x 2 bytes"])


def bench_web_1m(cfg: Config) -> Section:
    """scenarios/web_1m.toml end to end in a fresh process, local executor, run directory written."""
    return web_section(WEB_1M, executor="local", overrides=[],
                       goals={"pages": "≥ 1,000,000", "wall": "≤ 120 s", "rss": "≤ 2000 MB"},
                       title=f"web_1m: {WEB_1M.relative_to(REPO)}, local executor, one fresh process")


def web_10m_overrides(cfg: Config) -> list[str]:
    return ["run.ticks=3"] if cfg.quick else []


def bench_web_10m(cfg: Config, executor: str = "local", run: dict | None = None) -> Section:
    """scenarios/web_10m.toml end to end in a fresh process (--quick: 3 ticks), spilling; on Ray: its driver's RSS."""
    ray = executor == "ray"
    return web_section(WEB_10M, executor=executor, overrides=web_10m_overrides(cfg), run=run,
                       goals={"pages": "≥ 10,000,000" if not cfg.quick else "-",
                              "rss": "≤ 300 MB (the driver)" if ray else "≤ 4000 MB"},
                       title=f"web_10m{'_ray' if ray else ''}: {WEB_10M.relative_to(REPO)}"
                             f"{' (3 ticks)' if cfg.quick else ''}, "
                             f"{'Ray executor (a local instance)' if ray else 'local executor'}, page content over "
                             "1 GB spilled to disk")


WEB_10M_ROUNDS = 3  # local and Ray runs, alternating, for the Ray section's ratio (1 with --quick)


def bench_web_10m_ray(cfg: Config) -> Section:
    """web_10m on Ray, and the simulation against the local executor's: both run ``WEB_10M_ROUNDS`` times,
    alternating, each in a fresh process; the ratio of their median simulation times, and the table of the Ray
    run with the median time (a single pair of runs moved between 1.2x and 1.6x on one commit here)."""
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    for _ in range(1 if cfg.quick else WEB_10M_ROUNDS):
        for executor in runs:
            runs[executor].append(web_run(WEB_10M, executor=executor, overrides=web_10m_overrides(cfg)))
    from bench_scaling import median_run

    local, ray = median_run(runs["local"], "sim_s"), median_run(runs["ray"], "sim_s")
    ratio = local["sim_s"] / ray["sim_s"]
    section = bench_web_10m(cfg, executor="ray", run=ray)
    section.figures.update({"local_sim_s": local["sim_s"], "local_over_ray_sim": ratio,
                            "sim_s_runs": {k: [r["sim_s"] for r in v] for k, v in runs.items()}})
    section.rows.insert(4, ["simulation, local ÷ Ray (medians of the runs)",
                            f"{local['sim_s']:.1f} ÷ {ray['sim_s']:.1f} = {ratio:.2f}", "x", "≥ 1.5"])
    section.notes.append("local and Ray runs alternate; simulation seconds of each: " + "; ".join(
        f"{k} " + " ".join(f"{r['sim_s']:.1f}" for r in v) for k, v in runs.items()))
    return section


def bench_web_100m_section(cfg: Config) -> Section:
    from bench_web100m import bench_web_100m

    return bench_web_100m(cfg)


def bench_single_core_section(cfg: Config) -> Section:
    from bench_single_core import run, section_rows

    r = run(quick=cfg.quick, seed=cfg.seed)
    header, rows, notes = section_rows(r)
    return Section(title="single core: publishing against the bare sampler; the quickstart against issue 16's start",
                   header=header, rows=rows, figures=r, notes=notes)


def bench_scaling_section(cfg: Config) -> Section:
    from bench_scaling import bench_scaling

    return bench_scaling(cfg)


# ------------------------------------------------------------------ site graph

def bench_graph(cfg: Config) -> Section:
    """Growing the site graph (the urn sampler), then building its networkx DiGraph as a BFS or PageRank crawl does
    on first use: 10^5 and 10^6 sites at once (goal: 10^6 grown and built in < 60 s)."""
    from simweb.rng import stream
    from simweb.web import SiteGraph

    rows, figures = [], {}
    for n in ([10**5] if cfg.quick else [10**5, 10**6]):
        g = SiteGraph(links_per_site=3, homophily=4.0, population_share=np.ones(2), topic_probs=np.full(64, 1 / 64))
        start = time.perf_counter()
        g.grow(n, 0, rng=stream(cfg.seed, "web", 0))
        grown = time.perf_counter() - start
        g.graph  # noqa: B018 -- the networkx DiGraph, built on first use
        seconds = time.perf_counter() - start
        figures[f"grow_{n}_s"], figures[f"grow_only_{n}_s"] = seconds, grown
        rows.append([f"{n:,} sites, 3 links each way, 64 topics: grown, then the DiGraph built", f"{seconds:.1f}", "s",
                     "< 60 s" if n == 10**6 else "-"])
        rows.append([f"  of which growing (the urns; all a random crawl's web needs)", f"{grown:.1f}", "s", "-"])
    return Section(title="site graph: SiteGraph.grow, then SiteGraph.graph", header=["measure", "value", "unit", "goal"],
                   rows=rows, figures=figures,
                   notes=["grow_N_s: growing and building the networkx DiGraph (what grow did alone before the "
                          "DiGraph was built on first use), comparable with earlier figures; grow_only_N_s: growing"])


SECTIONS = {"quickstart": bench_quickstart, "sampler": bench_sampler, "pure_loop": bench_pure_loop,
            "shards": bench_shards, "sweep": bench_sweep, "transformer": bench_transformer, "web_1m": bench_web_1m,
            "web_10m": bench_web_10m, "web_10m_ray": bench_web_10m_ray, "web_100m": bench_web_100m_section,
            "scaling": bench_scaling_section, "single_core": bench_single_core_section,
            "graph": bench_graph, "drift": bench_drift}


def machine() -> dict:
    """Where and on what the figures were measured: every figure in README.md and BENCHMARKS.md carries this."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=REPO)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO)
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), None)
    import simweb

    return {"nproc": os.cpu_count(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 2**20, 1) if mem_kib else None,
            "python": platform.python_version(), "numpy": np.__version__, "polars": _version("polars"),
            "ray": _version("ray"), "torch": _version("torch"), "simweb": simweb.__version__,
            "git": git.stdout.strip() or None, "commit": commit.stdout.strip() or None,
            "dirty": git.stdout.strip().endswith("-dirty"), "platform": platform.platform(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _version(package: str) -> str | None:
    """An installed package's version, without importing it (importing Ray or torch takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(SECTIONS)
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SystemExit(f"--only: unknown section {name!r}{hint} (sections: {', '.join(SECTIONS)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"sections to run (default: all of {', '.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="root of every random stream (default: 0)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    parser.add_argument("--child", nargs=2, metavar=("SECTION", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        children = {"quickstart": child_quickstart, "web": child_web, "ray_floor": child_ray_floor}
        if args.child[0] not in children:
            raise SystemExit(f"--child: unknown mode {args.child[0]!r}")
        children[args.child[0]](args.child[1])
        return 0

    names = parse_only(args.only)
    script = os.path.relpath(__file__) if not os.path.relpath(__file__).startswith("..") else __file__
    cfg = Config(quick=args.quick, seed=args.seed, script=script)
    info = machine()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}, numpy {info['numpy']}, "
          f"simweb {info['simweb']} ({info['git']})")
    report = {"machine": info, "argv": sys.argv, "quick": args.quick, "seed": args.seed, "sections": {}}
    for name in names:
        start = time.perf_counter()
        section = SECTIONS[name](cfg)
        section.command = cfg.command(name)
        print(f"\n== {section.title} ==")
        print(format_table(section.header, section.rows))
        for note in section.notes:
            print(f"  {note}")
        print(f"  reproduce: {section.command}   (section took {time.perf_counter() - start:.1f} s)")
        report["sections"][name] = {"title": section.title, "command": section.command, **section.figures}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
