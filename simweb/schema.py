"""The columns of every output table, declared once. Nulls mark metrics that do not apply to a family."""

from __future__ import annotations

import polars as pl

__all__ = ["generations_schema", "ticks_schema", "crawls_schema", "TICKS", "CRAWLS", "CONTAMINATION", "IDS", "FEATURES"]

IDS = {"run_id": pl.String, "scenario": pl.String, "seed": pl.Int64}

_GENERATION_COLUMNS = {
    "lab": pl.String,
    "generation": pl.Int32,
    "tick": pl.Int32,
    # training-set composition (ground truth)
    "train_docs": pl.Int64,
    "train_web_docs": pl.Int64,
    "train_reserve_docs": pl.Int64,
    "train_anchor_docs": pl.Int64,
    "train_self_docs": pl.Int64,  # documents of its own previous model (self_augment)
    "train_ai_fraction": pl.Float64,
    "train_ai_fraction_by_lab": None,  # struct, one field per lab: filled by generations_schema
    "train_mean_ai_generation": pl.Float64,
    # the crawl and the filter chain, as a detector of AI pages
    "crawl_pages": pl.Int64,
    "crawl_ai_fraction": pl.Float64,
    "kept_pages": pl.Int64,
    "filter_precision": pl.Float64,
    "filter_recall": pl.Float64,
    # model quality, per token in nats (per sample for gaussian / categorical)
    "human_nll": pl.Float64,
    "true_entropy": pl.Float64,
    "excess_nll": pl.Float64,
    "observed_nll": pl.Float64,
    "benchmark_docs": pl.Int64,
    "sample_true_nll": pl.Float64,
    "unigram_entropy": pl.Float64,
    "tail_mass_ratio": pl.Float64,
    "distinct_2": pl.Float64,
    "topic_coverage": pl.Float64,
    "mean_sq_error": pl.Float64,
    "var_ratio": pl.Float64,
    "w2": pl.Float64,
    "tv": pl.Float64,
    "support": pl.Int64,
    "gini_simpson": pl.Float64,
    "probs": pl.List(pl.Float64),  # categorical with <= 64 outcomes: the model's probabilities
    # a drifting truth: the model against the truth of its last tick in service, and how old its data was
    "excess_nll_end": pl.Float64,
    "staleness": pl.Float64,  # excess_nll_end − excess_nll (0 when the truth does not move)
    "mean_sq_error_end": pl.Float64,  # gaussian: ‖μ − μ*‖² against the truth of its last tick in service
    "data_age": pl.Float64,  # mean age in ticks of the training documents at release (null: none dated)
}


# Columns of mechanisms that are off by default: a table holds them only when its scenario turns the mechanism
# on, so a scenario without it writes yesterday's tables byte for byte. None = a struct with one field per lab.
FEATURES = {
    # some population's sites refuse AI crawlers (publishers[].opt_out)
    "consent": {
        "generations": {"blocked_human_fraction": pl.Float64},  # of the human pages its crawl could fetch, the
        # share on sites that refuse it (blocks it honours)
        "ticks": {"blocking_site_share": None,  # per lab: share of the population's sites that refuse it now
                  "blocking_human_share": None},  # per lab: share of the population's human pages on those sites
    },
    # some lab buys documents (labs[].licences)
    "licences": {"generations": {"licensed_docs": pl.Int64, "spend": pl.Float64}},  # spend: price per generation
    # some lab distils another (labs[].distill)
    # new topics are born (language.drift.new_topics_per_tick): how much of what is new a model writes about,
    # for topics born in the last evaluation.recent_ticks ticks; null when none were
    "new_topics": {"generations": {
        "new_topic_recall": pl.Float64,  # the model's sampled mass on those topics ÷ their true popularity
        "new_token_mass_ratio": pl.Float64}},  # the same for their own (reserved) tokens
    "distill": {"generations": {
        "train_distill_docs": pl.Int64,  # documents sampled from other labs' models
        # per lab: Jensen–Shannon divergence (nats) between this model's next-token law and that lab's latest
        # released one, over the true contexts of fresh human text; null for itself, before that lab's first
        # release, and for gaussian models
        "lab_divergence": None}},
    # human writers imitate models or are displaced, or a lab refreshes its reserve (simweb.humans)
    "humans": {
        # share of the training documents' tokens that imitating humans drew from a model (by ground truth;
        # AI pages are counted by train_ai_fraction, not here)
        "generations": {"train_imitation_fraction": pl.Float64},
        "ticks": {"human_imitation": pl.Float64,  # mean imitation of the population's new human pages
                  # their mean excess NLL against the truth of the tick, per token (per sample for gaussian /
                  # categorical): how far the human writers have drifted from the truth
                  "human_excess_nll": pl.Float64},
        "crawls": {"imitating_in": pl.Int64,  # human pages with imitation > 0 entering the step
                   "imitating_dropped": pl.Int64,  # of which the step dropped
                   "imitating_fpr": pl.Float64},  # the step's false-positive rate on them
    },
    # watermark forensics (evaluation.forensics_tokens): does this model carry a lab's watermark?
    "forensics": {"generations": {
        # per lab whose models watermark: z-score of that key's green-token excess in forensics_tokens tokens the
        # model writes fresh (one-proportion test over their distinct (previous, token) pairs; its own key
        # included); null for the others
        "watermark_z": None}},
}


