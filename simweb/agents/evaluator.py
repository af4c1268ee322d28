"""Metrics of each released model, against the ground-truth language and against what a lab can observe.

Token families (nats per token):

- ``human_nll``: the model's NLL on fresh human documents; ``true_entropy``: the
  language's own NLL on the same documents; ``excess_nll`` = the difference, an
  estimate of the KL rate from truth to model (0 = perfect).
- ``sample_true_nll``: the language's NLL of the model's own writing (below
  ``true_entropy`` = bland, mode-seeking text).
- ``tail_mass_ratio``: share of sampled tokens from the language's tail (rarest
  tokens holding ``tail_mass`` of true unigram mass) over that mass: 1 = intact.
- ``unigram_entropy`` and ``distinct_2`` (distinct bigrams / bigrams) of the
  samples; ``topic_coverage``: share of topics whose posterior mass in the
  samples is at least half their true share.
- ``observed_nll``: ``human_nll`` measured on a benchmark the lab scraped and
  filtered itself (contaminated by whatever its filters missed).

When the truth drifts (``[language.drift]``), the truth-side metrics are measured against the present:
the truth of the tick the model is released, on fresh human documents of that tick (drawn from the same
stream every tick, so two ticks differ only by the drift). ``excess_nll_end`` is the same model against the
truth of the last tick it is in service — tick + ``release_every``, when publishers last write with it
before the lab's next release comes at that tick's end (whether or not the run lasts that long) — and
``staleness`` = ``excess_nll_end`` − ``excess_nll``: how much it ages while in use (0 for a stationary
truth). Gaussian: ``mean_sq_error_end`` likewise. ``data_age`` (from the trainer): the mean age in ticks,
at release, of the training documents.

When new topics are born (``language.drift.new_topics_per_tick``): ``new_topic_recall`` = the model's sampled
topic-posterior mass on the topics born in the last ``evaluation.recent_ticks`` ticks (the release tick's
included) ÷ their true popularity, and ``new_token_mass_ratio`` = the share of those topics' own tokens among the
model's sampled tokens ÷ their true unigram share; both null when no topic was born in that window. 1 = the model
writes about what is new as much as people do; 0 = it has never heard of it.

A model that gives a token (or an outcome) probability zero is charged −ln(prob_floor) for it,
so a collapsed model's NLL is large and finite.

Gaussian: ``mean_sq_error`` = ‖μ − μ*‖², ``var_ratio`` = mean σ²/σ*², ``w2`` the
2-Wasserstein distance. Categorical: ``tv`` total variation, ``support`` outcomes
with non-zero probability, ``gini_simpson`` = 1 − Σp² (the chance two draws differ),
and ``probs`` itself when there are at most 64 outcomes. Both also give ``human_nll`` / ``true_entropy`` /
``excess_nll`` in nats per sample.
"""

from __future__ import annotations

import math

import numpy as np

from simweb import rng as rngs

__all__ = ["Evaluator"]

MAX_LISTED_OUTCOMES = 64  # categorical models with at most this many outcomes record their probabilities
RECENT_TICKS = 6  # new_topic_recall's window when evaluation.recent_ticks is not given

# every metric column; those that do not apply to a family are None
METRICS = ("human_nll", "true_entropy", "excess_nll", "observed_nll", "benchmark_docs", "sample_true_nll",
           "unigram_entropy", "tail_mass_ratio", "distinct_2", "topic_coverage", "mean_sq_error", "var_ratio", "w2",
           "tv", "support", "gini_simpson", "probs", "excess_nll_end", "staleness", "mean_sq_error_end")


