"""The ngram model against counting by hand, and its samples against its own laws.

Contexts are written here as tuples of previous tokens, newest first, padded
with the begin-of-document symbol V; :func:`ctx_id` maps them to the row
layout ngram.py documents: Σ_i x_{t-i} (V+1)^(i-1).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from simweb.models import NgramModel
from simweb.scenario.models import MarkovLanguage as MarkovConfig
from simweb.plugins import config_model

NgramConfig = config_model("model", "ngram")
from tests.helpers import brute_shape

Z = 5.0  # standard errors allowed per cell


# ---------------------------------------------------------------- helpers
def contexts_of(doc, order: int, V: int) -> list[tuple[int, ...]]:
    """The context of every position: the ``order`` previous tokens, newest first, BOS-padded."""
    doc = [int(x) for x in doc]
    return [tuple(doc[t - i] if t - i >= 0 else V for i in range(1, order + 1)) for t in range(len(doc))]


def ctx_id(ctx: tuple[int, ...], V: int) -> int:
    return sum(x * (V + 1) ** i for i, x in enumerate(ctx))


def hand_counts(docs, order: int, V: int) -> dict[tuple[int, ...], Counter]:
    counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
    for doc in docs:
        for ctx, x in zip(contexts_of(doc, order, V), doc):
            counts[ctx][int(x)] += 1
    return counts




def random_law(rng, order: int, V: int, zero_share: float = 0.25) -> np.ndarray:
    """A random (contexts, V) table of rows that sum to one, with some zeros."""
    p = rng.random(((V + 1) ** order, V)) ** 2
    p[rng.random(p.shape) < zero_share] = 0.0
    p[np.arange(len(p)), rng.integers(0, V, len(p))] += 0.1
    return p / p.sum(axis=1, keepdims=True)


def with_law(probs: np.ndarray, order: int, V: int, L: int) -> NgramModel:
    return NgramModel(vocab_size=V, doc_length=L, order=order).load_state_dict({"probs": probs})


def check_transition_frequencies(docs, law, order: int, V: int, what: str) -> int:
    """Per-context z bounds on the sampled next-token frequencies; returns the number of contexts checked."""
    counts = hand_counts(docs, order, V)
    for ctx, c in counts.items():
        n = sum(c.values())
        freq = np.array([c[j] for j in range(V)]) / n
        p = law[ctx_id(ctx, V)]
        assert np.all(freq[p == 0] == 0.0), f"{what}: context {ctx} drew a zero-probability token"
        bad = np.abs(freq - p) > Z * np.sqrt(p * (1 - p) / n)
        assert not bad.any(), f"{what}: context {ctx} freq {freq} vs {p} (n={n})"
    return len(counts)


CORPUS = np.array([
    [0, 1, 1, 2],
    [0, 0, 1, 2],
    [1, 2, 2, 0],
    [2, 1, 0, 1],
])


# ---------------------------------------------------------------- scoring and fitting
@pytest.mark.parametrize("order", [1, 2])
def test_context_ids_follow_the_documented_layout(order):
    V = 3
    model = NgramModel(vocab_size=V, doc_length=4, order=order)
    want = [[ctx_id(c, V) for c in contexts_of(d, order, V)] for d in CORPUS]
    np.testing.assert_array_equal(model.context_ids(CORPUS), want)
    assert model.contexts == (V + 1) ** order


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_token_log_prob_equals_a_loop_over_contexts(order, alpha):
    V = 3
    model = NgramModel(vocab_size=V, doc_length=4, order=order, alpha=alpha).fit(CORPUS, rng=np.random.default_rng(0))
    test_docs = np.array(list(itertools.product(range(V), repeat=4)))
    got = model.token_log_prob(test_docs)
    assert got.shape == (len(test_docs), 4)
    for doc, row in zip(test_docs, got):
        for t, ctx in enumerate(contexts_of(doc, order, V)):
            p = model.probs[ctx_id(ctx, V), doc[t]]
            assert row[t] == (math.log(p) if p > 0 else -math.inf), (doc, t, ctx)
    np.testing.assert_array_equal(model.log_prob(test_docs), got.sum(axis=1))


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0])
def test_fit_is_add_alpha_over_hand_counts(order, alpha):
    V = 3
    model = NgramModel(vocab_size=V, doc_length=4, order=order, alpha=alpha).fit(CORPUS, rng=np.random.default_rng(0))
    counts = hand_counts(CORPUS, order, V)
    unigram = np.bincount(CORPUS.ravel(), minlength=V) / CORPUS.size
    for ctx in itertools.product(range(V + 1), repeat=order):
        row = model.probs[ctx_id(ctx, V)]
        c = counts.get(ctx, Counter())
        N = sum(c.values())
        if N == 0 and alpha == 0.0:
            want = unigram  # a context never seen falls back to the corpus unigram law
        else:
            want = np.array([(c[j] + alpha) / (N + alpha * V) for j in range(V)])
        np.testing.assert_allclose(row, want, rtol=1e-12, err_msg=f"context {ctx}")


def test_fit_by_hand_order_one():
    """After token 0 the corpus has 0 -> 1 (twice), 0 -> 0 and 0 -> 1 again: {0: 1, 1: 3}, N = 4."""
    model = NgramModel(vocab_size=3, doc_length=4, order=1, alpha=0.5).fit(CORPUS, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.probs[0], [1.5 / 5.5, 3.5 / 5.5, 0.5 / 5.5], rtol=1e-12)
    # the first token: 0, 0, 1, 2 -> {0: 2, 1: 1, 2: 1}
    np.testing.assert_allclose(model.probs[3], [2.5 / 5.5, 1.5 / 5.5, 1.5 / 5.5], rtol=1e-12)


def test_unseen_context_falls_back_to_the_unigram_law():
    # token 2 only ever ends a document, so context (2,) is never seen
    docs = np.array([[0, 1, 2], [1, 0, 2], [0, 0, 2]])
    model = NgramModel(vocab_size=3, doc_length=3, order=1, alpha=0.0).fit(docs, rng=np.random.default_rng(0))
    np.testing.assert_allclose(model.probs[2], [4 / 9, 2 / 9, 3 / 9], rtol=1e-12)
    assert model.token_log_prob(np.array([[2, 2, 0]]))[0, 1] == pytest.approx(math.log(3 / 9), rel=1e-12)
    # with smoothing the unseen row is (0 + α) / (0 + αV): uniform
    smooth = NgramModel(vocab_size=3, doc_length=3, order=1, alpha=0.1).fit(docs, rng=np.random.default_rng(0))
    np.testing.assert_allclose(smooth.probs[2], [1 / 3, 1 / 3, 1 / 3], rtol=1e-12)


def test_unseen_transition_is_gone_for_good_with_alpha_zero():
    V = 4
    rng = np.random.default_rng(0)
    allowed = {0: [1], 1: [0, 1, 2, 3], 2: [0, 1, 2, 3], 3: [0, 1, 3]}  # 0 -> 1 always, 3 -> 2 never
    docs = np.empty((500, 6), dtype=np.int64)
    for d in docs:
        d[0] = rng.integers(0, V)
        for t in range(1, 6):
            d[t] = rng.choice(allowed[int(d[t - 1])])
    assert not np.any((docs[:, :-1] == 3) & (docs[:, 1:] == 2))
    model = NgramModel(vocab_size=V, doc_length=6, order=1, alpha=0.0).fit(docs, rng=np.random.default_rng(0))
    assert model.probs[3, 2] == 0.0
    np.testing.assert_array_equal(model.probs[0], [0.0, 1.0, 0.0, 0.0])
    assert model.log_prob(np.array([[1, 3, 2, 0, 1, 1]]))[0] == -np.inf
    for temperature, top_p in [(1.0, 1.0), (3.0, 1.0), (0.5, 0.9)]:
        out = model.sample(20_000, rng=np.random.default_rng(1), temperature=temperature, top_p=top_p)
        prev, nxt = out[:, :-1], out[:, 1:]
        assert not np.any((prev == 3) & (nxt == 2)), (temperature, top_p)
        assert np.all(nxt[prev == 0] == 1), (temperature, top_p)
    # with smoothing the same transition keeps mass α / (N + αV)
    smooth = NgramModel(vocab_size=V, doc_length=6, order=1, alpha=1.0).fit(docs, rng=np.random.default_rng(0))
    n3 = int(np.sum(docs[:, :-1] == 3))
    assert smooth.probs[3, 2] == pytest.approx(1.0 / (n3 + V), rel=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_fit_recovers_a_known_model(order):
    V, L, n = 5, 16, 6_000
    law = random_law(np.random.default_rng(10 + order), order, V)
    docs = with_law(law, order, V, L).sample(n, rng=np.random.default_rng(20 + order))
    fitted = NgramModel(vocab_size=V, doc_length=L, order=order, alpha=0.0).fit(docs, rng=np.random.default_rng(0))
    counts = hand_counts(docs, order, V)
    assert len(counts) > V  # enough contexts visited to mean something
    for ctx, c in counts.items():
        N = sum(c.values())
        p = law[ctx_id(ctx, V)]
        got = fitted.probs[ctx_id(ctx, V)]
        assert np.all(got[p == 0] == 0.0)
        bound = Z * np.sqrt(p * (1 - p) / N)
        assert np.all(np.abs(got - p) <= bound), f"context {ctx}: {got} vs {p} (n={N})"


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize("order,V", [(1, 6), (2, 4)])
@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.5, 1.0), (2.0, 1.0), (1.0, 0.7), (0.8, 0.9)])
def test_transition_frequencies_match_the_shaped_law(order, V, temperature, top_p):
    L, n = 8, 8_000
    law = random_law(np.random.default_rng(order * 100 + V), order, V)
    model = with_law(law, order, V, L)
    docs = model.sample(n, rng=np.random.default_rng(int(temperature * 10 + top_p * 100)),
                        temperature=temperature, top_p=top_p)
    assert docs.shape == (n, L) and docs.dtype == np.uint16 and docs.max() < V
    shaped = np.stack([brute_shape(row, temperature, top_p) for row in law])
    checked = check_transition_frequencies(docs, shaped, order, V, f"T={temperature} top_p={top_p}")
    assert checked >= V // 2 + 1  # enough contexts reached to mean something


def test_first_token_follows_the_all_bos_row():
    V, n = 5, 50_000
    for order in (1, 2):
        law = random_law(np.random.default_rng(order), order, V)
        docs = with_law(law, order, V, 3).sample(n, rng=np.random.default_rng(7))
        p = law[ctx_id((V,) * order, V)]
        freq = np.bincount(docs[:, 0], minlength=V) / n
        assert np.all(np.abs(freq - p) <= Z * np.sqrt(p * (1 - p) / n)), (order, freq, p)


def test_sampling_is_deterministic_and_row_by_row():
    V = 5
    model = with_law(random_law(np.random.default_rng(0), 2, V), 2, V, 7)
    a = model.sample(300, rng=np.random.default_rng(3), temperature=0.7, top_p=0.9)
    b = model.sample(300, rng=np.random.default_rng(3), temperature=0.7, top_p=0.9)
    assert np.array_equal(a, b)
    noise = model.noise(20, rng=np.random.default_rng(4))
    whole = model.draw(noise)
    parts = np.concatenate([model.draw(noise[i:i + 1]) for i in range(20)])
    assert np.array_equal(whole, parts)


# ---------------------------------------------------------------- state
@pytest.mark.parametrize("order", [1, 2])
def test_state_round_trip(order):
    V, L = 6, 10
    truth = with_law(random_law(np.random.default_rng(5), order, V), order, V, L)
    docs = truth.sample(400, rng=np.random.default_rng(6))
    model = NgramModel(vocab_size=V, doc_length=L, order=order, alpha=0.05).fit(docs, rng=np.random.default_rng(0))
    state = model.state_dict()
    assert set(state) == {"probs"} and isinstance(state["probs"], np.ndarray)
    clone = NgramModel(vocab_size=V, doc_length=L, order=order, alpha=0.05).load_state_dict(
        {k: np.array(v) for k, v in state.items()})
    test_docs = truth.sample(200, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(clone.log_prob(test_docs), model.log_prob(test_docs))
    for temperature, top_p in [(1.0, 1.0), (0.6, 0.8)]:
        np.testing.assert_array_equal(
            clone.sample(500, rng=np.random.default_rng(9), temperature=temperature, top_p=top_p),
            model.sample(500, rng=np.random.default_rng(9), temperature=temperature, top_p=top_p))


def test_loading_a_state_replaces_cached_tables():
    V, L = 4, 6
    a = with_law(random_law(np.random.default_rng(0), 1, V), 1, V, L)
    b = with_law(random_law(np.random.default_rng(1), 1, V), 1, V, L)
    a.sample(10, rng=np.random.default_rng(0), temperature=0.5)  # builds and caches a's tables
    a.sample(10, rng=np.random.default_rng(0))
    a.load_state_dict(b.state_dict())
    for kw in ({}, {"temperature": 0.5}):
        np.testing.assert_array_equal(a.sample(300, rng=np.random.default_rng(2), **kw),
                                      b.sample(300, rng=np.random.default_rng(2), **kw))
    refit_docs = b.sample(100, rng=np.random.default_rng(3))
    a.fit(refit_docs, rng=np.random.default_rng(0))  # fitting must drop cached tables too
    fresh = NgramModel(vocab_size=V, doc_length=L, order=1).fit(refit_docs, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.sample(300, rng=np.random.default_rng(4)),
                                  fresh.sample(300, rng=np.random.default_rng(4)))


def test_tables_are_cached_per_temperature_and_top_p():
    V, L = 5, 6
    law = random_law(np.random.default_rng(2), 1, V)
    model = with_law(law, 1, V, L)
    model.sample(10, rng=np.random.default_rng(0), temperature=0.9, top_p=0.5)
    model.sample(10, rng=np.random.default_rng(0), temperature=1.0, top_p=1.0)
    for temperature, top_p in [(0.5, 0.9), (1.0, 1.0), (0.9, 0.5)]:
        fresh = with_law(law, 1, V, L)
        np.testing.assert_array_equal(
            model.sample(300, rng=np.random.default_rng(1), temperature=temperature, top_p=top_p),
            fresh.sample(300, rng=np.random.default_rng(1), temperature=temperature, top_p=top_p))


def test_adopted_tables_draw_what_built_ones_would_and_are_not_rebuilt(monkeypatch):
    from simweb.watermark import Watermark

    V, L = 6, 8
    law = random_law(np.random.default_rng(4), 1, V)
    released = with_law(law, 1, V, L)
    mark = Watermark(key=11, gamma=0.5, delta=2.0)
    settings = [(1.0, 1.0, None), (0.7, 0.9, None), (1.0, 1.0, mark)]
    tables = released.sampling_tables(settings)
    assert set(tables) == set(settings)
    expected = [with_law(law, 1, V, L).sample(300, rng=np.random.default_rng(1), temperature=t, top_p=p, watermark=w)
                for t, p, w in settings]
    host = NgramModel(vocab_size=V, doc_length=L, order=1).load_state_dict(released.state_dict())
    host.adopt_tables(tables)
    monkeypatch.setattr("simweb.models.ngram.AliasTable", None)  # a build now would fail
    for (t, p, w), want in zip(settings, expected):
        # an equal watermark (another process builds its own) finds the adopted table
        w = Watermark(w.key, w.gamma, w.delta) if w is not None else None
        np.testing.assert_array_equal(host.sample(300, rng=np.random.default_rng(1), temperature=t, top_p=p,
                                                  watermark=w), want)


def test_state_of_the_wrong_shape_and_unfitted_model_are_refused():
    model = NgramModel(vocab_size=4, doc_length=5, order=2)
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict({"probs": np.full((5, 4), 0.25)})
    with pytest.raises(RuntimeError):
        model.state_dict()
    with pytest.raises(RuntimeError):
        model.sample(3, rng=np.random.default_rng(0))


def test_from_config_takes_shape_from_the_language_and_order_from_the_config():
    from simweb.language import MarkovLanguage

    lang = MarkovLanguage.from_config(MarkovConfig(vocab_size=9, doc_length=7, topics=2, classes=2),
                                      rng=np.random.default_rng(0))
    model = NgramModel.from_config(NgramConfig(order=2, alpha=0.25), lang)
    assert (model.vocab_size, model.doc_length, model.order, model.alpha) == (9, 7, 2, 0.25)
    assert model.contexts == 100


def test_a_watermarked_ngram_writes_each_token_green_with_the_biased_probability():
    """Order 2, uniform rows: after previous token l (the newest digit of the context, the start symbol first),
    a token is green with probability G_l e^δ / (G_l e^δ + V − G_l), G_l the green tokens after l. The green
    count over all positions is a sum of independent Bernoullis given the previous tokens: z within 5."""
    from simweb.watermark import Watermark, green_list

    V, L, n = 12, 20, 3000
    mark = Watermark(key=12345, gamma=0.25, delta=2.0)
    model = NgramModel(vocab_size=V, doc_length=L, order=2)
    model.load_state_dict({"probs": np.full((model.contexts, V), 1 / V)})
    docs = model.sample(n, rng=np.random.default_rng(0), watermark=mark).astype(np.int64)
    green = green_list(mark.key, mark.gamma, V)
    prev = np.concatenate([np.full((n, 1), V), docs[:, :-1]], axis=1)
    g = green.sum(axis=1)
    p = g * math.exp(mark.delta) / (g * math.exp(mark.delta) + V - g)
    expected = p[prev]
    observed = green[prev, docs]
    z = (observed.sum() - expected.sum()) / math.sqrt((expected * (1 - expected)).sum())
    assert abs(z) < 5, z
    # and the same noise through draw() with the same watermark: the same documents
    again = model.draw(model.noise(n, rng=np.random.default_rng(0)), watermark=mark)
    assert np.array_equal(again, docs)


def test_draw_defaults_to_the_unshaped_law():
    model = NgramModel(vocab_size=8, doc_length=6, order=1)
    model.fit(np.random.default_rng(1).integers(0, 8, (50, 6)), rng=np.random.default_rng(0))
    noise = model.noise(40, rng=np.random.default_rng(2))
    assert np.array_equal(model.draw(noise), model.draw(noise, temperature=1.0, top_p=1.0))
    assert np.array_equal(model.draw(noise), model.sample(40, rng=np.random.default_rng(2)))


def test_defaults_memory_and_next_token_probs():
    model = NgramModel(vocab_size=5, doc_length=4)
    assert model.order == 1 and model.alpha == 0.0
    from types import SimpleNamespace

    cfg, sc = SimpleNamespace(order=2), SimpleNamespace(language=SimpleNamespace(vocab_size=10))
    assert NgramModel.memory_bytes(cfg, sc) == 98 * 11 ** 2 * 10  # 98 bytes per cell of (V+1)^order × V
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=6)
    model.load_state_dict({"probs": probs})
    docs = np.array([[3, 1, 4, 0]])
    np.testing.assert_array_equal(model.next_token_probs(docs)[0], probs[[5, 3, 1, 4]])  # BOS, then each token


def test_unseen_contexts_of_a_small_or_empty_corpus_and_no_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = NgramModel(vocab_size=4, doc_length=1).fit(np.array([[2]]), rng=np.random.default_rng(0))
        # one token, after BOS: every other context falls back to the corpus unigram law, whose top token is unseen
        np.testing.assert_array_equal(one.probs[:4], np.tile([0.0, 0.0, 1.0, 0.0], (4, 1)))
        none = NgramModel(vocab_size=4, doc_length=3).fit(np.zeros((0, 3), dtype=np.int64), rng=np.random.default_rng(0))
        np.testing.assert_array_equal(none.probs, np.full((5, 4), 0.25))  # no data at all: uniform
        assert np.isneginf(one.token_log_prob(np.array([[1]]))).all()  # zero probability, quietly −inf
    assert "has not been fitted" in str(pytest.raises(RuntimeError, NgramModel(vocab_size=2, doc_length=1).sample, 1,
                                                      rng=np.random.default_rng(0)).value)
