"""The Markov topic mixture against brute force over every document of a tiny language."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simweb.language import MarkovLanguage
from simweb.scenario.models import MarkovLanguage as MarkovConfig

Z = 5.0  # standard errors allowed per cell

TINY = [  # (vocab_size, doc_length, topics, classes)
    (3, 3, 2, 2),
    (4, 2, 3, 3),
    (2, 5, 2, 1),
    (3, 4, 1, 2),
]


def tiny(vocab_size=3, doc_length=3, topics=2, classes=2, seed=0) -> MarkovLanguage:
    cfg = MarkovConfig(vocab_size=vocab_size, doc_length=doc_length, topics=topics, classes=classes)
    return MarkovLanguage.from_config(cfg, rng=np.random.default_rng(seed))


def with_zeros() -> MarkovLanguage:
    """A hand-built language where some starts and transitions are impossible."""
    return MarkovLanguage(
        vocab_size=3, doc_length=3, topic_probs=np.array([0.7, 0.3]),
        start=np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]),
        transition=np.array([
            [[0.0, 0.2, 0.8], [1.0, 0.0, 0.0]],
            [[0.3, 0.3, 0.4], [0.0, 0.5, 0.5]],
        ]),
        token_class=np.array([0, 1, 0]),
    )


def all_docs(lang: MarkovLanguage) -> np.ndarray:
    return np.array(list(itertools.product(range(lang.vocab_size), repeat=lang.doc_length)), dtype=np.int64)


def p_given_topic(lang: MarkovLanguage, doc, k: int) -> float:
    p = lang.start[k, doc[0]]
    for t in range(1, len(doc)):
        p *= lang.transition[k, lang.token_class[doc[t - 1]], doc[t]]
    return float(p)


def p_doc(lang: MarkovLanguage, doc) -> float:
    return sum(lang.topic_probs[k] * p_given_topic(lang, doc, k) for k in range(lang.topics))


def plogp(p: float) -> float:
    return p * math.log(p) if p > 0 else 0.0


def langs():
    return [tiny(*shape, seed=seed) for shape in TINY for seed in (0, 1)] + [with_zeros()]


LANGS = langs()
IDS = [f"V{l.vocab_size}L{l.doc_length}K{l.topics}C{l.classes}-seed{i % 2}" for i, l in enumerate(LANGS[:-1])]
IDS.append("with-zeros")


# ---------------------------------------------------------------- exact probabilities
def test_config_builds_valid_laws():
    lang = tiny(vocab_size=6, doc_length=4, topics=3, classes=2, seed=5)
    assert lang.start.shape == (3, 6) and lang.transition.shape == (3, 2, 6) and lang.token_class.shape == (6,)
    np.testing.assert_allclose(lang.start.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(lang.transition.sum(axis=2), 1.0, rtol=1e-12)
    np.testing.assert_allclose(lang.topic_probs, [1, 1 / 2, 1 / 3] / np.sum([1, 1 / 2, 1 / 3]), rtol=1e-12)
    assert lang.token_class.min() >= 0 and lang.token_class.max() < 2


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_probabilities_of_all_documents_sum_to_one(lang):
    assert np.exp(lang.log_prob(all_docs(lang))).sum() == pytest.approx(1.0, abs=1e-12)


def fancy_index_log_likelihood(lang: MarkovLanguage, docs: np.ndarray) -> np.ndarray:
    """log P(doc | topic) as it was first written: a fancy index into the (K, C, V) logs, summed over the tokens."""
    log_start, log_transition = lang._logs()
    ll = log_start[:, docs[:, 0]] + log_transition[:, lang.token_class[docs[:, :-1]], docs[:, 1:]].sum(axis=2)
    return ll.T


@pytest.mark.parametrize("topics", [1, 2, 9])
@pytest.mark.parametrize("contiguous", [False, True])
def test_topic_log_likelihood_is_the_fancy_index_sum_bit_for_bit(topics, contiguous):
    """Every true NLL in a run's outputs goes through this sum: a faster gather must add in the same order."""
    cfg = MarkovConfig(vocab_size=64, doc_length=24, topics=topics, classes=5)
    lang = MarkovLanguage.from_config(cfg, rng=np.random.default_rng(topics))
    if contiguous:  # from_config's tables are class-minor in memory; a hand-built language's are C-ordered
        lang = MarkovLanguage(vocab_size=64, doc_length=24, topic_probs=lang.topic_probs, start=lang.start,
                              transition=np.ascontiguousarray(lang.transition), token_class=lang.token_class)
    for n in (1, 2, 300):
        docs = lang.sample(n, rng=np.random.default_rng(n))[0].astype(np.int64)
        assert lang.topic_log_likelihood(docs).tobytes() == fancy_index_log_likelihood(lang, docs).tobytes()
        assert lang.topic_log_likelihood(docs, chunk=7).tobytes() == fancy_index_log_likelihood(lang, docs).tobytes()


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_log_prob_equals_a_loop_over_topics_and_tokens(lang):
    docs = all_docs(lang)
    want = np.array([p_doc(lang, d) for d in docs])
    got = lang.log_prob(docs)
    possible = want > 0
    np.testing.assert_allclose(got[possible], np.log(want[possible]), rtol=1e-12)
    assert np.all(got[~possible] == -np.inf)
    per_topic = lang.topic_log_likelihood(docs)
    with np.errstate(divide="ignore"):
        want_k = np.log([[p_given_topic(lang, d, k) for k in range(lang.topics)] for d in docs])
    np.testing.assert_allclose(per_topic, want_k, rtol=1e-12)


