"""The run recorder: one row per tick × population, per crawl step, per lab × generation; then the frames.

Frames are built strictly: a row with a column the schema does not declare, or without one it
does, is an error (a typo must not become a column of nulls). Metrics that do not apply to a
model family are declared None by the evaluator, not left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simweb import consent
from simweb.schema import crawls_schema, generations_schema, ticks_schema
from simweb.stages import GenerationReport
from simweb.web.store import AI

__all__ = ["Results", "RunRecorder", "strict_frame", "tick_counts", "merge_counts", "exact_sum", "human_drift"]



@dataclass
class Results:
    """The frames of one run, plus what produced them."""

    generations: pl.DataFrame
    ticks: pl.DataFrame
    crawls: pl.DataFrame
    scenario_toml: str
    manifest: dict = field(default_factory=dict)


class RunRecorder:
    def __init__(self, ids: dict, lab_names: list[str], population_names: list[str], features=frozenset(),
                 blocks: np.ndarray | None = None):
        self.ids = ids
        self.lab_names = lab_names
        self.population_names = population_names
        self.features = frozenset(features)
        self.blocks = blocks  # (population, lab): its sites, once blocking, refuse the lab (consent only)
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, list[dict]] = {"generations": [], "ticks": [], "crawls": []}
        self.totals = np.zeros((len(self.population_names), 2), dtype=np.int64)  # per population: pages, AI pages
        self.site_human = np.zeros(0, dtype=np.int64)  # per site: human pages so far (consent only)

    def totals_state(self) -> dict[str, np.ndarray]:
        """The running totals, for a checkpoint (no pass over the web rebuilds them)."""
        return {"totals": self.totals.copy(), "site_human": self.site_human.copy()}

    def restore_totals(self, state: dict[str, np.ndarray]) -> None:
        """Back to a checkpoint's totals; a ValueError names what does not fit this run."""
        if set(state) != {"totals", "site_human"}:
            raise ValueError(f"expected the arrays site_human and totals, got {sorted(state)}")
        totals, site_human = np.asarray(state["totals"]), np.asarray(state["site_human"])
        if totals.shape != self.totals.shape or totals.dtype.kind not in "iu" or site_human.ndim != 1 \
                or site_human.dtype.kind not in "iu":
            raise ValueError(f"totals {totals.dtype}{list(totals.shape)} and site_human {site_human.dtype}"
                             f"{list(site_human.shape)}, expected integers of shapes {list(self.totals.shape)} and [sites]")
        self.totals = totals.astype(np.int64)
        self.site_human = site_human.astype(np.int64)

    def tick(self, tick: int, counts: dict, site_population: np.ndarray, graph=None, drift: list | None = None) -> None:
        """One row per population: this tick's pages (``counts``: :func:`tick_counts` of them), and running
        totals (no pass over the whole web). ``drift``: per population, :func:`human_drift` (humans only).

        With opt-outs (``graph``: the site graph with its blocks), the shares of sites and of human pages
        that refuse each lab."""
        n_pop = len(self.population_names)
        new, new_ai = counts["new"], counts["new_ai"]
        watermarked, labelled = counts["watermarked"], counts["labelled"]
        self.totals[:, 0] += new
        self.totals[:, 1] += new_ai
        n_web, web_ai = int(self.totals[:, 0].sum()), int(self.totals[:, 1].sum())
        sites = np.bincount(site_population, minlength=n_pop)
        shares = None
        if "consent" in self.features:
            human = counts["site_human"]
            self.site_human = np.concatenate([self.site_human, np.zeros(len(human) - len(self.site_human), np.int64)])
            self.site_human[:len(human)] += human
            shares = consent.blocking_shares(graph, self.blocks, self.site_human, tick)
        for p, name in enumerate(self.population_names):
            n, ai, n_all = int(new[p]), int(new_ai[p]), int(self.totals[p, 0])
            self.rows["ticks"].append({
                **self.ids, "tick": tick, "population": name, "sites": int(sites[p]),
                "pages": n, "ai_pages": ai, "ai_share_new": ai / n if n else None,
                "pages_total": n_all, "human_pages_total": n_all - int(self.totals[p, 1]),
                "ai_share_all": int(self.totals[p, 1]) / n_all if n_all else None,
                "watermarked_share": float(watermarked[p] / n) if n else None,
                "c2pa_share": float(labelled[p] / n) if n else None,
                "web_pages": n_web, "web_ai_share": web_ai / n_web if n_web else None,
            })
            if "humans" in self.features:
                self.rows["ticks"][-1].update(drift[p])
            if shares is not None:
                self.rows["ticks"][-1].update({
                    column: {lab: None if np.isnan(v) else float(v) for lab, v in zip(self.lab_names, share[p])}
                    for column, share in zip(("blocking_site_share", "blocking_human_share"), shares)})

    def crawl(self, lab: int, crawl: int, tick: int, purpose: str, steps) -> None:
        blank = dict.fromkeys(("imitating_in", "imitating_dropped", "imitating_fpr")) if "humans" in self.features else {}
        for step in steps:
            step = {**blank, **step}  # the blocked step knows nothing of imitation
            self.rows["crawls"].append({**self.ids, "lab": self.lab_names[lab], "crawl": crawl, "tick": tick,
                                        "purpose": purpose, **step})

    def generation(self, lab: int, gen: int, tick: int, report: GenerationReport) -> None:
        self.crawl(lab, gen, tick, "train", report.steps)
        if report.bench_steps is not None:
            self.crawl(lab, gen, tick, "benchmark", report.bench_steps)
        steps = {step["step"]: step for step in report.steps}
        fetch, last = steps[0], report.steps[-1]  # step −1: the blocked step (opt-outs), 0: the fetch
        filtered = max(steps) > 0
        dropped = fetch["pages_in"] - last["kept"]
        dropped_ai = fetch["ai_in"] - last["kept_ai"]
        composition = dict(report.composition)
        if "consent" in self.features:
            blocked = steps[-1]
            humans = blocked["pages_in"] - blocked["ai_in"]
            composition["blocked_human_fraction"] = (blocked["dropped"] - blocked["dropped_ai"]) / humans if humans else None
        by_lab = composition.pop("train_ai_fraction_by_lab")
        self.rows["generations"].append({
            **self.ids, "lab": self.lab_names[lab], "generation": gen, "tick": tick, **composition,
            **report.metrics, **report.extra,
            "train_ai_fraction_by_lab": dict(zip(self.lab_names, by_lab)),
            "crawl_pages": fetch["pages_in"],
            "crawl_ai_fraction": fetch["ai_in"] / fetch["pages_in"] if fetch["pages_in"] else None,
            "kept_pages": last["kept"],
            # undefined, not 0, for a lab without filters (no detector to score) or a crawl with no AI page
            "filter_precision": dropped_ai / dropped if filtered and dropped and fetch["ai_in"] else None,
            "filter_recall": dropped_ai / fetch["ai_in"] if filtered and fetch["ai_in"] else None,
        })

    def frames(self) -> dict[str, pl.DataFrame]:
        order = {name: i for i, name in enumerate(self.lab_names)}
        gen_rows = sorted(self.rows["generations"], key=lambda r: (order[r["lab"]], r["generation"]))
        return {"generations": strict_frame(gen_rows, generations_schema(self.lab_names, self.features), "generations"),
                "ticks": strict_frame(self.rows["ticks"], ticks_schema(self.lab_names, self.features), "ticks"),
                "crawls": strict_frame(self.rows["crawls"], crawls_schema(self.features), "crawls")}


