"""What a run prints for a person: the lab × generation table and where the files are."""

from __future__ import annotations

import polars as pl
from rich.console import Console
from rich.table import Table

__all__ = ["print_summary"]


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _times(manifest: dict) -> str:
    """The whole time of the run, and its parts: the simulation, and starting and stopping Ray."""
    sim = manifest["wall_time_s"]
    total = manifest.get("total_s")
    if total is None:
        return f"wall time {sim:.1f} s"
    ray = manifest.get("startup_s", 0.0) + manifest.get("shutdown_s", 0.0)
    parts = f"simulation {sim:.1f} s" + (f", Ray start and stop {ray:.1f} s" if ray > 0.05 else "")
    return f"wall time {total:.1f} s ({parts})"


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
    console.print(table if g["lab"].n_unique() <= 3 else _side_by_side(_detection(results), token))
    if "spend" in g.columns:  # licences: what each lab paid, beside what it got
        console.print(_spend(g))
    if "new_topic_recall" in g.columns:  # new topics are born: how each lab keeps up with the present
        console.print(_present(g))
    t = results.ticks.filter(pl.col("tick") == pl.col("tick").max())
    if len(t):
        web_share = t["web_ai_share"][0]
        console.print(f"web after {results.manifest['ticks']} ticks: {results.manifest['pages']:,} pages on "
                      f"{results.manifest['sites']:,} sites, {_fmt(web_share, '.1%')} AI-written; "
                      f"{_times(results.manifest)}")
    if out is not None:
        console.print(f"results in {out}/ (generations.parquet, ticks.parquet, crawls.parquet, "
                      "contamination.parquet, scenario.toml, manifest.json)")


def _detection(results) -> pl.DataFrame:
    """Generations with the filter chain's precision and recall null for a lab without filters (not "0")."""
    from simweb.outputs import defined_detection

    c = results.crawls
    filtered = c.group_by("lab").agg((pl.col("step") > 0).any().alias("filtered")) if len(c) else \
        pl.DataFrame(schema={"lab": pl.String, "filtered": pl.Boolean})
    return defined_detection(results.generations, filtered)


def _side_by_side(g: pl.DataFrame, token: bool) -> Table:
    """Many labs: one row each, generation 0 beside the last generation."""
    table = Table(title="policies side by side: generation 0 → last generation", title_justify="left")
    cols = [("lab", "left"), ("gens", "right"), ("train AI share", "right"), ("filter precision / recall", "right"),
            ("excess NLL", "right"), ("observed NLL", "right")]
    if token:
        cols.append(("tail mass", "right"))
    for name, justify in cols:
        table.add_column(name, justify=justify)
    for lab in g["lab"].unique(maintain_order=True):
        rows = g.filter(pl.col("lab") == lab).sort("generation")
        first, last = rows.row(0, named=True), rows.row(-1, named=True)
        cells = [lab, str(last["generation"] + 1), _fmt(last["train_ai_fraction"], ".1%"),
                 f"{_fmt(last['filter_precision'], '.2f')} / {_fmt(last['filter_recall'], '.2f')}",
                 f"{_fmt(first['excess_nll'], '.3f')} → {_fmt(last['excess_nll'], '.3f')}",
                 f"{_fmt(first['observed_nll'], '.3f')} → {_fmt(last['observed_nll'], '.3f')}"]
        if token:
            cells.append(f"{_fmt(first['tail_mass_ratio'], '.2f')} → {_fmt(last['tail_mass_ratio'], '.2f')}")
        table.add_row(*cells)
    return table


def _spend(g: pl.DataFrame) -> Table:
    """Licences: each lab's cumulative spend and its excess NLL, generation by generation (NLL against dollars)."""
    table = Table(title="licences: excess NLL against cumulative spend", title_justify="left")
    for name, justify in [("lab", "left"), ("licensed docs / gen", "right"), ("spend so far", "right"),
                          ("excess NLL: gen 0 → last", "right")]:
        table.add_column(name, justify=justify)
    for lab in g["lab"].unique(maintain_order=True):
        rows = g.filter(pl.col("lab") == lab).sort("generation")
        first, last = rows.row(0, named=True), rows.row(-1, named=True)
        table.add_row(lab, str(last["licensed_docs"]), f"{rows['spend'].sum():,.4g}",
                      f"{_fmt(first['excess_nll'], '.3f')} → {_fmt(last['excess_nll'], '.3f')}")
    return table


def _present(g: pl.DataFrame) -> Table:
    """A moving truth: each lab's last generation against the present — staleness, what is new, data age."""
    table = Table(title="a world that moves: each lab's first → last generation against the present",
                  title_justify="left")
    for name in ("lab", "ticks", "excess NLL", "staleness (last)", "new-topic recall (last)",
                 "new-token mass (last)", "data age (last)"):
        table.add_column(name, justify="left" if name == "lab" else "right")
    for lab in g["lab"].unique(maintain_order=True):
        rows = g.filter(pl.col("lab") == lab).sort("generation")
        first, last = rows.row(0, named=True), rows.row(-1, named=True)
        table.add_row(lab, f"{first['tick']} → {last['tick']}",
                      f"{_fmt(first['excess_nll'], '.3f')} → {_fmt(last['excess_nll'], '.3f')}",
                      _fmt(last["staleness"], "+.3f"), _fmt(last["new_topic_recall"], ".3f"),
                      _fmt(last["new_token_mass_ratio"], ".3f"), _fmt(last["data_age"], ".1f"))
    return table
