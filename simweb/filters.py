"""The provenance and contamination filters a lab's scraper applies, each with its own accounting.

A filter looks at a batch of crawled pages — their metadata *and* their content —
and returns which to keep. Every decision comes from the pages themselves: a
watermark detector counts green tokens, a deduplicator hashes content, a
provenance check reads the page's C2PA label; only the parametric classifier
stands in for a detector by its published error rates. The accounting treats
each filter as a detector of AI pages: precision = AI share of what it dropped,
recall = share of the AI pages it saw that it dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simweb.web.store import AI

__all__ = ["Batch", "build_filter", "filter_names", "accounting", "CLASSIFIER_PRESETS"]

# published operating points (REFERENCES.md): (TPR, FPR)
CLASSIFIER_PRESETS = {
    "classifier_2023": (0.26, 0.09),  # OpenAI's 2023 AI-text classifier, withdrawn July 2023
    "commercial": (0.90, 0.02),  # modern commercial detectors, vendor-reported 0.85–0.99 / 0.01–0.04 (assumption)
    "after_paraphrase": (0.05, 0.01),  # DetectGPT after DIPPER paraphrasing, Krishna et al. 2023
}


@dataclass
class Batch:
    """Crawled pages under review: ids, metadata columns, content, and what the lab knows."""

    ids: np.ndarray
    meta: dict[str, np.ndarray]
    content: np.ndarray
    tick: int
    context: dict = field(default_factory=dict)  # e.g. "graph", "population_names", "vocab_size", "seed", "lab"

    def __len__(self) -> int:
        return len(self.ids)


class DateCutoff:
    """Keep only pages published at or before a tick (a training-data cut-off date)."""

    def __init__(self, cfg):
        self.tick = cfg.tick

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        return batch.meta["tick"] <= self.tick


class Classifier:
    """A parametric AI-text detector: flags an AI page with probability TPR, a human page with FPR.

    ``fpr_multiplier`` raises the FPR for some publisher populations (detectors flag non-native
    writers far more often, Liang et al. 2023); ``tpr_decay`` lowers the TPR by that factor per
    generation of the model that wrote the page (detectors fall behind better models).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.tpr, self.fpr = (cfg.tpr, cfg.fpr) if cfg.preset is None else CLASSIFIER_PRESETS[cfg.preset]

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        meta = batch.meta
        is_ai = meta["origin"] == AI
        tpr = self.tpr * (1.0 - self.cfg.tpr_decay) ** np.maximum(meta["generation"], 0)
        names = batch.context.get("population_names", [])
        mult = np.array([self.cfg.fpr_multiplier.get(name, 1.0) for name in names] or [1.0])
        fpr = np.minimum(1.0, self.fpr * mult[meta["population"].astype(np.int64)]) if names else self.fpr
        flagged = rng.random(len(batch)) < np.where(is_ai, tpr, fpr)
        return ~flagged


class WatermarkDetector:
    """Kirchenbauer et al.'s z-test with every key the lab holds; drops pages at or above the threshold."""

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        from simweb.watermark import z_scores

        keys = batch.context.get("watermark_keys", {})
        names = self.cfg.keys if self.cfg.keys is not None else [batch.context["lab"]]
        flagged = np.zeros(len(batch), dtype=bool)
        for name in names:
            if name in keys:  # a key of a lab that does not watermark detects nothing
                key, gamma = keys[name]
                flagged |= z_scores(batch.content, key, gamma, batch.context["vocab_size"]) >= self.cfg.z_threshold
        return ~flagged


class Provenance:
    """C2PA-style metadata: drops pages whose label says AI; pages labelled human, or unlabelled, pass."""

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        return batch.meta["c2pa"] != 2


