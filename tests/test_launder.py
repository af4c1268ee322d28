"""Laundered AI text (publishers[].launder, issue 19): the watermark's z-score after paraphrase, by the law.

A draft of T tokens written with the green-list watermark (γ, δ) has each token resampled with probability
ρ by the paraphraser. The detector scores (previous, token) pairs: a pair keeps its green probability g only
if both tokens are unchanged, otherwise it is green with probability γ. A resampled token equals the
original with probability c (1/V for a uniform paraphraser), so a token is changed with ρ_e = ρ(1 − c) and

    E[z] = √T · f · (g − γ) / √(γ(1 − γ)),  f = (1 − ρ_e)(1 + (T − 1)(1 − ρ_e)) / T  (≈ (1 − ρ)² for large T),

the issue's f = 1 − ρ being the share of *tokens* intact, not of pairs. The length needed to reach the threshold z* is
the smallest T with E[z] ≥ z*. Everything runs through the real sampler (NgramModel with the watermark),
the real behaviour (Launder on Drafts) and the real detector (z_scores); tolerances are 5 standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from simweb.behaviours import Drafts, Launder
from simweb.models import NgramModel
from simweb.plugins import parse_config
from simweb.watermark import Watermark, green_list, key_of, z_scores
from tests.helpers import COLLAPSE, refused_run, scenario

V, GAMMA, DELTA = 1024, 0.25, 2.0
KEY = key_of(0, "lab")


def _uniform(length: int) -> NgramModel:
    return NgramModel(vocab_size=V, doc_length=length, order=1).load_state_dict({"probs": np.full((V + 1, V), 1 / V)})


def _g() -> float:
    """The watermarked sampler's green probability, from each row's actual green share."""
    g = green_list(KEY, GAMMA, V).mean(axis=1)
    return float(np.mean(g * math.exp(DELTA) / (g * math.exp(DELTA) + 1 - g)))


def expected_z(rho: float, T: int, g: float, c: float = 1 / V) -> float:
    r = rho * (1 - c)
    f = (1 - r) * (1 + (T - 1) * (1 - r)) / T
    return math.sqrt(T) * f * (g - GAMMA) / math.sqrt(GAMMA * (1 - GAMMA))


def length_needed(rho: float, g: float, z_star: float = 4.0) -> int:
    T = 1
    while expected_z(rho, T, g) < z_star:
        T += 1
    return T


def _laundered_z(rho: float, T: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    docs = _uniform(T).sample(n, rng=rng, watermark=Watermark(KEY, GAMMA, DELTA))
    behaviour = Launder(parse_config("behaviour", {"kind": "launder", "fraction": rho, "with": "humaniser"}))
    drafts = Drafts(content=docs, is_draft=np.ones(n, bool), lab=np.zeros(n, np.int16), site_id=np.zeros(n, np.int32),
                    tick=1, population="farms", language=None, models={1: _uniform(T)}, lab_names=("lab", "humaniser"))
    behaviour.apply(drafts, rng=rng)
    return z_scores(drafts.content, KEY, GAMMA, V)


@pytest.mark.parametrize("rho, T", [(0.0, 64), (0.2, 64), (0.5, 64), (0.8, 64), (0.5, 16), (0.5, 256)])
def test_mean_z_after_laundering_follows_the_law(rho, T):
    z = _laundered_z(rho, T, 3000, seed=int(rho * 10) * 1000 + T)
    se = z.std(ddof=1) / math.sqrt(len(z))
    assert abs(z.mean() - expected_z(rho, T, _g())) <= 5 * se, (z.mean(), expected_z(rho, T, _g()), se)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.7])
def test_the_length_needed_reaches_the_threshold_and_half_of_it_does_not(rho):
    T = length_needed(rho, _g())
    at, half = _laundered_z(rho, T, 1500, seed=1), _laundered_z(rho, max(T // 2, 1), 1500, seed=2)
    se = at.std(ddof=1) / math.sqrt(len(at))
    assert at.mean() >= 4.0 - 5 * se and half.mean() < 4.0 - 5 * half.std(ddof=1) / math.sqrt(len(half))


def test_the_length_needed_grows_like_one_over_the_fourth_power_of_what_survives():
    g = _g()
    lengths = [length_needed(rho, g) for rho in (0.0, 0.3, 0.5, 0.7)]
    assert lengths == sorted(lengths) and lengths[0] < 20 and lengths[-1] > 1000  # ~800 tokens: Kirchenbauer 2023


# ------------------------------------------------------------------ through the loop
LOOP = COLLAPSE + """
[[publishers]]
name = "humans"
site_share = 0.5
initial_pages = 200
pages_per_tick = 200
ai_adoption = { start = 0.0, end = 0.0 }
"""
FILTERS = ("labs.replace.watermark={gamma=0.25, delta=2.0}", "labs.keep.market_share=0.0",
           "labs.keep.filters=[{kind=\"watermark\", keys=[\"replace\"]}, {kind=\"likelihood\"}]", "run.ticks=5",
           "web.initial_sites=60")


def _recall(rho: float, paraphraser: str) -> dict[str, tuple[int, int]]:
    from simweb.engine import Engine
    from simweb.executors import LocalExecutor

    sc = scenario(LOOP, *FILTERS, f"publishers.all.launder={{fraction={rho}, with=\"{paraphraser}\"}}")
    res = Engine(sc, executor=LocalExecutor(), shards=1).run()
    steps = res.crawls.filter((pl.col("lab") == "keep") & (pl.col("step") > 0) & (pl.col("crawl") >= 1))
    return {row["filter"]: (row["dropped_ai"], row["ai_in"])
            for row in steps.group_by("filter").agg(pl.col("dropped_ai").sum(), pl.col("ai_in").sum()).iter_rows(named=True)}


@pytest.mark.parametrize("paraphraser", ["truth", "keep"])
def test_the_watermark_filter_loses_recall_as_more_is_laundered(paraphraser):
    low, high = _recall(0.1, paraphraser), _recall(0.6, paraphraser)
    (d0, n0), (d1, n1) = low["watermark"], high["watermark"]
    p0, p1 = d0 / n0, d1 / n1
    assert p0 - p1 > 5 * math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1), (low, high)


@pytest.mark.parametrize("override, field", [
    ("publishers.all.launder={fraction=-0.1}", "publishers[0].launder.fraction"),
    ("publishers.all.launder={fraction=1.5}", "publishers[0].launder.fraction"),
    ("publishers.all.launder={fraction=0.3, with=\"nolab\"}", "publishers[0].launder.with"),
    ("publishers.all.launder={fraction=0.3, with=\"\"}", "publishers[0].launder.with"),
    ("publishers.all.launder={with=\"truth\"}", "publishers[0].launder.fraction"),
    ("publishers.all.launder={fraction=0.3, by=\"truth\"}", "publishers[0].launder"),
    ("publishers.all.behaviours=[{kind=\"launder\", fraction=0.2, with=\"nolab\"}]", "publishers[0].behaviours[0].with"),
])
def test_bad_launder_keys_exit_2_with_one_line_naming_the_field(tmp_path, override, field):
    line = refused_run(tmp_path, LOOP, override)
    assert field in line, line


def test_a_launder_behaviour_resolves_to_a_scenario_that_reads_back():
    # the run directory's scenario.toml is the resolved scenario: resume, forensics and report parse it again,
    # so the plugin's "with" must be written as "with" (its field name, "paraphraser", is no key of the table)
    from simweb.scenario import dump_scenario, parse_scenario

    sc = scenario(LOOP, "publishers.all.behaviours=[{kind=\"launder\", fraction=0.2, with=\"keep\"}]")
    again = parse_scenario(dump_scenario(sc))
    assert again.publishers[0].behaviours[0].paraphraser == "keep"


@pytest.mark.parametrize("family", ["gaussian", "categorical"])
@pytest.mark.parametrize("kind", ["launder", "edit"])
def test_token_rewriting_behaviours_are_refused_on_a_language_without_tokens(family, kind):
    # the behaviours-list form is checked like the publisher keys: a gaussian sample has no tokens to rewrite
    from simweb.errors import ScenarioError

    with pytest.raises(ScenarioError) as err:
        scenario(COLLAPSE, f"language={{family='{family}'}}", f"labs.replace.model={{family='{family}'}}",
                 f"labs.keep.model={{family='{family}'}}", "publishers.all.top_p=1.0",
                 f"publishers.all.behaviours=[{{kind='{kind}', fraction=0.3}}]")
    message = str(err.value)
    assert "\n" not in message and "behaviours[0]" in message and f"got {family}" in message, message
