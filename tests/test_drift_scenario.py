"""scenarios/drift.toml, scaled down: the parts of its story that hold whatever the seed.

The full scenario's figures are in the README ("A world that moves"); this runs a smaller web for 19 ticks with
three of its labs and checks only what three seeds agree on (see the README for what does not come out).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest
import tomli_w

import simweb
from simweb.scenario import parse_scenario

DRIFT = Path(__file__).resolve().parents[1] / "scenarios" / "drift.toml"


def small(seed: int):
    data = tomllib.loads(DRIFT.read_text())
    data["run"].update(seed=seed, ticks=19, executor="local")
    data["language"]["drift"]["events"] = [{"tick": 8, "topic": 3, "surge": 5.0}]
    data["language"]["drift"]["new_topics_per_tick"] = 0.4  # births to see in 18 ticks
    data["web"].update(initial_sites=60, sites_per_tick=5)
    data["publishers"][0].update(initial_pages=2000, pages_per_tick=500)
    data["labs"] = [lab | {"crawl_budget": 1000} for lab in data["labs"]
                    if lab["name"] in ("archive", "fresh", "archive_reserve")]
    data["labs"][2]["anchors"] = 500
    data["evaluation"].update(human_docs=400, sample_docs=400)
    return parse_scenario(tomli_w.dumps(data))


@pytest.mark.parametrize("seed", [17, 1, 2])
def test_the_archive_ages_and_never_hears_of_new_topics(seed):
    g = simweb.run(small(seed)).generations
    lab = {name: g.filter(pl.col("lab") == name).sort("tick") for name in ("archive", "fresh", "archive_reserve")}
    archive = lab["archive"]
    # against the present, the frozen archive's model gets worse: its last generation is worse than its first
    assert archive["excess_nll"][-1] > archive["excess_nll"][0] + 0.2
    # trained on tick 0 with add-0 smoothing, it gives every new token probability 0: it never writes one
    seen = archive.filter(pl.col("new_token_mass_ratio").is_not_null())
    assert len(seen) and (seen["new_token_mass_ratio"] == 0).all() and (seen["new_topic_recall"] < 0.05).all()
    # fresh data, contaminated or not, keeps a lab nearer the present than the archive alone; so do fresh
    # human documents added to the archive
    assert lab["fresh"]["excess_nll"][-1] < archive["excess_nll"][-1]
    assert lab["archive_reserve"]["excess_nll"][-1] < archive["excess_nll"][-1]