class Evaluator:
    def __init__(self, cfg, language, seed: int):
        self.cfg = cfg
        self.language = language
        self.seed = seed
        self.human, _ = language.sample(cfg.human_docs, rng=rngs.stream(seed, "evaluation", "human"))
        self.true_nll = -language.log_prob(self.human).mean() / self._tokens_per_doc()
        self.log_floor = math.log(cfg.prob_floor)
        self._present: dict[int, tuple] = {}  # tick → (truth, human documents, true NLL), for a drifting truth
        self.births = language.is_tokens and language.new_tokens is not None  # new topics are born
        self.recent_ticks = getattr(cfg, "recent_ticks", None) or RECENT_TICKS
        if language.is_tokens:
            self.tail = language.tail_tokens(cfg.tail_mass)
            self.tail_share = float(language.unigram()[self.tail].sum())

    def _tokens_per_doc(self) -> int:
        return self.language.doc_length if self.language.is_tokens else 1

    def present(self, tick: int) -> tuple:
        """(truth, fresh human documents, their true NLL per token) of ``tick``.

        The documents come from the stream ("evaluation", "human") at every tick, so ticks differ only by the
        drift; a stationary truth gives the documents drawn at start. A few ticks are kept (release and end).
        """
        truth = self.language.at(tick)
        if truth is self.language:
            return truth, self.human, self.true_nll
        if tick not in self._present:
            human, _ = truth.sample(self.cfg.human_docs, rng=rngs.stream(self.seed, "evaluation", "human"))
            if len(self._present) >= 8:
                self._present.pop(min(self._present))
            self._present[tick] = (truth, human, -truth.log_prob(human).mean() / self._tokens_per_doc())
        return self._present[tick]

    def nll(self, model, content: np.ndarray) -> float:
        """The model's mean NLL per token (per sample for continuous families) on ``content``."""
        if len(content) == 0:
            return float("nan")
        if self.language.is_tokens:
            return float(-np.maximum(model.token_log_prob(content), self.log_floor).mean())
        if self.language.family == "categorical":
            return float(-np.maximum(model.log_prob(content), self.log_floor).mean())
        return float(-model.log_prob(content).mean())

    def evaluate(self, model, *, lab: str, generation: int, benchmark: np.ndarray | None = None,
                 tick: int = 0, end_tick: int | None = None) -> dict:
        """The metrics of ``model``, released at ``tick`` and in service until ``end_tick`` (default: ``tick``)."""
        truth, human, true_nll = self.present(tick)
        human_nll = self.nll(model, human)
        row = dict.fromkeys(METRICS)
        row |= {
            "human_nll": human_nll,
            "true_entropy": float(true_nll),
            "excess_nll": human_nll - float(true_nll),
            "observed_nll": self.nll(model, benchmark) if benchmark is not None and len(benchmark) else None,
            "benchmark_docs": int(len(benchmark)) if benchmark is not None else 0,
        }
        end_truth, end_human, end_true_nll = self.present(tick if end_tick is None else end_tick)
        if end_truth is truth:  # the same truth: the same documents, the same numbers
            row["excess_nll_end"] = row["excess_nll"]
        else:
            row["excess_nll_end"] = self.nll(model, end_human) - float(end_true_nll)
        row["staleness"] = row["excess_nll_end"] - row["excess_nll"]
        if self.language.is_tokens:
            rng = rngs.stream(self.seed, "evaluation", "samples", lab, generation)
            row.update(self._token_metrics(model.sample(self.cfg.sample_docs, rng=rng), truth, tick))
        elif self.language.family == "gaussian":
            row.update(self._gaussian_metrics(model, truth))
            row["mean_sq_error_end"] = self._gaussian_metrics(model, end_truth)["mean_sq_error"]
        else:
            row.update(self._categorical_metrics(model, truth))
        return row

    def divergence(self, model, other, chunk: int = 64) -> float | None:
        """Jensen–Shannon divergence (nats) between two models' next-token laws, averaged over the true
        contexts of the fresh human documents (exact at each context); between the laws themselves for a
        categorical model. None for a family without a next-token law (gaussian)."""
        if self.language.is_tokens and hasattr(model, "next_token_probs") and hasattr(other, "next_token_probs"):
            total = 0.0
            for lo in range(0, len(self.human), chunk):
                docs = self.human[lo:lo + chunk]
                total += float(js(model.next_token_probs(docs), other.next_token_probs(docs)).sum())
            return total / self.human.size
        if self.language.family == "categorical":
            return float(js(model.probs, other.probs))
        return None

    def _token_metrics(self, samples: np.ndarray, truth, tick: int = 0) -> dict:
        lang = truth
        if truth is self.language:
            tail, tail_share = self.tail, self.tail_share
        else:  # the tail of the present's unigram law
            tail = truth.tail_tokens(self.cfg.tail_mass)
            tail_share = float(truth.unigram()[tail].sum())
        V = lang.vocab_size
        tokens = samples.astype(np.int64)
        freq = np.bincount(tokens.ravel(), minlength=V) / tokens.size
        nz = freq[freq > 0]
        bigrams = tokens[:, :-1] * V + tokens[:, 1:]
        mass = lang.topic_posterior(samples).mean(axis=0)
        alive = lang.topic_probs > 0  # topics not yet born are no topic to cover
        out = {}
        if self.births:
            recent = np.flatnonzero(truth.birth_ticks > tick - self.recent_ticks)  # new topics born lately
            topics, tokens = lang.initial_topics + recent, lang.new_tokens[recent].ravel()
            out = {"new_topic_recall": None, "new_token_mass_ratio": None}
            if len(recent):
                out = {"new_topic_recall": float(mass[topics].sum() / lang.topic_probs[topics].sum()),
                       "new_token_mass_ratio": float(freq[tokens].sum() / lang.unigram()[tokens].sum())}
        return out | {
            "sample_true_nll": float(-lang.log_prob(samples).mean() / lang.doc_length),
            "unigram_entropy": float(-(nz * np.log(nz)).sum()),
            "tail_mass_ratio": float(freq[tail].sum() / tail_share) if tail_share > 0 else None,
            "distinct_2": float(len(np.unique(bigrams)) / bigrams.size),
            "topic_coverage": float(np.mean((mass >= 0.5 * lang.topic_probs)[alive])),
        }

    def _gaussian_metrics(self, model, truth) -> dict:
        mu, var = model.mean, model.var
        mu0, var0 = truth.mean, truth.var
        # W2² between diagonal gaussians: ‖μ−μ*‖² + Σ (σ − σ*)²
        w2 = math.sqrt(float(((mu - mu0) ** 2).sum() + ((np.sqrt(var) - np.sqrt(var0)) ** 2).sum()))
        return {"mean_sq_error": float(((mu - mu0) ** 2).sum()), "var_ratio": float((var / var0).mean()), "w2": w2}

    def _categorical_metrics(self, model, truth) -> dict:
        p = model.probs
        return {"tv": float(0.5 * np.abs(p - truth.probs).sum()), "support": int((p > 0).sum()),
                "gini_simpson": float(1.0 - (p ** 2).sum()),
                "probs": p.tolist() if len(p) <= MAX_LISTED_OUTCOMES else None}


def js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence in nats along the last axis: ½ KL(p‖m) + ½ KL(q‖m), m = (p + q) / 2."""
    from scipy.special import xlogy

    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda a: (xlogy(a, a) - xlogy(a, m)).sum(axis=-1)
        return np.maximum(0.5 * kl(p) + 0.5 * kl(q), 0.0)
