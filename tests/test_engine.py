"""The whole loop: collapse caused by the loop, prevented by accumulation with human data; determinism."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import simweb
import simweb.executors
from simweb.engine import Engine
from tests.helpers import COLLAPSE, MINIMAL, scenario


def _lab(results, name: str) -> pl.DataFrame:
    return results.generations.filter(pl.col("lab") == name).sort("generation")


SEEDS = 8  # independent replicates: the spread across them is the sampling error every claim below is held to
Z = 5.0  # standard errors of a mean over SEEDS replicates (t with 7 d.o.f.: about 1 in 1,000 two-sided)


def _per_seed(runs, lab: str, column: str) -> np.ndarray:
    """(seeds × generations) array of ``column`` for ``lab``."""
    return np.stack([_lab(res, lab)[column].to_numpy() for res in runs])


def _z(d: np.ndarray) -> np.ndarray:
    """The mean of paired differences over replicates (axis 0) in standard errors of that mean."""
    return d.mean(axis=0) / (d.std(axis=0, ddof=1) / np.sqrt(len(d)))


@pytest.fixture(scope="module")
def collapse_runs():
    return [simweb.run(scenario(COLLAPSE, f"run.seed={s}")) for s in range(SEEDS)]


@pytest.fixture(scope="module")
def human_runs():
    """The same labs on a web that stays human."""
    return [simweb.run(scenario(COLLAPSE, f"run.seed={s}", "publishers[0].ai_adoption.start=0.0",
                                "publishers[0].ai_adoption.end=0.0")) for s in range(SEEDS)]


def test_replace_on_own_output_collapses(collapse_runs):
    for res in collapse_runs:
        g = _lab(res, "replace")
        assert len(g) == 6
        assert g["train_ai_fraction"][0] == 0.0 and (g["train_ai_fraction"][1:] == 1.0).all()
    excess = _per_seed(collapse_runs, "replace", "excess_nll")
    tail = _per_seed(collapse_runs, "replace", "tail_mass_ratio")
    distinct = _per_seed(collapse_runs, "replace", "distinct_2")
    # each generation fit on the last one's truncated samples is further from the truth than the one before:
    # every step's mean rise is many standard errors of the spread between replicates
    rise = _z(np.diff(excess, axis=1))
    assert np.all(rise > Z), f"excess_nll should rise every generation: z = {rise}"
    fall = _z(tail[:, 0] - tail[:, -1]), _z(distinct[:, 0] - distinct[:, -1])
    assert fall[0] > Z and fall[1] > Z, f"tail mass and distinct-2 should fall: z = {fall}"


def test_accumulate_with_human_reserve_does_not_collapse(collapse_runs):
    keep_excess = _per_seed(collapse_runs, "keep", "excess_nll")
    keep_tail = _per_seed(collapse_runs, "keep", "tail_mass_ratio")
    replace_excess = _per_seed(collapse_runs, "replace", "excess_nll")
    replace_tail = _per_seed(collapse_runs, "replace", "tail_mass_ratio")
    # it never ends worse than it started (more data, half of it human, can only help its fit) ...
    assert _z(keep_excess[:, -1] - keep_excess[:, 0]) < Z, keep_excess
    # ... and its pool slowly fills with truncated AI text, so the tail thins, but far less than under replace
    assert _z(replace_excess[:, -1] - keep_excess[:, -1]) > Z
    assert _z((replace_tail[:, 0] - replace_tail[:, -1]) - (keep_tail[:, 0] - keep_tail[:, -1])) > Z


def test_without_ai_writers_replace_does_not_collapse(collapse_runs, human_runs):
    # The same lab on a web that stays human: every generation is a fit to fresh human pages of the same size, so
    # its excess NLL is stationary — the drift above comes from the loop, not from retraining as such.
    for res in human_runs:
        assert (_lab(res, "replace")["train_ai_fraction"] == 0.0).all()
    x = _per_seed(human_runs, "replace", "excess_nll")
    z = _z(x[:, 1:] - x[:, :1])
    assert np.all(np.abs(z) < Z), f"excess_nll should not move on a human web: z = {z}"
    # Tail mass is not quite stationary there: generation 0, crawled from tick 0's 600 pages, sits about 0.04
    # below the later ones (z ≈ 4 over 8 seeds). So the claim is relative: the loop loses far more tail than the
    # human web does, paired by seed.
    human_tail = _per_seed(human_runs, "replace", "tail_mass_ratio")
    loop_tail = _per_seed(collapse_runs, "replace", "tail_mass_ratio")
    assert _z((loop_tail[:, 0] - loop_tail[:, -1]) - (human_tail[:, 0] - human_tail[:, -1])) > Z


def test_same_seed_gives_identical_frames_and_files(tmp_path):
    sc = scenario()
    a = simweb.run(sc, out=tmp_path / "a")
    b = simweb.run(sc, out=tmp_path / "b")
    for name in ("generations", "ticks", "crawls"):
        assert getattr(a, name).equals(getattr(b, name)), name
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (tmp_path / "b" / f"{name}.parquet").read_bytes()
    assert (tmp_path / "a" / "scenario.toml").read_text() == (tmp_path / "b" / "scenario.toml").read_text()


def test_another_seed_gives_different_frames():
    a = simweb.run(scenario())
    b = simweb.run(scenario(COLLAPSE, "run.seed=4"))
    assert not a.generations.drop("run_id", "seed").equals(b.generations.drop("run_id", "seed"))
    assert not np.allclose(a.generations["human_nll"].to_numpy(), b.generations["human_nll"].to_numpy())


def test_generation_zero_is_trained_on_the_all_human_web_and_models_write_from_next_tick():
    sim = Engine(scenario())
    sim.step()  # tick 0: publish human pages, train generation 0 of both labs
    assert (sim.pages()["origin"] == 0).all()
    assert sim.released == {0: 0, 1: 0}
    n0 = sim.n_pages
    sim.step()
    new = slice(n0, sim.n_pages)
    assert (sim.pages()["origin"][new] == 1).all()
    # only "replace" has market share, and its generation 0 wrote tick 1's pages
    assert (sim.pages()["lab"][new] == 0).all() and (sim.pages()["generation"][new] == 0).all()


def test_the_trainer_ships_the_sampling_tables_publishers_adopt(monkeypatch):
    sim = Engine(scenario(COLLAPSE, "run.ticks=3", "labs.replace.release_every=2", "labs.keep.release_every=2"))
    sim.step()  # tick 0: generation 0, with the tables of the one population that writes from it (top_p 0.95)
    gen, state, tables = sim.registry[0]
    assert list(tables) == [(1.0, 0.95, None)]
    assert sim.registry[1][2] is None  # no market share: no population draws from it
    with monkeypatch.context() as patch:
        patch.setattr("simweb.models.ngram.AliasTable", None)  # publishing tick 1 must not build a table
        sim.step()
    assert (sim.pages()["origin"][-300:] == 1).all()
    sim.step()  # tick 2, the last: its release has no tick left to publish from, so no tables
    assert sim.registry[0][0] == 1 and sim.registry[0][2] is None


def test_a_generation_sends_its_calls_a_stage_at_a_time_for_every_lab():
    """A host actor runs its calls in the order sent, so a call waiting on another host holds up those behind it:
    the labs' crawl plans go out before any shard's candidates, the candidates before any merge, the training
    crawls before the benchmarks (which must avoid what they trained on), the fetches before any filter, and the
    filters before any trainer — while each agent still receives its own calls in the order lab by lab would."""
    from simweb.executors import LocalExecutor

    class Recording(LocalExecutor):
        def __init__(self):
            self.calls = []

        def call(self, handle, method, /, *args, **kwargs):
            self.calls.append((id(handle), method.__qualname__, args))
            return super().call(handle, method, *args, **kwargs)

    ex = Recording()
    sim = Engine(scenario(COLLAPSE, "run.ticks=1", "evaluation.benchmark_docs=50"), executor=ex)
    sim.step()  # tick 0: both labs release
    stage = {"Scraper.plan_crawl": "plan", "PublisherShard.candidates": "candidates", "Scraper.select": "select",
             "PublisherShard.fetch": "fetch", "Scraper.filter": "filter", "Trainer.generate": "generate"}
    seen = [(stage[name], args[2] if name == "Scraper.plan_crawl" else None, agent)
            for agent, name, args in ex.calls if name in stage]
    order = [s for s, _, _ in seen]
    # one of each per lab and crawl (two labs, a training crawl and a benchmark each), one shard
    assert order == ["plan"] * 2 + ["candidates"] * 2 + ["select"] * 2 + ["plan"] * 2 + ["candidates"] * 2 \
        + ["select"] * 2 + ["fetch"] * 4 + ["filter"] * 4 + ["generate"] * 2
    assert [purpose for s, purpose, _ in seen if s == "plan"] == ["train", "train", "benchmark", "benchmark"]
    scrapers = [agent for s, _, agent in seen if s == "plan"][:2]
    for scraper in scrapers:  # per scraper: plan, merge, plan, merge, filter, filter — as lab by lab
        assert [s for s, _, a in seen if a == scraper] == ["plan", "select", "plan", "select", "filter", "filter"]


def test_release_schedule_and_ids():
    res = simweb.run(scenario(COLLAPSE, "run.ticks=7",
                              "labs.replace.release_every=3", "labs.keep.first_release=2",
                              "labs.keep.release_every=2"))
    g = res.generations
    assert _lab(res, "replace")["tick"].to_list() == [0, 3, 6]
    assert _lab(res, "keep")["tick"].to_list() == [2, 4, 6]
    assert g["run_id"].n_unique() == 1 and g["scenario"].unique().to_list() == ["collapse"]
    assert res.ticks.height == 7


def test_observed_nll_is_measured_on_a_web_benchmark_the_lab_filters():
    res = simweb.run(scenario())
    bench = res.crawls.filter(pl.col("purpose") == "benchmark")
    assert bench.height > 0 and (bench.filter(pl.col("step") == 0)["pages_in"] == 100).all()
    g = _lab(res, "replace")
    assert g["observed_nll"].null_count() == 0
    # tick 0 publishes 600 human pages and generation 0 trains on 300 of them; with new_only the lab never
    # trains on the rest, so its benchmark stays human: what it observes tracks the truth
    fetched = bench.filter((pl.col("lab") == "replace") & (pl.col("step") == 0))
    assert (fetched["ai_in"] == 0).all()
    rel = (g["observed_nll"] - g["human_nll"]).abs() / g["human_nll"]
    assert (rel < 0.1).all(), rel


ABSORB = """
[run]
name = "absorb"
seed = 5
ticks = 120
executor = "local"

