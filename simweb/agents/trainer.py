"""A lab's trainer: assembles each generation's training set and fits the next model.

Data regimes (Gerstgrasser et al. 2024; Kazdan et al. 2024): ``replace`` trains
on the latest crawl only; ``accumulate`` on every page the lab has ever kept;
``accumulate_subsample`` on a fixed-size uniform subsample of that pool. On top
of the web data: a share drawn from the lab's verified human reserve, and
``anchors`` fresh ground-truth documents per generation (Jangjoo, Marsili &
Roudi 2026).
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs
from simweb.errors import SimwebError
from simweb.models import Prior, build_model
from simweb.web.store import AI, PageStore

__all__ = ["Trainer"]


class Trainer:
    def __init__(self, cfg, index: int, language, n_labs: int, seed: int):
        self.cfg = cfg
        self.index = index
        self.language = language
        self.n_labs = n_labs
        self.seed = seed
        self.pool = np.empty(0, dtype=np.int64)  # every web page kept so far (accumulate regimes)
        self.generation = -1
        self._reserve: np.ndarray | None = None
        self.reference: dict[str, np.ndarray] | None = None  # generation 0's state, for a prior toward it

    @property
    def reserve(self) -> np.ndarray:
        """The lab's verified human documents, drawn once from the language."""
        if self._reserve is None:
            docs, _ = self.language.sample(self.cfg.reserve_docs, rng=rngs.stream(self.seed, "reserve", self.cfg.name))
            self._reserve = docs
        return self._reserve

    def train(self, kept: np.ndarray, store: PageStore):
        """Fit generation g+1 on ``kept`` web pages (plus reserve and anchors); returns (model, composition)."""
        cfg = self.cfg
        self.generation += 1
        gen = self.generation
        if cfg.regime == "replace":
            web_ids = np.asarray(kept, dtype=np.int64)
        else:
            self.pool = np.union1d(self.pool, kept)
            web_ids = self.pool
            size = cfg.train_docs or cfg.crawl_budget
            if cfg.regime == "accumulate_subsample" and len(web_ids) > size:
                pick = rngs.stream(self.seed, "subsample", cfg.name, gen).choice(len(web_ids), size=size, replace=False)
                web_ids = web_ids[np.sort(pick)]
        parts = [store.content(web_ids)]
        n_reserve = 0
        if cfg.reserve_fraction > 0:
            want = int(round(cfg.reserve_fraction / (1 - cfg.reserve_fraction) * len(web_ids)))
            n_reserve = min(cfg.reserve_docs, max(want, 1))
            pick = rngs.stream(self.seed, "reserve_pick", cfg.name, gen).choice(cfg.reserve_docs, size=n_reserve,
                                                                                  replace=False)
            parts.append(self.reserve[np.sort(pick)])
        if cfg.anchors:
            anchors, _ = self.language.sample(cfg.anchors, rng=rngs.stream(self.seed, "anchors", cfg.name, gen))
            parts.append(anchors)
        corpus = np.concatenate(parts)
        if len(corpus) == 0:
            raise EmptyCorpusError(f"lab {cfg.name!r}, generation {gen}: nothing to train on "
                                   "(the crawl kept no page and the lab has no reserve or anchors)")
        model = build_model(cfg.model, self.language).fit(corpus, rng=rngs.stream(self.seed, "fit", cfg.name, gen),
                                                          prior=self._prior())
        if gen == 0:
            self.reference = model.state_dict()
        lab_of_page = store.column("lab")[web_ids]
        is_ai = store.column("origin")[web_ids] == AI
        total = len(corpus)
        by_lab = np.bincount(lab_of_page[is_ai].astype(np.int64), minlength=self.n_labs) / total
        composition = {
            "train_docs": total,
            "train_web_docs": int(len(web_ids)),
            "train_reserve_docs": n_reserve,
            "train_anchor_docs": int(cfg.anchors),
            "train_ai_fraction": float(is_ai.sum() / total),
            "train_ai_fraction_by_lab": by_lab,
            "train_mean_ai_generation": float(store.column("generation")[web_ids][is_ai].mean()) if is_ai.any() else None,
        }
        return model, composition


    def _prior(self) -> Prior | None:
        prior = self.cfg.prior
        if prior is None:
            return None
        if prior.toward == "uniform":
            return Prior(prior.strength)
        # generation 0 has no reference of its own yet: it is fitted on the all-human web, unregularised
        return Prior(prior.strength, self.reference) if self.reference is not None else None


class EmptyCorpusError(SimwebError):
    """A generation has no training data: a scenario problem the user must see, not a crash."""
