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


def test_js_by_hand_along_the_last_axis():
    from simweb.agents.evaluator import js

    # p = (1, 0), q = (½, ½): m = (¾, ¼); KL(p‖m) = ln(4/3), KL(q‖m) = ½ ln(2/3) + ½ ln 2
    want = 0.5 * math.log(4 / 3) + 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    p, q = np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(js(p, q), [want, want], rtol=1e-12)  # symmetric, one value per row


class _FixedLaw:
    """A token model whose next-token law is ``p`` in every context."""

    def __init__(self, p):
        self.p = np.asarray(p, dtype=np.float64)

    def next_token_probs(self, docs):
        return np.broadcast_to(self.p, (*docs.shape, len(self.p)))


def test_divergence_averages_the_exact_js_over_every_true_context_in_any_chunking():
    from simweb.agents.evaluator import js

    lang = _lang()
    ev = Evaluator(Evaluation(human_docs=150, sample_docs=10), lang, seed=0)
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(64)), rng.dirichlet(np.ones(64))
    want = float(js(p, q))
    for chunk in (7, 64, 1000):  # 150 documents: chunks that do not divide them, and one that holds them all
        assert math.isclose(ev.divergence(_FixedLaw(p), _FixedLaw(q), chunk=chunk), want, rel_tol=1e-12)

    # a law that differs in some contexts only: the average over the contexts of the human documents
    class _Switch(_FixedLaw):
        def next_token_probs(self, docs):
            out = np.broadcast_to(self.p, (*docs.shape, len(self.p))).copy()
            out[docs < 32] = q
            return out

    share = float((ev.human < 32).mean())
    assert math.isclose(ev.divergence(_Switch(p), _FixedLaw(p), chunk=64), share * want, rel_tol=1e-9)


def test_divergence_of_categorical_models_is_js_of_their_laws_and_none_for_a_gaussian():
    from simweb.agents.evaluator import js

    ev = Evaluator(Evaluation(human_docs=10, sample_docs=10), CategoricalLanguage(np.array([0.5, 0.3, 0.2])), seed=0)
    a = CategoricalModel(outcomes=3).load_state_dict({"probs": np.array([0.7, 0.3, 0.0])})
    b = CategoricalModel(outcomes=3).load_state_dict({"probs": np.array([0.2, 0.2, 0.6])})
    assert math.isclose(ev.divergence(a, b), float(js(a.probs, b.probs)), rel_tol=1e-12)
    g = Evaluator(Evaluation(human_docs=10, sample_docs=10), GaussianLanguage(dim=1, mean=0.0, std=1.0), seed=0)
    m = GaussianModel(dim=1).load_state_dict({"mean": np.zeros(1), "var": np.ones(1)})
    assert g.divergence(m, m) is None


def _drifting():
    from simweb.language import build_language

    cfg = MarkovConfig(vocab_size=40, topics=3, doc_length=12, classes=4, drift={"topic_sigma": 0.8, "boost_sigma": 0.8})
    return build_language(cfg, 9)


def test_each_ticks_truth_scores_as_perfect_against_its_own_present():
    """At a drifted tick the metrics are against that tick's truth, on its own fresh human documents: the truth
    of tick 5 has excess NLL 0 there (and not at tick 0), and ``true_entropy`` is its NLL per token."""
    lang = _drifting()
    ev = Evaluator(Evaluation(human_docs=300, sample_docs=2000, tail_mass=0.1), lang, seed=0)
    t5 = lang.at(5)
    row = ev.evaluate(_Truth(t5), lab="t", generation=0, tick=5)
    assert abs(row["excess_nll"]) < 1e-12
    # its own samples hold the tail of the present's unigram law at that law's mass (as the first test, at tick 0)
    share = float(t5.unigram()[t5.tail_tokens(0.1)].sum())
    tail_se = math.sqrt(share * (1 - share) / (2000 * 12)) / share
    assert abs(row["tail_mass_ratio"] - 1.0) < 8 * tail_se, row["tail_mass_ratio"]
    _, human5, _ = ev.present(5)
    assert math.isclose(row["true_entropy"], -t5.log_prob(human5).mean() / 12, rel_tol=1e-12)
    assert ev.evaluate(_Truth(t5), lab="t", generation=0)["excess_nll"] > 0  # tick 0 (the default) is another truth
    assert ev.evaluate(_Truth(t5), lab="t", generation=0) == ev.evaluate(_Truth(t5), lab="t", generation=0, tick=0)