[language]
family = "categorical"
outcomes = 2
probs = [0.3, 0.7]

[web]
initial_sites = 1
sites_per_tick = 0

[[publishers]]
name = "model_writers"
site_share = 1.0
initial_pages = 20
pages_per_tick = 20
ai_adoption = { start = 1.0, end = 1.0 }

[[labs]]
name = "lab"
release_every = 1
crawl_budget = 20
new_only = true
model = { family = "categorical" }

[evaluation]
human_docs = 50
benchmark_docs = 0
"""


def _alive_share_moments(n_web: int, anchors: int, p_true: float, generations: int) -> tuple[float, float]:
    """Mean and variance of F = the share of generations 0 … G − 1 in which both outcomes have mass, exactly.

    The Markov chain of counts: generation 0 fits n_web human pages (nothing is AI-written before the first model)
    plus ``anchors`` true samples; generation g + 1 fits n_web pages written by generation g plus fresh anchors.
    With k of m = n_web + anchors documents on outcome 0, k' = Binomial(n_web, k/m) + Binomial(anchors, p_true):
    Wright–Fisher drift, absorbing at k ∈ {0, m} without anchors. E[F] = Σ_g P(A_g) / G and
    E[F²] = Σ_{g,h} P(A_g ∩ A_h) / G², A_g = {0 < k_g < m}, each by propagating the chain's law.
    """
    from scipy.stats import binom

    m = n_web + anchors
    k = np.arange(m + 1)
    web = binom.pmf(k[None, :n_web + 1], n_web, k[:, None] / m)  # (m+1) × (n_web+1)
    anchor = binom.pmf(np.arange(anchors + 1), anchors, p_true)
    step = np.zeros((m + 1, m + 1))
    for a, pa in enumerate(anchor):
        step[:, a:a + n_web + 1] += pa * web
    law = np.convolve(binom.pmf(np.arange(n_web + 1), n_web, p_true), anchor)
    laws = []
    for _ in range(generations):
        laws.append(law)
        law = law @ step
    alive = np.zeros(m + 1)
    alive[1:-1] = 1.0
    mean = sum(float(law @ alive) for law in laws) / generations
    second = 0.0
    for g, law in enumerate(laws):  # P(A_g ∩ A_h) for h ≥ g: keep the law on A_g and run it on
        joint = law * alive
        for h in range(g, generations):
            second += (1 if h == g else 2) * float(joint @ alive)
            joint = joint @ step
    return mean, second / generations ** 2 - mean ** 2


def test_without_anchors_the_categorical_loop_is_absorbed_and_with_one_it_never_is():
    """Jangjoo, Marsili & Roudi 2026: M = 20 samples of the last model per generation, outcome 0 at p = 0.3.

    Held to the exact chain (:func:`_alive_share_moments`): without anchors both outcomes survive in a share of
    generations of mean 0.18, and once one is lost it never comes back; with one anchor a lost outcome is found
    again, and the share is 0.86. Tolerance: Z standard errors of the mean over SEEDS runs, from the chain's own
    variance (the share is skewed: a few runs' spread would understate it)."""
    ticks = 120
    for anchors in (0, 1):
        shares = []
        for seed in range(SEEDS):
            sc = scenario(ABSORB, f"run.seed={seed}", f"labs[0].anchors={anchors}")
            support = simweb.run(sc).generations.sort("generation")["support"].to_numpy()
            assert len(support) == ticks
            if anchors == 0:  # absorbing: once an outcome is lost it is never drawn again
                lost = np.flatnonzero(support == 1)
                assert len(lost) == 0 or (support[lost[0]:] == 1).all(), support
            shares.append(np.mean(support == 2))
        mean, var = _alive_share_moments(20, anchors, 0.3, ticks)
        z = (np.mean(shares) - mean) / np.sqrt(var / SEEDS)
        assert abs(z) < Z, (anchors, shares, mean, z)


def test_agents_that_die_as_they_start_are_one_clear_error_not_an_internal_one():
    """Before the first tick there is no checkpoint to restore from: a fleet that cannot start is the user's
    cluster problem, said in one SimwebError (the Ray executor raises ActorLost when an actor died)."""
    import pytest

    from simweb.errors import SimwebError
    from simweb.executors import ActorLost, LocalExecutor

    class DiesAtStart(LocalExecutor):
        def ready(self, handles):
            raise ActorLost("The actor died unexpectedly before finishing this task.")

    with pytest.raises(SimwebError, match="agents died as they started"):
        Engine(scenario(MINIMAL, 'run.executor="local"'), executor=DiesAtStart())


def _watch_engines(monkeypatch) -> list:
    """Every Engine built from now on, in order: a fault-injecting executor reads the running one's tick."""
    engines, real_init = [], Engine.__init__

    def remember(self, *args, **kwargs):
        engines.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "__init__", remember)
    return engines


