"""Consent: sites that refuse AI crawlers, and labs that honour the refusal or not.

A population with ``opt_out`` has a logistic share of its sites disallow AI crawlers (robots.txt) over
ticks, the curve of ``ai_adoption`` (:func:`simweb.agents.publisher.adoption_share`). Each tick the
driver brings the population's blocking sites up to that share of its sites, choosing the newcomers
by weighted sampling without replacement, weight ``exp(by_reputation · q)`` with ``q`` the site's
PageRank percentile (1 = the most central site), so reputable sites block first (Longpre et al. 2024,
"Consent in Crisis": the most critical sources restrict far more than the web at large). A block is
never lifted. The choice is drawn in the driver from the stream ``("opt_out", population, tick)``,
and the blocks travel to every scraper with the site graph, so the web is the same for any executor
and any number of shards.

A lab honours a given site's block with probability ``compliance`` (default 1), drawn once per
(site, lab) from the stream ``("compliance", lab, tick the site joined)``: one draw per site, in site
order, so a scraper that follows the graph tick by tick and one restored from a checkpoint draw the same.
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs
from simweb.features import features_of

__all__ = ["restricted", "consent_on", "blocks_labs", "update_blocks", "honour", "refused_sites", "blocking_shares"]


def consent_on(scenario) -> bool:
    """Some population's sites may refuse AI crawlers (otherwise nothing of this module runs)."""
    return "consent" in features_of(scenario)


def blocks_labs(scenario) -> np.ndarray:
    """(population, lab) → the population's sites, once blocking, refuse that lab."""
    names = [lab.name for lab in scenario.labs]
    out = np.zeros((len(scenario.publishers), len(names)), dtype=bool)
    for p, pub in enumerate(scenario.publishers):
        if pub.opt_out is not None:
            out[p] = [pub.opt_out.labs is None or name in pub.opt_out.labs for name in names]
    return out


def update_blocks(graph, publishers, tick: int, *, seed: int) -> None:
    """Bring every opting-out population's blocking sites up to its share of this tick (driver only)."""
    from simweb.agents.publisher import adoption_share  # the curve of ai_adoption

    percentile = None
    for p, pub in enumerate(publishers):
        cfg = pub.opt_out
        if cfg is None:
            continue
        sites = graph.sites_of(p)
        target = int(np.floor(adoption_share(cfg, tick) * len(sites) + 0.5))
        open_sites = sites[graph.blocked_since[sites] > tick]
        k = target - (len(sites) - len(open_sites))
        if k <= 0:
            continue
        rng = rngs.stream(seed, "opt_out", pub.name, tick)
        weight = np.ones(len(open_sites))
        if cfg.by_reputation > 0:
            if percentile is None:
                rank = graph.pagerank_rank()  # 0 = most central
                percentile = 1.0 - rank / max(graph.n_sites - 1, 1)
            weight = np.exp(cfg.by_reputation * percentile[open_sites])
        # weighted sampling without replacement (Efraimidis & Spirakis 2006): the k smallest Exp(1) / weight
        key = rng.exponential(size=len(open_sites)) / weight
        chosen = open_sites[np.argsort(key, kind="stable")[:k]]
        graph.block(np.sort(chosen), tick)


def honour(compliance: float | None, lab: str, created: np.ndarray, *, seed: int) -> np.ndarray:
    """Per site (``created``: the tick each joined, non-decreasing): the lab honours its block."""
    created = np.asarray(created)
    if compliance is None or compliance >= 1.0:
        return np.ones(len(created), dtype=bool)
    out = np.empty(len(created), dtype=bool)
    starts = np.flatnonzero(np.r_[True, created[1:] != created[:-1]]) if len(created) else np.empty(0, np.int64)
    for a, b in zip(starts, np.r_[starts[1:], len(created)]):
        out[a:b] = rngs.stream(seed, "compliance", lab, int(created[a])).random(b - a) < compliance
    return out


def refused_sites(graph, refuses: np.ndarray, honoured: np.ndarray, tick: int) -> np.ndarray:
    """Per site: it blocks the lab at ``tick`` (``refuses``: per population) and the lab honours that."""
    return (graph.blocked_since <= tick) & refuses[graph.population] & honoured


def blocking_shares(graph, blocks: np.ndarray, site_human: np.ndarray, tick: int):
    """(population, lab) shares of sites, and of the human pages on them so far, that block the lab now."""
    n_pop = blocks.shape[0]
    blocking = graph.blocked_since <= tick
    sites = np.bincount(graph.population, minlength=n_pop)
    humans = np.bincount(graph.population, weights=site_human, minlength=n_pop)
    blocked_sites = np.bincount(graph.population, weights=blocking, minlength=n_pop)
    blocked_humans = np.bincount(graph.population, weights=np.where(blocking, site_human, 0), minlength=n_pop)
    site_share = np.where(sites > 0, blocked_sites / np.maximum(sites, 1), np.nan)[:, None] * blocks
    human_share = np.where(humans > 0, blocked_humans / np.maximum(humans, 1), np.nan)[:, None] * blocks
    return site_share, human_share


def restricted(graph, page_site: np.ndarray, tick: int, *, top: float = 0.1) -> tuple[float, float]:
    """What Longpre et al. 2024 measure: the share of all pages (tokens: documents have one length) on sites
    that block any AI crawler at ``tick``, and the share of the top ``top`` of sites by PageRank that do."""
    blocking = graph.blocked_since <= tick
    rank = graph.pagerank_rank()
    head = rank < max(1, int(round(top * graph.n_sites)))
    return float(blocking[np.asarray(page_site)].mean()), float(blocking[head].mean())
