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
