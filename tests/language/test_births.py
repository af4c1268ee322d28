"""New topics born with tokens of their own, and events that surge and decay: their laws, through the real loop."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import simweb
from simweb.errors import ScenarioError
from simweb.language import build_language
from simweb.language.drift import Births, event_multiplier
from simweb.language.markov import zipf
from simweb.scenario import parse_scenario
from tests.helpers import refused_run

# people only, every page's topic drawn from the present's popularity (topic_focus = 0), so each tick's human
# pages are plain samples of that tick's truth; an archive lab (snapshot at tick 0) and a lab that trains on
# fresh ground truth only (anchors; one web page)
WORLD = """
[run]
name = "births"
seed = 5
ticks = 10
executor = "local"

[language]
vocab_size = 80
topics = 3
doc_length = 48
classes = 4

[language.drift]
new_topics_per_tick = 0.5
reserved_vocab = 40
new_topic_tokens = 2
events = [{ tick = 2, topic = 2, surge = 6.0 }]
half_life = 1.5

[web]
initial_sites = 5
sites_per_tick = 0

[[publishers]]
name = "humans"
site_share = 1.0
initial_pages = 600
pages_per_tick = 600
topic_focus = 0.0
ai_adoption = { start = 0.0, end = 0.0 }

[[labs]]
name = "archive"
release_every = 3
crawl_budget = 600
snapshot = 0
model = { family = "ngram", order = 1, alpha = 0.0 }

[[labs]]
name = "truth"
release_every = 3
crawl_budget = 1
new_only = true
anchors = 4000
model = { family = "ngram", order = 1, alpha = 0.0 }

[evaluation]
human_docs = 300
sample_docs = 3000
benchmark_docs = 0
recent_ticks = 10
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sc = parse_scenario(WORLD)
    out = tmp_path_factory.mktemp("births") / "run"
    res = simweb.run(sc, out=out)
    return sc, res, out, build_language(sc.language, sc.run.seed)


def _pages(out, tick: int) -> tuple[np.ndarray, np.ndarray]:
    """The content and topic of every page published at ``tick`` (the run directory's page files)."""
    frame = pl.concat([pl.read_ipc(p) for p in sorted((out / "pages" / f"tick={tick:05d}").glob("*.arrow"))])
    return np.stack(frame["content"].to_list()).astype(np.int64), frame["topic"].to_numpy()


def test_births_are_poisson_counts_from_their_own_stream():
    """Over ticks 1..t the number of births is Poisson(λt): mean and variance both λt (400 seeds)."""
    rate, t, seeds = 0.7, 12, 400
    counts = np.array([Births(seed, rate, capacity=10_000).born_by(t) for seed in range(seeds)])
    mean = rate * t
    assert abs(counts.mean() - mean) < 5 * math.sqrt(mean / seeds)
    # the sample variance of a Poisson(m) has sd ≈ √((m + 2m²) / n)
    assert abs(counts.var(ddof=1) - mean) < 5 * math.sqrt((mean + 2 * mean ** 2) / seeds)
    # capped at the room the reserved vocabulary has, and the same in any order of asking
    capped = Births(1, 5.0, capacity=3)
    assert capped.born_by(10) == 3 and len(capped.birth_ticks(10)) == 3
    late, early = Births(9, 0.5, 100), Births(9, 0.5, 100)
    assert [early.born_by(t) for t in range(8)][-1] == late.born_by(7)
    np.testing.assert_array_equal(late.birth_ticks(7), early.birth_ticks(7))


def test_popularity_is_the_closed_form_of_births_and_events(world):
    """Without walks: w_k(t) = π_k · m_k(t) for initial topics, 1/K for a born topic, 0 unborn; normalised."""
    sc, _, _, lang = world
    K, drift = sc.language.topics, sc.language.drift
    born = lang.at(9).birth_ticks
    assert len(born) >= 2, "the scenario should see births (seed 5)"
    for t in range(10):
        truth = lang.at(t)
        w = np.concatenate([zipf(K, sc.language.topic_zipf_exponent), np.zeros(lang.topics - K)])
        alive = born[born <= t]
        w[K:K + len(alive)] = 1.0 / K
        m = np.ones(lang.topics)
        if t >= 2:
            m[2] = 1 + (6.0 - 1) * 2 ** (-(t - 2) / 1.5)
        np.testing.assert_allclose(event_multiplier(drift.events, drift.half_life, t, lang.topics), m)
        np.testing.assert_allclose(truth.topic_probs, w * m / (w * m).sum(), rtol=1e-12, err_msg=f"tick {t}")
        np.testing.assert_array_equal(truth.birth_ticks, alive)


