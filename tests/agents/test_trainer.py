from __future__ import annotations

import numpy as np
import pytest

from simweb.agents.trainer import EmptyCorpusError, Trainer
from simweb.models import NgramModel
from simweb.scenario.models import Lab
from tests.helpers import COLLAPSE, context, kept, scenario

SMALL = ("language.vocab_size=16", "language.topics=2", "language.doc_length=8")


def _setup(n_pages=400, ai_share=0.5, seed=0):
    sc = scenario(COLLAPSE, *SMALL)
    rng = np.random.default_rng(seed)
    from simweb.language import build_language

    docs, _ = build_language(sc.language, 0).sample(n_pages, rng=rng)
    ai = rng.random(n_pages) < ai_share
    meta = {"origin": ai.astype(np.int8), "lab": np.where(ai, rng.integers(0, 2, n_pages), -1).astype(np.int16),
            "generation": np.where(ai, 0, -1).astype(np.int16)}
    return sc, docs, meta


def _trainer(sc, lab: Lab) -> Trainer:
    return Trainer(context(sc, lab, seed=1), 0)


def _sel(meta, ids, docs):
    ids = np.asarray(ids, dtype=np.int64)
    return kept(ids, docs, meta)


def test_replace_trains_on_the_latest_crawl_only():
    sc, docs, meta = _setup()
    t = _trainer(sc, Lab(name="a", regime="replace", model={"alpha": 0.0}))
    _, c1 = t.train(_sel(meta, range(100), docs[:100]))
    model, c2 = t.train(_sel(meta, range(100, 150), docs[100:150]))
    assert c1["train_docs"] == 100 and c2["train_docs"] == 50
    expected = NgramModel(vocab_size=16, doc_length=8, order=1, alpha=0.0).fit(docs[100:150], rng=np.random.default_rng(0))
    assert np.array_equal(model.probs, expected.probs)


def test_accumulate_trains_on_every_page_kept_so_far():
    sc, docs, meta = _setup()
    t = _trainer(sc, Lab(name="a", regime="accumulate", model={"alpha": 0.0}))
    t.train(_sel(meta, range(0, 100), docs[:100]))
    model, c = t.train(_sel(meta, range(50, 150), docs[50:150]))
    assert c["train_web_docs"] == 150  # the union, no page twice
    expected = NgramModel(vocab_size=16, doc_length=8, order=1, alpha=0.0).fit(docs[:150], rng=np.random.default_rng(0))
    assert np.allclose(model.probs, expected.probs)


def test_accumulate_subsample_keeps_a_fixed_size():
    sc, docs, meta = _setup()
    t = _trainer(sc, Lab(name="a", regime="accumulate_subsample", train_docs=120))
    for g in range(3):
        _, c = t.train(_sel(meta, range(100 * g, 100 * g + 100), docs[100 * g:100 * g + 100]))
    assert c["train_web_docs"] == 120 and len(t.pool_ids) == 300


def test_reserve_fraction_and_anchors_set_the_mix():
    sc, docs, meta = _setup(ai_share=1.0)
    t = _trainer(sc, Lab(name="a", reserve_docs=1000, reserve_fraction=0.25, anchors=7))
    _, c = t.train(_sel(meta, range(300), docs[:300]))
    assert c["train_reserve_docs"] == 100  # 0.25 / 0.75 × 300
    assert c["train_anchor_docs"] == 7
    assert c["train_docs"] == 407
    assert np.isclose(c["train_ai_fraction"], 300 / 407)
    lab_of = meta["lab"][:300]
    assert np.allclose(c["train_ai_fraction_by_lab"], [np.sum(lab_of == 0) / 407, np.sum(lab_of == 1) / 407])


def test_reserve_is_capped_by_its_size():
    sc, docs, meta = _setup()
    t = _trainer(sc, Lab(name="a", reserve_docs=10, reserve_fraction=0.5))
    _, c = t.train(_sel(meta, range(300), docs[:300]))
    assert c["train_reserve_docs"] == 10


def test_nothing_to_train_on_is_a_clear_error():
    sc, docs, meta = _setup()
    t = _trainer(sc, Lab(name="a"))
    with pytest.raises(EmptyCorpusError, match="lab 'a', generation 0"):
        t.train(_sel(meta, [], docs[:0]))


def test_state_and_restore_continue_identically():
    sc, docs, meta = _setup()
    lab = Lab(name="a", regime="accumulate", prior={"strength": 1.0})
    a = _trainer(sc, lab)
    a.train(_sel(meta, range(100), docs[:100]))
    b = _trainer(sc, lab)
    b.restore(a.state())
    ma, _ = a.train(_sel(meta, range(100, 200), docs[100:200]))
    mb, _ = b.train(_sel(meta, range(100, 200), docs[100:200]))
    assert np.array_equal(ma.probs, mb.probs)


def test_a_restored_trainer_keeps_no_view_of_the_state_it_was_given():
    """Under Ray the state arrives as read-only views of one object-store object: a trainer keeping any of them
    (the pool, the prior's reference, the last state) would pin that whole object for the rest of the run."""
    sc, docs, meta = _setup()
    lab = Lab(name="a", regime="accumulate", prior={"strength": 1.0})
    a = _trainer(sc, lab)
    a.train(_sel(meta, range(100), docs[:100]))
    a.train(_sel(meta, range(100, 150), docs[100:150]))
    given = a.state()
    for v in given.values():
        v.flags.writeable = False
    b = _trainer(sc, lab)
    b.restore(given)
    kept = [b.pool_ids, b.pool_content, *b.pool_meta.values(), *b.reference.values(), *b.last_state.values()]
    assert len(kept) > 5 and b.reference and b.last_state
    assert not any(np.shares_memory(k, v) for k in kept for v in given.values() if k.size and v.size)