def test_excess_nll_end_and_staleness_are_against_the_truth_at_the_end_of_service():
    lang = _drifting()
    ev = Evaluator(Evaluation(human_docs=300, sample_docs=50), lang, seed=0)
    model = _Truth(lang.at(2))
    row = ev.evaluate(model, lab="t", generation=0, tick=2, end_tick=6)
    end = ev.evaluate(model, lab="t", generation=0, tick=6)
    assert math.isclose(row["excess_nll_end"], end["excess_nll"], rel_tol=1e-12)
    assert math.isclose(row["staleness"], row["excess_nll_end"] - row["excess_nll"], rel_tol=1e-12)
    assert row["staleness"] > 0  # the truth moved away from the model while it was in use
    same = ev.evaluate(model, lab="t", generation=0, tick=2)  # end_tick defaults to the release tick
    assert same["excess_nll_end"] == same["excess_nll"] and same["staleness"] == 0.0
    # a stationary truth: nothing ages
    still = Evaluator(Evaluation(human_docs=100, sample_docs=50), _lang(), seed=0)
    row = still.evaluate(_Truth(still.language), lab="t", generation=0, tick=1, end_tick=4)
    assert row["staleness"] == 0.0 and row["excess_nll_end"] == row["excess_nll"]


def test_the_present_keeps_a_few_ticks_only():
    ev = Evaluator(Evaluation(human_docs=20, sample_docs=10), _drifting(), seed=0)
    for tick in range(1, 13):
        ev.present(tick)
    assert len(ev._present) == 8 and min(ev._present) == 5  # the oldest went first


def test_observed_nll_is_the_models_nll_on_the_benchmark_it_is_given():
    lang = _lang()
    ev = Evaluator(Evaluation(human_docs=100, sample_docs=20), lang, seed=0)
    model = _Truth(lang)
    bench, _ = lang.sample(30, rng=np.random.default_rng(5))
    row = ev.evaluate(model, lab="m", generation=0, benchmark=bench)
    assert row["benchmark_docs"] == 30
    assert math.isclose(row["observed_nll"], -lang.log_prob(bench).mean() / 16, rel_tol=1e-12)
    none = ev.evaluate(model, lab="m", generation=0)
    assert none["observed_nll"] is None and none["benchmark_docs"] == 0
    empty = ev.evaluate(model, lab="m", generation=0, benchmark=bench[:0])
    assert empty["observed_nll"] is None and empty["benchmark_docs"] == 0
    assert math.isnan(ev.nll(model, bench[:0]))
    assert not math.isnan(ev.nll(model, bench[:1]))


def test_sample_metrics_come_from_the_labs_own_stream_for_that_generation():
    """Samples are drawn from the stream (seed, "evaluation", "samples", lab, generation): the same for the same
    lab and generation (runs are reproducible), independent across labs and generations."""
    from simweb import rng as rngs

    lang = _lang()
    ev = Evaluator(Evaluation(human_docs=100, sample_docs=200), lang, seed=3)
    model = _Truth(lang)
    row = ev.evaluate(model, lab="a", generation=2)
    samples = model.sample(200, rng=rngs.stream(3, "evaluation", "samples", "a", 2))
    assert row["sample_true_nll"] == float(-lang.log_prob(samples).mean() / 16)
    others = [ev.evaluate(model, lab=lab, generation=g)["sample_true_nll"] for lab, g in [("b", 2), ("a", 1)]]
    assert len({row["sample_true_nll"], *others}) == 3


