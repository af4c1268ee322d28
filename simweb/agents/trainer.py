"""A lab's trainer: assembles each generation's training set, fits the next model, and evaluates it.

Data regimes (Gerstgrasser et al. 2024; Kazdan et al. 2024): ``replace`` trains
on the latest crawl only; ``accumulate`` on every page the lab has ever kept;
``accumulate_subsample`` on a fixed-size uniform subsample of that pool. On top
of the web data: a share drawn from the lab's verified human reserve, and
``anchors`` fresh ground-truth documents per generation (Jangjoo, Marsili &
Roudi 2026), and optionally a prior toward a reference model.
"""

from __future__ import annotations

import numpy as np

from simweb import rng as rngs
from simweb.agents.evaluator import Evaluator
from simweb.errors import SimwebError
from simweb.language import build_language
from simweb.models import Prior, build_model
from simweb.timing import Busy
from simweb.web.store import AI

__all__ = ["Trainer", "EmptyCorpusError"]


class Trainer:
    def __init__(self, cfg, index: int, scenario, seed: int):
        self.cfg = cfg
        self.index = index
        self.n_labs = len(scenario.labs)
        self.seed = seed
        self.language = build_language(scenario.language, seed)
        self.evaluator = Evaluator(scenario.evaluation, self.language, seed)
        self.busy = Busy()
        self.generation = -1
        # the pool: every web page kept so far (accumulate regimes), with its content and origin columns
        self.pool_ids = np.empty(0, dtype=np.int64)
        self.pool_content = np.empty((0, self.language.width), dtype=self.language.dtype)
        self.pool_meta = {k: np.empty(0, dtype=dt) for k, dt in (("origin", np.int8), ("lab", np.int16),
                                                                  ("generation", np.int16))}
        self.reference: dict[str, np.ndarray] | None = None  # generation 0's state, for a prior toward it
        self.last_state: dict[str, np.ndarray] | None = None  # the latest generation's state (self-augmentation)
        self._reserve: np.ndarray | None = None

    @property
    def reserve(self) -> np.ndarray:
        """The lab's verified human documents, drawn once from the language."""
        if self._reserve is None:
            docs, _ = self.language.sample(self.cfg.reserve_docs, rng=rngs.stream(self.seed, "reserve", self.cfg.name))
            self._reserve = docs
        return self._reserve

    def generate(self, kept: dict, benchmark: dict | None):
        """Train generation g+1 on the filtered crawl ``kept`` and evaluate it, also on the ``benchmark`` pages.

        Both carry their ``content``. Returns (model state, info): the training-set composition, the
        metrics, and the crawls' accounting steps.
        """
        with self.busy("train"):
            model, composition = self.train(kept, kept["content"])
        bench = benchmark["content"] if benchmark is not None else None
        with self.busy("evaluate"):
            metrics = self.evaluator.evaluate(model, lab=self.cfg.name, generation=self.generation, benchmark=bench)
        info = {**composition, **metrics, "steps": kept["steps"],
                "bench_steps": benchmark["steps"] if benchmark is not None else None}
        return model.state_dict(), info

    def train(self, selection: dict, content: np.ndarray):
        """Fit generation g+1 on crawled pages (plus reserve and anchors); returns (model, composition)."""
        cfg = self.cfg
        self.generation += 1
        gen = self.generation
        ids = np.asarray(selection["ids"], dtype=np.int64)
        meta = {k: np.asarray(selection[k]) for k in self.pool_meta}
        if cfg.regime == "replace":
            web_content, web_meta = content, meta
        else:
            new = ~np.isin(ids, self.pool_ids)
            self.pool_ids = np.concatenate([self.pool_ids, ids[new]])
            self.pool_content = np.concatenate([self.pool_content, content[new]])
            self.pool_meta = {k: np.concatenate([v, meta[k][new]]) for k, v in self.pool_meta.items()}
            web_content, web_meta = self.pool_content, self.pool_meta
            size = cfg.train_docs or cfg.crawl_budget
            if cfg.regime == "accumulate_subsample" and len(web_content) > size:
                pick = np.sort(rngs.stream(self.seed, "subsample", cfg.name, gen).choice(
                    len(web_content), size=size, replace=False))
                web_content, web_meta = web_content[pick], {k: v[pick] for k, v in web_meta.items()}
        parts = [web_content]
        n_reserve = 0
        if cfg.reserve_fraction > 0:
            want = int(round(cfg.reserve_fraction / (1 - cfg.reserve_fraction) * len(web_content)))
            n_reserve = min(cfg.reserve_docs, max(want, 1))
            pick = rngs.stream(self.seed, "reserve_pick", cfg.name, gen).choice(cfg.reserve_docs, size=n_reserve,
                                                                                  replace=False)
            parts.append(self.reserve[np.sort(pick)])
        if cfg.anchors:
            anchors, _ = self.language.sample(cfg.anchors, rng=rngs.stream(self.seed, "anchors", cfg.name, gen))
            parts.append(anchors)
        n_augment = 0
        if cfg.self_augment and self.last_state is not None:
            previous = build_model(cfg.model, self.language).load_state_dict(self.last_state)
            parts.append(previous.sample(cfg.self_augment, rng=rngs.stream(self.seed, "augment", cfg.name, gen)))
            n_augment = cfg.self_augment
        corpus = np.concatenate(parts)
        if len(corpus) == 0:
            raise EmptyCorpusError(f"lab {cfg.name!r}, generation {gen}: nothing to train on "
                                   "(the crawl kept no page and the lab has no reserve or anchors)")
        model = build_model(cfg.model, self.language)
        if getattr(cfg.model, "init", "scratch") == "finetune" and self.last_state is not None:
            model.load_state_dict(self.last_state)  # fine-tune the previous generation
        model.fit(corpus, rng=rngs.stream(self.seed, "fit", cfg.name, gen), prior=self._prior())
        if gen == 0:
            self.reference = model.state_dict()
        self.last_state = model.state_dict()
        is_ai = web_meta["origin"] == AI
        total = len(corpus)
        # its own samples (self-augmentation) are AI-written too, by this lab
        by_lab = np.bincount(web_meta["lab"][is_ai].astype(np.int64), minlength=self.n_labs).astype(np.float64)
        by_lab[self.index] += n_augment
        by_lab /= total
        composition = {
            "train_docs": total,
            "train_web_docs": int(len(web_content)),
            "train_reserve_docs": n_reserve,
            "train_anchor_docs": int(cfg.anchors),
            "train_self_docs": n_augment,
            "train_ai_fraction": float((is_ai.sum() + n_augment) / total),
            "train_ai_fraction_by_lab": [float(v) for v in by_lab],
            "train_mean_ai_generation": float(web_meta["generation"][is_ai].mean()) if is_ai.any() else None,
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

    def busy_seconds(self) -> dict[str, float]:
        return dict(self.busy.seconds)

    # ------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, np.ndarray]:
        out = {"generation": np.array(self.generation), "pool_ids": self.pool_ids, "pool_content": self.pool_content}
        out.update({f"pool_{k}": v for k, v in self.pool_meta.items()})
        if self.reference is not None:
            out.update({f"reference.{k}": v for k, v in self.reference.items()})
        if self.last_state is not None:
            out.update({f"last.{k}": v for k, v in self.last_state.items()})
        return out

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.generation = int(state["generation"])
        self.pool_ids = np.asarray(state["pool_ids"], dtype=np.int64)
        self.pool_content = np.asarray(state["pool_content"], dtype=self.language.dtype).reshape(
            -1, self.language.width)
        self.pool_meta = {k: np.asarray(state[f"pool_{k}"]) for k in self.pool_meta}
        ref = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("reference.")}
        self.reference = ref or None
        last = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("last.")}
        self.last_state = last or None


class EmptyCorpusError(SimwebError):
    """A generation has no training data: a scenario problem the user must see, not a crash."""
