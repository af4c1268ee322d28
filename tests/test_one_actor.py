"""A small run on Ray runs whole in one actor: which runs do, the same output, progress, errors, a dead actor."""

from __future__ import annotations

import polars as pl
import pytest

import simweb
from simweb.engine import expected_pages
from simweb.errors import SimwebError
from simweb.executors import ONE_ACTOR_TOKENS, fits_one_actor
from tests.helpers import COLLAPSE, scenario

ONE_NODE = {"nodes": 1, "cpus": 2.0, "gpus": 0.0}
FRAMES = ("generations", "ticks", "crawls", "contamination")
RUN = ("run.ticks=5",)


# ------------------------------------------------------------------ which runs


def _tokens(sc) -> int:
    return expected_pages(sc) * sc.language.doc_length


def test_a_small_run_on_one_node_fits_one_actor():
    sc = scenario(COLLAPSE)
    assert _tokens(sc) < ONE_ACTOR_TOKENS
    assert fits_one_actor(sc, ONE_NODE)


def test_a_run_on_several_nodes_or_with_shards_asked_for_is_spread():
    assert not fits_one_actor(scenario(COLLAPSE), {**ONE_NODE, "nodes": 2})
    assert not fits_one_actor(scenario(COLLAPSE, "run.shards=1"), ONE_NODE)


def test_the_token_bound_is_where_the_rule_turns():
    # 2^24 tokens of 32 a page: 524,288 pages, as 74,900 at start and 6 ticks of 74,898
    assert ONE_ACTOR_TOKENS == 2**24
    at = scenario(COLLAPSE, "publishers.all.initial_pages=74900", "publishers.all.pages_per_tick=74898")
    assert _tokens(at) == ONE_ACTOR_TOKENS
    assert fits_one_actor(at, ONE_NODE)
    past = scenario(COLLAPSE, "publishers.all.initial_pages=74901", "publishers.all.pages_per_tick=74898")
    assert _tokens(past) == ONE_ACTOR_TOKENS + 32
    assert not fits_one_actor(past, ONE_NODE)


@pytest.mark.parametrize("paper, width", [("shumailov_gaussian_mle", 1), ("shumailov_categorical", 1)])
def test_a_gaussian_or_categorical_loop_counts_its_values(paper, width, tmp_path):
    """Their pages hold ``dim`` coordinates or one outcome, not ``doc_length`` tokens: the rule (and the memory
    check before any run) reads the language's width; it once failed on the missing ``doc_length``."""
    from tests.helpers import simweb_cli

    sc = simweb.load_scenario(f"scenarios/papers/{paper}.toml")
    assert sc.language.width == width and fits_one_actor(sc, ONE_NODE)
    wide = simweb.load_scenario(f"scenarios/papers/{paper}.toml", ["language.dim=3"] if "gaussian" in paper else [])
    assert wide.language.width == (3 if "gaussian" in paper else 1)
    done = simweb_cli("run", f"scenarios/papers/{paper}.toml", "--executor", "local", "--out", str(tmp_path / "r"),
                      "--quiet")
    assert done.returncode == 0, done.stderr


def test_the_memory_estimate_counts_the_layout_the_run_gets():
    from simweb import cost

    small = cost.estimate(scenario(COLLAPSE), executor="ray", cpus=2)
    assert [p.role for p in small.processes] == ["driver", "the run, whole, in one actor"]
    spread = cost.estimate(scenario(COLLAPSE), executor="ray", shards=2, cpus=2)
    assert len(spread.processes) > 2 or any(p.copies > 1 for p in spread.processes)


# ------------------------------------------------------------------ through Ray


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    return simweb.run(scenario(COLLAPSE, *RUN), out=out, executor="local"), out


def _one_actor():
    from simweb.executors.ray_executor import RayExecutor

    return RayExecutor(one_actor=True)  # the test session's cluster has three nodes: asked for, not chosen


def _same(a, b) -> None:
    for name in ("generations", "ticks", "crawls"):
        assert getattr(a, name).equals(getattr(b, name)), name


@pytest.mark.slow
def test_a_run_in_one_actor_writes_what_the_local_executor_writes(ray_cluster, local_run, tmp_path):
    local, local_out = local_run
    ticks = []
    res = simweb.run(scenario(COLLAPSE, *RUN), out=tmp_path / "run", executor=_one_actor(), on_tick=ticks.append)
    _same(res, local)
    for name in FRAMES:
        assert (tmp_path / "run" / f"{name}.parquet").read_bytes() == (local_out / f"{name}.parquet").read_bytes()
    assert ticks == [1, 2, 3, 4, 5]  # progress reaches the driver, tick by tick
    m = res.manifest
    assert m["executor"] == "ray" and m["one_actor"] is True and m["shards"] == 1 and m["recoveries"] == 0
    assert m["cluster"]["nodes"] == 3


