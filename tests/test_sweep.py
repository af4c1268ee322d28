"""Sweeps: grid × seeds, resume skips finished runs, one failing run is recorded and the rest finish."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest

from simweb.errors import ScenarioError
from simweb.sweep import expand_grid, replicate_seed
from tests.helpers import COLLAPSE


def test_grid_expansion_is_the_cartesian_product_times_seeds():
    points = expand_grid(["labs.replace.regime=replace,accumulate", "labs[0].filters=[{kind=\"dedup\"}],[]"], 3, 7)
    assert len(points) == 12 and [p.index for p in points] == list(range(12))
    assert points[0].grid == (("labs.replace.regime", "replace"), ("labs[0].filters", '[{kind="dedup"}]'))
    assert points[-1].grid == (("labs.replace.regime", "accumulate"), ("labs[0].filters", "[]"))
    seeds = [p.seed for p in points[:3]]
    assert seeds == [replicate_seed(7, r) for r in range(3)] and len(set(seeds)) == 3
    assert [p.seed for p in points[3:6]] == seeds  # every grid point sees the same replicate seeds
    assert replicate_seed(7, 0) != replicate_seed(8, 0)
    with pytest.raises(ScenarioError):
        expand_grid(["labs.replace.regime"], 1, 0)
    with pytest.raises(ScenarioError):
        expand_grid(["a=1,", ], 1, 0)
    # two paths that would share one column name are refused before anything runs
    with pytest.raises(ScenarioError, match="grid_labs_a_b_regime"):
        expand_grid(["labs.a-b.regime=replace", "labs.a_b.regime=replace"], 1, 0)


def _sweep(scen, out, *grid, seeds=2, executor="local"):
    args = [sys.executable, "-m", "simweb", "sweep", str(scen), "--seeds", str(seeds), "--out", str(out),
            "--workers", "2", "--executor", executor]
    for g in grid:
        args += ["--grid", g]
    return subprocess.run(args, capture_output=True, text=True)


def test_sweep_records_a_failing_run_finishes_the_rest_and_resumes(tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 3"))
    out = tmp_path / "out"
    # with a cut-off at tick 0, a replacing lab that crawls only new pages has nothing to train on at tick 1
    grid = ["labs.keep.new_only=false,true", "labs.keep.filters=[{kind=\"date_cutoff\", tick=0}]",
            "labs.keep.regime=replace", "labs.keep.reserve_fraction=0.0"]
    first = _sweep(scen, out, *grid)
    assert first.returncode == 0, first.stderr
    status = pl.read_parquet(out / "status.parquet")
    assert status["point"].to_list() == [0, 1, 2, 3]
    assert status["state"].to_list() == ["done", "done", "failed", "failed"]
    assert "nothing to train on" in status["error"][2]
    gens = pl.read_parquet(out / "generations.parquet")
    assert sorted(set(gens["point"])) == [0, 1] and "grid_labs_keep_new_only" in gens.columns
    # the same command again skips the runs already done and retries only the failed ones
    again = _sweep(scen, out, *grid)
    assert again.stderr.count("skipped") == 2
    assert pl.read_parquet(out / "generations.parquet").equals(gens)


def test_combined_frames_are_in_point_order_with_grid_columns(tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 2"))
    out = tmp_path / "out"
    proc = _sweep(scen, out, "labs.replace.crawl_budget=100,200")
    assert proc.returncode == 0, proc.stderr
    g = pl.read_parquet(out / "generations.parquet")
    assert g.columns[:3] == ["point", "replicate", "grid_labs_replace_crawl_budget"]
    assert g["point"].to_list() == sorted(g["point"].to_list())
    assert g.filter(pl.col("point") == 0)["grid_labs_replace_crawl_budget"].unique().to_list() == [100]
    # a replicate of a sweep is an ordinary run: its seed reproduces it alone
    from simweb import load_scenario, run

    row = g.filter((pl.col("point") == 3) & (pl.col("lab") == "replace"))
    alone = run(load_scenario(scen, ["labs.replace.crawl_budget=200"], seed=int(row["seed"][0]))).generations
    assert alone.filter(pl.col("lab") == "replace")["excess_nll"].to_list() == row["excess_nll"].to_list()


def test_a_different_sweep_into_the_same_directory_is_refused(tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 2"))
    out = tmp_path / "out"
    assert _sweep(scen, out, "labs.replace.crawl_budget=100", seeds=1).returncode == 0
    other = _sweep(scen, out, "labs.replace.crawl_budget=150", seeds=1)
    assert other.returncode == 2 and "different sweep" in other.stderr


@pytest.mark.slow  # starts Ray
def test_a_sweep_on_ray_tasks_equals_the_local_pool(tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 2"))
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert _sweep(scen, local, "labs.replace.crawl_budget=100,200").returncode == 0
    proc = _sweep(scen, ray, "labs.replace.crawl_budget=100,200", executor="ray")
    assert proc.returncode == 0, proc.stderr
    for name in ("generations.parquet", "ticks.parquet"):
        assert pl.read_parquet(ray / name).equals(pl.read_parquet(local / name)), name


def test_a_sweep_killed_at_a_tick_goes_on_from_that_runs_checkpoint(tmp_path):
    """SIMWEB_CRASH_AT_TICK reaches the sweep's runs: with one worker the run is in the sweep's own process, so the
    whole command dies by SIGKILL at the tick (no clean-up); the same command again finishes that run from its
    checkpoint, and the sweep equals one never interrupted."""
    import json
    import signal

    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 5"))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    args = [sys.executable, "-m", "simweb", "sweep", str(scen), "--seeds", "1", "--workers", "1", "--executor",
            "local", "--grid", "labs.replace.crawl_budget=300"]
    assert subprocess.run([*args, "--out", str(whole)], capture_output=True, text=True).returncode == 0
    killed = subprocess.run([*args, "--out", str(broken)], capture_output=True, text=True,
                            env={**os.environ, "SIMWEB_CRASH_AT_TICK": "3"})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    metas = list((broken / "runs").glob(".p*.partial/checkpoint/meta.json"))
    assert len(metas) == 1 and json.loads(metas[0].read_text())["meta"]["tick"] == 3
    again = subprocess.run([*args, "--out", str(broken)], capture_output=True, text=True)
    assert again.returncode == 0 and "went on from its checkpoint" in again.stderr, again.stderr
    for name in ("generations.parquet", "ticks.parquet"):
        assert pl.read_parquet(broken / name).equals(pl.read_parquet(whole / name)), name


@pytest.mark.slow  # starts Ray
def test_a_ray_worker_killed_during_a_sweep_loses_only_that_runs_current_generation(tmp_path):
    """Each run's Ray worker kills itself (SIGKILL) once tick 3 is complete (the test hook SIMWEB_CRASH_AT_TICK:
    a deterministic point, no polling, and no process this test did not start is touched); Ray retries the task,
    which goes on from the run's checkpoint of tick 3, and the sweep equals the local one."""
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 12"))
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    assert _sweep(scen, local, "labs.replace.crawl_budget=300", seeds=2).returncode == 0
    args = [sys.executable, "-m", "simweb", "sweep", str(scen), "--seeds", "2", "--out", str(ray_out),
            "--executor", "ray", "--grid", "labs.replace.crawl_budget=300"]
    # a Ray instance of its own (no RAY_ADDRESS): its workers inherit this environment, hook included
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"SIMWEB_CRASH_AT_TICK": "3"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("went on from its checkpoint") == 2, proc.stderr  # both runs were killed, once
    status = pl.read_parquet(ray_out / "status.parquet")
    assert (status["state"] == "done").all(), status
    assert pl.read_parquet(ray_out / "generations.parquet").equals(pl.read_parquet(local / "generations.parquet"))


def test_points_that_turn_a_mechanism_on_combine_with_those_that_do_not():
    from simweb.sweep import Point, combine

    plain = pl.DataFrame({"lab": ["a"], "x": [1.0]})
    licensed = pl.DataFrame({"lab": ["a"], "x": [2.0], "spend": [3.0]})
    points = [Point(0, (("labs.a.budget", "1"),), 0, 1), Point(1, (("labs.a.budget", "2"),), 0, 2)]
    out = combine([plain, licensed], points)
    assert out["spend"].to_list() == [None, 3.0] and out["x"].to_list() == [1.0, 2.0]
