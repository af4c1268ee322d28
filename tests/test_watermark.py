"""The green-list watermark against the binomial z-test's predictions (Kirchenbauer et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from simweb.models import NgramModel
from simweb.watermark import Watermark, green_list, key_of, z_scores
from simweb.watermark import bias as watermark_bias

V, GAMMA, DELTA = 1024, 0.25, 2.0


def _uniform_model(length: int) -> NgramModel:
    # every row uniform: a green token is drawn with the same probability after any token
    return NgramModel(vocab_size=V, doc_length=length, order=1).load_state_dict({"probs": np.full((V + 1, V), 1 / V)})


def _p_green() -> float:
    g = green_list(key_of(0, "lab"), GAMMA, V).mean(axis=1)  # each row's actual green share
    return float(np.mean(g * math.exp(DELTA) / (g * math.exp(DELTA) + 1 - g)))


def _detect_rate(length: int, p: float, z: float) -> float:
    """P(z-score >= z) when the green count is Binomial(length, p)."""
    need = math.ceil(GAMMA * length + z * math.sqrt(length * GAMMA * (1 - GAMMA)) - 1e-9)
    return float(binom.sf(need - 1, length, p))


def test_green_lists_are_keyed_and_hold_gamma_of_the_vocabulary():
    a, b = green_list(key_of(0, "a"), GAMMA, V), green_list(key_of(0, "b"), GAMMA, V)
    assert a.shape == (V + 1, V)
    assert abs(a.mean() - GAMMA) < 5 * math.sqrt(GAMMA * (1 - GAMMA) / a.size)
    assert abs((a & b).mean() - GAMMA ** 2) < 0.01  # another key: an unrelated list


@pytest.mark.parametrize("length", [8, 16, 32])
def test_detection_rate_matches_the_binomial_prediction(length):
    mark = Watermark(key_of(0, "lab"), GAMMA, DELTA)
    n = 4000
    docs = _uniform_model(length).sample(n, rng=np.random.default_rng(length), watermark=mark)
    z = z_scores(docs, mark.key, GAMMA, V)
    rate = float((z >= 4.0).mean())
    expected = _detect_rate(length, _p_green(), 4.0)
    assert abs(rate - expected) < 5 * math.sqrt(expected * (1 - expected) / n) + 1e-3, (rate, expected)


def test_false_positive_rate_on_unwatermarked_text_matches_the_binomial_tail():
    length, n, z = 64, 20_000, 2.0
    docs = _uniform_model(length).sample(n, rng=np.random.default_rng(7))
    rate = float((z_scores(docs, key_of(0, "lab"), GAMMA, V) >= z).mean())
    expected = _detect_rate(length, GAMMA, z)
    assert abs(rate - expected) < 5 * math.sqrt(expected * (1 - expected) / n)
    # 1 − Φ(z) is the large-document limit of that tail; at 512 tokens they agree within a few tenths of a percent
    long = _uniform_model(512).sample(5000, rng=np.random.default_rng(8))
    long_rate = float((z_scores(long, key_of(0, "lab"), GAMMA, V) >= z).mean())
    gap = abs(_detect_rate(512, GAMMA, z) - norm.sf(z))
    assert abs(long_rate - norm.sf(z)) < 5 * math.sqrt(norm.sf(z) * norm.cdf(z) / 5000) + gap


@pytest.mark.parametrize("edit", [0.1, 0.3, 0.6])
def test_edits_lower_the_z_score_as_predicted(edit):
    length, n = 32, 4000
    mark = Watermark(key_of(0, "lab"), GAMMA, DELTA)
    rng = np.random.default_rng(11)
    docs = _uniform_model(length).sample(n, rng=rng, watermark=mark)
    where = rng.random(docs.shape) < edit
    docs[where] = rng.integers(0, V, int(where.sum()))  # rewritten by someone without the key
    z = z_scores(docs, mark.key, GAMMA, V)
    # a token stays green-biased only if neither it nor the token before it was rewritten
    p = _p_green()
    q = np.full(length, (1 - edit) ** 2 * p + (1 - (1 - edit) ** 2) * GAMMA)
    q[0] = (1 - edit) * p + edit * GAMMA  # the first token's predecessor is the start symbol, never edited
    expected = (q.sum() - GAMMA * length) / math.sqrt(length * GAMMA * (1 - GAMMA))
    assert abs(z.mean() - expected) < 5 * z.std(ddof=1) / math.sqrt(n), (z.mean(), expected)


# ---------------------------------------------------------------- exact laws, over several (γ, δ)
def _green_count_law(key: int, gamma: float, delta: float, vocab: int, length: int) -> np.ndarray:
    """P(G = c), c = 0..L: the green count of a document the uniform model writes with the watermark (δ = 0: without).

    Exact: the chain over (previous token, greens so far). Token t is green with the probability its predecessor's
    row gives it, g_r e^δ / (g_r e^δ + 1 − g_r) for a row whose green share is g_r, so this is the binomial
    prediction with every token's green probability set by its own predecessor.
    """
    green = green_list(key, gamma, vocab)
    w = np.where(green, math.exp(delta), 1.0)
    step = w / w.sum(axis=1, keepdims=True)  # P(next = j | previous = r), r = V is the start symbol
    to_green, to_red = (step * green).T, (step * ~green).T  # (V, V + 1)
    law = np.zeros((vocab + 1, length + 1))  # mass over (previous token, greens so far)
    law[vocab, 0] = 1.0
    for _ in range(length):
        nxt = np.zeros_like(law)
        nxt[:vocab] = to_red @ law
        nxt[:vocab, 1:] += (to_green @ law)[:, :-1]
        law = nxt
    return law.sum(axis=0)


def _z_of(counts: np.ndarray, gamma: float, length: int) -> np.ndarray:
    """Kirchenbauer et al.'s one-proportion z of a green count over all L tokens."""
    return (counts - gamma * length) / math.sqrt(length * gamma * (1 - gamma))


