"""Alias tables and probability shaping against brute force and sampling error.

Empirical frequencies are checked cell by cell: a count of n draws with
probability p must lie within Z standard errors sqrt(p (1 - p) / n) of p, and a
cell of probability zero must never be drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simweb.sampling import AliasTable, alias_dtype, shape_probs
from tests.helpers import brute_shape

Z = 5.0  # standard errors allowed per cell


# ---------------------------------------------------------------- helpers
def implied(table: AliasTable) -> np.ndarray:
    """The exact law each alias row draws from: column j with its threshold, its alias with the rest, each 1/V."""
    threshold = table._threshold.reshape(table.rows, table.width)
    alias = table._alias.reshape(table.rows, table.width)
    out = np.zeros((table.rows, table.width))
    for r in range(table.rows):
        for j in range(table.width):
            out[r, j] += threshold[r, j] / table.width
            out[r, alias[r, j]] += (1.0 - threshold[r, j]) / table.width
    return out


def random_rows(rng: np.random.Generator, rows: int, width: int, zero_share: float = 0.3) -> np.ndarray:
    p = rng.random((rows, width)) ** 3  # skewed, so some rows have large and tiny entries
    p[rng.random((rows, width)) < zero_share] = 0.0
    p[np.arange(rows), rng.integers(0, width, rows)] += 0.05  # no all-zero row
    return p / p.sum(axis=1, keepdims=True)


def assert_frequencies(counts: np.ndarray, probs: np.ndarray, what: str) -> None:
    """Per-cell z bounds on a row of counts; zero-probability cells must stay empty."""
    n = counts.sum()
    assert n > 0, what
    freq = counts / n
    se = np.sqrt(probs * (1.0 - probs) / n)
    bad = np.abs(freq - probs) > Z * se
    assert not bad.any(), f"{what}: cells {np.flatnonzero(bad)} freq {freq[bad]} vs p {probs[bad]} (n={n})"




# ---------------------------------------------------------------- alias tables: exact law
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("width", [1, 2, 3, 7, 64])
def test_alias_tables_imply_exactly_the_input_law(seed, width):
    rng = np.random.default_rng(seed)
    p = random_rows(rng, 20, width)
    table = AliasTable(p)
    law = implied(table)
    np.testing.assert_allclose(law, p, rtol=0, atol=1e-12)
    assert np.all(law[p == 0] == 0.0), "a zero-probability token is reachable"


def test_alias_tables_of_special_rows():
    p = np.array([
        [1.0, 0.0, 0.0, 0.0],  # one-hot
        [0.0, 0.0, 0.0, 1.0],  # one-hot at the end
        [0.25, 0.25, 0.25, 0.25],  # uniform
        [0.0, 0.5, 0.0, 0.5],  # zeros interleaved
        [1e-15, 1e-15, 0.5, 0.5 - 2e-15],  # tiny entries
        [0.97, 0.01, 0.01, 0.01],  # one dominant entry
    ])
    np.testing.assert_allclose(implied(AliasTable(p)), p, rtol=0, atol=1e-12)


def test_alias_tables_normalise_unnormalised_rows():
    rng = np.random.default_rng(1)
    p = random_rows(rng, 6, 9)
    weights = p * rng.uniform(0.1, 50.0, size=(6, 1))
    np.testing.assert_allclose(implied(AliasTable(weights)), p, rtol=0, atol=1e-12)
    one = AliasTable(weights[2])  # a 1-D input is one row
    assert one.rows == 1
    np.testing.assert_allclose(implied(one)[0], p[2], rtol=0, atol=1e-12)


def vose_one_row(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The textbook loop, one row, one scalar at a time: what the vectorised build must equal bit for bit."""
    V = len(p)
    order = np.argsort(p, kind="stable")
    q = p[order] * V
    threshold, alias = np.ones(V), np.arange(V)
    s, l = 0, V - 1
    while s < l:
        small, large = (l, l - 1) if q[l] < 1.0 else (s, l)
        threshold[small], alias[small] = q[small], large
        q[large] -= 1.0 - q[small]
        s, l = (s, l - 1) if small == l else (s + 1, l)
    out_threshold, out_alias = np.empty(V), np.empty(V, dtype=np.int64)
    out_threshold[order], out_alias[order] = np.clip(threshold, 0.0, 1.0), order[alias]
    return out_threshold, out_alias


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("width", [1, 2, 5, 64, 257])
def test_alias_build_is_the_textbook_loop_bit_for_bit(seed, width):
    """Every page's tokens go through these tables: a faster build must not move a single draw."""
    rng = np.random.default_rng(seed)
    p = random_rows(rng, 12, width)
    p[0] = 1.0 / width  # ties everywhere: the stable sort decides
    p[1, : width // 2] = 0.0  # half the row impossible
    p[1, -1] += 0.05  # (but not all of it)
    p[1] /= p[1].sum()
    table = AliasTable(p)
    threshold = table._threshold.reshape(table.rows, width)
    alias = table._alias.reshape(table.rows, width)
    for r in range(len(p)):
        want_threshold, want_alias = vose_one_row(p[r] / p[r].sum())
        assert threshold[r].tobytes() == want_threshold.tobytes(), f"row {r}: thresholds differ"
        assert np.array_equal(alias[r], want_alias), f"row {r}: aliases differ"


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("width", [3, 64, 257])
def test_alias_build_hands_out_zeros_as_the_textbook_loop_does(seed, width):
    """Impossible entries go to their larges in bulk (a model's rows are mostly zeros, a drifting truth's reserved
    tokens too): rows with a shared block of zeros, with a few possible entries, one possible entry, and a few
    zeros only must still give the textbook's tables bit for bit."""
    rng = np.random.default_rng(seed)
    p = random_rows(rng, 8, width) ** 3
    p[:, rng.permutation(width)[: width // 3]] = 0.0  # every row: a third of its entries impossible
    p[np.arange(len(p)), rng.permutation(width)[-1]] += 0.05  # (but not all)
    p[1] = 0.0
    p[1, -2:] = rng.random(2) + 0.1  # two possible entries
    p[2] = 0.0
    p[2, rng.integers(width)] = 1.0  # one
    p[3, rng.permutation(width)[width // 3:]] *= rng.integers(1, 4, size=width - width // 3)  # ties among the rest
    p[4] = rng.random(width) + 0.5  # no zero at all
    p[5, 0] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    table = AliasTable(p)
    threshold = table._threshold.reshape(table.rows, width)
    alias = table._alias.reshape(table.rows, width)
    for r in range(len(p)):
        want_threshold, want_alias = vose_one_row(p[r] / p[r].sum())
        assert threshold[r].tobytes() == want_threshold.tobytes(), f"row {r}: thresholds differ"
        assert np.array_equal(alias[r], want_alias), f"row {r}: aliases differ"


def test_stacked_tables_are_the_tables_built_apart():
    rng = np.random.default_rng(3)
    start, transition = random_rows(rng, 3, 17), random_rows(rng, 11, 17) * 4.0
    together = AliasTable.stacked(start, transition, start[1])
    for table, probs in zip(together, (start, transition, start[1])):
        apart = AliasTable(probs)
        assert (table.rows, table.width) == (apart.rows, apart.width)
        assert table._threshold.tobytes() == apart._threshold.tobytes()
        assert np.array_equal(table._alias, apart._alias)
        rows = np.arange(table.rows).repeat(50)
        u = rng.random(len(rows))
        assert np.array_equal(table.draw(rows, u), apart.draw(rows, u))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=1, max_size=40).filter(lambda w: sum(w) > 0))
def test_alias_law_property(weights):
    w = np.array(weights)
    law = implied(AliasTable(w))[0]
    np.testing.assert_allclose(law, w / w.sum(), rtol=0, atol=1e-12)
    assert np.all(law[w == 0] == 0.0)


# ---------------------------------------------------------------- alias tables: draws
@pytest.mark.parametrize("seed", range(3))
def test_draw_on_a_uniform_grid_hits_each_token_in_proportion(seed):
    """Stratified uniforms: each column's split misplaces at most one grid point, so the error is at most V/N."""
    rng = np.random.default_rng(seed)
    R, V, N = 4, 11, 110_000
    p = random_rows(rng, R, V)
    table = AliasTable(p)
    u = (np.arange(N) + 0.5) / N
    for r in range(R):
        x = table.draw(np.full(N, r), u)
        freq = np.bincount(x, minlength=V) / N
        assert np.all(np.abs(freq - p[r]) <= V / N + 1e-12), f"row {r}: {freq} vs {p[r]}"
        assert np.all(freq[p[r] == 0] == 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_sample_frequencies_match_each_row(seed):
    rng = np.random.default_rng(seed)
    R, V, n = 5, 8, 200_000
    p = random_rows(rng, R, V)
    table = AliasTable(p)
    rows = rng.integers(0, R, n)
    x = table.sample(rows, rng=np.random.default_rng(seed + 100))
    assert x.shape == (n,) and x.min() >= 0 and x.max() < V
    for r in range(R):
        assert_frequencies(np.bincount(x[rows == r], minlength=V), p[r], f"row {r}")


def test_sample_with_size_draws_from_one_row():
    rng = np.random.default_rng(7)
    p = random_rows(rng, 3, 6)
    table = AliasTable(p)
    x = table.sample(2, rng=np.random.default_rng(8), size=100_000)
    assert x.shape == (100_000,)
    assert_frequencies(np.bincount(x, minlength=6), p[2], "row 2")


def test_sampling_is_deterministic_under_a_seed():
    p = random_rows(np.random.default_rng(0), 4, 10)
    rows = np.arange(1000) % 4
    a = AliasTable(p).sample(rows, rng=np.random.default_rng(42))
    b = AliasTable(p).sample(rows, rng=np.random.default_rng(42))
    c = AliasTable(p).sample(rows, rng=np.random.default_rng(43))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- shape_probs
def test_temperature_by_hand():
    p = np.array([0.5, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(shape_probs(p, temperature=0.5)[0], [2 / 3, 1 / 6, 1 / 6, 0.0], rtol=1e-12)
    # T = 2: square roots, renormalised
    r = np.sqrt([0.5, 0.25, 0.25])
    np.testing.assert_allclose(shape_probs(p, temperature=2.0)[0], [*(r / r.sum()), 0.0], rtol=1e-12)


def test_top_p_by_hand():
    p = np.array([[0.125, 0.5, 0.125, 0.25]])
    np.testing.assert_array_equal(shape_probs(p, top_p=0.5), [[0.0, 1.0, 0.0, 0.0]])  # 0.5 reaches 0.5
    np.testing.assert_allclose(shape_probs(p, top_p=0.6), [[0.0, 2 / 3, 0.0, 1 / 3]], rtol=1e-12)
    np.testing.assert_allclose(shape_probs(p, top_p=0.75), [[0.0, 2 / 3, 0.0, 1 / 3]], rtol=1e-12)
    out = shape_probs(p, top_p=0.8)  # needs one of the two tied 0.125 tokens
    assert np.count_nonzero(out) == 3
    np.testing.assert_allclose(np.sort(out[0])[::-1][:3], [0.5 / 0.875, 0.25 / 0.875, 0.125 / 0.875], rtol=1e-12)
    np.testing.assert_array_equal(shape_probs(p, top_p=1e-9), [[0.0, 1.0, 0.0, 0.0]])


def test_ties_keep_the_smallest_set():
    p = np.full((1, 4), 0.25)
    out = shape_probs(p, top_p=0.5)
    assert np.count_nonzero(out) == 2
    np.testing.assert_allclose(out[out > 0], [0.5, 0.5], rtol=1e-12)


def test_identity_and_no_mutation():
    p = random_rows(np.random.default_rng(3), 5, 9)
    before = p.copy()
    np.testing.assert_allclose(shape_probs(p), p, rtol=0, atol=1e-15)
    shape_probs(p, temperature=0.3, top_p=0.5)
    np.testing.assert_array_equal(p, before)
    assert shape_probs(p[0]).shape == (1, 9)


@pytest.mark.parametrize("temperature", [1.0, 0.3, 0.7, 1.5, 4.0])
@pytest.mark.parametrize("top_p", [1.0, 0.95, 0.7, 0.4, 0.05])
def test_shape_probs_matches_brute_force_per_row(temperature, top_p):
    rng = np.random.default_rng(int(temperature * 100) + int(top_p * 1000))
    p = random_rows(rng, 30, 12)
    got = shape_probs(p, temperature=temperature, top_p=top_p)
    want = np.stack([brute_shape(row, temperature, top_p) for row in p])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    assert np.all(got[p == 0] == 0.0), "shaping resurrected a zero-probability token"
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


def test_shaped_rows_sample_at_their_shaped_frequencies():
    rng = np.random.default_rng(11)
    p = random_rows(rng, 3, 10, zero_share=0.1)
    shaped = shape_probs(p, temperature=0.6, top_p=0.8)
    table = AliasTable(shaped)
    n = 100_000
    for r in range(3):
        x = table.sample(r, rng=rng, size=n)
        assert_frequencies(np.bincount(x, minlength=10), brute_shape(p[r], 0.6, 0.8), f"row {r}")


# ---------------------------------------------------------------- choice
@settings(max_examples=200, deadline=None)
@given(weights=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
       size=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_choice_draws_what_numpy_choice_draws(weights, size, seed):
    """The publisher's plan relies on it: same outcomes, and the generator left in the same state."""
    from simweb.sampling import choice

    p = np.array(weights) / np.sum(weights)
    ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
    got = choice(p, size, rng=ours)
    want = theirs.choice(len(p), size=size, p=p)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert ours.random() == theirs.random()


class _Uniforms:
    """A stand-in generator whose uniforms are given: the edges of [0, 1) that a real one reaches once in 2^53."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def random(self, size):
        assert size == len(self.values)
        return self.values


def test_a_zero_probability_outcome_is_never_drawn_even_on_a_uniform_at_its_cdf_step():
    from simweb.sampling import choice

    # u = 0 and u = 0.5 sit exactly on the steps of the cumulative sums [0, 0.5, 0.5, 1]
    got = choice(np.array([0.0, 0.5, 0.0, 0.5]), 2, rng=_Uniforms([0.0, 0.5]))
    assert got.tolist() == [1, 3]
    # the alias table: a uniform that lands exactly on a zero-probability column's left edge takes its alias
    table = AliasTable(np.array([0.0, 1.0, 0.0, 0.0]))
    edges = np.arange(4) / 4
    assert table.draw(np.zeros(4, dtype=np.int64), edges).tolist() == [1, 1, 1, 1]


def test_alias_tables_store_float64_thresholds_and_the_narrowest_aliases():
    table = AliasTable(random_rows(np.random.default_rng(0), 3, 7))
    assert table._threshold.dtype == np.float64 and table._alias.dtype == np.uint16
    assert table.nbytes() == 3 * 7 * (8 + 2)
    assert [alias_dtype(w) for w in (1, 2**16, 2**16 + 1, 2**32, 2**32 + 1)] == [
        np.uint16, np.uint16, np.uint32, np.uint32, np.int64]


@pytest.mark.parametrize("width, dtype", [(2**16, np.uint16), (70_000, np.uint32)])
def test_the_last_column_survives_its_aliases_dtype(width, dtype):
    # one row, all its mass on the last column: every other column's alias is that column, width − 1 (65,535
    # fills a uint16; 69,999 would wrap to 4,463 in one)
    p = np.zeros(width)
    p[-1] = 1.0
    table = AliasTable(p)
    assert table._alias.dtype == dtype
    drawn = table.draw(np.zeros(1000, dtype=np.int64), np.random.default_rng(1).random(1000))
    assert drawn.dtype == np.int64 and set(drawn.tolist()) == {width - 1}


def test_shape_probs_returns_float64_rows_whatever_the_input_dtype():
    for probs in (np.array([1, 3]), np.array([0.25, 0.75], dtype=np.float32)):
        assert shape_probs(probs).dtype == np.float64
        assert shape_probs(probs, temperature=0.5, top_p=0.9).dtype == np.float64


def test_low_temperature_on_tiny_probabilities_neither_underflows_nor_warns():
    """p^(1/T) is computed in log space, shifted by each row's own maximum: rows at very different scales keep
    their exact shaped law (p_i^(1/T) / Σ p_j^(1/T)) and zero-probability tokens raise no division warning."""
    import warnings

    p = np.array([[2e-300, 1e-300, 0.0], [0.5, 0.5, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = shape_probs(p, temperature=0.05)  # 1/T = 20: the ratio 2:1 becomes 2^20:1
    r = 2.0 ** -20
    np.testing.assert_allclose(out, [[1 / (1 + r), r / (1 + r), 0.0], [0.5, 0.5, 0.0]], rtol=1e-12)


def test_top_p_breaks_ties_by_token_index():
    """Among tokens of equal probability the lower index is kept first (a stable sort), so a truncated law is
    the same on every platform and numpy version. A row of 16 tokens that an unstable sort reorders."""
    w = np.array([2, 2, 2, 3, 1, 3, 3, 1, 2, 3, 2, 1, 3, 3, 3, 1], dtype=np.float64)
    # the seven 3s hold 21/35; top_p = 24/35 then needs two of the five 2s: those at indices 0 and 1
    out = shape_probs(w / w.sum(), top_p=24 / 35)[0]
    want = np.where(w == 3, 3.0, 0.0)
    want[[0, 1]] = 2.0
    np.testing.assert_allclose(out, want / want.sum(), rtol=1e-12)


@pytest.mark.parametrize("writer", ["ngram1", "ngram2", "markov"])
def test_documents_drawn_in_chunks_are_those_drawn_at_once(writer, monkeypatch):
    """The writers draw DRAW_CHUNK documents at a time (for the core's cache); document i depends on row i of
    the noise alone, so any chunk size — here 7, which splits 50 documents unevenly — writes the same pages.
    A context or a topic carried from one chunk into the next would change them."""
    from simweb import sampling
    from simweb.language.markov import MarkovLanguage
    from simweb.models.ngram import NgramModel
    from simweb.scenario.models import MarkovLanguage as MarkovConfig

    rng = np.random.default_rng(3)
    if writer == "markov":
        lang = MarkovLanguage.from_config(MarkovConfig(vocab_size=12, doc_length=9, topics=3, classes=2), rng=rng)
        topics = rng.integers(0, 3, 50)
        noise = lang.noise(50, rng=rng)
        draw = lambda: lang.draw(noise, topics=topics)  # noqa: E731
    else:
        order = int(writer[-1])
        probs = rng.random(((12 + 1) ** order, 12)) ** 3
        model = NgramModel(vocab_size=12, doc_length=9, order=order).load_state_dict(
            {"probs": probs / probs.sum(axis=1, keepdims=True)})
        noise = model.noise(50, rng=rng)
        draw = lambda: model.draw(noise, temperature=0.8, top_p=0.9)  # noqa: E731
    monkeypatch.setattr(sampling, "DRAW_CHUNK", 10**9)
    whole = draw()
    monkeypatch.setattr(sampling, "DRAW_CHUNK", 7)
    assert len(sampling.chunks(50)) == 8
    np.testing.assert_array_equal(draw(), whole)
    assert len(np.unique(whole, axis=0)) > 40  # real documents, not one repeated


@pytest.mark.parametrize("layout", ["float64", "float32", "strided", "edges"])
def test_a_split_draw_is_the_textbook_draw_of_each_uniform(layout):
    """draw() (now split, then looked up) against the alias method written out for one uniform at a time —
    column = min(floor(u·W), W − 1), the column if u·W − column < its threshold, else its alias — on noise of
    every kind a writer may pass: float32, a strided view, uniforms at 0 and just below 1."""
    rng = np.random.default_rng(11)
    probs = rng.random((6, 13)) ** 3
    probs[:, 4] = 0.0
    table = AliasTable(probs)
    rows = rng.integers(0, 6, 400)
    u = rng.random(800)
    if layout == "float32":
        u = u.astype(np.float32)
    elif layout == "strided":
        u = u[::2]
    elif layout == "edges":
        u[:4] = [0.0, np.nextafter(1.0, 0.0), 0.5, 1 / 13]
    u = u[:400]
    threshold, alias = table._threshold.reshape(6, 13), table._alias.reshape(6, 13)
    expected = []
    for r, x in zip(rows, u):
        scaled = x * 13
        col = min(int(scaled), 12)
        expected.append(col if scaled - col < threshold[r, col] else alias[r, col])
    np.testing.assert_array_equal(table.draw(rows, u), expected)
    assert not np.isin(table.draw(rows, u), [4]).any()  # the impossible token is never drawn