@pytest.mark.slow
def test_a_spread_run_says_so(ray_cluster):
    from simweb.executors.ray_executor import RayExecutor

    res = simweb.run(scenario(COLLAPSE, "run.ticks=2"), executor=RayExecutor())  # three nodes: spread
    assert res.manifest["one_actor"] is False and res.manifest["shards"] == 3


@pytest.mark.parametrize("durable", [False, True], ids=["no output", "with output"])
@pytest.mark.slow
def test_a_killed_actor_is_replaced_and_the_output_is_unchanged(ray_cluster, local_run, tmp_path, durable):
    """Killed at tick 2 (the actor waits there: ``simweb_halts_at``): a new actor runs the run again — from the start
    without an output directory, from the last checkpoint with one (one at every generation) — and the frames
    are the uninterrupted run's."""
    import ray

    ex, events = _one_actor(), []

    def on_tick(tick):
        events.append(("tick", tick))
        if tick == 2 and not any(kind == "warn" for kind, _ in events):
            ray.kill(ex.whole, no_restart=True)

    on_tick.simweb_halts_at = 2
    res = simweb.run(scenario(COLLAPSE, *RUN), out=tmp_path / "run" if durable else None, executor=ex,
                     on_tick=on_tick, warn=lambda message: events.append(("warn", message)))
    _same(res, local_run[0])
    warned = [i for i, (kind, _) in enumerate(events) if kind == "warn"]
    assert len(warned) == 1 and "died" in events[warned[0]][1], events
    assert events[:warned[0]] == [("tick", 1), ("tick", 2)]  # the first actor went no further than the driver
    assert res.manifest["recoveries"] == 1
    new = [tick for _, tick in events[warned[0] + 1:]]  # what the new actor reported
    assert new == ([3, 4, 5] if durable else [1, 2, 3, 4, 5]), events


@pytest.mark.slow
def test_an_on_tick_that_raises_stops_the_actor(ray_cluster):
    import ray

    ex, seen = _one_actor(), []

    def on_tick(tick):
        seen.append(ex.whole)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simweb.run(scenario(COLLAPSE, *RUN), executor=ex, on_tick=on_tick)
    assert ex.whole is None and len(seen) == 1
    with pytest.raises(ray.exceptions.RayActorError):  # killed, not left running the rest of the run
        ray.get(seen[0].__ray_ready__.remote(), timeout=30)


@pytest.mark.slow
def test_spilled_pages_in_one_actor_are_the_local_runs_and_leave_nothing(ray_cluster, tmp_path):
    import tempfile
    from pathlib import Path

    sc = scenario(COLLAPSE, *RUN, "run.page_memory_mb=0.05")
    before = set(Path(tempfile.gettempdir()).glob("simweb-whole-*"))
    res = simweb.run(sc, executor=_one_actor())
    _same(res, simweb.run(sc, executor="local"))
    assert res.manifest["page_memory"]["spilled_pages"] > 0
    assert set(Path(tempfile.gettempdir()).glob("simweb-whole-*")) == before


@pytest.mark.slow
def test_a_run_stopped_from_the_driver_leaves_no_spilled_pages(ray_cluster):
    """Killed mid-run (here by an on_tick that raises), the actor cleans nothing up: the driver removes its
    temporary files, on its node, once it is gone."""
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("simweb-whole-*"))
    seen = []

    def on_tick(tick):
        if tick == 3:  # the actor waits here (simweb_halts_at), its spilled pages on disk
            seen.extend(f for d in set(Path(tempfile.gettempdir()).glob("simweb-whole-*")) - before
                        for f in d.rglob("*.arrow"))
            raise KeyboardInterrupt

    on_tick.simweb_halts_at = 3
    with pytest.raises(KeyboardInterrupt):
        simweb.run(scenario(COLLAPSE, *RUN, "run.page_memory_mb=0.05"), executor=_one_actor(), on_tick=on_tick)
    assert seen  # the run's spilled pages were there
    assert set(Path(tempfile.gettempdir()).glob("simweb-whole-*")) == before