def test_a_cluster_with_no_room_mid_run_is_one_line_and_the_run_resumes(tmp_path, monkeypatch):
    """ClusterFull (a Ray node's object store full and its disk refusing the overflow) at the fourth tick: one line
    naming the tick and the checkpoint kept, not an internal error; 'simweb resume' then finishes the run with
    the output of a run never stopped."""
    from simweb.errors import SimwebError
    from simweb.executors import ClusterFull, LocalExecutor

    engines = _watch_engines(monkeypatch)

    class FullAtTick4(LocalExecutor):
        def gather(self, results):
            if engines and engines[0].tick == 4:
                raise ClusterFull("a node's Ray object store is full")
            return super().gather(results)

    sc = scenario(MINIMAL, "run.ticks=8", "labs[0].release_every=2")
    with pytest.raises(SimwebError, match=r"at tick 4, a node's Ray object store is full.*"
                                          r"checkpoint \(tick \d\) is intact.*simweb resume") as err:
        simweb.run(sc, out=tmp_path / "run", executor=FullAtTick4())
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    resumed = simweb.resume(tmp_path / "run")
    assert resumed.generations.equals(simweb.run(sc).generations)


def test_a_cluster_with_no_room_while_restoring_or_starting_is_one_line_too(tmp_path, monkeypatch):
    """ClusterFull outside a tick's own calls: while the agents are restored after one died (an agent lost at
    tick 4, then no room to restore), and while they start. Both were internal errors (a ClusterFull raised
    in the ActorLost handler, or before the loop); both are one line now."""
    from simweb.errors import SimwebError
    from simweb.executors import ActorLost, ClusterFull, LocalExecutor

    engines = _watch_engines(monkeypatch)

    class LostThenFull(LocalExecutor):
        lost = False

        def gather(self, results):
            if engines and engines[0].tick == 4:
                if not self.lost:
                    self.lost = True
                    raise ActorLost("The actor died unexpectedly before finishing this task.")
                raise ClusterFull("no room to restore")
            return super().gather(results)

    class FullAtStart(LocalExecutor):
        def ready(self, handles):
            raise ClusterFull("no room to start")

    sc = scenario(MINIMAL, "run.ticks=8", "labs[0].release_every=2")
    with pytest.raises(SimwebError, match=r"^at tick 4, no room to restore; free disk space.*simweb resume") as err:
        simweb.run(sc, out=tmp_path / "lost", executor=LostThenFull())
    assert "\n" not in str(err.value)
    with pytest.raises(SimwebError, match=r"^no room to start; free disk space.*run again") as err:
        simweb.run(sc, out=tmp_path / "start", executor=FullAtStart())
    assert "\n" not in str(err.value)


