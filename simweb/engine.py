"""The tick loop: publish → (for each lab releasing now) crawl → filter → train → evaluate → release.

All state of a run lives in one :class:`Engine`; nothing in module globals. The engine keeps the
site graph and the registry of released models, and runs the loop; it holds no page: it decides how many
pages each site publishes in a tick and sends each publisher shard the counts of its own sites; the shards
plan those pages, write them, keep their ground truth and content, and answer for them; the driver receives
counts. The agents — publisher shards, one scraper and one trainer per lab — are a :class:`~simweb.fleet.Fleet` that
runs wherever the executor puts them, the :class:`~simweb.checkpointer.Checkpointer` saves and
restores, and the :class:`~simweb.results.RunRecorder` keeps the rows. Labs act in scenario order
and every random draw comes from a named stream, so results do not depend on the executor, the
number of shards, or timing. When an agent dies mid-run (Ray executor), every agent is restored
from the last checkpoint and the run goes on: the output is the same as if nothing had happened.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from simweb import consent, rng as rngs
from simweb.agents.publisher import PublisherShard, plan_sites, publishers_of
from simweb.agents.scraper import Scraper
from simweb.agents.trainer import Trainer
from simweb.checkpointer import Checkpointer
from simweb.context import AgentContext
from simweb.errors import SimwebError
from simweb.executors import ActorLost, ClusterFull, LocalExecutor
from simweb.fleet import Fleet
from simweb.plugins import registry
from simweb.results import Results, RunRecorder, human_drift, merge_counts
from simweb.features import features_of
from simweb.scenario import Scenario, dump_scenario
from simweb.timing import Busy
from simweb.web import SiteGraph
from simweb.web.store import PageIndex, join_rows, page_columns

__all__ = ["Engine", "Results", "run_id_of", "MAX_RECOVERIES"]

MAX_RECOVERIES = 5  # agent deaths a run survives before it gives up
EXECUTION_ONLY = ("executor", "shards", "page_memory_mb")  # run settings that never change the results


def run_id_of(scenario: Scenario, plugins=()) -> str:
    """A run's id: a hash of its resolved scenario (which holds the seed) and its plugins' sources.

    Settings of how it executes (executor, shards, memory) are left out: they do not change the output.
    """
    run = scenario.run.model_copy(update={name: type(scenario.run).model_fields[name].default for name in EXECUTION_ONLY})
    text = dump_scenario(scenario.model_copy(update={"run": run}))
    text += "".join(f"\n#plugin {p.name} {p.sha256}" for p in plugins)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


class Engine:
    def __init__(self, scenario: Scenario, *, executor=None, shards: int | None = None,
                 checkpoint_dir: str | Path | None = None, warn: Callable[[str], None] | None = None, plugins=()):
        self.scenario = sc = scenario
        self.seed = sc.run.seed
        self.ex = executor or LocalExecutor()
        self.n_shards = shards or self.ex.default_shards()
        self.warn = warn or (lambda msg: print(f"simweb: warning: {msg}", file=sys.stderr))
        self.scenario_toml = dump_scenario(sc)
        self.plugins = tuple(plugins)
        self.context = AgentContext(self.scenario_toml, self.plugins, scenario=sc)
        self.ids = {"run_id": run_id_of(sc, self.plugins), "scenario": sc.run.name, "seed": self.seed}
        self.lab_names = [lab.name for lab in sc.labs]
        self.lab_needs = [frozenset().union(*(registry.get("filter", f.kind).needs for f in lab.filters))
                          for lab in sc.labs]
        self.topic_probs = getattr(self.context.language, "topic_probs", np.ones(1))
        self.features = features_of(sc)
        self.humans = "humans" in self.features  # humans imitate models or are displaced (simweb.humans)
        self.consent = "consent" in self.features
        self.publishers = publishers_of(self.context)  # the driver's share of planning: pages per site
        self.copies = any(p.copy_rate > 0 for p in sc.publishers)  # pages may republish others
        self.recorder = RunRecorder(self.ids, self.lab_names, [p.name for p in sc.publishers], self.features,
                                    consent.blocks_labs(sc) if self.consent else None)
        self.busy = Busy()  # the driver's own work; agents keep theirs
        self.phases = Busy()  # the driver's wall time per phase of a tick: publish, generations, checkpoint
        self.recoveries = 0
        self.capacity = expected_pages(sc)
        budget = sc.run.page_memory_mb
        self.checkpoints = Checkpointer(checkpoint_dir, needed=self.ex.needs_checkpoints, spills=budget is not None)
        self.reset_driver()
        try:
            self.fleet = Fleet(self.ex, self.context, shards=self.n_shards, capacity=self.capacity,
                               store_dir=self.checkpoints.store_dir, durable=self.checkpoints.durable,
                               shard_budget=None if budget is None else int(budget * 2**20 / self.n_shards))
        except ActorLost as err:  # before the first tick there is nothing to restore from: say what happened
            raise SimwebError(f"the agents died as they started ({err}); the cluster could not run them — check "
                              "that every node has simweb installed and the same Ray authentication") from None
        if self.checkpoints.enabled and not self.checkpoints.exists():
            self.checkpoints.save(self)  # tick 0: a restart from scratch (a run being resumed has its own)

    def reset_driver(self) -> None:
        web = self.scenario.web
        self.graph = SiteGraph(links_per_site=web.links_per_site, homophily=web.homophily,
                               population_share=np.array([p.site_share for p in self.scenario.publishers]),
                               topic_probs=np.asarray(self.topic_probs, dtype=np.float64))
        self.n_pages = 0  # published so far: the next page's id
        # lab → (generation, model state, its sampling tables or None): values or references to them; the tables
        # are derived from the state (built once by the trainer), so checkpoints keep only the state
        self.registry: dict[int, tuple[int, object, object]] = {}
        self.recorder.reset()
        self.tick = 0

    def restore(self, state: dict) -> None:
        self.checkpoints.restore(self, state)

    @property
    def released(self) -> dict[int, int]:
        """Lab index → the generation publishers use now."""
        return {lab: entry[0] for lab, entry in self.registry.items()}

    # ------------------------------------------------------------ the loop
    def run(self, *, on_tick: Callable[[int], None] | None = None) -> Results:
        start = time.perf_counter()
        try:
            while self.tick < self.scenario.run.ticks:
                tick = self.tick
                try:
                    stepped = self._step_or_recover()
                except OSError as err:  # a page file could not be written (a spill, or a checkpoint's)
                    then = ("choose a temporary directory with room (TMPDIR) and run again"
                            if self.checkpoints.temporary else
                            f"the last good checkpoint (tick {self.checkpoints.tick}) is intact; free some space "
                            "(or wait for the storage to answer) and run 'simweb resume' on the run directory")
                    raise SimwebError(f"cannot write or read page files under {str(self.checkpoints.store_dir)!r}: "
                                      f"{err.strerror or err}; {then}") from None
                except ClusterFull as err:  # in the tick, or in restoring the agents after one died
                    then = ("run again" if self.checkpoints.temporary else
                            f"the last good checkpoint (tick {self.checkpoints.tick}) is intact: run 'simweb "
                            "resume' on the run directory")
                    raise SimwebError(f"at tick {tick}, {err.say(then)}") from None
                if stepped and on_tick is not None:
                    on_tick(self.tick)
            return self.results(wall_time=time.perf_counter() - start)
        finally:
            self.fleet.kill()
            self.checkpoints.close()

    def _step_or_recover(self) -> bool:
        """One tick; False when an agent died instead and every agent was restored from the checkpoint."""
        try:
            self.step()
            return True
        except ActorLost as err:
            self.recover(err)
            return False

    def recover(self, err: Exception) -> None:
        self.recoveries += 1
        if self.recoveries > MAX_RECOVERIES:
            raise RuntimeError(f"agents died {self.recoveries} times; giving up ({err})")
        self.warn(f"an agent died at tick {self.tick} ({err}); restoring every agent from the checkpoint "
                  f"of tick {self.checkpoints.tick} and going on")
        self.fleet.restart()
        self.restore(self.checkpoints.load())

    def step(self) -> None:
        with self.phases("publish"):
            releasing = self._publish()
        if releasing:
            with self.phases("generations"):
                self._generations(self.tick, releasing)
        self.tick += 1
        # a temporary checkpoint serves only to restore agents that die later in this run: none after the last tick
        last = self.tick >= self.scenario.run.ticks and self.checkpoints.temporary
        if releasing and not last and self.checkpoints.due():
            with self.phases("checkpoint"):
                self.checkpoints.save(self)

    def _publish(self) -> list[int]:
        """Publish this tick's pages; the labs that release at its end."""
        tick, ex, sc, fleet = self.tick, self.ex, self.scenario, self.fleet
        with self.busy("publish"):
            sites0, edges0, blocks0 = self.graph.n_sites, len(self.graph.edges), len(self.graph.blocks)
            new_sites = sc.web.initial_sites if tick == 0 else sc.web.sites_per_tick
            if new_sites:  # a stream costs ~15 µs to make: none for a tick that draws nothing from it
                truth = self.context.language.at(tick)  # a drifting truth: this tick's topic popularity
                # where topics are born, new sites take the present's topics (else they keep the law at start)
                born = getattr(truth, "topic_probs", None) if len(getattr(truth, "birth_ticks", ())) else None
                self.graph.grow(new_sites, tick, rng=rngs.stream(self.seed, "web", tick), topic_probs=born)
            if self.consent:
                consent.update_blocks(self.graph, sc.publishers, tick, seed=self.seed)
            graph_ref = ex.share(self.graph.state(sites0, edges0, blocks0))
            models = {lab: self.registry[lab] for lab in sorted(self.registry)}
            # the driver plans what is O(sites): how many pages each site publishes; each shard plans its own sites'
            # pages, writes them and answers with counts
            released, first_id, n_shards = self.released, self.n_pages, len(fleet.shards)
            parts, n = plan_sites(self.publishers, tick, self.graph.population, self.graph.topic, released, first_id,
                                  n_shards)
        planned = [ex.call(s, PublisherShard.plan, tick, part, released, first_id) for s, part in zip(fleet.shards, parts)]
        originals = []
        if self.copies and first_id:  # the pages copied: their rows and content, from the shards that hold them
            originals = [ex.call(s, PublisherShard.originals, planned) for s in fleet.shards]
        answers = ex.gather([ex.call(s, PublisherShard.publish, tick=tick, planned=p, models=models, originals=originals)
                             for s, p in zip(fleet.shards, planned)]
                            + [ex.call(s, Scraper.observe, graph_ref, {tick: n}) for s in fleet.scrapers])[:n_shards]
        self.n_pages = first_id + n
        counts = merge_counts([a["counts"] for a in answers], self.graph.n_sites)
        drift = human_drift([s for a in answers for s in a["drift"]], len(sc.publishers)) if self.humans else None
        self.recorder.tick(tick, counts, self.graph.population, self.graph, drift=drift)
        return [i for i, lab in enumerate(sc.labs)
                if tick >= lab.first_release and (tick - lab.first_release) % lab.release_every == 0]

    def _generations(self, tick: int, releasing: list[int]) -> None:
        """Crawl, filter, train and evaluate for every lab releasing now. The calls go out a stage at a time for
        every lab (plans, then the shards' candidates, then the selections; the fetches, the filters, then the
        trainers): a host actor runs its calls in the order sent, and one waiting on another host's answer
        holds up its other agents' calls behind it, so each stage's calls wait only on the stage before. The
        agents that keep state (scrapers, trainers) receive their own calls in the same order as lab by lab; the
        shards' candidates and fetches, which only read, arrive in another — so the results do not change."""
        ex, sc, fleet = self.ex, self.scenario, self.fleet
        bench_budget = sc.evaluation.benchmark_docs
        gen_of = {i: (self.registry[i][0] + 1 if i in self.registry else 0) for i in releasing}
        # every lab crawls the same web: selections first (ids, from the shards' candidates), then the pages'
        # content and ground truth from the shards; a benchmark after the training crawl, which it must avoid
        picks = self._crawls({i: (sc.labs[i].crawl_budget, "train", gen_of[i]) for i in releasing}, tick)
        benches = (self._crawls({i: (bench_budget, "benchmark", gen_of[i]) for i in releasing}, tick)
                   if bench_budget else {})
        # the selections go from the scrapers to the shards as references: no page id passes through here
        fetched = {(i, k): [ex.call(shard, PublisherShard.fetch, chosen[i], True) for shard in fleet.shards]
                   for i in releasing for k, chosen in (("train", picks), ("benchmark", benches)) if i in chosen}
        kept = {}
        for (i, k), parts in fetched.items():
            # the lab's latest model, for filters that need it
            model = self.registry.get(i) if "model" in self.lab_needs[i] else None
            chosen = picks if k == "train" else benches
            kept[i, k] = ex.call(fleet.scrapers[i], Scraper.filter, chosen[i], parts=parts, model=model)
        del fetched, parts  # each filter holds its own parts: free them as it finishes, not after training
        reports = {}
        for i in releasing:
            # with distillation, every other lab's latest model (released before this tick, so the order of the
            # labs never matters): the teachers, and what lab_divergence compares with
            released = ({j: self.registry[j] for j in sorted(self.registry) if j != i}
                        if "distill" in self.features else {})
            extra = {"released": released} if released else {}
            if self.humans:  # every released model, its own included: what the human writers imitate
                extra["humans"] = {j: self.registry[j] for j in sorted(self.registry)}
            reports[i] = ex.call(fleet.trainers[i], Trainer.generate, kept[i, "train"], kept.get((i, "benchmark")),
                                 returns=3, **extra)
        infos = ex.gather({i: out[1] for i, out in reports.items()})
        for i in releasing:  # scenario order
            self.recorder.generation(i, gen_of[i], tick, infos[i])
            self.registry[i] = (gen_of[i], reports[i][0], reports[i][2])  # publishers use it from the next tick on

    def _crawls(self, crawls: dict, tick: int) -> dict:
        """References to each lab's selection (``crawls``: lab → (budget, purpose, crawl number)): its scraper
        plans the crawl, every shard answers with its own best candidates, the scraper merges them — the plans
        of every lab first, then the candidates, then the merges."""
        ex, fleet = self.ex, self.fleet
        plans = {i: ex.call(fleet.scrapers[i], Scraper.plan_crawl, tick, *crawl) for i, crawl in crawls.items()}
        parts = {i: [ex.call(shard, PublisherShard.candidates, plan) for shard in fleet.shards]
                 for i, plan in plans.items()}
        return {i: ex.call(fleet.scrapers[i], Scraper.select, plans[i], parts[i]) for i in plans}

    def pages(self, columns=None) -> dict[str, np.ndarray]:
        """Every page's index rows (``columns``: default all), gathered from the shards in page-id order: for
        inspection and tests. A run never calls it — no process holds a column over every page."""
        names = columns or self._no_pages().keys()
        parts = self.ex.gather([self.ex.call(s, PublisherShard.columns_of, tuple(names)) for s in self.fleet.shards])
        return join_rows(np.arange(self.n_pages), parts) if self.n_pages else self._no_pages()

    def _no_pages(self) -> dict[str, np.ndarray]:
        return PageIndex(1, columns=page_columns(self.humans)).state()

    # ------------------------------------------------------------ results
    def results(self, *, wall_time: float) -> Results:
        manifest = {
            "run_id": self.ids["run_id"],
            "scenario": self.scenario.run.name,
            "seed": self.seed,
            "executor": self.ex.name,
            "shards": self.n_shards,
            "cluster": self.ex.cluster(),
            "ticks": self.tick,
            "pages": self.n_pages,
            "sites": self.graph.n_sites,
            "recoveries": self.recoveries,
            "plugins": [p.record() for p in self.plugins],
            "wall_time_s": round(wall_time, 3),
            "stage_time_s": self.fleet.stage_times(self.busy),
            "phase_wall_s": {phase: round(self.phases.seconds.get(phase, 0.0), 3)
                             for phase in ("publish", "generations", "checkpoint")},
            "page_memory": self.fleet.page_memory(self.n_pages),
        }
        return Results(**self.recorder.frames(), scenario_toml=self.scenario_toml, manifest=manifest)


def expected_pages(scenario) -> int:
    """How many pages the scenario publishes (an upper bound: a population with no sites publishes none)."""
    return sum(p.initial_pages + p.pages_per_tick * scenario.run.ticks for p in scenario.publishers)