@pytest.mark.slow
def test_an_error_in_the_actor_reaches_the_driver_as_itself(ray_cluster):
    from simweb import _run_whole

    ex = _one_actor()
    with pytest.raises(SimwebError, match="ticks"):
        ex.run_whole(_run_whole, {"toml": COLLAPSE.replace("ticks = 6", "ticks = 0"), "plugins": (),
                                  "checkpoint_dir": None, "resume": False},
                     warn=print, restarts=2)
    assert ex.whole is None and ex.whole_restarts == 0  # an error is the run's: not run again


@pytest.mark.slow
def test_resume_on_ray_runs_whole_from_the_checkpoint(ray_cluster, local_run, tmp_path):
    """An interrupted local run resumed on Ray in one actor: the uninterrupted run's files."""
    from simweb.recorder import partial_dir

    out = tmp_path / "run"

    def stop(tick):
        if tick == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simweb.run(scenario(COLLAPSE, *RUN), out=out, executor="local", on_tick=stop)
    assert partial_dir(out).is_dir()
    ticks = []
    res = simweb.resume(out, executor=_one_actor(), on_tick=ticks.append)
    assert res.manifest["one_actor"] is True and ticks == [4, 5]
    for name in FRAMES:
        assert pl.read_parquet(out / f"{name}.parquet").equals(pl.read_parquet(local_run[1] / f"{name}.parquet"))


def test_an_error_that_does_not_survive_pickling_keeps_its_kind_and_line():
    from simweb.errors import ScenarioError
    from simweb.executors.ray_executor import _portable

    class Odd(SimwebError):
        def __init__(self, a, b):
            super().__init__(f"{a} and {b}")

    err = ScenarioError("run.ticks", "must be at least 1", source="x.toml")
    same = _portable(err)
    assert same is err  # pickles both ways now, as itself
    import pickle

    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ScenarioError and str(back) == str(err) and back.path == "run.ticks"
    odd = _portable(Odd(1, 2))
    assert type(odd) is SimwebError and str(odd) == "1 and 2"
    other = _portable(type("Strange", (Exception,), {"__init__": lambda self, a, b: Exception.__init__(self, a)})(1, 2))
    assert type(other) is RuntimeError and "Strange: 1" in str(other)


@pytest.mark.slow  # starts Ray twice, as a user's commands do
def test_kill_9_and_resume_of_a_small_run_on_a_local_ray(tmp_path):
    """The CLI's default executor on a fresh local Ray: a small run goes whole to one actor; SIGKILL of simweb
    at tick 3 (the test hook; the actor waits there) and ``simweb resume`` give the local run's files."""
    import json
    import os
    import subprocess
    import sys

    path = tmp_path / "s.toml"
    path.write_text(COLLAPSE.replace('executor = "local"', 'executor = "ray"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "SIMWEB_CRASH_AT_TICK")}

    def simweb_cli(*args, **extra):
        return subprocess.run([sys.executable, "-m", "simweb", *map(str, args), "--quiet"], capture_output=True,
                              text=True, env={**env, **extra}, timeout=300)

    crashed = simweb_cli("run", path, "--out", tmp_path / "ray", SIMWEB_CRASH_AT_TICK="3")
    assert crashed.returncode == -9, crashed.stderr
    resumed = simweb_cli("resume", tmp_path / "ray")
    assert resumed.returncode == 0, resumed.stderr
    local = simweb_cli("run", path, "--out", tmp_path / "local", "--executor", "local")
    assert local.returncode == 0, local.stderr
    for name in ("generations", "ticks", "crawls"):
        ray_file, local_file = (tmp_path / side / f"{name}.parquet" for side in ("ray", "local"))
        assert ray_file.read_bytes() == local_file.read_bytes(), name
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["one_actor"] is True and manifest["executor"] == "ray"


def test_a_run_that_trains_transformers_is_spread():
    """Training is work the tokens do not measure: the labs train side by side when spread."""
    from pathlib import Path

    sc = simweb.load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "transformer_small.toml")
    assert _tokens(sc) < ONE_ACTOR_TOKENS
    assert not fits_one_actor(sc, ONE_NODE)


def test_the_estimate_of_a_run_to_an_object_store_is_the_spread_layout():
    """Such a run is spread even when small: its checkpoints' commits check the driver's lease."""
    from simweb import cost

    spread = cost.estimate(scenario(COLLAPSE), executor="ray", cpus=2, one_actor=False)
    assert "the run, whole, in one actor" not in [p.role for p in spread.processes]
    assert cost.estimate(scenario(COLLAPSE), executor="local", one_actor=True).processes[0].role == \
        "simweb (one process)"  # the local executor has no actor
