"""The cost model (simweb/cost.py): refusals before any work, and estimates against measured peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import simweb
from simweb import cost
from simweb.cli import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.toml"
GiB = 2**30


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine with 16 GiB available, the current directory an empty one: results do not depend on the host."""
    monkeypatch.setattr(cost, "available_memory", lambda: 16 * GiB)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


def _refused(capsys, args: list[str], field: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"simweb: error: {field}") or f": {field}:" in lines[0], lines[0]
    return lines[0]


# the commands of issue 14 that validated and then died with allocation tracebacks (7-364 TiB)
ISSUE = [
    (["--set", "language.vocab_size=5791", "--set", "language.topics=1024", "--set", "language.classes=1024"],
     "language.topics", "about"),
    (["--set", 'labs[0].model={family="transformer",layers=48,width=4096,heads=64}'], "labs[0].model", "about"),
    (["--set", "evaluation.sample_docs=1000000000000"], "evaluation.sample_docs", "<= 10000000"),
    (["--set", "publishers[0].pages_per_tick=1000000000"], "publishers[0].pages_per_tick", "about"),
    (["--set", "labs[0].anchors=1000000000000"], "labs[0].anchors", "<= 100000000"),
    (["--set", "labs[0].anchors=100000000"], "labs[0].anchors", "about"),
    (["--shards", "4096"], "run.shards", "<= 1024"),
    (["--shards", "1024", "--executor", "ray"], "run.shards", "about"),
    (["--set", "web.initial_sites=10000000"], "web.initial_sites", "about"),
]


@pytest.mark.parametrize("extra,field,says", ISSUE, ids=[c[1] + ":" + c[2] for c in ISSUE])
def test_the_issue_s_commands_are_refused_at_once_with_one_line(machine, capsys, extra, field, says):
    args = ["run", str(QUICKSTART), "--executor", "local", *extra]
    line = _refused(capsys, args, field)
    assert says in line
    if says == "about":  # the cost model: the estimate, the available memory and the way out
        assert "GiB" in line or "TiB" in line
        assert "16.0 GiB available" in line and "--force" in line
    assert list(machine.iterdir()) == []  # nothing written


def test_a_sweep_is_refused_for_its_worst_point_before_anything_is_written(machine, capsys):
    args = ["sweep", str(QUICKSTART), "--executor", "local", "--workers", "1", "--grid", "language.topics=8,1024",
            "--grid", "language.classes=1024", "--grid", "language.vocab_size=5791"]
    _refused(capsys, args, "language.topics")
    assert list(machine.iterdir()) == []


def test_sweep_workers_multiply_the_estimate():
    sc = simweb.load_scenario(QUICKSTART, ["run.executor=local"])
    one, four = cost.estimate(sc), cost.estimate(sc, concurrent=4)
    assert four.total_bytes == 4 * one.total_bytes


def test_resume_checks_the_interrupted_run_s_scenario(machine, capsys):
    from simweb.recorder import partial_dir, start_run
    from simweb.runlock import release

    sc = simweb.load_scenario(QUICKSTART, ["language.vocab_size=5791", "language.topics=1024",
                                           "language.classes=1024"])
    start_run(machine / "run", simweb.dump_scenario(sc), overwrite=False)
    release(partial_dir(machine / "run"))
    before = sorted(p.name for p in machine.rglob("*"))
    _refused(capsys, ["resume", str(machine / "run"), "--executor", "local"], "language.topics")
    assert sorted(p.name for p in machine.rglob("*")) == before


def test_force_runs_what_the_estimate_refuses(machine, capsys, monkeypatch):
    monkeypatch.setattr(cost, "available_memory", lambda: 2**20)  # 1 MiB: every run is too big
    args = ["run", str(QUICKSTART), "--executor", "local", "--set", "run.ticks=1", "--quiet", "--out", "r"]
    _refused(capsys, args, "")
    assert not (machine / "r").exists()
    assert main(args + ["--force"]) == 0
    assert (machine / "r" / "manifest.json").is_file()