def test_a_document_impossible_under_every_topic_has_log_prob_minus_inf():
    lang = with_zeros()
    doc = np.array([[0, 0, 0]])  # topic 0: 0 -> 0 has probability 0; topic 1 never starts with 0
    assert p_doc(lang, doc[0]) == 0.0
    assert lang.log_prob(doc)[0] == -np.inf


def test_log_prob_is_the_same_in_chunks():
    lang = tiny(seed=3)
    docs = all_docs(lang)
    np.testing.assert_array_equal(lang.topic_log_likelihood(docs, chunk=5), lang.topic_log_likelihood(docs))


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_topic_posterior_equals_brute_force(lang):
    docs = all_docs(lang)
    docs = docs[np.array([p_doc(lang, d) for d in docs]) > 0]
    joint = np.array([[lang.topic_probs[k] * p_given_topic(lang, d, k) for k in range(lang.topics)] for d in docs])
    np.testing.assert_allclose(lang.topic_posterior(docs), joint / joint.sum(axis=1, keepdims=True),
                               rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_conditional_entropy_equals_brute_force(lang):
    want = -sum(lang.topic_probs[k] * plogp(p_given_topic(lang, d, k))
                for d in all_docs(lang) for k in range(lang.topics))
    assert lang.conditional_entropy() == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_entropy_agrees_with_brute_force_within_its_standard_error(lang):
    want = -sum(plogp(p_doc(lang, d)) for d in all_docs(lang))
    value, se = lang.entropy(rng=np.random.default_rng(123), n=20_000)
    assert se >= 0.0
    # with one topic, or topics that never share a document, the posterior is certain and the value exact
    assert abs(value - want) <= Z * se + 1e-9, f"H = {value} ± {se}, brute force {want}"


def test_entropy_standard_error_is_the_spread_of_the_posterior_entropy():
    """se · sqrt(n) estimates the standard deviation σ of H(topic | doc) over documents, known here by enumeration;
    a sample standard deviation has standard error sqrt((μ4 − σ⁴) / (4 σ² n)) (delta method)."""
    lang = tiny(seed=0)
    docs = all_docs(lang)
    p = np.array([p_doc(lang, d) for d in docs])
    h = np.array([-sum(plogp(lang.topic_probs[k] * p_given_topic(lang, d, k) / p_doc(lang, d))
                       for k in range(lang.topics)) for d in docs])
    mu = p @ h
    var = p @ (h - mu) ** 2
    mu4 = p @ (h - mu) ** 4
    n = 20_000
    _, se = lang.entropy(rng=np.random.default_rng(7), n=n)
    sigma_se = math.sqrt((mu4 - var**2) / (4 * var * n))
    assert abs(se * math.sqrt(n) - math.sqrt(var)) <= Z * sigma_se, (se * math.sqrt(n), math.sqrt(var))


@pytest.mark.parametrize("lang", LANGS, ids=IDS)
def test_unigram_and_marginals_equal_brute_force(lang):
    V, L = lang.vocab_size, lang.doc_length
    want = np.zeros(V)
    want_marg = np.zeros((lang.topics, L, V))
    for d in all_docs(lang):
        want += p_doc(lang, d) * np.bincount(d, minlength=V) / L
        for k in range(lang.topics):
            want_marg[k, np.arange(L), d] += p_given_topic(lang, d, k)
    np.testing.assert_allclose(lang.unigram(), want, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(lang.token_marginals(), want_marg, rtol=1e-10, atol=1e-15)
    assert lang.unigram().sum() == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- the tail
def brute_tail(u: np.ndarray, mass: float) -> set[int]:
    tail, total = set(), 0.0
    for j in sorted(range(len(u)), key=lambda j: u[j]):
        if total + u[j] > mass:
            break
        tail.add(j)
        total += u[j]
    return tail


@pytest.mark.parametrize("mass", [0.0, 1e-4, 0.01, 0.05, 0.2, 0.5, 0.9])
def test_tail_tokens_are_the_rarest_within_the_mass(mass):
    lang = tiny(vocab_size=40, doc_length=4, topics=3, classes=4, seed=2)
    u = lang.unigram()
    tail = lang.tail_tokens(mass)
    assert tail.dtype == bool and tail.shape == (40,)
    assert set(np.flatnonzero(tail)) == brute_tail(u, mass)
    assert u[tail].sum() <= mass
    if tail.any() and not tail.all():
        assert u[tail].max() <= u[~tail].min()  # rarest first
    if not tail.all():
        assert u[tail].sum() + u[~tail].min() > mass  # the next rarest token would not fit


def test_whole_vocabulary_is_the_tail_of_mass_above_one():
    lang = tiny(vocab_size=10, seed=0)
    assert lang.tail_tokens(1.5).all()
    assert not lang.tail_tokens(0.0).any()


# ---------------------------------------------------------------- sampling
def test_samples_have_the_documented_shape_and_are_deterministic():
    lang = tiny(vocab_size=7, doc_length=5, topics=3, classes=2, seed=1)
    docs, topics = lang.sample(100, rng=np.random.default_rng(9))
    again, topics2 = lang.sample(100, rng=np.random.default_rng(9))
    assert docs.shape == (100, 5) and docs.dtype == np.uint16 and topics.dtype == np.int64
    assert docs.max() < 7 and topics.max() < 3
    assert np.array_equal(docs, again) and np.array_equal(topics, topics2)
    _, t = lang.sample(50, rng=np.random.default_rng(9), topics=np.full(50, 2))
    assert np.array_equal(t, np.full(50, 2))


def test_sampled_topics_follow_the_topic_law():
    lang = tiny(vocab_size=5, doc_length=2, topics=4, classes=2, seed=0)
    n = 40_000
    _, topics = lang.sample(n, rng=np.random.default_rng(5))
    freq = np.bincount(topics, minlength=4) / n
    se = np.sqrt(lang.topic_probs * (1 - lang.topic_probs) / n)
    assert np.all(np.abs(freq - lang.topic_probs) <= Z * se), (freq, lang.topic_probs)


@pytest.mark.parametrize("k", [0, 1])
def test_first_token_and_transition_frequencies_for_a_fixed_topic(k):
    lang = tiny(vocab_size=8, doc_length=5, topics=2, classes=3, seed=4)
    n = 30_000
    docs, _ = lang.sample(n, rng=np.random.default_rng(10 + k), topics=np.full(n, k))
    docs = docs.astype(np.int64)
    V = lang.vocab_size

    first = np.bincount(docs[:, 0], minlength=V) / n
    p = lang.start[k]
    assert np.all(np.abs(first - p) <= Z * np.sqrt(p * (1 - p) / n)), (first, p)

    prev_class = lang.token_class[docs[:, :-1]].ravel()
    nxt = docs[:, 1:].ravel()
    for c in range(lang.classes):
        here = nxt[prev_class == c]
        if len(here) == 0:
            continue
        freq = np.bincount(here, minlength=V) / len(here)
        p = lang.transition[k, c]
        bound = Z * np.sqrt(p * (1 - p) / len(here))
        assert np.all(np.abs(freq - p) <= bound), f"class {c}: {freq} vs {p}"


def test_impossible_documents_are_never_sampled():
    lang = with_zeros()
    docs, _ = lang.sample(20_000, rng=np.random.default_rng(0))
    assert np.all(np.isfinite(lang.log_prob(docs)))
    # the empirical law of whole documents matches the exact one
    docs = docs.astype(np.int64)
    ids = (docs * 3 ** np.arange(2, -1, -1)).sum(axis=1)
    freq = np.bincount(ids, minlength=27) / len(docs)
    p = np.array([p_doc(lang, d) for d in all_docs(lang)])
    assert np.all(freq[p == 0] == 0.0)
    assert np.all(np.abs(freq - p) <= Z * np.sqrt(p * (1 - p) / len(docs)))


def test_draw_uses_one_row_of_noise_per_document():
    lang = tiny(vocab_size=6, doc_length=4, seed=0)
    noise = lang.noise(10, rng=np.random.default_rng(1))
    topics = np.arange(10) % 2
    whole = lang.draw(noise, topics=topics)
    parts = np.concatenate([lang.draw(noise[i:i + 1], topics=topics[i:i + 1]) for i in range(10)])
    assert np.array_equal(whole, parts)
