"""The gaussian and categorical ground truths against scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simweb.language import CategoricalLanguage, GaussianLanguage
from simweb.language.simple import inverse_cdf
from simweb.scenario.models import CategoricalLanguage as CategoricalConfig
from simweb.scenario.models import GaussianLanguage as GaussianConfig

Z = 5.0  # standard errors allowed


# ---------------------------------------------------------------- gaussian
@pytest.mark.parametrize("dim,mean,std", [(1, 0.0, 1.0), (3, -2.5, 0.3), (5, 10.0, 4.0)])
def test_gaussian_log_prob_matches_scipy(dim, mean, std):
    lang = GaussianLanguage(dim=dim, mean=mean, std=std)
    x = np.random.default_rng(0).normal(mean, 3 * std, size=(50, dim))
    want = stats.norm.logpdf(x, loc=mean, scale=std).sum(axis=1)
    np.testing.assert_allclose(lang.log_prob(x), want, rtol=1e-12)


@pytest.mark.parametrize("dim,std", [(1, 1.0), (4, 0.3), (2, 7.0)])
def test_gaussian_entropy_closed_form(dim, std):
    value, se = GaussianLanguage(dim=dim, mean=1.0, std=std).entropy(rng=np.random.default_rng(0))
    assert se == 0.0
    assert value == pytest.approx(dim * 0.5 * math.log(2 * math.pi * math.e * std**2), rel=1e-12)
    assert value == pytest.approx(dim * stats.norm(scale=std).entropy(), rel=1e-12)


def test_gaussian_entropy_is_the_mean_negative_log_prob_of_samples():
    lang = GaussianLanguage(dim=3, mean=0.5, std=2.0)
    x, _ = lang.sample(20_000, rng=np.random.default_rng(1))
    nll = -lang.log_prob(x)
    value, _ = lang.entropy()
    assert abs(nll.mean() - value) <= Z * nll.std(ddof=1) / math.sqrt(len(nll))


def test_gaussian_sample_moments():
    mean, std, n = 1.5, 2.0, 40_000
    lang = GaussianLanguage(dim=2, mean=mean, std=std)
    x, topics = lang.sample(n, rng=np.random.default_rng(2))
    assert x.shape == (n, 2) and np.all(topics == 0)
    assert np.all(np.abs(x.mean(axis=0) - mean) <= Z * std / math.sqrt(n))
    assert np.all(np.abs(x.var(axis=0, ddof=1) - std**2) <= Z * std**2 * math.sqrt(2 / (n - 1)))


def test_gaussian_draw_scales_standard_noise():
    lang = GaussianLanguage(dim=2, mean=-1.0, std=3.0)
    noise = np.array([[0.0, 1.0], [-2.0, 0.5]])
    np.testing.assert_allclose(lang.draw(noise), [[-1.0, 2.0], [-7.0, 0.5]], rtol=1e-15)
    a, _ = lang.sample(10, rng=np.random.default_rng(3))
    b, _ = lang.sample(10, rng=np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_gaussian_from_config():
    cfg = GaussianConfig(family="gaussian", dim=3, mean=2.0, std=0.5)
    lang = GaussianLanguage.from_config(cfg, rng=np.random.default_rng(0))
    assert lang.dim == 3
    np.testing.assert_array_equal(lang.mean, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(lang.var, [0.25, 0.25, 0.25])


# ---------------------------------------------------------------- categorical
PROBS = np.array([0.4, 0.0, 0.25, 0.2, 0.1, 0.05, 0.0])


def test_categorical_log_prob_is_log_p():
    lang = CategoricalLanguage(PROBS)
    x = np.arange(len(PROBS))[:, None]
    got = lang.log_prob(x)
    nonzero = PROBS > 0
    np.testing.assert_allclose(got[nonzero], np.log(PROBS[nonzero]), rtol=1e-15)
    assert np.all(got[~nonzero] == -np.inf)


def test_categorical_entropy_closed_form():
    value, se = CategoricalLanguage(PROBS).entropy()
    assert se == 0.0
    assert value == pytest.approx(stats.entropy(PROBS), rel=1e-12)
    assert value == pytest.approx(-sum(p * math.log(p) for p in PROBS if p > 0), rel=1e-12)


def test_categorical_sample_frequencies():
    lang = CategoricalLanguage(PROBS)
    n = 100_000
    x, topics = lang.sample(n, rng=np.random.default_rng(4))
    assert x.shape == (n, 1) and x.dtype == np.int32 and np.all(topics == 0)
    freq = np.bincount(x[:, 0], minlength=len(PROBS)) / n
    assert np.all(freq[PROBS == 0] == 0.0)
    assert np.all(np.abs(freq - PROBS) <= Z * np.sqrt(PROBS * (1 - PROBS) / n)), (freq, PROBS)


def test_inverse_cdf_on_a_uniform_grid():
    """Stratified uniforms land in each outcome's interval of the cumulative sum: error at most one point."""
    N = 100_000
    u = (np.arange(N) + 0.5) / N
    for probs in (PROBS, np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([2.0, 1.0, 1.0])):
        x = inverse_cdf(probs, u)
        freq = np.bincount(x, minlength=len(probs)) / N
        assert np.all(np.abs(freq - probs / probs.sum()) <= 1.0 / N + 1e-12), (probs, freq)
        assert np.all(freq[probs == 0] == 0.0)
    assert inverse_cdf(PROBS, np.array([0.0]))[0] == 0
    assert inverse_cdf(np.array([0.0, 0.0, 1.0]), np.array([0.0]))[0] == 2  # u = 0 must not pick an empty outcome
    assert inverse_cdf(PROBS, np.array([0.4]))[0] == 2  # 0.4 opens outcome 2's interval [0.4, 0.65)
    assert inverse_cdf(PROBS, np.array([np.nextafter(1.0, 0.0)]))[0] == 5  # the last outcome with mass


def test_categorical_from_config():
    given = CategoricalLanguage.from_config(CategoricalConfig(family="categorical", outcomes=3, probs=(2.0, 1.0, 1.0)),
                                            rng=np.random.default_rng(0))
    np.testing.assert_allclose(given.probs, [0.5, 0.25, 0.25], rtol=1e-15)
    assert given.outcomes == 3
    s = 1.3
    zipf = CategoricalLanguage.from_config(CategoricalConfig(family="categorical", outcomes=6, zipf_exponent=s),
                                           rng=np.random.default_rng(0))
    w = np.arange(1, 7, dtype=float) ** -s
    np.testing.assert_allclose(zipf.probs, w / w.sum(), rtol=1e-12)
