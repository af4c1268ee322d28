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
