"""A lab's trainer: assembles each generation's training set, fits the next model, and evaluates it.

Which kept pages a generation trains on is the lab's regime, a registered plugin
(:mod:`simweb.regimes`: ``replace``, ``accumulate``, ``accumulate_subsample``, or a user's own). On
top of the web data: a share drawn from the lab's verified human reserve, ``anchors`` fresh
ground-truth documents per generation (Jangjoo, Marsili & Roudi 2026), its own samples
(self-augmentation), documents it buys (licences: verified human, past any opt-out), documents
sampled from other labs' released models (distillation), and optionally a prior toward a reference model. The training set's
composition is counted against the ground truth, which the regime never sees.
"""

from __future__ import annotations

import numpy as np

from simweb import humans as hm
from simweb.agents.publisher import sampling_settings
from simweb.errors import SimwebError
from simweb.humans import imitates
from simweb.models import Prior, build_model
from simweb.plugins import PluginError, registry
from simweb.regimes import Pool
from simweb.features import features_of
from simweb.stages import GenerationReport, Kept
from simweb.agents.base import Agent
from simweb.timing import Busy
from simweb.web.store import AI

__all__ = ["Trainer", "EmptyCorpusError"]

# the pool's columns: what the regime sees (POOL_SEEN), and the ground truth kept for the accounting
POOL_SEEN = {"crawl": np.int32, "crawl_tick": np.int32, "tick": np.int32, "site_id": np.int32}
POOL_TRUTH = {"origin": np.int8, "lab": np.int16, "generation": np.int16}


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class Trainer(Agent):
    def __init__(self, context, index: int):
        self.context = context
        self.cfg = cfg = context.scenario.labs[index]
        self.index = index
        self.n_labs = len(context.scenario.labs)
        self.features = features_of(context.scenario)  # mechanisms whose columns this run writes
        self.lab_index = {lab.name: i for i, lab in enumerate(context.scenario.labs)}
        self.language = context.language
        self.busy = Busy()
        self.generation = -1
        self.entry = registry.get("regime", cfg.regime.kind)
        self.regime = self.entry.cls(cfg.regime, cfg)
        self.keeps_pool = "pool" in self.entry.needs
        self.finetunes = getattr(cfg.model, "init", "scratch") == "finetune"  # a missing pydantic field is slow to ask
        # the pool: the pages kept so far (every crawl's if the regime needs it, else the latest), with content
        self.pool_ids = np.empty(0, dtype=np.int64)
        self.pool_content = np.empty((0, self.language.width), dtype=self.language.dtype)
        truth = {**POOL_TRUTH, "imitation": np.float32} if "humans" in self.features else POOL_TRUTH
        self.pool_truth = tuple(truth)
        self.pool_meta = {k: np.empty(0, dtype=dt) for k, dt in {**POOL_SEEN, **truth}.items()}
        self.imitates = imitates(context.scenario)  # reserves, anchors and licences follow the imitating humans
        self.reference: dict[str, np.ndarray] | None = None  # generation 0's state, for a prior toward it
        self.last_state: dict[str, np.ndarray] | None = None  # the latest generation's state (self-augmentation)
        self._reserve: np.ndarray | None = None

    @property
    def reserve(self) -> np.ndarray:
        """The lab's verified human documents, drawn once from the language."""
        if self._reserve is None:
            docs, _ = self.language.sample(self.cfg.reserve_docs, rng=self.context.stream("reserve", self.cfg.name))
            self._reserve = docs
        return self._reserve

    def generate(self, kept: Kept, benchmark: Kept | None, *, released: dict | None = None,
                 humans: dict | None = None):
        """Train generation g+1 on the filtered crawl ``kept`` and evaluate it, also on the ``benchmark`` pages.

        ``released`` (when some lab distils): lab index → (generation, model state) of every other lab's latest
        released model (a lab that has released nothing is absent): the teachers it distils, and the models
        its ``lab_divergence`` compares with. ``humans`` (when humans imitate): every lab's latest released
        model, its own included, which the human writers of its reserve, anchors and licences imitate.
        Returns (model state, :class:`GenerationReport`, sampling tables or None: :meth:`release_tables`).
        """
        released = released or {}
        with self.busy("train"):
            model, composition = self.train(kept, teachers=released, humans=humans)
        bench = benchmark.content if benchmark is not None else None
        tick = int(kept.crawl_tick)  # the release tick: the present the model is judged against
        extra = {}
        with self.busy("evaluate"):
            metrics = self.context.evaluator.evaluate(model, lab=self.cfg.name, generation=self.generation,
                                                      benchmark=bench, tick=tick,
                                                      end_tick=tick + self.cfg.release_every)
            if "distill" in self.features:
                evaluator, labs = self.context.evaluator, self.context.scenario.labs
                extra["lab_divergence"] = {
                    lab.name: evaluator.divergence(model, self.context.model(i, *released[i])) if i in released else None
                    for i, lab in enumerate(labs)}
            if "forensics" in self.features:
                extra["watermark_z"] = self._forensics(model)
        report = GenerationReport(composition=composition, metrics=metrics, steps=kept.steps,
                                  bench_steps=benchmark.steps if benchmark is not None else None, extra=extra)
        with self.busy("train"):
            tables = self.release_tables(model, tick)
        return model.state_dict(), report, tables

    def release_tables(self, model, tick: int):
        """The sampling tables publishers will draw ``model`` with (the optional model hook ``sampling_tables``),
        built here once at release (the evaluation's are reused) and shared with every shard through the
        registry; None for a family without the hook, or for a release no later tick publishes from."""
        hook = getattr(model, "sampling_tables", None)
        if hook is None or tick + 1 >= self.context.scenario.run.ticks:
            return None
        settings = sampling_settings(self.context.scenario, self.index, self._watermark(self.index))
        return hook(settings) if settings else None

    def _add_to_pool(self, kept: Kept) -> None:
        gen = self.generation
        meta = {"crawl": np.full(len(kept), gen), "crawl_tick": np.full(len(kept), kept.crawl_tick),
                "tick": kept.tick, "site_id": kept.site_id, **kept.truth}
        if not self.keeps_pool:  # the latest crawl only
            self.pool_ids, self.pool_content = np.asarray(kept.ids, dtype=np.int64), kept.content
            self.pool_meta = {k: np.asarray(meta[k], dtype=v.dtype) for k, v in self.pool_meta.items()}
            return
        new = ~np.isin(kept.ids, self.pool_ids)
        self.pool_ids = np.concatenate([self.pool_ids, kept.ids[new]])
        self.pool_content = np.concatenate([self.pool_content, kept.content[new]])
        self.pool_meta = {k: np.concatenate([v, np.asarray(meta[k])[new].astype(v.dtype)])
                          for k, v in self.pool_meta.items()}

    def _select(self, now: int) -> np.ndarray:
        # read-only views: a regime chooses rows, it does not edit the pool (whose rows checkpoints write once)
        pool = Pool(ids=_read_only(self.pool_ids), content=_read_only(self.pool_content), now=now,
                    **{k: _read_only(self.pool_meta[k]) for k in POOL_SEEN})
        cfg, gen = self.cfg, self.generation
        rng = self.context.stream(getattr(self.entry.cls, "stream", cfg.regime.kind), cfg.name, gen)
        try:
            rows = self.regime.select(pool, generation=gen, rng=rng)
        except Exception as err:
            if self.entry.builtin or isinstance(err, PluginError):
                raise
            raise PluginError(f"regime {cfg.regime.kind!r} of lab {cfg.name!r}, generation {gen} "
                              f"({self.entry.origin}) raised {type(err).__name__}: {err}") from err
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) or (len(rows) and (
                rows.min() < 0 or rows.max() >= len(pool))):
            raise PluginError(f"regime {cfg.regime.kind!r} of lab {cfg.name!r}, generation {gen} "
                              f"({self.entry.origin}): select returned {rows.dtype} of shape {rows.shape}, "
                              f"expected integer row indices in [0, {len(pool)})")
        return rows

    def _humans(self, n: int, now: int, kappa: float, weights: np.ndarray, released: dict | None,
                *key) -> tuple[np.ndarray, np.ndarray]:
        """``n`` documents of the human writers of ``now`` (imitating with share ``kappa``), and their imitation."""
        watermarks = {i: self._watermark(i) for i in range(self.n_labs)}
        return hm.human_docs(self.context, n, now, kappa, weights, released or {}, watermarks=watermarks,
                             rng=self.context.stream(*key))

    def train(self, kept: Kept, *, teachers: dict | None = None, humans: dict | None = None):
        """Fit generation g+1 on crawled pages (plus reserve, anchors, licences, distillation); returns
        (model, composition)."""
        cfg = self.cfg
        self.generation += 1
        gen = self.generation
        now = int(kept.crawl_tick)
        self._add_to_pool(kept)
        rows = self._select(now)
        web_content = self.pool_content[rows]
        web_meta = {k: self.pool_meta[k][rows] for k in self.pool_truth}
        imitated = float(web_meta["imitation"].astype(np.float64)[web_meta["origin"] != AI].sum()) \
            if "imitation" in web_meta else 0.0  # imitation tokens (in documents) of the training set
        sc = self.context.scenario
        web_age = now - self.pool_meta["tick"][rows]
        parts = [web_content]
        n_reserve = 0
        if cfg.reserve_fraction > 0:
            want = int(round(cfg.reserve_fraction / (1 - cfg.reserve_fraction) * len(web_content)))
            n_reserve = min(cfg.reserve_docs, max(want, 1))
            pick = self.context.stream("reserve_pick", cfg.name, gen).choice(cfg.reserve_docs, size=n_reserve,
                                                                              replace=False)
            if cfg.reserve_vintage == "current":  # bought afresh from today's human writers
                docs, share = self._humans(n_reserve, now, hm.mixed_share(sc, now), hm.lab_weights(sc), humans,
                                           "reserve_current", cfg.name, gen)
                parts.append(docs)
                imitated += float(share.sum())
            else:
                parts.append(self.reserve[np.sort(pick)])
        if cfg.anchors and self.imitates:  # fresh human documents: as imitating as the humans of the day
            docs, share = self._humans(cfg.anchors, now, hm.mixed_share(sc, now), hm.lab_weights(sc), humans,
                                       "anchors_humans", cfg.name, gen)
            parts.append(docs)
            imitated += float(share.sum())
        elif cfg.anchors:
            anchors, _ = self.language.at(now).sample(cfg.anchors, rng=self.context.stream("anchors", cfg.name, gen))
            parts.append(anchors)
        n_licensed = 0
        populations = {p.name: p for p in sc.publishers}
        for licence in cfg.licences or ():  # verified human: drawn from the true language, like the reserve
            seller = populations[licence.population]
            if seller.imitation is not None:  # the population's writers of the day, imitation and all
                docs, share = self._humans(licence.docs_per_generation, now, hm.imitation_share(seller.imitation, now),
                                           hm.lab_weights(sc, seller), humans, "licence_humans", cfg.name,
                                           licence.population, gen)
                imitated += float(share.sum())
            else:
                docs, _ = self.language.sample(licence.docs_per_generation,
                                               rng=self.context.stream("licence", cfg.name, licence.population, gen))
            parts.append(docs)
            n_licensed += licence.docs_per_generation
        by_lab = np.zeros(self.n_labs)
        n_distill = 0
        for d in cfg.distill or ():  # straight from the other lab's latest released model (its API)
            source = self.lab_index[d.source]
            if source not in (teachers or {}):
                continue  # it has released nothing yet
            teacher = self.context.model(source, *teachers[source])
            parts.append(teacher.sample(d.docs, rng=self.context.stream("distill", cfg.name, d.source, gen),
                                        watermark=self._watermark(source)))
            by_lab[source] += d.docs
            n_distill += d.docs
        n_augment = 0
        if cfg.self_augment and self.last_state is not None:
            previous = build_model(cfg.model, self.language).load_state_dict(self.last_state)
            parts.append(previous.sample(cfg.self_augment, rng=self.context.stream("augment", cfg.name, gen)))
            n_augment = cfg.self_augment
        corpus = np.concatenate(parts)
        if len(corpus) == 0:
            raise EmptyCorpusError(f"lab {cfg.name!r}, generation {gen}: nothing to train on "
                                   "(the crawl kept no page and the lab has no reserve or anchors)")
        model = build_model(cfg.model, self.language)
        if self.finetunes and self.last_state is not None:
            model.load_state_dict(self.last_state)  # fine-tune the previous generation
        model.fit(corpus, rng=self.context.stream("fit", cfg.name, gen), prior=self._prior())
        if gen == 0:
            self.reference = model.state_dict()
        self.last_state = model.state_dict()
        is_ai = web_meta["origin"] == AI
        total = len(corpus)
        # its own samples (self-augmentation) are AI-written too, by this lab
        by_lab += np.bincount(web_meta["lab"][is_ai].astype(np.int64), minlength=self.n_labs)
        by_lab[self.index] += n_augment
        n_ai = by_lab.sum()  # web pages by models, its own samples, distilled documents
        by_lab /= total
        reserve_age = 0 if cfg.reserve_vintage == "current" else now
        composition = {
            "train_docs": total,
            "train_web_docs": int(len(web_content)),
            "train_reserve_docs": n_reserve,
            "train_anchor_docs": int(cfg.anchors),
            "train_self_docs": n_augment,
            "train_ai_fraction": float(n_ai / total),
            "train_ai_fraction_by_lab": [float(v) for v in by_lab],
            "train_mean_ai_generation": float(web_meta["generation"][is_ai].mean()) if is_ai.any() else None,
            # web pages are as old as their publication, the reserve as the run (drawn from the truth of tick
            # 0; one bought afresh, reserve_vintage = "current", from that of now: fresh), anchors are fresh; a
            # model's own samples carry no date and are left out
            "data_age": (float((web_age.sum() + n_reserve * reserve_age) / dated)
                         if (dated := len(web_age) + n_reserve + int(cfg.anchors)) else None),
        }
        if "licences" in self.features:
            composition["licensed_docs"] = n_licensed
            composition["spend"] = float(sum(licence.price for licence in cfg.licences or ()))
        if "distill" in self.features:
            composition["train_distill_docs"] = n_distill
        if "humans" in self.features:
            composition["train_imitation_fraction"] = imitated / total
        return model, composition

    def _forensics(self, model) -> dict[str, float | None]:
        """Per watermarking lab: the z of its key's green-token excess in fresh text of ``model``, written as the
        lab's API writes (with its own watermark, if it has one), from the stream ("forensics", lab, generation)."""
        from simweb.watermark import key_of, pooled_z

        n_docs = -(-self.context.scenario.evaluation.forensics_tokens // self.language.doc_length)
        docs = model.sample(n_docs, rng=self.context.stream("forensics", self.cfg.name, self.generation),
                            watermark=self._watermark(self.index))
        return {lab.name: (float(pooled_z(docs, key_of(self.context.seed, lab.name), lab.watermark.gamma,
                                          self.language.vocab_size)[0]) if lab.watermark is not None else None)
                for lab in self.context.scenario.labs}

    def _watermark(self, lab: int):
        """The watermark lab ``lab``'s models write with (its API's output carries it), or None."""
        cfg = self.context.scenario.labs[lab]
        if cfg.watermark is None:
            return None
        from simweb.watermark import Watermark, key_of

        return Watermark(key_of(self.context.seed, cfg.name), cfg.watermark.gamma, cfg.watermark.delta)

    def _prior(self) -> Prior | None:
        prior = self.cfg.prior
        if prior is None:
            return None
        if prior.toward == "uniform":
            return Prior(prior.strength)
        # generation 0 has no reference of its own yet: it is fitted on the all-human web, unregularised
        return Prior(prior.strength, self.reference) if self.reference is not None else None

    # ------------------------------------------------------------ checkpoints
    def appended(self) -> tuple[str, ...]:
        """The pool, when the regime keeps every crawl's pages: it only grows (:meth:`_add_to_pool`)."""
        if not self.keeps_pool:
            return ()
        return ("pool_ids", "pool_content", *(f"pool_{k}" for k in self.pool_meta))

    def state(self) -> dict[str, np.ndarray]:
        out = {"generation": np.array(self.generation), "pool_ids": self.pool_ids, "pool_content": self.pool_content}
        out.update({f"pool_{k}": v for k, v in self.pool_meta.items()})
        if self.reference is not None:
            out.update({f"reference.{k}": v for k, v in self.reference.items()})
        if self.last_state is not None:
            out.update({f"last.{k}": v for k, v in self.last_state.items()})
        if hasattr(self.regime, "state"):
            out.update({f"regime.{k}": np.asarray(v) for k, v in self.regime.state().items()})
        return out

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Back to a checkpoint's ``state``. Every array is copied: under Ray ``state`` is a read-only view of one
        object in the object store, which any array kept from it would pin there, whole, for the rest of the run."""
        self.forget_parts()
        self.generation = int(state["generation"])
        self.pool_ids = np.array(state["pool_ids"], dtype=np.int64)
        self.pool_content = np.array(state["pool_content"], dtype=self.language.dtype).reshape(
            -1, self.language.width)
        self.pool_meta = {k: np.array(state[f"pool_{k}"], dtype=v.dtype) for k, v in self.pool_meta.items()}
        ref = {k.split(".", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("reference.")}
        self.reference = ref or None
        last = {k.split(".", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("last.")}
        self.last_state = last or None
        if hasattr(self.regime, "restore"):
            self.regime.restore({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("regime.")})


class EmptyCorpusError(SimwebError):
    """A generation has no training data: a scenario problem the user must see, not a crash."""