def tick_counts(pages: dict[str, np.ndarray], n_pop: int, n_sites: int | None = None, features=frozenset()) -> dict:
    """What :meth:`RunRecorder.tick` records of a tick's pages, per population (and per site, with opt-outs: up to
    the last site with a human page when ``n_sites`` is None): computed by the shards that plan the pages, so
    they never pass through the driver; :func:`merge_counts` adds the shards' up."""
    population, is_ai = pages["population"], pages["origin"] == AI
    out = {"new": np.bincount(population, minlength=n_pop),
           "new_ai": np.bincount(population, weights=is_ai, minlength=n_pop).astype(np.int64),
           "watermarked": np.bincount(population, weights=pages["watermarked"], minlength=n_pop).astype(np.int64),
           "labelled": np.bincount(population, weights=pages["c2pa"] > 0, minlength=n_pop).astype(np.int64)}
    if "consent" in features:
        out["site_human"] = np.bincount(pages["site_id"][~is_ai], minlength=n_sites or 0)
    return out


def merge_counts(parts: list[dict], n_sites: int) -> dict:
    """The shards' :func:`tick_counts` of one tick, added up (integers: the same in any order)."""
    out = {}
    for key in parts[0]:
        if key == "site_human":
            total = np.zeros(n_sites, dtype=np.int64)
            for p in parts:
                total[:len(p[key])] += p[key]
        else:
            total = np.sum([p[key] for p in parts], axis=0).astype(np.int64)
        out[key] = total
    return out


def exact_sum(values) -> float:
    """The sum of ``values``, correctly rounded whatever their order (``math.fsum``), so that sums of a tick's
    pages made in any number of shards agree to the bit; with an inf or a nan among them, their plain sum (inf,
    or nan, in any order)."""
    values = np.asarray(values, dtype=np.float64)
    return math.fsum(values.tolist()) if np.isfinite(values).all() else float(values.sum())


def human_drift(sums: list[tuple], n_pop: int) -> list[dict]:
    """Per population, its new human pages of the tick (copies excluded): mean imitation and excess NLL, from
    the shards' (population, pages, sum of imitation, sum of excess NLL) per (population, site block) group
    (:meth:`simweb.agents.publisher.PublisherShard.publish`): exact sums of exact sums, so any number of
    shards gives the same means."""
    out = []
    for p in range(n_pop):
        mine = [s for s in sums if s[0] == p]
        n = sum(s[1] for s in mine)
        if n == 0:
            out.append({"human_imitation": None, "human_excess_nll": None})
            continue
        excess = exact_sum([s[3] for s in mine])
        out.append({"human_imitation": exact_sum([s[2] for s in mine]) / n,
                    "human_excess_nll": None if math.isnan(excess) else excess / n})
    return out


def strict_frame(rows: list[dict], schema: dict, table: str) -> pl.DataFrame:
    """Rows → a frame with exactly the declared columns, in declared order; any other key, or a missing one,
    is an error naming it."""
    names = set(schema)
    for row in rows:
        if row.keys() != names:
            extra, missing = sorted(row.keys() - names), sorted(names - row.keys())
            raise ValueError(f"{table} row does not match its schema: unknown {extra}, missing {missing}")
    return pl.DataFrame([[row[name] for name in schema] for row in rows], schema=schema, orient="row")