def _moments(law: np.ndarray, gamma: float, length: int) -> tuple[float, float, float]:
    """Mean, variance and fourth central moment of z under a green-count law."""
    z = _z_of(np.arange(length + 1), gamma, length)
    mean = float(law @ z)
    return mean, float(law @ (z - mean) ** 2), float(law @ (z - mean) ** 4)


# (γ, δ, L): short documents make the scale of z matter (an L − 1 for L moves the mean by ≥ 0.1 there)
FAMILY = [(0.1, 4.0, 8), (0.25, 2.0, 16), (0.5, 1.0, 16), (0.75, 3.0, 8), (0.25, 4.0, 4)]


@pytest.mark.parametrize("gamma,delta,length", FAMILY)
def test_detection_rate_and_z_moments_match_the_exact_law_at_each_gamma_and_delta(gamma, delta, length):
    n = 4000
    mark = Watermark(key_of(1, "lab"), gamma, delta)
    docs = _uniform_model(length).sample(n, rng=np.random.default_rng(int(100 * gamma + delta)), watermark=mark)
    z = z_scores(docs, mark.key, gamma, V)
    law = _green_count_law(mark.key, gamma, delta, V, length)
    zc = _z_of(np.arange(length + 1), gamma, length)
    for threshold in (2.1, 3.9):
        assert np.abs(zc - threshold).min() > 1e-6  # no count sits on the threshold, where rounding would decide
        expected = float(law[zc >= threshold].sum())
        rate = float((z >= threshold).mean())
        # a rate of n Bernoulli(expected) documents: 5 binomial SEs (+ 1/n for an expected rate near 0 or 1)
        assert abs(rate - expected) < 5 * math.sqrt(expected * (1 - expected) / n) + 1 / n, (threshold, rate, expected)
    mean, var, m4 = _moments(law, gamma, length)
    # CLT: the sample mean's SE is sd/√n; the sample variance's SE is √((μ4 − σ⁴)/n)
    assert abs(z.mean() - mean) < 5 * math.sqrt(var / n), (z.mean(), mean)
    assert abs(z.var() - var) < 5 * math.sqrt((m4 - var ** 2) / n), (z.var(), var)


@pytest.mark.parametrize("gamma,length", [(0.25, 8), (0.5, 8), (0.1, 32)])
def test_z_without_the_watermark_has_mean_0_and_variance_1(gamma, length):
    n = 20_000
    key = key_of(2, "lab")
    docs = np.random.default_rng(length).integers(0, V, size=(n, length))  # text written without the key
    z = z_scores(docs, key, gamma, V)
    # The exact law departs from (0, 1) only by how far this key's green lists stray from γ. For a well-spread hash
    # the start row's green share is γ ± √(γ(1−γ)/V), which moves the mean z by ±1/√(VL), and the other rows', all
    # together, γ ± √(γ(1−γ))/V, moving it by ±√L/V: four of those SDs bound it (and the variance's smaller shift).
    mean, var, m4 = _moments(_green_count_law(key, gamma, 0.0, V, length), gamma, length)
    hash_sd = 1 / math.sqrt(V * length) + math.sqrt(length) / V
    assert abs(mean) < 4 * hash_sd and abs(var - 1) < 4 * hash_sd, (mean, var, hash_sd)
    assert abs(z.mean()) < 5 * math.sqrt(var / n) + abs(mean), z.mean()
    assert abs(z.var() - 1) < 5 * math.sqrt((m4 - var ** 2) / n) + abs(var - 1), z.var()


