"""Priors toward a reference, against their closed forms: normal-inverse-gamma for the gaussian, Dirichlet for counts."""

from __future__ import annotations

import numpy as np
import pytest

from simweb.models import CategoricalModel, GaussianModel, NgramModel, Prior

X = np.array([[0.3, -1.2], [1.9, 0.4], [-0.7, 2.2], [1.1, 0.0], [0.4, 5.1]])  # n = 5 samples, d = 2
REF = {"mean": np.array([1.0, -2.0]), "var": np.array([0.5, 3.0])}


def _nig_posterior(x: np.ndarray, c: float, mu0: np.ndarray, var0: np.ndarray):
    """The normal-inverse-gamma update, per dimension, written out from the textbook (Murphy 2007, §3).

    Prior: μ | σ² ~ N(μ0, σ²/κ0), σ² ~ InvGamma(α0, β0), with c pseudo-samples at mean μ0 and variance var0:
    κ0 = c, α0 = c/2, β0 = c·var0/2. After n samples with mean x̄ and spread S = Σ(x − x̄)²:
      κn = κ0 + n,  μn = (κ0 μ0 + n x̄)/κn,  αn = α0 + n/2,  βn = β0 + S/2 + κ0 n (x̄ − μ0)² / (2 κn).
    """
    n = len(x)
    xbar = x.mean(axis=0)
    spread = ((x - xbar) ** 2).sum(axis=0)
    kappa_n = c + n
    mu_n = (c * mu0 + n * xbar) / kappa_n
    alpha_n = c / 2 + n / 2
    beta_n = c * var0 / 2 + spread / 2 + c * n * (xbar - mu0) ** 2 / (2 * kappa_n)
    return mu_n, alpha_n, beta_n


@pytest.mark.parametrize("c", [0.5, 3.5, 40.0])
def test_gaussian_prior_is_the_normal_inverse_gamma_posterior(c):
    mu_n, alpha_n, beta_n = _nig_posterior(X, c, REF["mean"], REF["var"])
    mle = GaussianModel(dim=2, variance="mle").fit(X, prior=Prior(c, REF), rng=np.random.default_rng(0))
    # the mean is the posterior mean of μ; the "mle" variance is βn/αn = 1/E[σ⁻²] (with c = 0: S/n, the MLE)
    np.testing.assert_allclose(mle.mean, mu_n, rtol=1e-12)
    np.testing.assert_allclose(mle.var, beta_n / alpha_n, rtol=1e-12)
    # "unbiased" divides the same 2βn by n + c − 1 instead of n + c (with c = 0: S/(n − 1))
    unbiased = GaussianModel(dim=2, variance="unbiased").fit(X, prior=Prior(c, REF), rng=np.random.default_rng(0))
    np.testing.assert_allclose(unbiased.mean, mu_n, rtol=1e-12)
    np.testing.assert_allclose(unbiased.var, beta_n / (alpha_n - 0.5), rtol=1e-12)


@pytest.mark.parametrize("variance", ["mle", "unbiased"])
def test_a_gaussian_prior_of_integer_strength_is_that_many_pseudo_samples(variance):
    # c = 4 points with mean μ0 and (population) variance var0: μ0 ± √var0, twice; the pooled fit must be the prior's
    half = np.sqrt(REF["var"])
    pseudo = np.array([REF["mean"] + half, REF["mean"] - half] * 2)
    assert np.allclose(pseudo.mean(axis=0), REF["mean"]) and np.allclose(pseudo.var(axis=0), REF["var"])
    with_prior = GaussianModel(dim=2, variance=variance).fit(X, prior=Prior(4, REF), rng=np.random.default_rng(0))
    pooled = GaussianModel(dim=2, variance=variance).fit(np.concatenate([X, pseudo]), rng=np.random.default_rng(0))
    np.testing.assert_allclose(with_prior.mean, pooled.mean, rtol=1e-12)
    np.testing.assert_allclose(with_prior.var, pooled.var, rtol=1e-12)