class Allowlist:
    """Only pages on the top-k sites by reputation: PageRank, or age (oldest first)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        graph = batch.context["graph"]
        rank = graph.pagerank_rank() if self.cfg.reputation == "pagerank" else _age_rank(graph.created)
        return rank[batch.meta["site_id"]] < self.cfg.top_k


def _age_rank(created: np.ndarray) -> np.ndarray:
    order = np.lexsort((np.arange(len(created)), created))
    rank = np.empty(len(created), dtype=np.int64)
    rank[order] = np.arange(len(created))
    return rank


class Dedup:
    """Drops exact copies: a page whose content hash the lab has seen before, in this crawl or an earlier one."""

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        hashes = content_hash(batch.content)
        seen = batch.context.setdefault("seen_hashes", np.empty(0, dtype=np.uint64))
        _, first = np.unique(hashes, return_index=True)
        keep = np.zeros(len(batch), dtype=bool)
        keep[first] = True
        keep &= ~np.isin(hashes, seen)
        return keep


def content_hash(content: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every content row (vectorised; collisions are negligible at web scale)."""
    rows = np.ascontiguousarray(content)
    if len(rows) == 0:
        return np.empty(0, dtype=np.uint64)
    words = rows.view(np.uint8).reshape(len(rows), -1)
    h = np.full(len(rows), 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):  # FNV-1a over the row's bytes, all rows at once
            h = (h ^ words[:, j].astype(np.uint64)) * prime
    return h


class Likelihood:
    """Drops pages that look like the lab's own model wrote them: a likelihood-ratio statistic on the tokens.

    s(doc) = mean log-probability per token under the lab's current model − under a unigram model of
    human text; the threshold is the (1 − target_fpr) quantile of s on fresh human calibration
    documents, so it flags that share of human pages. Before the lab's first model, it keeps everything.
    """

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        model = batch.context.get("model")
        if model is None or len(batch) == 0:
            return np.ones(len(batch), dtype=bool)
        calibration, unigram = batch.context["calibration"], batch.context["calibration_unigram"]
        floor = -30.0  # a token the model cannot produce counts as very unlike it, not as −inf

        def stat(docs):
            own = np.maximum(model.token_log_prob(docs), floor).mean(axis=1)
            return own - np.log(unigram[docs.astype(np.int64)]).mean(axis=1)

        threshold = np.quantile(stat(calibration), 1.0 - self.cfg.target_fpr)
        return stat(batch.content) <= threshold


class Verifier:
    """Keeps documents whose quality passes a bar (Feng et al. 2025): quality is the language's own
    log-probability per token, seen through Gaussian noise of sd ``noise`` (0 = a perfect verifier);
    the bar is the ``quantile`` of that score on fresh human documents."""

    def __init__(self, cfg):
        self.cfg = cfg

    def keep(self, batch: Batch, *, rng: np.random.Generator) -> np.ndarray:
        language, calibration = batch.context["language"], batch.context["calibration"]
        width = calibration.shape[1]

        def score(docs, noise_rng):
            return language.log_prob(docs) / width + self.cfg.noise * noise_rng.standard_normal(len(docs))

        bar = np.quantile(score(calibration, rng), self.cfg.quantile)
        return score(batch.content, rng) >= bar


_KINDS = {"date_cutoff": DateCutoff, "likelihood": Likelihood, "verifier": Verifier, "classifier": Classifier, "watermark": WatermarkDetector,
          "provenance": Provenance, "allowlist": Allowlist, "dedup": Dedup}


def build_filter(cfg):
    return _KINDS[cfg.kind](cfg)


def filter_names(cfgs) -> list[str]:
    """One name per filter in a chain: its kind, numbered when a kind repeats (``classifier_2``)."""
    names, seen = [], {}
    for cfg in cfgs:
        seen[cfg.kind] = seen.get(cfg.kind, 0) + 1
        names.append(cfg.kind if seen[cfg.kind] == 1 else f"{cfg.kind}_{seen[cfg.kind]}")
    return names


def accounting(is_ai_in: np.ndarray, keep: np.ndarray) -> dict[str, float | int | None]:
    """Pages in, kept and dropped split by true origin, with the step's precision and recall."""
    ai_in = int(is_ai_in.sum())
    dropped = ~keep
    dropped_ai = int((dropped & is_ai_in).sum())
    n_dropped = int(dropped.sum())
    return {
        "pages_in": int(len(keep)),
        "ai_in": ai_in,
        "kept": int(keep.sum()),
        "kept_ai": int((keep & is_ai_in).sum()),
        "dropped": n_dropped,
        "dropped_ai": dropped_ai,
        "precision": dropped_ai / n_dropped if n_dropped else None,
        "recall": dropped_ai / ai_in if ai_in else None,
    }