def test_unborn_tokens_have_probability_zero_and_born_ones_the_exact_truth(world):
    """A doc holding an unborn topic's token is impossible (log P = −inf); human pages of each tick hold the
    new tokens at exactly the truth's unigram share (z-test on per-document counts), unborn ones never."""
    sc, _, out, lang = world
    K = sc.language.topics
    final = lang.at(9)
    for t in range(10):
        truth = lang.at(t)
        docs, topics = _pages(out, t)
        n_born = len(truth.birth_ticks)
        unborn = lang.new_tokens[n_born:].ravel()
        assert not np.isin(docs, unborn).any(), f"tick {t}: an unborn token was written"
        assert topics.max() < K + n_born and np.all(truth.unigram()[unborn] == 0)
        for m in range(n_born):
            tokens = lang.new_tokens[m]
            per_doc = np.isin(docs, tokens).mean(axis=1)
            want = truth.unigram()[tokens].sum()
            z = (per_doc.mean() - want) / (per_doc.std(ddof=1) / math.sqrt(len(docs)))
            assert abs(z) < 5, f"tick {t}, new topic {m}: share {per_doc.mean():.4f} vs truth {want:.4f}"
            # the topic is written from its birth tick on
            assert (topics == K + m).any() == (t >= truth.birth_ticks[m])
    if len(final.birth_ticks):
        before = lang.at(int(final.birth_ticks[0]) - 1)
        doc = np.zeros((1, sc.language.doc_length), dtype=np.int64)
        doc[0, 5] = lang.new_tokens[0, 0]
        assert before.log_prob(doc)[0] == -np.inf and np.isfinite(final.log_prob(doc)[0])
        # the entropy of each tick is finite and its conditional part exact (no nan from unborn topics)
        assert np.isfinite(final.conditional_entropy())
        assert np.isfinite(before.entropy(rng=np.random.default_rng(0), n=200)[0])


def test_an_event_sets_the_share_of_pages_on_its_topic(world):
    """With topic_focus 0 the share of human pages on the event's topic at tick t is π_2(t): binomial z-test."""
    _, _, out, lang = world
    for t in range(1, 7):
        _, topics = _pages(out, t)
        p = lang.at(t).topic_probs[2]
        z = ((topics == 2).mean() - p) / math.sqrt(p * (1 - p) / len(topics))
        assert abs(z) < 5, f"tick {t}: share {(topics == 2).mean():.3f} vs π {p:.3f}"


def test_an_archive_model_never_writes_new_tokens_and_a_model_of_the_truth_does(world):
    _, res, _, _ = world
    g = res.generations
    assert {"new_topic_recall", "new_token_mass_ratio"} <= set(g.columns)
    seen = g.filter(pl.col("new_token_mass_ratio").is_not_null())
    archive, truth = seen.filter(pl.col("lab") == "archive"), seen.filter(pl.col("lab") == "truth")
    assert len(archive) and len(truth)
    # trained on tick 0's pages with add-0 smoothing: it gives new tokens probability 0, so it never writes them
    assert (archive["new_token_mass_ratio"] == 0).all()
    # a new topic is its parent plus its own tokens: a document without them is ρ^L less likely under it than
    # under the parent (ρ = 1 − its own tokens' share of a row, ~0.8 here; L = 48), so the truth's posterior
    # gives the archive's writing almost no mass on new topics
    assert (archive["new_topic_recall"] < 0.05).all()
    # trained on 4000 documents of the truth of its release tick: it writes new tokens at their true share
    # (a bigram model keeps the unigram law; 3000 sampled documents: a few % sampling error)
    assert (abs(truth["new_token_mass_ratio"] - 1) < 0.2).all(), truth["new_token_mass_ratio"].to_list()


def test_no_new_keys_no_new_columns():
    sc = parse_scenario(WORLD.replace("new_topics_per_tick = 0.5", "").replace(
        'events = [{ tick = 2, topic = 2, surge = 6.0 }]', ""))
    from simweb.features import features_of

    assert "new_topics" not in features_of(sc)
    assert "new_topics" in features_of(parse_scenario(WORLD))


@pytest.mark.parametrize("change, field", [
    ("new_topics_per_tick = -0.5", "language.drift.new_topics_per_tick"),
    ("reserved_vocab = 80", "language.drift.reserved_vocab"),
    ("reserved_vocab = 10", "language.drift.new_topics_per_tick"),  # room for 5 new topics, ~4.5 + 4 sd expected
    ("new_topic_tokens = 41", "language.drift.new_topics_per_tick"),
    ("half_life = -1.0", "language.drift.half_life"),
    ("half_life = 1.5\nhalf_life_x = 1", "language.drift.half_life_x"),
])
def test_a_bad_drift_key_is_refused_naming_it(change, field):
    key = change.split(" =")[0]
    text = "\n".join(line for line in WORLD.splitlines() if not line.startswith(key + " ="))
    text = text.replace("[language.drift]", f"[language.drift]\n{change}")
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        parse_scenario(text)


