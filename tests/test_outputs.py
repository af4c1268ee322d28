"""contamination_frame: the struct column in long form, the same numbers, one row per (lab, generation, source lab)."""

from __future__ import annotations

import polars as pl
import pytest

from simweb.outputs import contamination_frame, grid_column
from simweb.schema import CONTAMINATION, generations_schema


def _generations(by_lab: list[dict], labs: list[str]) -> pl.DataFrame:
    """Rows of generations with every column null but the ids and the struct."""
    schema = generations_schema(labs)
    rows = [{"run_id": "r1", "scenario": "s", "seed": 9, "lab": lab, "generation": gen, "train_ai_fraction_by_lab": f}
            for lab, gen, f in by_lab]
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_every_struct_field_becomes_a_row_with_its_value():
    labs = ["naive", "careful"]
    g = _generations([("naive", 0, {"naive": 0.0, "careful": 0.0}),
                      ("naive", 1, {"naive": 0.6, "careful": 0.1}),
                      ("careful", 1, {"naive": 0.05, "careful": 0.2})], labs)
    c = contamination_frame(g)
    assert c.schema == pl.Schema(CONTAMINATION)
    assert c.rows() == [
        ("r1", "s", 9, "naive", 0, "naive", 0.0), ("r1", "s", 9, "naive", 0, "careful", 0.0),
        ("r1", "s", 9, "naive", 1, "naive", 0.6), ("r1", "s", 9, "naive", 1, "careful", 0.1),
        ("r1", "s", 9, "careful", 1, "naive", 0.05), ("r1", "s", 9, "careful", 1, "careful", 0.2),
    ]


def test_a_lab_named_like_a_column_does_not_clash():
    labs = ["lab", "seed"]
    g = _generations([("seed", 2, {"lab": 0.25, "seed": 0.5})], labs)
    c = contamination_frame(g)
    assert c.select("lab", "generation", "source_lab", "fraction").rows() == [("seed", 2, "lab", 0.25),
                                                                              ("seed", 2, "seed", 0.5)]
    assert c["seed"].to_list() == [9, 9]


def test_no_rows_gives_an_empty_frame_with_the_schema():
    c = contamination_frame(_generations([], ["a"]))
    assert c.height == 0 and c.schema == pl.Schema(CONTAMINATION)


def test_a_frame_without_the_struct_is_refused():
    with pytest.raises(ValueError, match="train_ai_fraction_by_lab"):
        contamination_frame(pl.DataFrame({"lab": ["a"]}))


@pytest.mark.parametrize("path, column", [
    ("labs.careful.reserve_fraction", "grid_labs_careful_reserve_fraction"),
    ("labs[0].crawl_budget", "grid_labs_0_crawl_budget"),
    ("publishers.farm-2.ai_adoption.end", "grid_publishers_farm_2_ai_adoption_end"),
])
def test_grid_columns_are_letters_digits_and_underscores(path, column):
    assert grid_column(path) == column


def test_detection_scores_are_null_without_filters_or_without_ai_pages():
    from simweb.outputs import defined_detection

    g = pl.DataFrame({"lab": ["a", "a", "b", "b", "c"], "generation": [0, 1, 0, 1, 1],
                      "crawl_ai_fraction": [0.0, 0.4, 0.0, 0.4, 0.3],
                      "filter_precision": [0.0, 0.9, None, None, 0.8], "filter_recall": [None, 0.7, None, 0.0, 0.6]})
    filtered = pl.DataFrame({"lab": ["a", "b"], "filtered": [True, False]})
    out = defined_detection(g, filtered)
    assert out.columns == g.columns and out["lab"].to_list() == g["lab"].to_list()
    # a: nothing to detect at generation 0; b: filters nothing; c: not covered by `filtered`, kept as it was
    assert out["filter_precision"].to_list() == [None, 0.9, None, None, 0.8]
    assert out["filter_recall"].to_list() == [None, 0.7, None, None, 0.6]


# ---------------------------------------------------------------- every output, in polars, pandas and DuckDB
def _tables(directory) -> list:
    return sorted(directory.glob("*.parquet"))


def test_every_output_of_a_run_and_a_sweep_reads_in_polars_pandas_and_duckdb(tmp_path):
    import duckdb
    import pandas as pd

    import simweb
    from simweb.sweep import run_sweep
    from tests.helpers import COLLAPSE, scenario

    run = tmp_path / "run"
    simweb.run(scenario(COLLAPSE, "run.ticks=3"), out=run)
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 2"))
    sweep = tmp_path / "sweep"
    run_sweep(scen, ["labs.replace.crawl_budget=100,200"], seeds=1, out=sweep, workers=1)

    names = {p.name for p in _tables(run)}
    assert {"generations.parquet", "ticks.parquet", "crawls.parquet", "contamination.parquet"} <= names
    assert {"generations.parquet", "ticks.parquet", "contamination.parquet", "status.parquet"} <= \
        {p.name for p in _tables(sweep)}
    con = duckdb.connect()
    for path in _tables(run) + _tables(sweep):
        frame = pl.read_parquet(path)
        assert frame.height > 0, path
        pdf = pd.read_parquet(path)
        assert list(pdf.columns) == frame.columns and len(pdf) == frame.height, path
        assert con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0] == frame.height, path
        assert [d[0] for d in con.execute(f"SELECT * FROM read_parquet('{path}') LIMIT 0").description] == frame.columns

    # the long form holds the struct's numbers: checked through DuckDB's own struct access
    gen, con_file = run / "generations.parquet", run / "contamination.parquet"
    pairs = con.execute(f"""
        SELECT g.train_ai_fraction_by_lab.replace, c.fraction
        FROM read_parquet('{gen}') g JOIN read_parquet('{con_file}') c USING (lab, generation)
        WHERE c.source_lab = 'replace'""").fetchall()
    assert len(pairs) == pl.read_parquet(gen).height and all(a == b for a, b in pairs)
    assert sum(a for a, _ in pairs) > 0  # the naive lab's models wrote part of some training set

    # grid columns need no quoting: unquoted SQL and pandas' query and attribute access
    sweep_gens = sweep / "generations.parquet"
    budgets = con.execute(f"SELECT DISTINCT grid_labs_replace_crawl_budget FROM read_parquet('{sweep_gens}') "
                          "ORDER BY 1").fetchall()
    assert budgets == [(100,), (200,)]
    pdf = pd.read_parquet(sweep_gens)
    assert len(pdf.query("grid_labs_replace_crawl_budget == 200")) == len(pdf) // 2
    assert set(pdf.grid_labs_replace_crawl_budget) == {100, 200}
    contamination = pd.read_parquet(sweep / "contamination.parquet")
    assert {"grid_labs_replace_crawl_budget", "lab", "generation", "source_lab", "fraction"} <= set(contamination)
    assert len(contamination) == len(pdf) * 2  # two labs write, so two source rows per generation row


def test_the_human_stock_grows_by_the_human_flow():
    import numpy as np

    import simweb
    from tests.helpers import COLLAPSE, scenario

    ticks = simweb.run(scenario(COLLAPSE, "publishers[0].ai_adoption.start=0.5",
                                "publishers[0].ai_adoption.end=0.5")).ticks.sort("tick")
    flow = (ticks["pages"] - ticks["ai_pages"]).to_numpy()
    np.testing.assert_array_equal(ticks["human_pages_total"].to_numpy(), np.cumsum(flow))
    assert (ticks["human_pages_total"] + ticks["ai_share_all"] * ticks["pages_total"]).round(6).equals(
        ticks["pages_total"].cast(float))
