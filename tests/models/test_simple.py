"""The gaussian and categorical models: closed-form fits, scipy densities and sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simweb.language import CategoricalLanguage, GaussianLanguage
from simweb.models import CategoricalModel, GaussianModel
from simweb.plugins import config_model

CategoricalModelConfig = config_model("model", "categorical")
GaussianModelConfig = config_model("model", "gaussian")
from tests.helpers import brute_shape

Z = 5.0  # standard errors allowed

X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])  # mean (2.5, 25); squared deviations 5, 500




# ---------------------------------------------------------------- gaussian: fit
def test_gaussian_mle_fit_by_hand():
    model = GaussianModel(dim=2, variance="mle").fit(X, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.mean, [2.5, 25.0], rtol=1e-15)
    np.testing.assert_allclose(model.var, [5 / 4, 500 / 4], rtol=1e-15)
    np.testing.assert_allclose(model.var, np.var(X, axis=0, ddof=0), rtol=1e-15)


def test_gaussian_unbiased_fit_by_hand():
    model = GaussianModel(dim=2, variance="unbiased").fit(X, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.mean, [2.5, 25.0], rtol=1e-15)
    np.testing.assert_allclose(model.var, [5 / 3, 500 / 3], rtol=1e-15)
    np.testing.assert_allclose(model.var, np.var(X, axis=0, ddof=1), rtol=1e-15)


def test_gaussian_fit_needs_enough_samples():
    with pytest.raises(ValueError, match="unbiased"):
        GaussianModel(dim=1, variance="unbiased").fit(np.array([[3.0]]), rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        GaussianModel(dim=1, variance="mle").fit(np.empty((0, 1)), rng=np.random.default_rng(0))
    one = GaussianModel(dim=1, variance="mle").fit(np.array([[3.0]]), rng=np.random.default_rng(0))
    assert one.mean[0] == 3.0 and one.var[0] == 0.0


def test_gaussian_fit_recovers_the_language():
    mean, std, n = -1.0, 3.0, 20_000
    x, _ = GaussianLanguage(dim=3, mean=mean, std=std).sample(n, rng=np.random.default_rng(0))
    model = GaussianModel(dim=3, variance="unbiased").fit(x, rng=np.random.default_rng(0))
    assert np.all(np.abs(model.mean - mean) <= Z * std / math.sqrt(n))
    assert np.all(np.abs(model.var - std**2) <= Z * std**2 * math.sqrt(2 / (n - 1)))


# ---------------------------------------------------------------- gaussian: density and samples
def test_gaussian_log_prob_matches_scipy():
    model = GaussianModel(dim=2).fit(X, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(0.0, 30.0, size=(40, 2))
    want = stats.norm.logpdf(x, loc=model.mean, scale=np.sqrt(model.var)).sum(axis=1)
    np.testing.assert_allclose(model.log_prob(x), want, rtol=1e-12)


def test_gaussian_with_zero_variance_is_a_point_mass():
    """A collapsed fit (one sample, mle): infinite density at the point, none anywhere else."""
    model = GaussianModel(dim=1, variance="mle").fit(np.array([[3.0]]), rng=np.random.default_rng(0))
    lp = model.log_prob(np.array([[3.0], [3.5]]))
    assert lp[0] == np.inf
    assert lp[1] == -np.inf


@pytest.mark.parametrize("temperature", [1.0, 0.25, 3.0])
def test_gaussian_sample_moments_and_temperature(temperature):
    model = GaussianModel(dim=2).load_state_dict({"mean": np.array([1.0, -4.0]), "var": np.array([2.0, 0.5])})
    n = 40_000
    x = model.sample(n, rng=np.random.default_rng(int(temperature * 4)), temperature=temperature)
    var = model.var * temperature  # temperature scales the variance
    assert x.shape == (n, 2)
    assert np.all(np.abs(x.mean(axis=0) - model.mean) <= Z * np.sqrt(var / n))
    assert np.all(np.abs(x.var(axis=0, ddof=1) - var) <= Z * var * math.sqrt(2 / (n - 1)))


def test_gaussian_unfitted_model_is_refused():
    model = GaussianModel(dim=1)
    for call in (lambda: model.sample(2, rng=np.random.default_rng(0)), lambda: model.log_prob(X[:, :1]),
                 model.state_dict):
        with pytest.raises(RuntimeError):
            call()


def test_gaussian_state_round_trip():
    model = GaussianModel(dim=2, variance="unbiased").fit(np.random.default_rng(2).normal(size=(30, 2)), rng=np.random.default_rng(0))
    state = model.state_dict()
    assert set(state) == {"mean", "var"}
    clone = GaussianModel(dim=2, variance="unbiased").load_state_dict({k: np.array(v) for k, v in state.items()})
    x = np.random.default_rng(3).normal(size=(50, 2))
    np.testing.assert_array_equal(clone.log_prob(x), model.log_prob(x))
    for t in (1.0, 0.5):
        np.testing.assert_array_equal(clone.sample(100, rng=np.random.default_rng(4), temperature=t),
                                      model.sample(100, rng=np.random.default_rng(4), temperature=t))


def test_gaussian_from_config():
    lang = GaussianLanguage(dim=4, mean=0.0, std=1.0)
    model = GaussianModel.from_config(GaussianModelConfig(family="gaussian", variance="unbiased"), lang)
    assert (model.dim, model.variance) == (4, "unbiased")


# ---------------------------------------------------------------- categorical
OBS = np.array([[0], [2], [2], [1], [2], [0]])  # counts 2, 1, 3, 0 of 6


def test_categorical_fit_is_counts_over_n():
    model = CategoricalModel(outcomes=4).fit(OBS, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.probs, [2 / 6, 1 / 6, 3 / 6, 0.0], rtol=1e-15)
    with pytest.raises(ValueError):
        CategoricalModel(outcomes=4).fit(np.empty((0, 1), dtype=np.int64), rng=np.random.default_rng(0))


def test_categorical_log_prob_is_log_p():
    model = CategoricalModel(outcomes=4).fit(OBS, rng=np.random.default_rng(0))
    got = model.log_prob(np.arange(4)[:, None])
    np.testing.assert_allclose(got[:3], np.log([2 / 6, 1 / 6, 3 / 6]), rtol=1e-15)
    assert got[3] == -np.inf  # never seen, gone for good


def test_categorical_fit_recovers_the_language():
    probs = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    n = 50_000
    x, _ = CategoricalLanguage(probs).sample(n, rng=np.random.default_rng(5))
    model = CategoricalModel(outcomes=5).fit(x, rng=np.random.default_rng(0))
    assert np.all(np.abs(model.probs - probs) <= Z * np.sqrt(probs * (1 - probs) / n))


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.5, 1.0), (2.5, 1.0), (1.0, 0.6), (0.7, 0.8)])
def test_categorical_sample_frequencies(temperature, top_p):
    probs = np.array([0.05, 0.3, 0.0, 0.4, 0.15, 0.1])
    model = CategoricalModel(outcomes=6).load_state_dict({"probs": probs})
    n = 60_000
    x = model.sample(n, rng=np.random.default_rng(int(temperature * 10 + top_p * 100)),
                     temperature=temperature, top_p=top_p)
    assert x.shape == (n, 1) and x.dtype == np.int32
    p = brute_shape(probs, temperature, top_p)
    freq = np.bincount(x[:, 0], minlength=6) / n
    assert np.all(freq[p == 0] == 0.0), (freq, p)
    assert np.all(np.abs(freq - p) <= Z * np.sqrt(p * (1 - p) / n)), (freq, p)


def test_categorical_state_round_trip():
    model = CategoricalModel(outcomes=4).fit(OBS, rng=np.random.default_rng(0))
    clone = CategoricalModel(outcomes=4).load_state_dict({k: np.array(v) for k, v in model.state_dict().items()})
    x = np.arange(4)[:, None]
    np.testing.assert_array_equal(clone.log_prob(x), model.log_prob(x))
    for kw in ({}, {"temperature": 0.5, "top_p": 0.9}):
        np.testing.assert_array_equal(clone.sample(200, rng=np.random.default_rng(6), **kw),
                                      model.sample(200, rng=np.random.default_rng(6), **kw))


def test_categorical_unfitted_model_is_refused():
    with pytest.raises(RuntimeError):
        CategoricalModel(outcomes=3).sample(2, rng=np.random.default_rng(0))


def test_categorical_from_config():
    lang = CategoricalLanguage(np.full(7, 1 / 7))
    assert CategoricalModel.from_config(CategoricalModelConfig(family="categorical"), lang).outcomes == 7


def test_draw_and_sample_default_to_temperature_one():
    rng = np.random.default_rng(0)
    g = GaussianModel(dim=2).fit(rng.standard_normal((50, 2)), rng=rng)
    z = g.noise(30, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(g.draw(z), g.mean + np.sqrt(g.var) * z)
    np.testing.assert_array_equal(g.sample(30, rng=np.random.default_rng(1)), g.draw(z))
    c = CategoricalModel(outcomes=4).load_state_dict({"probs": np.array([0.1, 0.2, 0.3, 0.4])})
    u = c.noise(200, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(c.draw(u), c.draw(u, temperature=1.0, top_p=1.0))
    np.testing.assert_array_equal(c.sample(200, rng=np.random.default_rng(2)), c.draw(u))
    # inverse cdf of the law itself: u in [0.1, 0.3) is outcome 1
    assert c.draw(np.array([[0.05], [0.15], [0.35], [0.95]]))[:, 0].tolist() == [0, 1, 2, 3]


def test_point_masses_per_row_and_no_warnings():
    """A dimension of zero variance is a point mass: a row is +inf on it and −inf off it; quietly."""
    import warnings

    m = GaussianModel(dim=2).load_state_dict({"mean": np.array([0.0, 1.0]), "var": np.array([4.0, 0.0])})
    x = np.array([[0.5, 1.0], [-1.0, 1.0], [0.5, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = m.log_prob(x)
        c = CategoricalModel(outcomes=2).load_state_dict({"probs": np.array([1.0, 0.0])})
        assert c.log_prob(np.array([[1]])).tolist() == [-np.inf]
    assert got.tolist() == [np.inf, np.inf, -np.inf]


def test_states_load_as_vectors_whatever_their_stored_shape():
    g = GaussianModel(dim=2).load_state_dict({"mean": [[1.0, 2.0]], "var": [[3.0, 4.0]]})
    assert g.mean.shape == (2,) and g.var.shape == (2,)
    c = CategoricalModel(outcomes=2).load_state_dict({"probs": [[0.25, 0.75]]})
    assert c.probs.shape == (2,)


def test_errors_say_what_is_missing():
    with pytest.raises(RuntimeError, match="the gaussian model has not been fitted"):
        GaussianModel(dim=1).sample(1, rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="the categorical model has not been fitted"):
        CategoricalModel(outcomes=2).sample(1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="a categorical fit needs at least one sample"):
        CategoricalModel(outcomes=2).fit(np.zeros((0, 1), dtype=np.int64), rng=np.random.default_rng(0))