@pytest.mark.parametrize("event, field", [
    ("{ tick = 10, topic = 2, surge = 6.0 }", "language.drift.events[0].tick"),
    ("{ tick = 0, topic = 2, surge = 6.0 }", "language.drift.events[0].tick"),
    ("{ tick = 2, topic = 3, surge = 6.0 }", "language.drift.events[0].topic"),
    ("{ tick = 2, topic = 2, surge = -1.0 }", "language.drift.events[0].surge"),
    ("{ tick = 2, topic = 2 }", "language.drift.events[0].surge"),
])
def test_a_bad_event_is_refused_naming_it(event, field):
    text = WORLD.replace("{ tick = 2, topic = 2, surge = 6.0 }", event)
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(text)


def test_events_need_a_half_life():
    with pytest.raises(ScenarioError, match=r"language\.drift\.half_life"):
        parse_scenario(WORLD.replace("half_life = 1.5\n", ""))


@pytest.mark.parametrize("override", ["language.drift.reserved_vocab=200", "language.drift.half_life=-2",
                                      "language.drift.events[0].tick=99"])
def test_the_cli_refuses_a_bad_drift_key_in_one_line_and_writes_nothing(tmp_path, override):
    line = refused_run(tmp_path, WORLD, override)
    assert override.split("=")[0] in line, line


def test_a_run_with_births_killed_and_resumed_writes_what_an_uninterrupted_one_does(tmp_path):
    """The truth is rebuilt from the seed: the births, the graph's new sites on new topics, the evaluator's present."""
    import os
    import signal
    import subprocess
    import sys

    scen = tmp_path / "world.toml"
    scen.write_text(WORLD)

    def simweb_(*args, crash_at=None):
        env = {k: v for k, v in os.environ.items() if k != "SIMWEB_CRASH_AT_TICK"}
        if crash_at is not None:
            env["SIMWEB_CRASH_AT_TICK"] = str(crash_at)
        return subprocess.run([sys.executable, "-m", "simweb", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300)

    whole, broken = tmp_path / "whole", tmp_path / "broken"
    grow = ("--set", "web.sites_per_tick=3")  # new sites, some on new topics
    assert simweb_("run", scen, "--out", whole, "--quiet", *grow).returncode == 0
    assert simweb_("run", scen, "--out", broken, "--quiet", *grow, crash_at=5).returncode == -signal.SIGKILL
    resumed = simweb_("resume", broken, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("generations.parquet", "ticks.parquet", "crawls.parquet"):
        assert (broken / name).read_bytes() == (whole / name).read_bytes(), name


@pytest.mark.parametrize("boost_sigma", [0.0, 0.2])
def test_a_truth_builds_its_living_topics_chains_only_and_they_are_the_whole_chains_rows(boost_sigma):
    """Chains (and logs) of the living topics alone are the rows of those over every topic slot, bit for bit and in
    the same memory layout (a sum over them, such as the unigram law's, must add in the same order)."""
    from simweb.language.markov import _chains

    world = WORLD.replace("half_life = 1.5", f"half_life = 1.5\nboost_sigma = {boost_sigma}")
    lang = build_language(parse_scenario(world).language, 5)
    motion = lang._drift
    q, boost, affinity = motion.parts
    births = []
    for tick in (1, 3, 6, 9):
        truth = lang.at(tick)
        born = len(truth.birth_ticks)
        living = truth.topic_probs > 0
        assert not living.all()  # topics not yet born
        births.append(born)
        moved = motion.boost(born)
        if boost_sigma:
            moved = moved * np.exp(motion.boost_walk.offset(tick).reshape(boost.shape))
        start, transition = _chains(q, moved, affinity, lang.token_class)
        assert truth.start[living].tobytes() == start[living].tobytes()
        assert truth.transition[living].tobytes() == transition[living].tobytes()
        assert truth.transition.strides == transition.strides
        with np.errstate(divide="ignore"):  # the logs, taken of the living rows alone, are the same numbers too
            whole = np.log(start)[living], np.log(transition)[living]
        assert all(a.tobytes() == b.tobytes() for a, b in zip(truth._alive_logs(), whole))
    assert births[0] < births[-1]  # the check saw births
