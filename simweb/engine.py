"""The tick loop: publish → (for each lab releasing now) crawl → train → evaluate → release.

All state of a run lives in one :class:`Simulation`; nothing in module globals.
Labs act in scenario order, and every random draw comes from a named stream,
so the results do not depend on timing or on how the agents are hosted.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from simweb import rng as rngs
from simweb.agents import Evaluator, Publisher, Scraper, Trainer
from simweb.language import build_language
from simweb.scenario import Scenario, dump_scenario
from simweb.schema import CRAWLS, TICKS, generations_schema
from simweb.web import AI, PageStore, SiteGraph

__all__ = ["Simulation", "Results", "run_id_of"]


@dataclass
class Results:
    """The frames of one run, plus what produced them."""

    generations: pl.DataFrame
    ticks: pl.DataFrame
    crawls: pl.DataFrame
    scenario_toml: str
    manifest: dict = field(default_factory=dict)


def run_id_of(scenario_toml: str) -> str:
    """A run's id: a hash of its resolved scenario (which holds the seed), so equal runs share it."""
    return hashlib.blake2b(scenario_toml.encode(), digest_size=6).hexdigest()


class Simulation:
    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.seed = seed = scenario.run.seed
        self.scenario_toml = dump_scenario(scenario)
        self.ids = {"run_id": run_id_of(self.scenario_toml), "scenario": scenario.run.name, "seed": seed}
        self.language = lang = build_language(scenario.language, seed)
        self.lab_names = [lab.name for lab in scenario.labs]
        self.graph = SiteGraph(links_per_site=scenario.web.links_per_site, homophily=scenario.web.homophily,
                               population_share=np.array([p.site_share for p in scenario.publishers]),
                               topic_probs=getattr(lang, "topic_probs", np.ones(1)))
        self.store = PageStore(width=lang.width, dtype=lang.dtype)
        shares = [lab.market_share for lab in scenario.labs]
        self.publishers = [Publisher(p, i, lang, self.lab_names, shares, seed) for i, p in enumerate(scenario.publishers)]
        self.scrapers = [Scraper(lab, i, seed) for i, lab in enumerate(scenario.labs)]
        self.trainers = [Trainer(lab, i, lang, len(scenario.labs), seed) for i, lab in enumerate(scenario.labs)]
        self.evaluator = Evaluator(scenario.evaluation, lang, seed)
        self.released: dict[int, tuple[int, object]] = {}  # lab index → (generation, model) publishers use
        self.rows: dict[str, list[dict]] = {"generations": [], "ticks": [], "crawls": []}
        self.timings = {"publish": 0.0, "crawl": 0.0, "train": 0.0, "evaluate": 0.0}
        self.tick = 0

    # ------------------------------------------------------------ the loop
    def run(self, *, on_tick: Callable[[int], None] | None = None) -> Results:
        start = time.perf_counter()
        while self.tick < self.scenario.run.ticks:
            self.step()
            if on_tick is not None:
                on_tick(self.tick)
        return self.results(wall_time=time.perf_counter() - start)

    def step(self) -> None:
        tick = self.tick
        t0 = time.perf_counter()
        web = self.scenario.web
        self.graph.grow(web.initial_sites if tick == 0 else web.sites_per_tick, tick,
                        rng=rngs.stream(self.seed, "web", tick))
        new_pages = [self._publish(pub, tick) for pub in self.publishers]
        self._record_tick(tick, new_pages)
        self.timings["publish"] += time.perf_counter() - t0
        released_now = {}
        for i, lab in enumerate(self.scenario.labs):
            if tick >= lab.first_release and (tick - lab.first_release) % lab.release_every == 0:
                released_now[i] = self._generation(i, tick)
        self.released.update(released_now)  # publishers use new models from the next tick on
        self.tick += 1

    def _publish(self, pub: Publisher, tick: int) -> np.ndarray:
        pages = pub.publish(tick, self.graph.sites_of(pub.index), self.released, self.graph.topic)
        if pages is None:
            return np.empty(0, dtype=np.int64)
        return self.store.append(**pages)

    def _generation(self, i: int, tick: int) -> tuple[int, object]:
        lab, scraper, trainer = self.scenario.labs[i], self.scrapers[i], self.trainers[i]
        gen = trainer.generation + 1
        t0 = time.perf_counter()
        crawl = scraper.crawl(tick, self.graph, self.store, budget=lab.crawl_budget, purpose="train", crawl=gen)
        t1 = time.perf_counter()
        model, composition = trainer.train(crawl.kept, self.store)
        t2 = time.perf_counter()
        benchmark = None
        if self.scenario.evaluation.benchmark_docs:
            bench = scraper.crawl(tick, self.graph, self.store, budget=self.scenario.evaluation.benchmark_docs,
                                  purpose="benchmark", crawl=gen, exclude=np.union1d(crawl.kept, trainer.pool))
            benchmark = self.store.content(bench.kept)
            self._record_crawl(lab.name, gen, tick, "benchmark", bench.steps)
        t3 = time.perf_counter()
        metrics = self.evaluator.evaluate(model, lab=lab.name, generation=gen, benchmark=benchmark)
        t4 = time.perf_counter()
        self.timings["crawl"] += (t1 - t0) + (t3 - t2)
        self.timings["train"] += t2 - t1
        self.timings["evaluate"] += t4 - t3
        self._record_crawl(lab.name, gen, tick, "train", crawl.steps)
        fetch, last = crawl.steps[0], crawl.steps[-1]
        dropped = fetch["pages_in"] - last["kept"]
        dropped_ai = fetch["ai_in"] - last["kept_ai"]
        by_lab = composition.pop("train_ai_fraction_by_lab")
        self.rows["generations"].append({
            **self.ids, "lab": lab.name, "generation": gen, "tick": tick, **composition,
            "train_ai_fraction_by_lab": {name: float(by_lab[j]) for j, name in enumerate(self.lab_names)},
            "crawl_pages": fetch["pages_in"],
            "crawl_ai_fraction": fetch["ai_in"] / fetch["pages_in"] if fetch["pages_in"] else None,
            "kept_pages": last["kept"],
            "filter_precision": dropped_ai / dropped if dropped else None,
            "filter_recall": dropped_ai / fetch["ai_in"] if fetch["ai_in"] else None,
            **metrics,
        })
        return gen, model

    # ------------------------------------------------------------ recording
    def _record_tick(self, tick: int, new_pages: list[np.ndarray]) -> None:
        origin = self.store.column("origin")
        population = self.store.column("population")
        web_ai = int((origin == AI).sum())
        for pub, ids in zip(self.publishers, new_pages):
            mine = population == pub.index
            n_all = int(mine.sum())
            n = len(ids)
            ai = int((origin[ids] == AI).sum())
            self.rows["ticks"].append({
                **self.ids, "tick": tick, "population": pub.cfg.name,
                "sites": int((self.graph.population == pub.index).sum()),
                "pages": n, "ai_pages": ai, "ai_share_new": ai / n if n else None,
                "pages_total": n_all, "ai_share_all": int((origin[mine] == AI).sum()) / n_all if n_all else None,
                "watermarked_share": float(self.store.column("watermarked")[ids].mean()) if n else None,
                "c2pa_share": float((self.store.column("c2pa")[ids] > 0).mean()) if n else None,
                "web_pages": len(self.store), "web_ai_share": web_ai / len(self.store) if len(self.store) else None,
            })

    def _record_crawl(self, lab: str, crawl: int, tick: int, purpose: str, steps: list[dict]) -> None:
        for step in steps:
            self.rows["crawls"].append({**self.ids, "lab": lab, "crawl": crawl, "tick": tick, "purpose": purpose,
                                        **step})

    def results(self, *, wall_time: float) -> Results:
        order = {name: i for i, name in enumerate(self.lab_names)}
        gen_rows = sorted(self.rows["generations"], key=lambda r: (order[r["lab"]], r["generation"]))
        manifest = {
            "run_id": self.ids["run_id"],
            "scenario": self.scenario.run.name,
            "seed": self.seed,
            "executor": self.scenario.run.executor,
            "ticks": self.tick,
            "pages": len(self.store),
            "sites": self.graph.n_sites,
            "wall_time_s": round(wall_time, 3),
            "stage_time_s": {k: round(v, 3) for k, v in self.timings.items()},
        }
        return Results(generations=_frame(gen_rows, generations_schema(self.lab_names)),
                       ticks=_frame(self.rows["ticks"], TICKS), crawls=_frame(self.rows["crawls"], CRAWLS),
                       scenario_toml=self.scenario_toml, manifest=manifest)


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    """Rows → a frame with exactly the declared columns, in declared order (missing keys become null)."""
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows], schema=schema, orient="row")