def test_categorical_nll_is_the_mean_negative_log_probability_with_the_floor():
    lang = CategoricalLanguage(np.array([0.5, 0.3, 0.2]))
    ev = Evaluator(Evaluation(human_docs=400, sample_docs=10, prob_floor=1e-6), lang, seed=0)
    p = np.array([0.7, 0.3, 0.0])
    row = ev.evaluate(CategoricalModel(outcomes=3).load_state_dict({"probs": p}), lab="c", generation=0)
    x = ev.human.astype(int)
    assert math.isclose(row["human_nll"], float(-np.log(np.maximum(p[x], 1e-6)).mean()), rel_tol=1e-12)


def test_divergence_needs_a_next_token_law_on_both_sides():
    ev = Evaluator(Evaluation(human_docs=10, sample_docs=10), _lang(), seed=0)
    assert ev.divergence(object(), _FixedLaw(np.full(64, 1 / 64))) is None
    assert ev.divergence(_FixedLaw(np.full(64, 1 / 64)), object()) is None


def _cycle_model(V: int = 4, L: int = 16):
    """Uniform first token, then each token followed by the next one mod V: V distinct bigrams, uniform unigrams."""
    probs = np.zeros((V + 1, V))
    probs[np.arange(V), (np.arange(V) + 1) % V] = 1.0
    probs[V] = 1.0 / V
    return NgramModel(vocab_size=V, doc_length=L, order=1, alpha=0.0).load_state_dict({"probs": probs})


def test_unigram_entropy_and_distinct_2_of_a_cycling_model():
    lang = MarkovLanguage.from_config(MarkovConfig(vocab_size=4, topics=2, doc_length=16), rng=np.random.default_rng(2))
    n = 2000
    ev = Evaluator(Evaluation(human_docs=20, sample_docs=n), lang, seed=0)
    row = ev.evaluate(_cycle_model(), lab="m", generation=0)
    # each document visits the 4 tokens in turn from a uniform start: unigram shares 1/4 ± O(1/√(n)) / 4
    assert abs(row["unigram_entropy"] - math.log(4)) < 1e-3
    assert math.isclose(row["distinct_2"], 4 / (n * 15))  # the pairs (x_t, x_t+1) are the 4 steps of the cycle


def test_categorical_gini_simpson_and_listed_probabilities():
    lang = CategoricalLanguage(np.array([0.5, 0.3, 0.2]))
    ev = Evaluator(Evaluation(human_docs=10, sample_docs=10), lang, seed=0)
    row = ev.evaluate(CategoricalModel(outcomes=3).load_state_dict({"probs": np.array([0.7, 0.3, 0.0])}),
                      lab="c", generation=0)
    assert math.isclose(row["gini_simpson"], 1 - 0.49 - 0.09) and row["probs"] == [0.7, 0.3, 0.0]
    for k, listed in ((64, True), (65, False)):  # listed up to MAX_LISTED_OUTCOMES outcomes
        big = CategoricalLanguage(np.full(k, 1 / k))
        ev = Evaluator(Evaluation(human_docs=10, sample_docs=10), big, seed=0)
        row = ev.evaluate(CategoricalModel(outcomes=k).load_state_dict({"probs": np.full(k, 1 / k)}), lab="c",
                          generation=0)
        assert (row["probs"] is not None) == listed and math.isclose(row["gini_simpson"], 1 - 1 / k)


def test_a_model_without_the_present_tails_tokens_scores_zero_tail_mass_at_a_drifted_tick():
    lang = _drifting()
    ev = Evaluator(Evaluation(human_docs=50, sample_docs=200, tail_mass=0.1), lang, seed=0)
    t5 = lang.at(5)
    head = ~t5.tail_tokens(0.1)
    probs = np.zeros((41, 40))
    probs[:, head] = 1.0 / head.sum()
    model = NgramModel(vocab_size=40, doc_length=12, order=1, alpha=0.0).load_state_dict({"probs": probs})
    assert ev.evaluate(model, lab="m", generation=0, tick=5)["tail_mass_ratio"] == 0.0
