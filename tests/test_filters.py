"""Filters on real pages: each decision comes from the page, and its accounting matches the mix."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl

import simweb
from simweb.filters import CLASSIFIER_PRESETS, content_hash
from simweb.filters.classifier import Classifier
from simweb.filters.dedup import Dedup
from simweb.plugins import config_model
from tests.helpers import COLLAPSE, batch, scenario

ClassifierFilter = config_model("filter", "classifier")

HUMANS = """
[[publishers]]
name = "humans"
site_share = 0.5
initial_pages = 300
pages_per_tick = 300
ai_adoption = { start = 0.0, end = 0.0 }
"""


def _batch(n, ai_share, rng, **extra):
    ai = rng.random(n) < ai_share
    meta = {"origin": ai.astype(np.int8), "generation": np.where(ai, 0, -1), "population": rng.integers(0, 2, n),
            **extra}
    return batch(n, truth=meta, needs=("truth",), population_names=["a", "b"])


def test_classifier_presets_multiplier_and_decay():
    rng = np.random.default_rng(0)
    pages = _batch(40_000, 0.5, rng)
    cfg = ClassifierFilter(preset="classifier_2023", fpr_multiplier={"b": 5.0})
    keep = Classifier(cfg).keep(pages, rng=rng)
    tpr, fpr = CLASSIFIER_PRESETS["classifier_2023"]
    ai, pop = pages.truth["origin"] == 1, pages.truth["population"]
    for mask, p in [(ai, tpr), (~ai & (pop == 0), fpr), (~ai & (pop == 1), min(1.0, 5 * fpr))]:
        flagged = float((~keep[mask]).mean())
        assert abs(flagged - p) < 5 * math.sqrt(p * (1 - p) / mask.sum()), (flagged, p)
    old = _batch(20_000, 1.0, rng)
    old.truth["generation"] = np.full(20_000, 3)
    decayed = ClassifierFilter(tpr=0.8, tpr_decay=0.5)
    flagged = float((~Classifier(decayed).keep(old, rng=rng)).mean())
    assert abs(flagged - 0.8 * 0.5 ** 3) < 5 * math.sqrt(0.1 * 0.9 / 20_000)
    # generation 0's pages are caught at the full TPR: the decay counts generations after the first
    new = _batch(20_000, 1.0, rng)
    flagged = float((~Classifier(decayed).keep(new, rng=rng)).mean())
    assert abs(flagged - 0.8) < 5 * math.sqrt(0.8 * 0.2 / 20_000), flagged


def test_dedup_drops_copies_within_a_crawl_and_of_pages_seen_before():
    content = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], dtype=np.uint16)
    dedup = Dedup(None)
    dedup.after_crawl(batch(1, content=np.array([[5, 6]], dtype=np.uint16), needs=("tokens",)))  # trained on before
    dedup.after_crawl(batch(1, content=np.array([[1, 2]], dtype=np.uint16), needs=("tokens",), purpose="benchmark"))
    pages = batch(5, content=content, needs=("tokens", "history"))
    assert dedup.keep(pages, rng=np.random.default_rng(0)).tolist() == [True, True, False, False, False]
    restored = Dedup(None)
    restored.restore(dedup.state())
    assert restored.keep(pages, rng=np.random.default_rng(0)).tolist() == [True, True, False, False, False]
    assert len(np.unique(content_hash(np.random.default_rng(1).integers(0, 9, (5000, 8))))) == len(
        np.unique(np.random.default_rng(1).integers(0, 9, (5000, 8)), axis=0))


def test_provenance_precision_and_recall_match_the_label_rate():
    rate = 0.4
    sc = scenario(COLLAPSE + HUMANS, f"publishers[0].c2pa_rate={rate}", "publishers.humans.c2pa_rate=0.3",
                  "labs.replace.filters=[{kind=\"provenance\"}]", "run.ticks=4", "labs.replace.crawl_budget=600")
    res = simweb.run(sc)
    steps = res.crawls.filter((pl.col("lab") == "replace") & (pl.col("filter") == "provenance")
                              & (pl.col("purpose") == "train"))
    ai_in, dropped, dropped_ai = steps["ai_in"].sum(), steps["dropped"].sum(), steps["dropped_ai"].sum()
    assert dropped == dropped_ai  # a truthful label never drops a human page: precision 1
    recall = dropped_ai / ai_in
    assert abs(recall - rate) < 5 * math.sqrt(rate * (1 - rate) / ai_in), recall


def test_a_lab_that_watermarks_and_checks_its_key_keeps_its_own_text_out():
    sc = scenario(COLLAPSE + HUMANS, "labs.replace.watermark={gamma=0.25, delta=2.0}",
                  "labs.replace.filters=[{kind=\"watermark\"}]", "labs.keep.filters=[{kind=\"watermark\"}]",
                  "labs.keep.market_share=1.0", "run.ticks=4")
    res = simweb.run(sc)
    wm = res.crawls.filter((pl.col("filter") == "watermark") & (pl.col("purpose") == "train")
                           & (pl.col("crawl") >= 1))
    own = wm.filter(pl.col("lab") == "replace")
    # 32-token pages at δ = 2 are caught almost always; human pages almost never (z = 4)
    assert own["dropped_ai"].sum() > 0.6 * own["ai_in"].sum() * 0.5  # about half the AI pages are its own
    assert (own["dropped"] == own["dropped_ai"]).all()
    other = wm.filter(pl.col("lab") == "keep")  # holds no key of a watermarking lab but its own (none)
    assert other["dropped"].sum() == 0
    g = res.generations.filter(pl.col("lab") == "replace")
    assert (g["train_ai_fraction_by_lab"].struct.field("replace")[1:] < 0.1).all()


def test_allowlist_keeps_only_the_top_sites():
    sc = scenario(COLLAPSE, "labs.replace.filters=[{kind=\"allowlist\", top_k=5, reputation=\"age\"}]",
                  "run.ticks=2")
    res = simweb.run(sc)
    step = res.crawls.filter((pl.col("lab") == "replace") & (pl.col("filter") == "allowlist")).row(0, named=True)
    assert 0 < step["kept"] < step["pages_in"]
    # 5 of 40 initial sites: about an eighth of the pages, by where they were published
    assert abs(step["kept"] / step["pages_in"] - 5 / 40) < 0.1


def test_human_edits_lower_what_a_watermark_detector_catches():
    def caught(edit: float) -> float:
        sc = scenario(COLLAPSE, "labs.replace.watermark={gamma=0.25, delta=2.0}",
                      "labs.replace.filters=[{kind=\"watermark\"}]", f"publishers[0].edit_fraction={edit}",
                      "run.ticks=3", "language.doc_length=16")
        wm = simweb.run(sc).crawls.filter((pl.col("lab") == "replace") & (pl.col("filter") == "watermark")
                                          & (pl.col("crawl") >= 1) & (pl.col("purpose") == "train"))
        return wm["dropped_ai"].sum() / wm["ai_in"].sum()

    plain, edited = caught(0.0), caught(0.4)
    assert plain > 0.5 and edited < plain - 0.2, (plain, edited)


def _human_drop_rate(res, lab: str, kind: str, first_crawl: int = 1) -> tuple[float, int, float]:
    steps = res.crawls.filter((pl.col("lab") == lab) & (pl.col("filter") == kind) & (pl.col("purpose") == "train")
                              & (pl.col("crawl") >= first_crawl))
    human_in = int((steps["pages_in"] - steps["ai_in"]).sum())
    human_dropped = int((steps["dropped"] - steps["dropped_ai"]).sum())
    ai_recall = float(steps["dropped_ai"].sum() / max(steps["ai_in"].sum(), 1))
    return human_dropped / human_in, human_in, ai_recall


def test_likelihood_filter_drops_human_pages_at_its_calibrated_rate_and_catches_its_own_text():
    target = 0.1
    sc = scenario(COLLAPSE + HUMANS, f"labs.replace.filters=[{{kind=\"likelihood\", target_fpr={target}}}]",
                  "run.ticks=5", "labs.replace.crawl_budget=600")
    res = simweb.run(sc)
    rate, n, recall = _human_drop_rate(res, "replace", "likelihood")
    # calibrated on 1000 human documents: the threshold itself is uncertain by ~sqrt(p(1-p)/1000)
    se = math.sqrt(target * (1 - target) / n) + math.sqrt(target * (1 - target) / 1000)
    assert abs(rate - target) < 5 * se, (rate, n)
    assert recall > 3 * target  # its own model's text is far more likely under it than human text


def test_a_perfect_verifier_drops_human_pages_at_its_quantile():
    q = 0.2
    sc = scenario(COLLAPSE + HUMANS, f"labs.replace.filters=[{{kind=\"verifier\", quantile={q}}}]", "run.ticks=4",
                  "labs.replace.crawl_budget=600")
    res = simweb.run(sc)
    rate, n, recall = _human_drop_rate(res, "replace", "verifier", first_crawl=0)
    se = math.sqrt(q * (1 - q) / n) + math.sqrt(q * (1 - q) / 1000)
    assert abs(rate - q) < 5 * se, (rate, n)


def test_copies_republish_content_strip_labels_and_dedup_drops_them():
    sc = scenario(COLLAPSE + HUMANS, "publishers.humans.copy_rate=0.5", "publishers.humans.c2pa_rate=1.0",
                  "publishers.humans.strip_c2pa=1.0", "labs.replace.filters=[{kind=\"dedup\"}]",
                  "labs.replace.crawl_budget=2000", "run.ticks=4")
    from simweb.engine import Engine

    engine = Engine(sc)
    while engine.tick < sc.run.ticks:
        engine.step()
    idx = engine.pages()
    copies = np.flatnonzero(idx["copied_from"] >= 0)
    assert len(copies) > 100
    orig = idx["copied_from"][copies]
    shard = engine.fleet.shards[0]
    assert np.array_equal(shard.fetch(copies)[1], shard.fetch(orig)[1])  # same content as the original
    for col in ("origin", "lab", "generation"):
        assert np.array_equal(idx[col][copies], idx[col][orig])
    assert (idx["c2pa"][copies] == 0).all()  # every label stripped
    res = engine.results(wall_time=0.0)
    dedup = res.crawls.filter((pl.col("lab") == "replace") & (pl.col("filter") == "dedup")
                              & (pl.col("purpose") == "train"))
    assert dedup["dropped"].sum() > 0


def test_self_augmentation_adds_the_labs_own_samples():
    res = simweb.run(scenario(COLLAPSE, "labs.keep.self_augment=50", "run.ticks=3"))
    g = res.generations.filter(pl.col("lab") == "keep").sort("generation")
    assert g["train_self_docs"].to_list() == [0, 50, 50]
    assert (g["train_docs"][1:] == g["train_web_docs"][1:] + g["train_reserve_docs"][1:] + 50).all()
    # its own samples count as AI-written, by itself
    assert (g["train_ai_fraction"][1:] >= 50 / g["train_docs"][1:]).all()
    assert (g["train_ai_fraction_by_lab"].struct.field("keep")[1:] >= 50 / g["train_docs"][1:] - 1e-12).all()


def test_classifier_flags_ai_pages_at_tpr_and_human_pages_at_fpr_times_their_population_multiplier():
    """Through the real loop: the classifier step's counts by origin are two binomials.

    After tick 0, "all" writes only AI pages and "humans" only human ones; each flags independently, AI pages with
    probability TPR, human pages of "humans" with FPR × 2. With TPR = 0.3 and FPR = 0.2, a classifier that draws
    the FPR for every page and the TPR on top flags AI pages at 1 − 0.8 · 0.7 = 0.44, and one that ignores the
    multiplier flags humans at 0.2: 0.14 and 0.2 away, over 12 binomial SEs at ~3000 pages each (SE ≤ 0.009).
    """
    tpr, fpr, mult = 0.3, 0.2, 2.0
    sc = scenario(COLLAPSE + HUMANS, "run.ticks=4", "publishers[0].pages_per_tick=1000",
                  "publishers.humans.pages_per_tick=1000", "labs.replace.crawl_budget=2000",
                  f"labs.replace.filters=[{{kind=\"classifier\", tpr={tpr}, fpr={fpr}, fpr_multiplier={{humans={mult}}}}}]")
    steps = simweb.run(sc, executor="local").crawls.filter(
        (pl.col("lab") == "replace") & (pl.col("filter") == "classifier") & (pl.col("purpose") == "train")
        & (pl.col("crawl") >= 1))
    ai_in, human_in = int(steps["ai_in"].sum()), int((steps["pages_in"] - steps["ai_in"]).sum())
    assert ai_in > 2500 and human_in > 2500, (ai_in, human_in)
    ai_rate = steps["dropped_ai"].sum() / ai_in
    human_rate = (steps["dropped"] - steps["dropped_ai"]).sum() / human_in
    for rate, p, n in [(ai_rate, tpr, ai_in), (human_rate, fpr * mult, human_in)]:
        assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n), (rate, p, n)
    # the row's own accounting: kept + dropped = in, recall and precision as the counts give them
    assert (steps["kept"] + steps["dropped"] == steps["pages_in"]).all()
    assert np.allclose(steps["recall"], steps["dropped_ai"] / steps["ai_in"])
    assert np.allclose(steps["precision"], steps["dropped_ai"] / steps["dropped"])


# ---------------------------------------------------------------- the batch a filter sees, and small helpers
def test_a_view_holds_only_what_the_filter_declared():
    import pytest

    from simweb.plugins import PluginError

    content, truth = np.arange(12).reshape(4, 3), {"origin": np.array([0, 1, 0, 1])}
    full = batch(4, content=content, truth=truth, graph="G", calibration="C",
                 needs=("tokens", "truth", "graph", "calibration"))
    tokens_only = full.view("mine", {"tokens"})
    assert tokens_only.filter == "mine" and tokens_only.content is content
    # not merely guarded: what was not declared is not in the view at all
    assert tokens_only._truth is None and tokens_only._extra == {}
    with pytest.raises(PluginError, match=r"filter 'mine' reads batch.truth but does not declare needs = \('truth'"):
        tokens_only.truth
    with pytest.raises(PluginError, match=r"batch.graph .*needs = \('graph'"):
        tokens_only.graph
    assert not hasattr(tokens_only, "nonexistent") and not hasattr(tokens_only, "_secret")
    with pytest.raises(AttributeError, match="nonexistent"):
        tokens_only.nonexistent
    truth_only = full.view("oracle", {"truth", "graph"})
    assert truth_only._content is None and truth_only.truth is truth and truth_only.graph == "G"
    assert "calibration" not in truth_only._extra


def test_a_subset_keeps_every_column_aligned():
    content = np.arange(12).reshape(4, 3)
    b = batch(4, content=content, truth={"origin": np.array([0, 1, 0, 1])}, needs=("tokens", "truth"))
    b = dataclasses.replace(b, site_id=np.array([5, 6, 7, 8]), tick=np.array([1, 2, 3, 4]),
                            c2pa=np.array([0, 1, 2, 0], dtype=np.int8))
    s = b.subset(np.array([False, True, False, True]))
    assert s.ids.tolist() == [1, 3] and s.site_id.tolist() == [6, 8] and s.tick.tolist() == [2, 4]
    assert s.c2pa.tolist() == [1, 0] and s.content.tolist() == content[[1, 3]].tolist()
    assert s.truth["origin"].tolist() == [1, 1]
    bare = batch(4).subset(np.array([True, False, True, False]))  # no content and no truth: still none
    assert bare._content is None and bare._truth is None and len(bare) == 2


def test_filter_names_number_a_repeated_kind():
    from types import SimpleNamespace

    from simweb.filters import filter_names

    kinds = ["classifier", "dedup", "classifier", "classifier"]
    assert filter_names([SimpleNamespace(kind=k) for k in kinds]) == ["classifier", "dedup", "classifier_2",
                                                                       "classifier_3"]


def test_content_hash_is_fnv1a_over_each_rows_bytes():
    # the FNV-1a 64-bit test vectors: "" → cbf29ce484222325, "a" → af63dc4c8601ec8c, "foobar" → 85944171f73967e8
    rows = np.frombuffer(b"foobar", dtype=np.uint8).reshape(1, 6)
    assert content_hash(rows).tolist() == [0x85944171F73967E8]
    assert content_hash(np.array([[97]], dtype=np.uint8)).tolist() == [0xAF63DC4C8601EC8C]
    assert content_hash(np.zeros((0, 4), dtype=np.uint16)).dtype == np.uint64


def test_accounting_splits_kept_and_dropped_by_origin():
    from simweb.filters import accounting

    is_ai = np.array([True, True, True, False, False])
    keep = np.array([True, False, False, True, False])
    assert accounting(is_ai, keep) == {"pages_in": 5, "ai_in": 3, "kept": 2, "kept_ai": 1, "dropped": 3,
                                       "dropped_ai": 2, "precision": 2 / 3, "recall": 2 / 3}


def test_hash_set_is_a_set_and_keeps_its_runs_halving():
    """Against Python's set, over adds of every size; and the log-structured merge's invariant: each run is less
    than half the one before it (so there are at most log2(n) runs to search)."""
    from simweb.filters.dedup import HashSet

    rng = np.random.default_rng(4)
    hs, ref = HashSet(), set()
    assert len(hs) == 0 and hs.values().dtype == np.uint64 and hs.values().size == 0
    assert not hs.contains(np.array([1], dtype=np.uint64)).any()
    for size in [40, 3, 20, 1, 1, 10, 64, 2, 2, 5, 0, 30]:
        new = rng.integers(0, 300, size).astype(np.uint64)
        hs.add(new)
        ref |= set(new.tolist())
        runs = [len(r) for r in hs.runs]
        assert all(2 * b < a for a, b in zip(runs, runs[1:])), runs
        assert len(hs) == len(ref) and hs.values().tolist() == sorted(ref)
        probe = np.arange(302, dtype=np.uint64)  # every value, the largest of each run among them
        assert hs.contains(probe).tolist() == [int(v) in ref for v in probe]
    assert HashSet(hs.values()).values().tolist() == sorted(ref)
    # a run exactly half the one before it merges too
    exact = HashSet(np.arange(4, dtype=np.uint64))
    exact.add(np.array([10, 11], dtype=np.uint64))
    assert [len(r) for r in exact.runs] == [6]


# ---------------------------------------------------------------- likelihood and verifier, by closed form
class _Unigram:
    """A 'model' whose tokens are independent draws from ``q``."""

    def __init__(self, q):
        self.q = np.asarray(q)

    def token_log_prob(self, docs):
        return np.log(self.q[docs])


def _likelihood(docs, calibration, model, vocab, target_fpr):
    from simweb.filters.likelihood import Likelihood

    cfg = config_model("filter", "likelihood")(target_fpr=target_fpr)
    b = batch(len(docs), content=docs, needs=Likelihood.needs, model=model, calibration=calibration)
    b = dataclasses.replace(b, vocab_size=vocab)
    return Likelihood(cfg), b


def test_likelihood_statistic_is_the_per_token_log_ratio_against_the_add_one_human_unigram():
    """s(doc) = mean log q(t) − mean log u(t), u the add-one unigram of the calibration text; keep s ≤ the
    (1 − fpr) quantile of s on the calibration documents. Human text here is mostly token 0 (which the model
    also favours) and never token 3 (which the model writes 9 % of the time): a page of token 3 is the model's,
    a page of token 0 is human-like, although token 3 is the less probable under the model."""
    rng = np.random.default_rng(0)
    V, width = 4, 8
    calibration = rng.choice(3, size=(200, width), p=[0.9, 0.05, 0.05])
    model = _Unigram([0.9, 0.005, 0.005, 0.09])
    docs = np.vstack([np.full(width, 3), np.full(width, 0), rng.choice(4, size=(300, width))])
    filt, b = _likelihood(docs, calibration, model, V, 0.1)
    keep = filt.keep(b, rng=rng)
    assert not keep[0] and keep[1]
    u = (np.bincount(calibration.ravel(), minlength=V) + 1.0) / (calibration.size + V)
    s = lambda d: np.log(model.q[d]).mean(axis=1) - np.log(u[d]).mean(axis=1)  # noqa: E731
    assert keep.tolist() == (s(docs) <= np.quantile(s(calibration), 0.9)).tolist()
    # a batch of one page is judged too, and a new calibration set is a new reference
    filt1, one = _likelihood(docs[:1], calibration, model, V, 0.1)
    assert filt1.keep(one, rng=rng).tolist() == [False]
    other = np.full((50, width), 3)  # a "human" text of token 3 only: now token 3 is the human-like one
    other[:, 0] = rng.integers(0, 3, 50)
    _, b2 = _likelihood(docs[:2], other, model, V, 0.1)
    assert filt1.keep(b2, rng=rng)[0]


def test_likelihood_drops_the_calibrated_share_of_its_own_calibration_text():
    """11 calibration documents with distinct scores and fpr 0.1: the 0.9 quantile is the 10th of them, so
    exactly one (the top one) is dropped: ties at the bar are kept."""
    rng = np.random.default_rng(1)
    calibration = rng.integers(0, 4, size=(11, 12))
    model = _Unigram([0.4, 0.3, 0.2, 0.1])
    filt, b = _likelihood(calibration, calibration, model, 4, 0.1)
    keep = filt.keep(b, rng=rng)
    u = (np.bincount(calibration.ravel(), minlength=4) + 1.0) / (calibration.size + 4)
    s = np.log(model.q[calibration]).mean(axis=1) - np.log(u[calibration]).mean(axis=1)
    assert len(np.unique(s)) == 11 and (~keep).sum() == 1 and not keep[np.argmax(s)]


class _SumLanguage:
    """A 'language' whose log-probability of a document is the sum of its entries: quality per token = mean."""

    def log_prob(self, docs):
        return np.asarray(docs, dtype=np.float64).sum(axis=1)


def _verify(docs, calibration, **cfg):
    from simweb.filters.verifier import Verifier

    b = batch(len(docs), content=docs, needs=Verifier.needs, language=_SumLanguage(), calibration=calibration)
    return Verifier(config_model("filter", "verifier")(**cfg)).keep(b, rng=np.random.default_rng(2))


def test_a_perfect_verifier_keeps_a_page_exactly_at_the_bar():
    calibration = np.zeros((20, 5))
    assert _verify(np.array([[0.0] * 5, [-0.1] * 5, [0.1] * 5]), calibration, quantile=0.5).tolist() == \
        [True, False, True]


def test_a_noisy_verifier_keeps_a_page_with_the_gaussian_probability():
    """Human quality 0 per token, pages at quality d: the bar is σ Φ⁻¹(q) + O(1/√n_cal) and a page passes with
    probability Φ((d − bar)/σ); each page's noise is its own."""
    from scipy.stats import norm

    sigma, q, n, width = 0.5, 0.3, 20_000, 10
    calibration = np.zeros((n, width))
    for d in (0.0, 0.4):
        kept = _verify(np.full((n, width), d), calibration, quantile=q, noise=sigma).mean()
        bar = sigma * norm.ppf(q)
        p = norm.cdf((d - bar) / sigma)
        # the bar's own error: sd of a sample quantile, √(q(1−q)/n) / density at it, in score units
        bar_se = math.sqrt(q * (1 - q) / n) / norm.pdf(norm.ppf(q)) * sigma
        se = math.sqrt(p * (1 - p) / n) + norm.pdf((d - bar) / sigma) * bar_se / sigma
        assert abs(kept - p) < 5 * se, (d, kept, p)


