"""What a run prints for a person: the lab × generation table and where the files are."""

from __future__ import annotations

import polars as pl
from rich.console import Console
from rich.table import Table

__all__ = ["print_summary"]


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def print_summary(results, out, console: Console) -> None:
    g = results.generations
    token = g["tail_mass_ratio"].null_count() < len(g)
    table = Table(title=f"{results.manifest['scenario']} (seed {results.manifest['seed']}): model quality by generation",
                  title_justify="left")
    for name, justify in [("lab", "left"), ("gen", "right"), ("tick", "right"), ("train AI share", "right"),
                          ("excess NLL", "right"), ("observed NLL", "right")]:
        table.add_column(name, justify=justify)
    if token:
        table.add_column("tail mass", justify="right")
        table.add_column("distinct-2", justify="right")
    else:
        table.add_column("mean sq. error" if "mean_sq_error" in g.columns and g["mean_sq_error"].null_count() < len(g)
                         else "TV", justify="right")
    gaussian = g["mean_sq_error"].null_count() < len(g)
    for row in g.iter_rows(named=True):
        cells = [row["lab"], str(row["generation"]), str(row["tick"]), _fmt(row["train_ai_fraction"], ".1%"),
                 _fmt(row["excess_nll"], ".3f"), _fmt(row["observed_nll"], ".3f")]
        if token:
            cells += [_fmt(row["tail_mass_ratio"], ".2f"), _fmt(row["distinct_2"], ".3f")]
        else:
            cells.append(_fmt(row["mean_sq_error"] if gaussian else row["tv"], ".4f"))
        table.add_row(*cells)
    console.print(table)
    t = results.ticks.filter(pl.col("tick") == pl.col("tick").max())
    if len(t):
        web_share = t["web_ai_share"][0]
        console.print(f"web after {results.manifest['ticks']} ticks: {results.manifest['pages']:,} pages on "
                      f"{results.manifest['sites']:,} sites, {_fmt(web_share, '.1%')} AI-written; "
                      f"wall time {results.manifest['wall_time_s']:.1f} s")
    if out is not None:
        console.print(f"results in {out}/ (generations.parquet, ticks.parquet, crawls.parquet, "
                      "scenario.toml, manifest.json)")
