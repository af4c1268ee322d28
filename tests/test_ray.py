"""The Ray executor: same agents as actors, same output as the local executor, survives agent deaths."""

from __future__ import annotations

import polars as pl
import pytest

from simweb.engine import Engine
from simweb.executors import LocalExecutor
from tests.helpers import COLLAPSE, scenario

pytestmark = pytest.mark.slow  # every test here starts a three-node Ray cluster

# two labs, two populations, a filter: enough to exercise every path, small enough to run many times
SCENARIO = COLLAPSE.replace('executor = "local"', 'executor = "ray"') + """
[[publishers]]
name = "humans"
site_share = 0.5
initial_pages = 200
pages_per_tick = 100
ai_adoption = { start = 0.0, end = 0.0 }
"""
OVERRIDES = ("web.initial_sites=150", "labs.keep.filters=[{kind=\"classifier\"}]", "labs.keep.market_share=0.5",
             "run.ticks=5")


def _frames(results) -> dict[str, pl.DataFrame]:
    return {"generations": results.generations, "ticks": results.ticks, "crawls": results.crawls}


def _assert_same(a, b) -> None:
    for name, frame in _frames(a).items():
        other = _frames(b)[name]
        assert frame.columns == other.columns, name
        for col in frame.columns:
            assert frame[col].equals(other[col]), f"{name}.{col} differs"


@pytest.fixture(scope="module")
def local_results():
    return Engine(scenario(SCENARIO, *OVERRIDES), executor=LocalExecutor(), shards=1).run()


@pytest.fixture(scope="module")
def ray_executor(ray_cluster):
    from simweb.executors.ray_executor import RayExecutor

    return RayExecutor()


@pytest.mark.parametrize("shards", [1, 2, 7])
def test_ray_output_equals_local_for_any_shard_count(ray_executor, local_results, shards):
    res = Engine(scenario(SCENARIO, *OVERRIDES), executor=ray_executor, shards=shards).run()
    assert res.manifest["executor"] == "ray" and res.manifest["shards"] == shards
    _assert_same(res, local_results)


def test_local_executor_with_many_shards_equals_one(local_results):
    res = Engine(scenario(SCENARIO, *OVERRIDES), executor=LocalExecutor(), shards=7).run()
    _assert_same(res, local_results)


def test_actors_spread_over_the_nodes_of_a_cluster(ray_executor, ray_cluster):
    import ray

    assert len([n for n in ray.nodes() if n["Alive"]]) >= 3
    engine = Engine(scenario(SCENARIO, *OVERRIDES), executor=ray_executor, shards=3)
    try:
        nodes = {ray_executor.node_of(h) for h in engine.fleet.shards + engine.fleet.scrapers + engine.fleet.trainers}
        shard_nodes = {ray_executor.node_of(h) for h in engine.fleet.shards}
        assert len(shard_nodes) >= 2 and len(nodes) >= 3, (shard_nodes, nodes)
    finally:
        for h in engine.fleet.shards + engine.fleet.scrapers + engine.fleet.trainers:
            ray_executor.kill(h)


@pytest.mark.parametrize("shards", [1, 2])
def test_agents_share_processes_one_host_per_shard_or_lab(ray_executor, shards):
    # a Ray actor is a process that costs seconds to start: a lab's scraper and trainer live with shard (lab mod
    # hosts), and with fewer shards than labs each lab still gets a host of its own (the cluster has 3 CPUs)
    engine = Engine(scenario(SCENARIO, *OVERRIDES), executor=ray_executor, shards=shards)
    fleet = engine.fleet
    try:
        hosts = [h.host for h in fleet.shards]
        assert len(set(hosts)) == shards
        labs = len(fleet.trainers)
        if shards < labs:
            hosts += [fleet.scrapers[i].host for i in range(shards, labs)]
        assert len(set(h.host for h in fleet.agents)) == len(hosts) == max(shards, labs)
        for i in range(labs):
            assert fleet.scrapers[i].host == fleet.trainers[i].host == hosts[i % len(hosts)]
    finally:
        fleet.kill()