def test_a_gaussian_prior_pulls_toward_its_reference_as_it_grows():
    fits = [GaussianModel(dim=2).fit(X, prior=Prior(c, REF), rng=np.random.default_rng(0)) for c in (1e-9, 1e9)]
    np.testing.assert_allclose(fits[0].mean, X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(fits[0].var, X.var(axis=0), rtol=1e-6)
    np.testing.assert_allclose(fits[1].mean, REF["mean"], rtol=1e-6)
    np.testing.assert_allclose(fits[1].var, REF["var"], rtol=1e-6)


def test_a_zero_strength_prior_is_no_prior_and_a_gaussian_prior_needs_a_reference():
    plain = GaussianModel(dim=2).fit(X, rng=np.random.default_rng(0))
    zero = GaussianModel(dim=2).fit(X, prior=Prior(0.0, REF), rng=np.random.default_rng(0))
    assert np.array_equal(plain.mean, zero.mean) and np.array_equal(plain.var, zero.var)
    with pytest.raises(ValueError, match="reference"):
        GaussianModel(dim=2).fit(X, prior=Prior(1.0), rng=np.random.default_rng(0))


# ---------------------------------------------------------------- Dirichlet pseudo-counts
V = 3
DOCS = np.array([[0, 1, 1], [2, 0, 1]])
# transitions by hand (context = previous token, 3 = the start symbol):
#   start→0, 0→1, 1→1 ; start→2, 2→0, 0→1
COUNTS = np.array([[0, 2, 0],  # after 0
                   [0, 1, 0],  # after 1
                   [1, 0, 0],  # after 2
                   [1, 0, 1]],  # after the start
                  dtype=np.float64)


@pytest.mark.parametrize("alpha", [0.0, 0.25])
@pytest.mark.parametrize("c", [0.5, 6.0])
def test_ngram_prior_is_the_dirichlet_posterior_mean(c, alpha):
    """A Dirichlet(c·p_ref + α) prior on each row, updated by the row's counts n_j, has posterior mean
    (n_j + c·p_ref,j + α) / (N + c + Vα); with no reference, p_ref is uniform (1/V)."""
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(V), size=V + 1)
    for prior, p_ref in [(Prior(c), np.full((V + 1, V), 1 / V)), (Prior(c, {"probs": ref}), ref)]:
        model = NgramModel(vocab_size=V, doc_length=3, order=1, alpha=alpha).fit(DOCS, prior=prior, rng=np.random.default_rng(0))
        want = (COUNTS + c * p_ref + alpha) / (COUNTS.sum(axis=1, keepdims=True) + c + V * alpha)
        np.testing.assert_allclose(model.probs, want, rtol=1e-12)


def test_a_context_never_seen_takes_the_reference_row_not_the_unigram_law():
    docs = np.array([[0, 0, 0], [0, 0, 0]])  # tokens 1 and 2 are never a context
    ref = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    model = NgramModel(vocab_size=V, doc_length=3, order=1, alpha=0.0).fit(docs, prior=Prior(2.0, {"probs": ref}), rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.probs[1:3], ref[1:3], rtol=1e-12)
    # and the seen row "after 0" is its 4 counts plus 2 pseudo-counts: (4 + 2·0.2, 2·0.3, 2·0.5)/6
    np.testing.assert_allclose(model.probs[0], [(4 + 0.4) / 6, 0.6 / 6, 1.0 / 6], rtol=1e-12)


def test_a_reference_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="shape"):
        NgramModel(vocab_size=V, doc_length=3).fit(DOCS, prior=Prior(1.0, {"probs": np.full((V, V), 1 / V)}), rng=np.random.default_rng(0))


@pytest.mark.parametrize("a", [0.5, 2.0])
def test_categorical_uniform_prior_of_strength_2a_is_a_beta_a_a_posterior_mean(a):
    x = np.array([[0], [0], [1], [0], [0], [0], [1]])  # k = 5 zeros of n = 7
    model = CategoricalModel(outcomes=2).fit(x, prior=Prior(2 * a), rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.probs, [(5 + a) / (7 + 2 * a), (2 + a) / (7 + 2 * a)], rtol=1e-12)
    ref = {"probs": np.array([0.9, 0.1])}
    toward = CategoricalModel(outcomes=2).fit(x, prior=Prior(2 * a, ref), rng=np.random.default_rng(0))
    np.testing.assert_allclose(toward.probs, [(5 + 2 * a * 0.9) / (7 + 2 * a), (2 + 2 * a * 0.1) / (7 + 2 * a)],
                               rtol=1e-12)
