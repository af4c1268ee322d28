"""Every Parquet file a run writes has exactly the columns and dtypes simweb/schema.py declares, in its order."""

from __future__ import annotations

import polars as pl
import pytest

import simweb
from simweb import schema
from simweb.reproduce import PAPERS_DIR
from tests.helpers import COLLAPSE, scenario

# one scenario per family of metrics: tokens (ngram on markov, with a filter and a benchmark crawl),
# gaussian, categorical (its probs list column)
SCENARIOS = {
    "tokens": lambda: scenario(COLLAPSE, "run.ticks=3", "labs.replace.filters=[{kind=\"dedup\"}]"),
    "gaussian": lambda: simweb.load_scenario(PAPERS_DIR / "shumailov_gaussian_mle.toml", ["run.ticks=3"]),
    "categorical": lambda: simweb.load_scenario(PAPERS_DIR / "shumailov_categorical.toml", ["run.ticks=3"]),
}


@pytest.mark.parametrize("family", list(SCENARIOS))
def test_written_parquet_dtypes_are_the_declared_schema(tmp_path, family):
    sc = SCENARIOS[family]()
    out = tmp_path / "run"
    simweb.run(sc, out=out, executor="local")
    declared = {
        "generations.parquet": schema.generations_schema([lab.name for lab in sc.labs]),
        "ticks.parquet": schema.TICKS,
        "crawls.parquet": schema.CRAWLS,
        "contamination.parquet": schema.CONTAMINATION,
    }
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(declared)
    for name, want in declared.items():
        got = dict(pl.read_parquet_schema(out / name))
        assert list(got) == list(want), f"{name}: columns {list(got)} vs declared {list(want)}"
        wrong = {col: (str(got[col]), str(dt)) for col, dt in want.items() if got[col] != dt}
        assert not wrong, f"{name}: (written, declared) dtypes differ: {wrong}"
        assert pl.read_parquet(out / name).height > 0, name


def test_the_lab_struct_has_one_float_field_per_lab_in_scenario_order():
    s = schema.generations_schema(["b", "a"])["train_ai_fraction_by_lab"]
    assert s == pl.Struct({"b": pl.Float64, "a": pl.Float64})
    assert list(schema.generations_schema([]))[:3] == list(schema.IDS)
