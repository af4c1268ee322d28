from __future__ import annotations

import math

import numpy as np

from simweb.agents.evaluator import Evaluator
from simweb.language import CategoricalLanguage, GaussianLanguage, MarkovLanguage
from simweb.models import CategoricalModel, GaussianModel, NgramModel
from simweb.scenario.models import Evaluation, MarkovLanguage as MarkovConfig


class _Truth:
    """A 'model' that is the language itself: every quality metric must read as perfect."""

    def __init__(self, lang):
        self.lang = lang

    def sample(self, n, *, rng, **_):
        return self.lang.sample(n, rng=rng)[0]

    def token_log_prob(self, docs):
        # spread the document's exact log-probability evenly over its tokens
        return np.repeat((self.lang.log_prob(docs) / docs.shape[1])[:, None], docs.shape[1], axis=1)


def _lang():
    return MarkovLanguage.from_config(MarkovConfig(vocab_size=64, topics=4, doc_length=16), rng=np.random.default_rng(2))


def test_the_truth_scores_as_perfect():
    lang = _lang()
    ev = Evaluator(Evaluation(human_docs=2000, sample_docs=4000, tail_mass=0.1), lang, seed=0)
    row = ev.evaluate(_Truth(lang), lab="t", generation=0)
    assert abs(row["excess_nll"]) < 1e-12
    # sample_true_nll of the truth's own samples estimates the entropy rate: compare with the exact value
    h, se = lang.entropy(rng=np.random.default_rng(1), n=4000)
    per_doc_sd = np.std(lang.log_prob(lang.sample(4000, rng=np.random.default_rng(3))[0]))
    assert abs(row["sample_true_nll"] - h / 16) < 5 * (per_doc_sd / math.sqrt(4000) / 16 + se / 16)
    # tail share of sampled tokens vs its true mass: a binomial-ish ratio around 1
    tail_se = math.sqrt(ev.tail_share * (1 - ev.tail_share) / (4000 * 16)) / ev.tail_share
    assert abs(row["tail_mass_ratio"] - 1.0) < 8 * tail_se  # tokens in a document are correlated: wider band
    assert row["topic_coverage"] == 1.0


def test_a_model_that_lost_its_tail_scores_zero_tail_mass_and_pays_the_floor():
    lang = _lang()
    ev = Evaluator(Evaluation(human_docs=500, sample_docs=500, prob_floor=1e-6), lang, seed=0)
    model = NgramModel(vocab_size=64, doc_length=16, order=1, alpha=0.0)
    probs = np.full((65, 64), 0.0)
    head = ~ev.tail
    probs[:, head] = 1.0 / head.sum()
    model.load_state_dict({"probs": probs})
    row = ev.evaluate(model, lab="m", generation=0)
    assert row["tail_mass_ratio"] == 0.0
    tail_tokens = ev.tail[ev.human.astype(int)].mean()
    expected_nll = tail_tokens * -math.log(1e-6) + (1 - tail_tokens) * math.log(head.sum())
    assert math.isclose(row["human_nll"], expected_nll, rel_tol=1e-9)


def test_distinct_2_and_unigram_entropy_of_a_constant_model():
    lang = _lang()
    ev = Evaluator(Evaluation(human_docs=100, sample_docs=100), lang, seed=0)
    model = NgramModel(vocab_size=64, doc_length=16, order=1, alpha=0.0)
    probs = np.zeros((65, 64))
    probs[:, 3] = 1.0
    model.load_state_dict({"probs": probs})
    row = ev.evaluate(model, lab="m", generation=0)
    assert row["unigram_entropy"] == 0.0
    assert math.isclose(row["distinct_2"], 1 / (100 * 15))


def test_gaussian_metrics_are_the_closed_forms():
    lang = GaussianLanguage(dim=2, mean=1.0, std=2.0)
    ev = Evaluator(Evaluation(human_docs=50_000, sample_docs=10), lang, seed=0)
    model = GaussianModel(dim=2).load_state_dict({"mean": np.array([1.5, 1.0]), "var": np.array([1.0, 4.0])})
    row = ev.evaluate(model, lab="g", generation=0)
    assert math.isclose(row["mean_sq_error"], 0.25)
    assert math.isclose(row["var_ratio"], (0.25 + 1.0) / 2)
    assert math.isclose(row["w2"], math.sqrt(0.25 + (1.0 - 2.0) ** 2))
    # KL(truth‖model) per sample, closed form, vs excess_nll estimated on 50 000 samples
    kl = 0.5 * (4.0 / 1.0 + 0.25 / 1.0 - 1 + math.log(1.0 / 4.0))
    assert abs(row["excess_nll"] - kl) < 0.03


def test_categorical_metrics():
    lang = CategoricalLanguage(np.array([0.5, 0.3, 0.2]))
    ev = Evaluator(Evaluation(human_docs=100, sample_docs=10, prob_floor=1e-6), lang, seed=0)
    model = CategoricalModel(outcomes=3).load_state_dict({"probs": np.array([0.7, 0.3, 0.0])})
    row = ev.evaluate(model, lab="c", generation=0)
    assert math.isclose(row["tv"], 0.2) and row["support"] == 2
    assert np.isfinite(row["human_nll"])  # the lost outcome costs -ln(floor), not infinity
