"""Tables derived from a run's results for analysis in any tool: long form, plain column names.

``generations.parquet`` keeps the contamination as a struct with one field per
lab, which polars and DuckDB read well but pandas turns into a column of dicts,
and whose fields change with the scenario. ``contamination.parquet`` holds the
same numbers one row per (lab, generation, source lab). A sweep's grid columns
get names made of letters, digits and underscores (:func:`grid_column`), so
that SQL and pandas need no quoting.
"""

from __future__ import annotations

import re

import polars as pl

from simweb.schema import CONTAMINATION, IDS

__all__ = ["contamination_frame", "grid_column", "defined_detection"]


def contamination_frame(generations: pl.DataFrame) -> pl.DataFrame:
    """``train_ai_fraction_by_lab`` in long form: columns run_id, scenario, seed, lab, generation, source_lab, fraction.

    One row per (lab, generation, source lab), in the generations' row order and
    then the struct's field order (the scenario's lab order). ``fraction`` is the
    share of that generation's training set written by ``source_lab``'s models
    (ground truth), 0 when it wrote none of it.
    """
    struct = generations.schema.get("train_ai_fraction_by_lab")
    if not isinstance(struct, pl.Struct):
        raise ValueError("generations: train_ai_fraction_by_lab must be a struct column, "
                         f"got {struct if struct is not None else 'no such column'}")
    keep = list(IDS) + ["lab", "generation"]
    rows = generations.select(keep + ["train_ai_fraction_by_lab"]).with_row_index("_row")
    # one frame per source lab, taken with struct.field, so a lab named "lab" or "seed" cannot clash with a column
    parts = [rows.select(*(["_row"] + keep),
                         pl.lit(i, dtype=pl.UInt32).alias("_source"),
                         pl.lit(field.name, dtype=pl.String).alias("source_lab"),
                         pl.col("train_ai_fraction_by_lab").struct.field(field.name).alias("fraction"))
             for i, field in enumerate(struct.fields)]
    if not parts:
        return pl.DataFrame(schema=CONTAMINATION)
    long = pl.concat(parts).sort(["_row", "_source"]).drop(["_row", "_source"])
    return long.cast(CONTAMINATION).select(list(CONTAMINATION))


def grid_column(path: str) -> str:
    """The column of a sweep's grid value: ``labs.careful.reserve_fraction`` → ``grid_labs_careful_reserve_fraction``.

    Every run of characters other than letters and digits becomes one
    underscore, so ``labs[0].crawl_budget`` → ``grid_labs_0_crawl_budget``.
    """
    return "grid_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")


def defined_detection(generations: pl.DataFrame, filtered: pl.DataFrame) -> pl.DataFrame:
    """``generations`` with ``filter_precision`` and ``filter_recall`` null where they mean nothing.

    They describe the filter chain as a detector of AI pages, so both are
    undefined for a lab that filters nothing, and when its crawl fetched no AI
    page (generation 0 of an all-human web: precision would be 0 by necessity,
    recall 0 ÷ 0). ``filtered`` has a boolean column ``filtered`` and the columns
    to join on (``lab``, and ``point`` for a sweep); rows it does not cover keep
    their values.
    """
    on = [c for c in filtered.columns if c != "filtered"]
    joined = generations.join(filtered.select(on + ["filtered"]), on=on, how="left", maintain_order="left")
    undefined = pl.col("filtered").not_().fill_null(False) | (pl.col("crawl_ai_fraction").fill_null(0.0) == 0.0)
    return joined.with_columns(
        pl.when(undefined).then(None).otherwise(pl.col(c)).alias(c) for c in ("filter_precision", "filter_recall")
    ).drop("filtered")
