"""The tick loop: publish → (for each lab releasing now) crawl → train → evaluate → release.

All state of a run lives in one :class:`Engine`; nothing in module globals. The
engine keeps the site graph, the page index and the recorder; the agents —
publisher shards, one scraper and one trainer per lab — run wherever the
executor puts them, and the engine speaks to them only through it. Labs act in
scenario order and every random draw comes from a named stream, so results do
not depend on the executor, the number of shards, or timing.

At every generation boundary the engine takes a checkpoint on disk (beside the
run's output, or in a temporary directory). Page content is not gathered for
it: each shard writes the chunks it has not written yet, once, and the
checkpoint lists those files. When an agent dies mid-run (Ray executor), every
agent is restored from the checkpoint and the run goes on: the output is the
same as if nothing had happened.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from simweb import checkpoint as ckpt
from simweb import rng as rngs
from simweb.agents.publisher import Publisher, PublisherShard, shard_of
from simweb.agents.scraper import Scraper
from simweb.agents.trainer import Trainer
from simweb.errors import SimwebError
from simweb.executors import ActorLost, LocalExecutor
from simweb.language import build_language
from simweb.scenario import Scenario, dump_scenario
from simweb.timing import STAGES, Busy
from simweb.schema import CRAWLS, TICKS, generations_schema
from simweb.web import AI, SiteGraph
from simweb.web.store import PageIndex

__all__ = ["Engine", "Results", "run_id_of", "MAX_RECOVERIES"]

MAX_RECOVERIES = 5  # agent deaths a run survives before it gives up


@dataclass
class Results:
    """The frames of one run, plus what produced them."""

    generations: pl.DataFrame
    ticks: pl.DataFrame
    crawls: pl.DataFrame
    scenario_toml: str
    manifest: dict = field(default_factory=dict)


EXECUTION_ONLY = ("executor", "shards", "page_memory_mb")  # run settings that never change the results


def run_id_of(scenario: Scenario) -> str:
    """A run's id: a hash of its resolved scenario (which holds the seed), so equal runs share it.

    Settings of how it executes (executor, shards, memory) are left out: they do not change the output.
    """
    run = scenario.run.model_copy(update={name: type(scenario.run).model_fields[name].default for name in EXECUTION_ONLY})
    return hashlib.blake2b(dump_scenario(scenario.model_copy(update={"run": run})).encode(),
                           digest_size=6).hexdigest()


class Engine:
    def __init__(self, scenario: Scenario, *, executor=None, shards: int | None = None,
                 checkpoint_dir: str | Path | None = None, warn: Callable[[str], None] | None = None):
        self.scenario = scenario
        self.seed = scenario.run.seed
        self.ex = executor or LocalExecutor()
        self.n_shards = shards or _default_shards(self.ex)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.warn = warn or (lambda msg: print(f"simweb: warning: {msg}", file=sys.stderr))
        self.scenario_toml = dump_scenario(scenario)
        self.ids = {"run_id": run_id_of(scenario), "scenario": scenario.run.name, "seed": self.seed}
        self.lab_names = [lab.name for lab in scenario.labs]
        self.language = build_language(scenario.language, self.seed)
        topic_probs = getattr(self.language, "topic_probs", np.ones(1))
        self.publishers = [Publisher(p, i, topic_probs, self.lab_names, [lab.market_share for lab in scenario.labs],
                                     self.seed, [lab.watermark is not None for lab in scenario.labs])
                           for i, p in enumerate(scenario.publishers)]
        self.busy = Busy()  # the driver's own work; agents keep theirs
        self.recoveries = 0
        self.capacity = expected_pages(scenario)
        # in-process agents cannot die on their own: checkpoints are needed only on disk or under Ray
        self.checkpointing = self.checkpoint_dir is not None or self.ex.name != "local"
        budget = scenario.run.page_memory_mb
        self._tmp = None
        if self.checkpoint_dir is None and (self.checkpointing or budget is not None):
            self._tmp = tempfile.mkdtemp(prefix="simweb-")
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
            self.checkpoint_dir = Path(self._tmp) / "checkpoint"
        self.durable = self._tmp is None  # files in a temporary directory serve only this run's recovery
        # page content goes beside the checkpoint: written once per chunk, and where spilled chunks live
        self.store_dir = ckpt.pages_dir(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        self.shard_budget = None if budget is None else int(budget * 2**20 / self.n_shards)
        self._checkpoint_tick = 0
        self._reset_driver()
        self._start_agents()
        if self.checkpointing and not ckpt.exists(self.checkpoint_dir):
            self.save_checkpoint()  # tick 0: a restart from scratch (a run being resumed has its own)

    # ------------------------------------------------------------ state of the driver
    def _reset_driver(self) -> None:
        web = self.scenario.web
        self.graph = SiteGraph(links_per_site=web.links_per_site, homophily=web.homophily,
                               population_share=np.array([p.site_share for p in self.scenario.publishers]),
                               topic_probs=self.publishers[0].topic_probs)
        self.index = PageIndex(self.capacity)
        self.totals = np.zeros((len(self.publishers), 2), dtype=np.int64)  # per population: pages, AI pages
        self.registry: dict[int, tuple[int, object]] = {}  # lab → (generation, model state or its reference)
        self._index_parts: list[dict] = []  # the page index on disk, in parts (see simweb.checkpoint.write_part)
        self._index_saved = 0  # pages the parts hold
        self.rows: dict[str, list[dict]] = {"generations": [], "ticks": [], "crawls": []}
        self.tick = 0

    def _start_agents(self) -> None:
        sc, ex = self.scenario, self.ex
        if hasattr(ex, "plan"):
            ex.plan({"shard": self.n_shards, "scraper": len(sc.labs), "trainer": len(sc.labs)})
        self.shards = [ex.start(PublisherShard, s, self.n_shards, sc, self.seed, self.store_dir, self.shard_budget,
                                self.durable, role="shard") for s in range(self.n_shards)]
        self.scrapers = [ex.start(Scraper, lab, i, sc, self.seed, self.capacity, role="scraper")
                         for i, lab in enumerate(sc.labs)]
        self.trainers = [ex.start(Trainer, lab, i, sc, self.seed, role="trainer", gpus=_gpus(lab, ex))
                         for i, lab in enumerate(sc.labs)]
        if hasattr(ex, "ready"):
            ex.ready(self.shards + self.scrapers + self.trainers)

    @property
    def released(self) -> dict[int, int]:
        """Lab index → the generation publishers use now."""
        return {lab: gen for lab, (gen, _) in self.registry.items()}

    # ------------------------------------------------------------ the loop
    def run(self, *, on_tick: Callable[[int], None] | None = None) -> Results:
        start = time.perf_counter()
        try:
            while self.tick < self.scenario.run.ticks:
                try:
                    self.step()
                except ActorLost as err:
                    self.recover(err)
                    continue
                except OSError as err:  # a page file could not be written (a spill, or a checkpoint's)
                    then = ("choose a temporary directory with room (TMPDIR) and run again" if self._tmp else
                            f"the last good checkpoint (tick {self._checkpoint_tick}) is intact; free some space "
                            "and run 'simweb resume' on the run directory")
                    raise SimwebError(f"cannot write page files under {str(self.store_dir)!r}: "
                                      f"{err.strerror or err}; {then}") from None
                if on_tick is not None:
                    on_tick(self.tick)
            return self.results(wall_time=time.perf_counter() - start)
        finally:
            for handle in self.shards + self.scrapers + self.trainers:
                self.ex.kill(handle)
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)

    def recover(self, err: Exception) -> None:
        self.recoveries += 1
        if self.recoveries > MAX_RECOVERIES:
            raise RuntimeError(f"agents died {self.recoveries} times; giving up ({err})")
        self.warn(f"an agent died at tick {self.tick} ({err}); restoring every agent from the checkpoint "
                  f"of tick {self._checkpoint_tick} and going on")
        for handle in self.shards + self.scrapers + self.trainers:
            self.ex.kill(handle)
        self._start_agents()
        self.restore(ckpt.load(self.checkpoint_dir))

    def step(self) -> None:
        tick, ex, sc = self.tick, self.ex, self.scenario
        with self.busy("publish"):
            sites0, edges0 = self.graph.n_sites, len(self.graph.edges)
            self.graph.grow(sc.web.initial_sites if tick == 0 else sc.web.sites_per_tick, tick,
                            rng=rngs.stream(self.seed, "web", tick))
            released = self.released
            plans = [pub.plan(tick, self.graph.sites_of(pub.index), self.graph.topic, released, self.index)
                     for pub in self.publishers]
            plans = [p for p in plans if p is not None]
            first_id = len(self.index)
            pages = {k: np.concatenate([p[k] for p in plans]) for k in plans[0]} if plans else self.index.state(first_id)
            self.index.extend(pages)
            pages_ref = ex.put(pages)  # once: every shard reads this one copy
            crawl_ref = ex.put({"site_id": pages["site_id"], "tick": pages["tick"]})  # what scrapers keep
            graph_ref = ex.put(self.graph.state(sites0, edges0))
            labs = sorted(self.registry)
            states = [self.registry[lab][1] for lab in labs]
            gens = {lab: self.registry[lab][0] for lab in labs}
            originals = np.unique(pages["copied_from"][pages["copied_from"] >= 0])
        origin_parts = self._fetch(originals) if len(originals) else []
        ex.get([ex.call(shard, "publish", tick, first_id, pages_ref, gens, *states, *origin_parts)
                for shard in self.shards]
               + [ex.call(scraper, "observe", graph_ref, crawl_ref) for scraper in self.scrapers])
        self._record_tick(tick, pages)
        releasing = [i for i, lab in enumerate(sc.labs)
                     if tick >= lab.first_release and (tick - lab.first_release) % lab.release_every == 0]
        if releasing:
            self._generations(tick, releasing)
        self.tick += 1
        if releasing and self.checkpointing:
            self.save_checkpoint()

    def _generations(self, tick: int, releasing: list[int]) -> None:
        ex, sc = self.ex, self.scenario
        bench_budget = sc.evaluation.benchmark_docs
        gen_of = {i: (self.registry[i][0] + 1 if i in self.registry else 0) for i in releasing}
        # every lab crawls the same web: selections first (metadata), then content from the shards
        picks = {i: ex.call(self.scrapers[i], "crawl", tick, sc.labs[i].crawl_budget, "train", gen_of[i])
                 for i in releasing}
        benches = {i: ex.call(self.scrapers[i], "crawl", tick, bench_budget, "benchmark", gen_of[i])
                   for i in releasing if bench_budget}
        picks, benches = ex.get(picks), ex.get(benches)
        with self.busy("crawl"):  # the selections' metadata, from the driver's index
            for selection in [*picks.values(), *benches.values()]:
                selection.update(self.index.rows(selection["ids"]))
        outs = {}
        for i in releasing:
            scraper, bench = self.scrapers[i], benches.get(i)
            current = self.registry.get(i, (-1, None))  # the lab's latest model, for a likelihood filter
            kept = ex.call(scraper, "filter", picks[i], "train", gen_of[i], *current, *self._fetch(picks[i]["ids"]))
            bench_kept = ex.call(scraper, "filter", bench, "benchmark", gen_of[i], *current,
                                 *self._fetch(bench["ids"])) if bench is not None else None
            outs[i] = ex.call(self.trainers[i], "generate", kept, bench_kept, returns=2)
        infos = ex.get({i: out[1] for i, out in outs.items()})
        for i in releasing:  # scenario order
            info = dict(infos[i])
            steps, bench_steps = info.pop("steps"), info.pop("bench_steps")
            self._record_crawl(i, gen_of[i], tick, "train", steps)
            if bench_steps is not None:
                self._record_crawl(i, gen_of[i], tick, "benchmark", bench_steps)
            self._record_generation(i, gen_of[i], tick, steps, info)
            self.registry[i] = (gen_of[i], outs[i][0])  # publishers use it from the next tick on

    def _fetch(self, ids: np.ndarray) -> list:
        """References to (ids, content) from each shard holding some of ``ids``."""
        owner = shard_of(self.index.column("site_id")[ids], self.n_shards)
        return [self.ex.call(shard, "fetch", ids[owner == s]) for s, shard in enumerate(self.shards)
                if np.any(owner == s)]

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict:
        """Everything needed to go on from here: arrays, JSON-able rows, and the shards' page files."""
        ex = self.ex
        records = [r for part in ex.get([ex.call(s, "flush") for s in self.shards]) for r in part]
        n = len(self.index)
        if n > self._index_saved:  # the pages published since the last checkpoint, as one more index part
            part = {k: v[self._index_saved:n] for k, v in self.index.columns().items()}
            self._index_parts.append(ckpt.write_part(self.checkpoint_dir, "index", self._index_saved, n, part,
                                                     durable=self.durable))
            self._index_saved = n
        arrays = {"graph": self.graph.state()}
        for i, state in enumerate(ex.get([ex.call(t, "state") for t in self.trainers])):
            arrays[f"trainer/{i}"] = state
        for i, state in enumerate(ex.get([ex.call(s, "state") for s in self.scrapers])):
            arrays[f"scraper/{i}"] = state
        for lab, (gen, state) in self.registry.items():
            arrays[f"model/{lab}"] = ex.get(state) if not isinstance(state, dict) else state
        meta = {"tick": self.tick, "run_id": self.ids["run_id"], "pages": records, "index_parts": self._index_parts,
                "registry": {str(k): v[0] for k, v in self.registry.items()}}
        return {"meta": meta, "rows": copy.deepcopy(self.rows), "arrays": arrays}

    def save_checkpoint(self) -> None:
        state = self.checkpoint()
        with self.busy("checkpoint"):
            ckpt.save(self.checkpoint_dir, state, durable=self.durable)
        self._checkpoint_tick = self.tick

    def restore(self, state: dict) -> None:
        """Put the driver and every agent back to a checkpoint."""
        if state["meta"]["run_id"] != self.ids["run_id"]:
            raise SimwebError("the checkpoint belongs to another run (its scenario or seed differ)")
        arrays, ex = state["arrays"], self.ex
        self._reset_driver()
        self.tick = int(state["meta"]["tick"])
        self.rows = copy.deepcopy(state["rows"])
        graph = {k: np.asarray(v) for k, v in arrays["graph"].items()}
        self.graph.apply(graph)
        if "index" in arrays:
            self.index.extend(arrays["index"])
        self._index_parts, self._index_saved = list(state["meta"]["index_parts"]), len(self.index)
        population, origin = self.index.column("population"), self.index.column("origin")
        self.totals[:, 0] = np.bincount(population, minlength=len(self.publishers))
        self.totals[:, 1] = np.bincount(population, weights=origin == AI, minlength=len(self.publishers))
        self.registry = {int(lab): (int(gen), ex.put(arrays[f"model/{lab}"]))
                         for lab, gen in state["meta"]["registry"].items()}
        records = state["meta"]["pages"]
        same_layout = all(r["shards"] == self.n_shards for r in records)
        site_ref = None if same_layout else ex.put(self.index.column("site_id"))
        calls = [ex.call(shard, "restore", records, site_ref) for shard in self.shards]
        crawl_ref, graph_ref = ex.put({k: self.index.column(k) for k in ("site_id", "tick")}), ex.put(graph)
        calls += [ex.call(s, "restore", arrays[f"scraper/{i}"], graph_ref, crawl_ref)
                  for i, s in enumerate(self.scrapers)]
        calls += [ex.call(t, "restore", arrays[f"trainer/{i}"]) for i, t in enumerate(self.trainers)]
        ex.get(calls)
        self._checkpoint_tick = self.tick

    # ------------------------------------------------------------ recording
    def _record_tick(self, tick: int, pages: dict[str, np.ndarray]) -> None:
        """One row per population: this tick's pages, and running totals (no pass over the whole web)."""
        n_pop = len(self.publishers)
        population, is_ai = pages["population"], pages["origin"] == AI
        new = np.bincount(population, minlength=n_pop)
        new_ai = np.bincount(population, weights=is_ai, minlength=n_pop).astype(np.int64)
        watermarked = np.bincount(population, weights=pages["watermarked"], minlength=n_pop)
        labelled = np.bincount(population, weights=pages["c2pa"] > 0, minlength=n_pop)
        self.totals += np.stack([new, new_ai], axis=1)
        n_web, web_ai = int(self.totals[:, 0].sum()), int(self.totals[:, 1].sum())
        sites = np.bincount(self.graph.population, minlength=n_pop)
        for pub in self.publishers:
            p = pub.index
            n, ai, n_all = int(new[p]), int(new_ai[p]), int(self.totals[p, 0])
            self.rows["ticks"].append({
                **self.ids, "tick": tick, "population": pub.cfg.name, "sites": int(sites[p]),
                "pages": n, "ai_pages": ai, "ai_share_new": ai / n if n else None,
                "pages_total": n_all, "ai_share_all": int(self.totals[p, 1]) / n_all if n_all else None,
                "watermarked_share": float(watermarked[p] / n) if n else None,
                "c2pa_share": float(labelled[p] / n) if n else None,
                "web_pages": n_web, "web_ai_share": web_ai / n_web if n_web else None,
            })

    def _record_crawl(self, lab: int, crawl: int, tick: int, purpose: str, steps: list[dict]) -> None:
        for step in steps:
            self.rows["crawls"].append({**self.ids, "lab": self.lab_names[lab], "crawl": crawl, "tick": tick,
                                        "purpose": purpose, **step})

    def _record_generation(self, lab: int, gen: int, tick: int, steps: list[dict], info: dict) -> None:
        fetch, last = steps[0], steps[-1]
        dropped = fetch["pages_in"] - last["kept"]
        dropped_ai = fetch["ai_in"] - last["kept_ai"]
        info = dict(info)
        by_lab = info.pop("train_ai_fraction_by_lab")
        self.rows["generations"].append({
            **self.ids, "lab": self.lab_names[lab], "generation": gen, "tick": tick, **info,
            "train_ai_fraction_by_lab": dict(zip(self.lab_names, by_lab)),
            "crawl_pages": fetch["pages_in"],
            "crawl_ai_fraction": fetch["ai_in"] / fetch["pages_in"] if fetch["pages_in"] else None,
            "kept_pages": last["kept"],
            "filter_precision": dropped_ai / dropped if dropped else None,
            "filter_recall": dropped_ai / fetch["ai_in"] if fetch["ai_in"] else None,
        })

    def stage_times(self) -> dict[str, float]:
        """Seconds of work per stage, summed over the driver and every agent (see :mod:`simweb.timing`)."""
        busy = Busy()
        busy.add(self.busy.seconds)
        for part in self.ex.get([self.ex.call(a, "busy_seconds") for a in self.shards + self.scrapers + self.trainers]):
            busy.add(part)
        return {stage: round(busy.seconds.get(stage, 0.0), 3) for stage in STAGES}

    def page_memory(self) -> dict[str, int | float]:
        """Bytes the page store holds in memory: the driver's index, the scrapers' replicas, resident content."""
        shards = self.ex.get([self.ex.call(s, "footprint") for s in self.shards])
        replicas = self.ex.get([self.ex.call(s, "footprint") for s in self.scrapers])
        token_bytes = len(self.index) * self.language.width * np.dtype(self.language.dtype).itemsize
        held = self.index.nbytes + sum(replicas) + sum(f["resident_bytes"] for f in shards)
        return {"pages": len(self.index), "token_bytes": int(token_bytes), "index_bytes": int(self.index.nbytes),
                "replica_bytes": int(sum(replicas)), "content_bytes": int(sum(f["resident_bytes"] for f in shards)),
                "spilled_pages": int(sum(f["spilled_pages"] for f in shards)),
                "bytes_per_token_byte": round(held / token_bytes, 3) if token_bytes else None}

    def results(self, *, wall_time: float) -> Results:
        order = {name: i for i, name in enumerate(self.lab_names)}
        gen_rows = sorted(self.rows["generations"], key=lambda r: (order[r["lab"]], r["generation"]))
        manifest = {
            "run_id": self.ids["run_id"],
            "scenario": self.scenario.run.name,
            "seed": self.seed,
            "executor": self.ex.name,
            "shards": self.n_shards,
            "cluster": self.ex.cluster(),
            "ticks": self.tick,
            "pages": len(self.index),
            "sites": self.graph.n_sites,
            "recoveries": self.recoveries,
            "wall_time_s": round(wall_time, 3),
            "stage_time_s": self.stage_times(),
            "page_memory": self.page_memory(),
        }
        return Results(generations=_frame(gen_rows, generations_schema(self.lab_names)),
                       ticks=_frame(self.rows["ticks"], TICKS), crawls=_frame(self.rows["crawls"], CRAWLS),
                       scenario_toml=self.scenario_toml, manifest=manifest)


def expected_pages(scenario) -> int:
    """How many pages the scenario publishes (an upper bound: a population with no sites publishes none)."""
    return sum(p.initial_pages + p.pages_per_tick * scenario.run.ticks for p in scenario.publishers)


def _gpus(lab, ex) -> float:
    """A trainer of a torch model on cuda reserves a GPU ("auto": when the cluster has one)."""
    device = getattr(lab.model, "device", None)
    if device == "cuda" or (device == "auto" and ex.cluster().get("gpus", 0) > 0):
        return 1.0
    return 0.0


def _default_shards(ex) -> int:
    if ex.name == "local":
        return 1
    return max(1, int(ex.cluster()["cpus"]))


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    """Rows → a frame with exactly the declared columns, in declared order (missing keys become null)."""
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows], schema=schema, orient="row")