def test_validate_prints_the_estimate_after_valid(machine, capsys):
    assert main(["validate", str(QUICKSTART), "--set", "language.topics=1024", "--set", "language.classes=1024",
                 "--set", "language.vocab_size=5791"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(": valid")
    assert err[1].startswith("# estimated peak memory") and "language tables" in err[1]
    assert any("driver" in line for line in err) and "refuses it without --force" in err[-1]


def test_ray_shards_each_hold_the_language():
    sc = simweb.load_scenario(QUICKSTART, ["language.topics=64", "language.classes=64", "language.vocab_size=2048"])
    e4, e8 = (cost.estimate(sc, executor="ray", shards=s) for s in (4, 8))
    # four host actors, one per shard; the two labs' scrapers and trainers live on the first two
    assert sum(p.copies for p in e4.processes if "shard" in p.role) == 4
    assert [p.role for p in e4.processes if "naive" in p.role] == ["shard + scraper and trainer naive"]
    shard = next(p for p in e4.processes if p.role == "shard")
    assert shard.copies == 2 and shard.peak > 64 * 64 * 2048 * 16  # its own language tables
    grown = e8.total_bytes - e4.total_bytes  # four more shards (each with a smaller share of the content)
    assert 0.9 * 4 * shard.peak < grown <= 4 * shard.peak
    # 12 shards of the quickstart: the issue measured 3.4 GB
    twelve = cost.estimate(simweb.load_scenario(QUICKSTART), executor="ray", shards=12).total_bytes
    assert 1.7e9 < twelve < 6.8e9


def test_model_families_and_plugins_contribute_through_memory_bytes(tmp_path):
    sc = simweb.load_scenario(QUICKSTART, ["run.executor=local"])
    small = cost.estimate(sc).total_bytes
    third = cost.estimate(sc.replace({"labs.naive.model": {"family": "ngram", "order": 2}})).total_bytes
    assert third - small > 0.9 * 100 * 257**2 * 256 * (1 - 0.5)  # 257² contexts × 256 tokens
    plugin = tmp_path / "hungry.py"
    plugin.write_text(textwrap.dedent("""
        import numpy as np, simweb

        @simweb.filter("hungry")
        class Hungry:
            def __init__(self, config): pass
            def keep(self, batch, *, rng): return np.ones(len(batch), dtype=bool)
            @classmethod
            def memory_bytes(cls, cfg, scenario): return 2**45
    """))
    simweb.load_plugins([plugin])
    hungry = sc.replace({"labs.naive.filters": [{"kind": "hungry"}]})
    line = cost.estimate(hungry).refusal(16 * GiB)
    assert line.startswith("labs[0].filters[0]: this scenario needs about 32.0 TiB")


# ---------------------------------------------------------------- against measured peak RSS
CHILD = """
import json, resource, sys, time
import simweb
from simweb import cost
sc = simweb.load_scenario(sys.argv[1], sys.argv[2:] + ["run.executor=local"])
estimate = cost.estimate(sc)
start = time.perf_counter()
simweb.run(sc)
# VmHWM, not ru_maxrss: Linux carries the parent's size at fork into the child's ru_maxrss across exec, so a
# child of a large pytest process would report the parent's peak
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rss": hwm * 1024, "estimate": estimate.total_bytes,
                  "seconds": time.perf_counter() - start, "estimate_s": estimate.seconds}))
"""
TRANSFORMER = 'labs[0].model={family="transformer",layers=4,width=256,heads=4,epochs=1}'
SHAPES = {
    "quickstart": ["run.ticks=4"],
    "big vocab": ["run.ticks=4", "language.vocab_size=2048", "language.classes=64"],
    "many topics and classes": ["run.ticks=4", "language.topics=256", "language.classes=128"],
    "big web": ["run.ticks=4", "web.initial_sites=50000", "publishers[0].initial_pages=1000000"],
    "big evaluation": ["run.ticks=4", "evaluation.human_docs=100000", "evaluation.sample_docs=100000"],
    "ngram order 3": ["run.ticks=4", "language.vocab_size=40", 'labs[0].model={family="ngram",order=3}',
                      'labs[1].model={family="ngram",order=3}'],
    "transformer": ["run.ticks=1", TRANSFORMER, 'labs[1].model={family="transformer",layers=1,width=32,heads=4}',
                    "labs[0].crawl_budget=300", "labs[1].crawl_budget=300", "evaluation.human_docs=200",
                    "evaluation.sample_docs=20", "evaluation.benchmark_docs=0"],  # sampling recomputes every prefix
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_estimate_is_within_2x_of_the_measured_peak_rss(shape):
    # within 2x each way: the model counts the largest arrays from the code's shapes; what it leaves out
    # (interpreter heap, allocator slack, small arrays) and what it over-counts (transients that never
    # coincide) were measured at 0.8x-1.4x on these shapes, so 2x leaves room for other numpy/torch builds
    out = subprocess.run([sys.executable, "-c", CHILD, str(QUICKSTART), *SHAPES[shape]], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = got["estimate"] / got["rss"]
    print(f"{shape}: peak RSS {got['rss'] / 2**20:.0f} MiB, estimate {got['estimate'] / 2**20:.0f} MiB "
          f"({ratio:.2f}x); {got['seconds']:.1f} s, estimate {got['estimate_s']:.1f} s")
    assert 0.5 <= ratio <= 2.0, got
    # the time estimate is printed above, not asserted: a measured time depends on the machine and its load


@pytest.mark.parametrize("extra", [[], ["publishers.newsrooms.imitation={start=0.1, end=0.5}"]])
def test_the_shards_page_index_is_counted_at_the_bytes_a_page_it_holds(extra):
    # the shard index's columns (the page id among them) are the estimate's bytes a page: the imitation share
    # (float32) is one more when kept; the driver holds no page
    from simweb.engine import Engine
    from simweb.executors import LocalExecutor

    sc = simweb.load_scenario(QUICKSTART, ["run.ticks=1", *extra])
    engine = Engine(sc, executor=LocalExecutor())
    shard_index = engine.fleet.shards[0].index
    per_page = sum(shard_index.column(name).dtype.itemsize for name in shard_index.columns())
    procs = cost.estimate(sc, executor="ray", shards=2).processes
    driver = next(p for p in procs if p.role == "driver")
    assert not [part for part in driver.parts if "index" in part.what]
    shard = next(p for p in procs if "shard" in p.role)
    index = next(part for part in shard.parts if part.what == "page index")
    assert index.bytes == per_page * cost._World(sc, 2).pages // 2


def test_the_languages_sampling_tables_are_counted_at_their_bytes():
    # the truth's alias tables (its start and transition rows, one stacked pass) as built: a threshold and an
    # alias per cell, the alias in the narrowest unsigned integer that holds a column
    from simweb.engine import Engine
    from simweb.executors import LocalExecutor

    sc = simweb.load_scenario(QUICKSTART, ["run.ticks=1"])
    language = Engine(sc, executor=LocalExecutor()).context.language
    built = sum(table.nbytes() for table in language._alias())
    parts = [part for proc in cost.estimate(sc, executor="local").processes for part in proc.parts
             if part.what == "language sampling tables"]
    assert parts and all(part.bytes == built for part in parts)
