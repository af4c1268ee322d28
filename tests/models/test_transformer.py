"""The torch transformer family: exact log-probabilities, learning a known language, determinism, state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simweb.language import MarkovLanguage
from simweb.models import NgramModel, Prior, build_model
from simweb.scenario.models import MarkovLanguage as MarkovConfig
from simweb.plugins import config_model

TransformerConfig = config_model("model", "transformer")

V, L = 16, 12


def _cfg(**kw):
    return TransformerConfig(**{"family": "transformer", "layers": 1, "width": 32, "heads": 2, "epochs": 2,
                                "batch_size": 64, **kw})


def _lang():
    return MarkovLanguage.from_config(MarkovConfig(vocab_size=V, topics=2, doc_length=L, classes=4),
                                      rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def trained():
    lang = _lang()
    docs, _ = lang.sample(4000, rng=np.random.default_rng(1))
    return lang, build_model(_cfg(epochs=4), lang).fit(docs, rng=np.random.default_rng(2))


def test_log_prob_is_the_models_own_cross_entropy(trained):
    lang, model = trained
    docs, _ = lang.sample(200, rng=np.random.default_rng(3))
    batch = torch.as_tensor(docs.astype(np.int64))
    with torch.no_grad():
        logits = model.net(model._inputs(batch)).double()
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), batch.reshape(-1), reduction="sum").item()
    assert math.isclose(-model.log_prob(docs).sum(), ce, rel_tol=1e-9)


def test_training_on_a_known_ngram_language_approaches_its_entropy():
    # the truth is a first-order chain the transformer can represent exactly
    truth = NgramModel(vocab_size=V, doc_length=L, order=1)
    truth.load_state_dict({"probs": np.random.default_rng(4).dirichlet(np.full(V, 0.5), size=V + 1)})
    train = truth.sample(6000, rng=np.random.default_rng(5))
    test = truth.sample(1000, rng=np.random.default_rng(6))
    entropy = -truth.token_log_prob(test).mean()
    model = build_model(_cfg(epochs=6), _lang()).fit(train, rng=np.random.default_rng(7))
    excess = -model.token_log_prob(test).mean() - entropy
    unigram = np.bincount(train.ravel(), minlength=V) / train.size
    unigram_excess = -np.log(unigram[test]).mean() - entropy
    assert 0 <= excess + 0.01 and excess < 0.1 * unigram_excess and excess < 0.05, (excess, unigram_excess)


def test_same_seed_same_weights_on_cpu_and_another_seed_differs():
    lang = _lang()
    docs, _ = lang.sample(300, rng=np.random.default_rng(1))
    a = build_model(_cfg(), lang).fit(docs, rng=np.random.default_rng(9)).state_dict()
    b = build_model(_cfg(), lang).fit(docs, rng=np.random.default_rng(9)).state_dict()
    c = build_model(_cfg(), lang).fit(docs, rng=np.random.default_rng(10)).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_save_and_restore_give_identical_outputs(trained):
    lang, model = trained
    copy = build_model(_cfg(), lang).load_state_dict(model.state_dict())
    docs, _ = lang.sample(50, rng=np.random.default_rng(11))
    assert np.array_equal(model.token_log_prob(docs), copy.token_log_prob(docs))
    noise = model.noise(50, rng=np.random.default_rng(12))
    assert np.array_equal(model.draw(noise), copy.draw(noise))


def test_first_token_frequencies_match_the_models_probabilities(trained):
    lang, model = trained
    n = 4000
    samples = model.sample(n, rng=np.random.default_rng(13))
    with torch.no_grad():
        p = torch.softmax(model.net(torch.full((1, 1), V, dtype=torch.long))[0, -1].double(), -1).numpy()
    freq = np.bincount(samples[:, 0], minlength=V) / n
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-9)


def test_a_prior_pulls_the_weights_toward_the_reference(trained):
    lang, model = trained
    docs, _ = lang.sample(300, rng=np.random.default_rng(14))
    ref = model.state_dict()

    def distance(strength):
        m = build_model(_cfg(), lang).load_state_dict(ref)
        m.fit(docs, rng=np.random.default_rng(15), prior=Prior(strength, ref))
        new = m.state_dict()
        return sum(float(((new[k] - ref[k]) ** 2).sum()) for k in ref)

    assert distance(1e5) < 0.5 * distance(0.0)
