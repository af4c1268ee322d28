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

# every metric column; those that do not apply to a family are None
METRICS = ("human_nll", "true_entropy", "excess_nll", "observed_nll", "benchmark_docs", "sample_true_nll",
           "unigram_entropy", "tail_mass_ratio", "distinct_2", "topic_coverage", "mean_sq_error", "var_ratio", "w2",
           "tv", "support", "gini_simpson", "probs")


class Evaluator:
    def __init__(self, cfg, language, seed: int):
        self.cfg = cfg
        self.language = language
        self.seed = seed
        self.human, _ = language.sample(cfg.human_docs, rng=rngs.stream(seed, "evaluation", "human"))
        self.true_nll = -language.log_prob(self.human).mean() / self._tokens_per_doc()
        self.log_floor = math.log(cfg.prob_floor)
        if language.is_tokens:
            self.tail = language.tail_tokens(cfg.tail_mass)
            self.tail_share = float(language.unigram()[self.tail].sum())

    def _tokens_per_doc(self) -> int:
        return self.language.doc_length if self.language.is_tokens else 1

    def nll(self, model, content: np.ndarray) -> float:
        """The model's mean NLL per token (per sample for continuous families) on ``content``."""
        if len(content) == 0:
            return float("nan")
        if self.language.is_tokens:
            return float(-np.maximum(model.token_log_prob(content), self.log_floor).mean())
        if self.language.family == "categorical":
            return float(-np.maximum(model.log_prob(content), self.log_floor).mean())
        return float(-model.log_prob(content).mean())

    def evaluate(self, model, *, lab: str, generation: int, benchmark: np.ndarray | None = None) -> dict:
        human_nll = self.nll(model, self.human)
        row = dict.fromkeys(METRICS)
        row |= {
            "human_nll": human_nll,
            "true_entropy": float(self.true_nll),
            "excess_nll": human_nll - float(self.true_nll),
            "observed_nll": self.nll(model, benchmark) if benchmark is not None and len(benchmark) else None,
            "benchmark_docs": int(len(benchmark)) if benchmark is not None else 0,
        }
        if self.language.is_tokens:
            rng = rngs.stream(self.seed, "evaluation", "samples", lab, generation)
            row.update(self._token_metrics(model.sample(self.cfg.sample_docs, rng=rng)))
        elif self.language.family == "gaussian":
            row.update(self._gaussian_metrics(model))
        else:
            row.update(self._categorical_metrics(model))
        return row

    def _token_metrics(self, samples: np.ndarray) -> dict:
        lang = self.language
        V = lang.vocab_size
        tokens = samples.astype(np.int64)
        freq = np.bincount(tokens.ravel(), minlength=V) / tokens.size
        nz = freq[freq > 0]
        bigrams = tokens[:, :-1] * V + tokens[:, 1:]
        mass = lang.topic_posterior(samples).mean(axis=0)
        return {
            "sample_true_nll": float(-lang.log_prob(samples).mean() / lang.doc_length),
            "unigram_entropy": float(-(nz * np.log(nz)).sum()),
            "tail_mass_ratio": float(freq[self.tail].sum() / self.tail_share) if self.tail_share > 0 else None,
            "distinct_2": float(len(np.unique(bigrams)) / bigrams.size),
            "topic_coverage": float(np.mean(mass >= 0.5 * lang.topic_probs)),
        }

    def _gaussian_metrics(self, model) -> dict:
        mu, var = model.mean, model.var
        mu0, var0 = self.language.mean, self.language.var
        # W2² between diagonal gaussians: ‖μ−μ*‖² + Σ (σ − σ*)²
        w2 = math.sqrt(float(((mu - mu0) ** 2).sum() + ((np.sqrt(var) - np.sqrt(var0)) ** 2).sum()))
        return {"mean_sq_error": float(((mu - mu0) ** 2).sum()), "var_ratio": float((var / var0).mean()), "w2": w2}

    def _categorical_metrics(self, model) -> dict:
        p = model.probs
        return {"tv": float(0.5 * np.abs(p - self.language.probs).sum()), "support": int((p > 0).sum()),
                "gini_simpson": float(1.0 - (p ** 2).sum()),
                "probs": p.tolist() if len(p) <= MAX_LISTED_OUTCOMES else None}