class _Mortal(simweb.executors.LocalExecutor):
    """In-process agents, but checkpoints as if they could die (as under Ray): temporary ones without an output."""

    needs_checkpoints = True


@pytest.mark.parametrize("durable", [False, True])
def test_no_temporary_checkpoint_is_taken_after_the_last_tick(tmp_path, monkeypatch, durable):
    """A temporary checkpoint only restores agents that die later in the run: after the last tick there is no later.
    Beside an output, the last boundary's checkpoint is kept (a run that dies before its tables are written
    resumes from it)."""
    from simweb import checkpointer

    monkeypatch.setattr(checkpointer, "TEMPORARY_EVERY_S", 0.0)  # every boundary is due
    saved: list[int] = []
    original = checkpointer.Checkpointer.save
    monkeypatch.setattr(checkpointer.Checkpointer, "save",
                        lambda self, engine: (saved.append(engine.tick), original(self, engine)))
    sc = scenario(COLLAPSE, "run.ticks=4")  # a generation at every tick
    engine = Engine(sc, executor=_Mortal(), checkpoint_dir=tmp_path / "checkpoint" if durable else None)
    assert engine.checkpoints.temporary is not durable
    engine.run()
    assert saved == ([0, 1, 2, 3, 4] if durable else [0, 1, 2, 3])
