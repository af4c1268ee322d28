"""The report's figure of the human writers' own drift from the truth (issue 19): per publisher population,
the excess NLL of its new human pages of each tick against the truth of that tick (``ticks.human_excess_nll``),
beside their imitation share. It appears only for runs whose humans imitate (``publishers[].imitation``)."""

from __future__ import annotations

import polars as pl
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["human_drift"]


def human_drift(data) -> tuple[str, Figure]:
    from simweb.figures import _axes, _caption, _curves, _draw, _finish

    title = "The human writers' drift from the truth, by publisher population"
    t = data.ticks
    populations = t["population"].unique(maintain_order=True).to_list()
    palette = colormaps["Dark2"].colors
    colours = {p: to_hex(palette[i % len(palette)]) for i, p in enumerate(populations)}
    rows = len(data.panels)
    fig = Figure(figsize=(9.5, 3.2 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    panels = ((f"human_excess_nll", f"excess NLL of its new human pages (nats per {data.per})",
               "against the truth of their tick (0 = the truth)"),
              ("human_imitation", "share of model-drawn tokens", "imitation of its new human pages"))
    for panel in range(rows):
        for col, (column, ylabel, what) in enumerate(panels):
            ax = axes[panel][col]
            for pop in populations:
                part = t.filter(pl.col("population") == pop).with_columns(pl.lit(pop).alias("lab"))
                for _, xs, mean, sd in _curves(part, panel, "tick", column):
                    _draw(ax, xs, mean, sd, colour=colours[pop], label=pop)
            where = data.panels[panel]
            _axes(ax, f"{where}\n{what}" if where else what, "tick (time step)", ylabel, t["tick"])
    handles = [Line2D([], [], color=colours[p], marker="o", markersize=3, label=p) for p in populations]
    _finish(fig, title, data, handles)
    return _caption(title, data), fig
