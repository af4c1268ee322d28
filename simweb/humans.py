"""Human writers who imitate models, and who are displaced by them (issue 19).

A population with ``imitation`` writes each human page from the mixture (1 − κ_t)·truth + κ_t·model:
the page takes k ~ Binomial(L, κ_t) of its L tokens (for a gaussian, L = its ``dim`` coordinates, and the
closed form of the reproduce target holds for dim = 1; L = 1 for a categorical sample) from a released model picked by the population's market shares, the rest from the truth of
its tick, at positions drawn uniformly. The page stays ``origin = human`` (a person published it) and
carries the ground-truth column ``imitation`` = k / L. ``displacement`` s thins a population's new
human pages to a share 1 − s·a_t of what it would write, a_t its AI adoption of the tick.

Randomness: the plan draws k and the model of every page from two uniforms of its own among those its
shard draws for it from ("plan", population, tick, block) (they exist only when the population imitates),
the writer the model's tokens and their positions from ("imitate", population, tick, block); the
thinning takes one binomial draw in ("publish", population, tick) before the pages are spread over the
sites (the displaced pages are never planned), and only when displacement is on. A web with all of this
off is the same, draw for draw, as one without this module.

Reserves bought every generation (``reserve_vintage = "current"``), anchors and licensed streams of a
scenario where humans imitate are drawn the same way (:func:`human_docs`): they are only as clean as
the humans of their day.
"""

from __future__ import annotations

import numpy as np

from simweb.sampling import choice

__all__ = ["humans_on", "imitation_share", "imitates", "splice", "human_docs", "mixed_share", "lab_weights"]


def humans_on(scenario) -> bool:
    """Whether a scenario turns on any of this module's mechanisms (the "humans" feature's columns)."""
    return (any(p.imitation is not None or p.displacement for p in scenario.publishers)
            or any(lab.reserve_vintage == "current" for lab in scenario.labs))


def imitates(scenario) -> bool:
    return any(p.imitation is not None for p in scenario.publishers)


def imitation_share(cfg, tick: int) -> float:
    """κ_t of a population's ``imitation`` (None: 0)."""
    if cfg is None:
        return 0.0
    from simweb.agents.publisher import adoption_share

    return adoption_share(cfg, tick)


def lab_weights(scenario, population=None) -> np.ndarray:
    """Market-share weights of the labs a population uses (every lab when ``population`` is None)."""
    uses = set(population.uses) if population is not None and population.uses is not None else None
    return np.array([lab.market_share if uses is None or lab.name in uses else 0.0 for lab in scenario.labs])


def mixed_share(scenario, tick: int) -> float:
    """κ of "the human writers" as a whole: the populations' κ_t weighted by their pages per tick."""
    w = np.array([p.pages_per_tick for p in scenario.publishers], dtype=np.float64)
    k = np.array([imitation_share(p.imitation, tick) for p in scenario.publishers])
    return float((w * k).sum() / w.sum()) if w.sum() > 0 else 0.0


def splice(truth: np.ndarray, model: np.ndarray, k: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Rows of ``truth`` with ``k[i]`` positions of row i (uniform, without repeats) taken from ``model``."""
    u = rng.random(truth.shape[:2])
    rank = np.argsort(np.argsort(u, axis=1, kind="stable"), axis=1, kind="stable")
    take = rank < np.asarray(k)[:, None]
    out = truth.copy()
    out[take] = model[take]
    return out


def human_docs(context, n: int, tick: int, kappa: float, weights: np.ndarray, released: dict, *,
               rng: np.random.Generator, watermarks: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` documents of human writers of ``tick`` who imitate with share ``kappa`` the released models
    (``released``: lab → (generation, state)) picked by ``weights``; returns (documents, imitation shares)."""
    language = context.language
    docs, _ = language.at(tick).sample(n, rng=rng)
    width = docs.shape[1]
    w = np.array([wt if lab in released else 0.0 for lab, wt in enumerate(weights)])
    if kappa <= 0 or w.sum() <= 0 or n == 0:
        return docs, np.zeros(n)
    k = rng.binomial(width, kappa, size=n)
    lab = choice(w / w.sum(), n, rng=rng)
    noise = language.noise(n, rng=rng)
    model_docs = np.empty_like(docs)
    for j in np.flatnonzero(np.bincount(lab, minlength=len(w))):
        rows = lab == j
        model_docs[rows] = context.model(int(j), *released[int(j)]).draw(
            noise[rows], watermark=(watermarks or {}).get(int(j)))
    return splice(docs, model_docs, k, rng=rng), k / width