def test_killed_shard_and_trainer_are_restored_and_the_output_is_unchanged(ray_executor, local_results, tmp_path):
    warnings: list[str] = []
    engine = Engine(scenario(SCENARIO, *OVERRIDES), executor=ray_executor, shards=2, warn=warnings.append,
                    checkpoint_dir=tmp_path / "checkpoint")
    killed = []

    def on_tick(tick: int) -> None:
        if tick == 3 and not killed:  # after generation boundary at tick 2: kill two agents
            ray_executor.kill(engine.fleet.shards[1])
            ray_executor.kill(engine.fleet.trainers[0])
            killed.append(tick)

    res = engine.run(on_tick=on_tick)
    assert killed and res.manifest["recoveries"] >= 1
    assert warnings and "restoring every agent from the checkpoint" in warnings[0]
    assert "Traceback" not in "".join(warnings)
    _assert_same(res, local_results)
    assert (tmp_path / "checkpoint" / "meta.json").is_file()


def test_without_an_output_a_small_run_recovers_from_its_temporary_checkpoint(ray_executor, local_results):
    # no output directory: checkpoints serve only this run and are taken at most every TEMPORARY_EVERY_S, so a run
    # of a few seconds has only tick 0's — a trainer killed later is restored from there, and the output is the same
    warnings: list[str] = []
    engine = Engine(scenario(SCENARIO, *OVERRIDES), executor=ray_executor, shards=2, warn=warnings.append)
    assert engine.checkpoints.temporary

    def on_tick(tick: int) -> None:
        if tick == 4 and not warnings:
            ray_executor.kill(engine.fleet.trainers[1])

    res = engine.run(on_tick=on_tick)
    assert res.manifest["recoveries"] == 1
    assert "from the checkpoint of tick 0" in warnings[0], warnings
    _assert_same(res, local_results)


# opt-outs with partial compliance, a licence and distillation: the driver's blocks, the scrapers' honour draws and
# the teacher's state (a reference nested in a named argument) must give the local executor's output
CONSENT = ("publishers.humans.opt_out={start=0.2, end=0.6, midpoint=2.0, by_reputation=2.0}", "labs.keep.compliance=0.5",
           "labs.keep.licences=[{population='humans', docs_per_generation=50, price=1.5}]",
           "labs.replace.distill=[{from='keep', docs=40}]")


def test_ray_output_equals_local_with_opt_outs_licences_and_distillation(ray_executor):
    local = Engine(scenario(SCENARIO, *OVERRIDES, *CONSENT), executor=LocalExecutor(), shards=1).run()
    res = Engine(scenario(SCENARIO, *OVERRIDES, *CONSENT), executor=ray_executor, shards=2).run()
    assert "blocked" in res.crawls["filter"].to_list() and res.generations["train_distill_docs"].sum() > 0
    _assert_same(res, local)


# humans who imitate the models (their tokens spliced in by the shards), are displaced, and a current reserve
HUMANS = ("publishers.humans.imitation={start=0.3, end=0.8, midpoint=2.0}", "publishers.humans.displacement=0.5",
          "labs.keep.reserve_docs=100", "labs.keep.reserve_fraction=0.2", "labs.keep.reserve_vintage=current",
          "labs.keep.licences=[{population='humans', docs_per_generation=50, price=1.5}]", "labs.keep.anchors=10",
          "publishers.all.launder={fraction=0.3, with='keep'}", "labs.replace.watermark={gamma=0.25}",
          "evaluation.forensics_tokens=5000")


def test_ray_output_equals_local_with_imitating_and_displaced_humans(ray_executor):
    local = Engine(scenario(SCENARIO, *OVERRIDES, *HUMANS), executor=LocalExecutor(), shards=1).run()
    res = Engine(scenario(SCENARIO, *OVERRIDES, *HUMANS), executor=ray_executor, shards=3).run()
    assert res.generations["train_imitation_fraction"].max() > 0 and res.ticks["human_imitation"].max() > 0
    _assert_same(res, local)


def test_ray_output_equals_local_with_a_moving_truth(ray_executor):
    """Walks, births and events are drawn from the seed alone: every process builds the same truth."""
    moving = (*OVERRIDES, "language.drift={topic_sigma=0.2, boost_sigma=0.1, new_topics_per_tick=1.0, "
              "reserved_vocab=40, new_topic_tokens=2, events=[{tick=2, topic=1, surge=4.0}], half_life=1.0}")
    local = Engine(scenario(SCENARIO, *moving), executor=LocalExecutor(), shards=1).run()
    assert local.generations["new_token_mass_ratio"].is_not_null().any()
    _assert_same(Engine(scenario(SCENARIO, *moving), executor=ray_executor, shards=2).run(), local)