def test_a_labs_own_detector_catches_its_text_at_the_exact_rate_for_its_own_gamma_and_delta():
    """γ, δ and the threshold travel from the scenario to the publisher and the lab's filter.

    The lab's model is uniform (α = 10⁹ swamps every count), so its pages follow the exact law above at its
    own (γ = 0.5, δ = 1.5); the other lab's market share is 0, so every AI page is this lab's. A hard-coded
    γ = 0.25 or δ = 2 in the publisher or the detector, or the default threshold of 4, moves the rate by more
    than 0.1, over 10 standard errors at 4000 pages.
    """
    import polars as pl

    import simweb
    from tests.helpers import COLLAPSE, scenario

    gamma, delta, threshold, length = 0.5, 1.5, 2.9, 16
    sc = scenario(COLLAPSE, "run.ticks=5", f"language.doc_length={length}", "publishers[0].top_p=1.0",
                  "publishers[0].pages_per_tick=1000", "labs.replace.crawl_budget=1000", "labs.replace.model={alpha=1e9}",
                  f"labs.replace.watermark={{gamma={gamma}, delta={delta}}}",
                  f"labs.replace.filters=[{{kind=\"watermark\", z_threshold={threshold}}}]")
    res = simweb.run(sc, executor="local")
    steps = res.crawls.filter((pl.col("lab") == "replace") & (pl.col("filter") == "watermark")
                              & (pl.col("purpose") == "train") & (pl.col("crawl") >= 1))
    ai_in = int(steps["ai_in"].sum())
    assert ai_in == int(steps["pages_in"].sum()) >= 3000  # after tick 0 every page is the lab's
    vocab = sc.language.vocab_size
    law = _green_count_law(key_of(sc.run.seed, "replace"), gamma, delta, vocab, length)
    zc = _z_of(np.arange(length + 1), gamma, length)
    assert np.abs(zc - threshold).min() > 1e-6
    expected = float(law[zc >= threshold].sum())
    recall = steps["dropped_ai"].sum() / ai_in
    assert 0.2 < expected < 0.8  # a rate in the middle, where a wrong γ, δ or threshold shows
    assert abs(recall - expected) < 5 * math.sqrt(expected * (1 - expected) / ai_in), (recall, expected)


# ---------------------------------------------------------------- the pieces, by hand
def test_bias_raises_green_probabilities_by_e_delta_and_renormalises_each_row():
    rng = np.random.default_rng(3)
    v, mark = 16, Watermark(key_of(0, "lab"), 0.5, 1.3)
    probs = rng.dirichlet(np.ones(v), size=5)
    probs[2, :8] = 0.0  # a row with zeros stays a law over its own support
    probs[2] /= probs[2].sum()
    last = np.array([0, 3, 16, 7, 3])  # 16 = the start symbol
    green = green_list(mark.key, mark.gamma, v)[last]
    want = np.array([[p * math.exp(mark.delta) if g else p for p, g in zip(row, gr)] for row, gr in zip(probs, green)])
    want /= want.sum(axis=1, keepdims=True)
    got = watermark_bias(probs, last, mark)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    assert (got[2, :8] == 0).all()
    # δ = 0 is no watermark at all: the same probabilities
    np.testing.assert_allclose(watermark_bias(probs, last, Watermark(mark.key, 0.5, 0.0)), probs, rtol=1e-12)


def test_bias_leaves_an_all_zero_row_at_zero_instead_of_nan():
    probs = np.zeros((2, 4))
    probs[1] = 0.25
    out = watermark_bias(probs, np.array([0, 1]), Watermark(key_of(0, "lab")))
    assert np.array_equal(out[0], np.zeros(4)) and np.isclose(out[1].sum(), 1.0)


def test_the_defaults_are_kirchenbauer_et_al_s():
    mark = Watermark(123)
    assert (mark.gamma, mark.delta) == (0.25, 2.0)
    with pytest.raises(AttributeError):
        mark.gamma = 0.5  # frozen: it keys the samplers' caches


def test_a_cached_green_list_is_read_only():
    green = green_list(key_of(0, "ro"), GAMMA, 64)
    with pytest.raises(ValueError):
        green[0, 0] = not green[0, 0]  # one caller must not change the list every other caller reads


def test_key_of_is_stable_distinct_and_a_64_bit_integer():
    keys = {(s, lab): key_of(s, lab) for s in range(20) for lab in ("a", "b", "lab")}
    assert len(set(keys.values())) == len(keys)
    assert all(isinstance(k, int) and 0 <= k < 2**64 for k in keys.values())
    assert key_of(3, "a") == key_of(3, "a")


def test_green_lists_spread_like_independent_coin_flips_within_and_across_rows():
    """A green list is meant to be γ-coins per (previous, next) pair: every row's and column's green share is
    Binomial(·, γ)/n, and rows are unrelated (two rows share γ² of the vocabulary). A weak hash fails one of these."""
    v, gamma = 512, 0.25
    green = green_list(key_of(5, "lab"), gamma, v).astype(np.float64)
    rows, cols = green.mean(axis=1), green.mean(axis=0)
    # the spread of V+1 row shares against its binomial variance γ(1−γ)/V; the sample variance of k shares has
    # relative SE √(2/(k−1)), 5 of them about 0.31
    for shares, n in [(rows, v), (cols, v + 1)]:
        assert abs(shares.mean() - gamma) < 5 * math.sqrt(gamma * (1 - gamma) / green.size)
        assert abs(shares.var(ddof=1) / (gamma * (1 - gamma) / n) - 1) < 5 * math.sqrt(2 / (len(shares) - 1))
    overlap = (green[:-1] * green[1:]).mean()  # consecutive rows, V × V pairs
    assert abs(overlap - gamma ** 2) < 5 * math.sqrt(gamma ** 2 * (1 - gamma ** 2) / (v * v))
    assert not (green[:-1] == green[1:]).all(axis=1).any()  # no two neighbouring rows alike
