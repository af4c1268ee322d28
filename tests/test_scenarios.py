"""Every scenario shipped under scenarios/ loads, and the policy scenarios run (shortened)."""

from __future__ import annotations

from pathlib import Path

import pytest

import simweb

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
ALL = sorted(ROOT.rglob("*.toml"))
POLICIES = sorted((ROOT / "policies").glob("*.toml")) + [ROOT / "policy_showcase.toml"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_scenario_loads(path):
    assert simweb.load_scenario(path).labs


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_policy_scenario_runs_with_every_lab(path):
    sc = simweb.load_scenario(path, ["run.ticks=3", "run.executor=local"])
    res = simweb.run(sc)
    assert set(res.generations["lab"]) == {lab.name for lab in sc.labs}
    assert res.generations["excess_nll"].is_finite().all()
