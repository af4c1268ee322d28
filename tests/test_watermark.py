"""The green-list watermark against the binomial z-test's predictions (Kirchenbauer et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from simweb.models import NgramModel
from simweb.watermark import Watermark, green_list, key_of, z_scores

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