def _all_green(key: int, gamma: float, V: int, length: int, other: int | None = None) -> np.ndarray:
    """A document whose every token is green under ``key`` (and red under ``other``, if given)."""
    from simweb.watermark import green_list

    green = green_list(key, gamma, V)
    avoid = green_list(other, gamma, V) if other is not None else np.zeros_like(green)
    doc, prev = [], V
    for _ in range(length):
        prev = int(np.flatnonzero(green[prev] & ~avoid[prev])[0])
        doc.append(prev)
    return np.array(doc)


def test_the_watermark_detector_uses_every_key_it_holds_and_flags_z_at_the_threshold():
    """γ = 0.5 and 16 tokens, all green: z = (16 − 8) / √(16 · ¼) = 4 exactly, which reaches z_threshold = 4."""
    from simweb.filters.watermark import WatermarkDetector

    V, ka, kb = 32, 11, 22
    docs = np.stack([_all_green(ka, 0.5, V, 16, other=kb), _all_green(kb, 0.5, V, 16, other=ka),
                     _all_green(99, 0.5, V, 16)])
    from simweb.watermark import z_scores

    assert z_scores(docs[:1], ka, 0.5, V).tolist() == [4.0]
    b = dataclasses.replace(batch(3, content=docs, needs=("tokens",)), vocab_size=V,
                            watermark_keys={"a": (ka, 0.5), "b": (kb, 0.5)})
    detector = lambda **cfg: WatermarkDetector(config_model("filter", "watermark")(**cfg))  # noqa: E731
    assert detector(keys=("a", "b")).keep(b, rng=None).tolist() == [False, False, True]
    assert detector(keys=("b",)).keep(b, rng=None).tolist() == [True, False, True]
    assert detector().keep(b, rng=None).tolist() == [True, True, True]  # its own lab ("lab") does not watermark
    assert detector(keys=("a",), z_threshold=4.01).keep(b, rng=None).tolist() == [True, True, True]


def test_allowlist_by_age_keeps_the_k_oldest_sites_ties_by_index():
    from types import SimpleNamespace

    from simweb.filters.allowlist import Allowlist

    graph = SimpleNamespace(created=np.array([3, 0, 0, 5, 1]), pagerank_rank=lambda: np.array([4, 3, 2, 1, 0]))
    b = dataclasses.replace(batch(5, graph=graph, needs=("graph",)), site_id=np.arange(5))
    allow = lambda **cfg: Allowlist(config_model("filter", "allowlist")(**cfg))  # noqa: E731
    # oldest first: sites 1 and 2 (tick 0, 1 before 2), then 4, 0, 3
    assert allow(top_k=3, reputation="age").keep(b, rng=None).tolist() == [False, True, True, False, True]
    assert allow(top_k=1, reputation="age").keep(b, rng=None).tolist() == [False, True, False, False, False]
    assert allow(top_k=2).keep(b, rng=None).tolist() == [False, False, False, True, True]  # by PageRank rank