def _columns(columns: dict, lab_names: list[str]) -> dict[str, pl.DataType]:
    return {name: pl.Struct({lab: pl.Float64 for lab in lab_names}) if dtype is None else dtype
            for name, dtype in columns.items()}


def generations_schema(lab_names: list[str], features=()) -> dict[str, pl.DataType]:
    schema = {**IDS, **_columns(_GENERATION_COLUMNS, lab_names)}
    for feature in FEATURES:
        if feature in features:
            schema.update(_columns(FEATURES[feature].get("generations", {}), lab_names))
    return schema


def ticks_schema(lab_names: list[str], features=()) -> dict[str, pl.DataType]:
    schema = dict(TICKS)
    for feature in FEATURES:
        if feature in features:
            schema.update(_columns(FEATURES[feature].get("ticks", {}), lab_names))
    return schema


def crawls_schema(features=()) -> dict[str, pl.DataType]:
    schema = dict(CRAWLS)
    for feature in FEATURES:
        if feature in features:
            schema.update(FEATURES[feature].get("crawls", {}))
    return schema


TICKS = {
    **IDS,
    "tick": pl.Int32,
    "population": pl.String,
    "sites": pl.Int64,
    "pages": pl.Int64,  # new pages this tick
    "ai_pages": pl.Int64,
    "ai_share_new": pl.Float64,
    "pages_total": pl.Int64,  # the population's pages so far
    "human_pages_total": pl.Int64,  # of which human-written (copies of human pages included): the stock
    "ai_share_all": pl.Float64,
    "watermarked_share": pl.Float64,  # of new pages
    "c2pa_share": pl.Float64,  # of new pages
    "web_pages": pl.Int64,  # every population
    "web_ai_share": pl.Float64,
}

CRAWLS = {
    **IDS,
    "lab": pl.String,
    "crawl": pl.Int32,  # the generation the crawl trains (or benchmarks)
    "tick": pl.Int32,
    "purpose": pl.String,  # "train" or "benchmark"
    "step": pl.Int32,  # 0 = the fetch, then each filter in chain order
    "filter": pl.String,
    "pages_in": pl.Int64,
    "ai_in": pl.Int64,
    "kept": pl.Int64,
    "kept_ai": pl.Int64,
    "dropped": pl.Int64,
    "dropped_ai": pl.Int64,
    "precision": pl.Float64,  # AI share of the dropped pages
    "recall": pl.Float64,  # share of incoming AI pages dropped
}

# train_ai_fraction_by_lab in long form: a struct's field names change with the scenario, rows do not
CONTAMINATION = {
    **IDS,
    "lab": pl.String,  # the lab that trained on the pages
    "generation": pl.Int32,
    "source_lab": pl.String,  # the lab whose models wrote them
    "fraction": pl.Float64,  # share of the generation's training set written by source_lab's models
}
