from __future__ import annotations

import numpy as np
import pytest

from simweb.agents.trainer import EmptyCorpusError, Trainer
from simweb.language import MarkovLanguage
from simweb.scenario.models import Lab, MarkovLanguage as MarkovConfig
from simweb.web import PageStore


def _setup(n_pages=400, ai_share=0.5, seed=0):
    lang = MarkovLanguage.from_config(MarkovConfig(vocab_size=16, topics=2, doc_length=8), rng=np.random.default_rng(0))
    rng = np.random.default_rng(seed)
    store = PageStore(width=8, dtype=np.uint16)
    docs, _ = lang.sample(n_pages, rng=rng)
    ai = rng.random(n_pages) < ai_share
    lab = np.where(ai, rng.integers(0, 2, n_pages), -1)
    store.append(docs, site_id=0, tick=0, origin=ai.astype(np.int8), lab=lab, generation=np.where(ai, 0, -1),
                 topic=0, population=0, watermarked=False, c2pa=0, edited_fraction=0.0, copied_from=-1)
    return lang, store


def test_replace_trains_on_the_latest_crawl_only():
    lang, store = _setup()
    t = Trainer(Lab(name="a", regime="replace", model={"alpha": 0.0}), 0, lang, 2, seed=1)
    _, c1 = t.train(np.arange(0, 100), store)
    model, c2 = t.train(np.arange(100, 150), store)
    assert c1["train_docs"] == 100 and c2["train_docs"] == 50
    expected = type(model)(vocab_size=16, doc_length=8, order=1, alpha=0.0).fit(store.content(np.arange(100, 150)))
    assert np.array_equal(model.probs, expected.probs)


def test_accumulate_trains_on_every_page_kept_so_far():
    lang, store = _setup()
    t = Trainer(Lab(name="a", regime="accumulate"), 0, lang, 2, seed=1)
    t.train(np.arange(0, 100), store)
    _, c = t.train(np.arange(50, 150), store)
    assert c["train_web_docs"] == 150  # the union, no page twice


def test_accumulate_subsample_keeps_a_fixed_size():
    lang, store = _setup()
    t = Trainer(Lab(name="a", regime="accumulate_subsample", train_docs=120), 0, lang, 2, seed=1)
    for g in range(3):
        _, c = t.train(np.arange(100 * g, 100 * g + 100), store)
    assert c["train_web_docs"] == 120 and len(t.pool) == 300


def test_reserve_fraction_and_anchors_set_the_mix():
    lang, store = _setup(ai_share=1.0)
    t = Trainer(Lab(name="a", reserve_docs=1000, reserve_fraction=0.25, anchors=7), 0, lang, 2, seed=1)
    _, c = t.train(np.arange(0, 300), store)
    assert c["train_reserve_docs"] == 100  # 0.25 / 0.75 × 300
    assert c["train_anchor_docs"] == 7
    assert c["train_docs"] == 407
    assert np.isclose(c["train_ai_fraction"], 300 / 407)
    lab_of = store.column("lab")[:300]
    assert np.allclose(c["train_ai_fraction_by_lab"], [np.sum(lab_of == 0) / 407, np.sum(lab_of == 1) / 407])


def test_reserve_is_capped_by_its_size():
    lang, store = _setup()
    t = Trainer(Lab(name="a", reserve_docs=10, reserve_fraction=0.5), 0, lang, 2, seed=1)
    _, c = t.train(np.arange(0, 300), store)
    assert c["train_reserve_docs"] == 10


def test_nothing_to_train_on_is_a_clear_error():
    lang, store = _setup()
    t = Trainer(Lab(name="a"), 0, lang, 2, seed=1)
    with pytest.raises(EmptyCorpusError, match="lab 'a', generation 0"):
        t.train(np.empty(0, dtype=np.int64), store)
