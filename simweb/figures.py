"""The report's figures: one matplotlib Figure per question, built from a run's or a sweep's frames.

Conventions every figure keeps, so that figures can be read side by side:

- a lab has one colour in every figure (:func:`lab_colours`);
- a sweep's grid points are separate panels, titled with their grid values;
  a curve is the mean over the seeds of a grid point, its band ±1 standard
  deviation over them, and the figure's title says so and with how many seeds;
- a value that is undefined (a filter's precision when no AI page was fetched,
  say) is a gap in its curve, never 0 and never bridged by a line;
- generations and ticks sit on integer axes; axis labels are words with units.

Builders return the Figure unsaved, so tests read its state (titles, labels,
line colours) rather than pixels; :func:`png` renders one.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

__all__ = ["ReportData", "lab_colours", "build_figures", "png"]

WHOLE_WEB = "#222222"  # the whole web's line in the web figure: no population's colour


@dataclass(frozen=True)
class ReportData:
    """What the figures draw.

    ``generations`` and ``ticks`` carry a ``panel`` column (the index of the grid
    point in ``panels``; 0 for a run) and a ``seed`` column; ``generations``' filter
    precision and recall are already null where undefined.
    """

    generations: pl.DataFrame
    ticks: pl.DataFrame
    panels: list[str]  # a title per grid point ("" for a run)
    colours: dict[str, str]  # lab -> colour
    band: str  # what a band is, for titles: "band: ±1 SD over n = 3 seeds" or "one run (seed 7)"
    per: str  # "token" for the token languages, "sample" for gaussian and categorical


def lab_colours(labs: list[str]) -> dict[str, str]:
    """A fixed colour per lab, in the scenario's lab order: tab10, tab20 past 10 labs, evenly spaced hues past 20."""
    n = len(labs)
    if n <= 10:
        palette = [to_hex(c) for c in colormaps["tab10"].colors[:n]]
    elif n <= 20:
        palette = [to_hex(c) for c in colormaps["tab20"].colors[:n]]
    else:
        palette = [to_hex(colormaps["hsv"](i / n)) for i in range(n)]
    return dict(zip(labs, palette))


def build_figures(data: ReportData) -> dict[str, tuple[str, Figure]]:
    """Every figure the report shows: name -> (caption, Figure). Which appear depends on the family."""
    g = data.generations
    token = _has(g, "excess_nll") and _has(g, "tail_mass_ratio")
    figures: dict[str, tuple[str, Figure]] = {}
    if _has(g, "excess_nll"):
        figures["quality"] = _metric(data, "excess_nll", f"excess NLL against human text (nats per {data.per})",
                                     f"Model quality: excess NLL against human text (0 = the true language)")
    else:
        figures["quality"] = _metric(data, "mean_sq_error", "squared error of the mean ‖μ − μ*‖²",
                                     "Model quality: squared error of the fitted mean (0 = the truth)")
    if token:
        figures["tails"] = _metric(data, "tail_mass_ratio", "tail mass ratio (sampled ÷ true; 1 = intact)",
                                   "Tail mass: share of the rarest tokens' true mass the model still writes")
        figures["observed"] = _observed(data)
    figures["web"] = _web(data)
    figures["contamination"] = _contamination(data)
    figures["filters"] = _filters(data)
    if _has(g, "spend") and g["spend"].fill_null(0.0).sum() > 0 and _has(g, "excess_nll"):
        figures["spend"] = _spend(data)
    if _has(data.ticks, "human_excess_nll") and data.ticks["human_imitation"].fill_null(0.0).max() > 0:
        from simweb.figures_humans import human_drift

        figures["human_drift"] = human_drift(data)
    return figures


def png(fig: Figure, *, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


# ---------------------------------------------------------------- one figure per question
def _metric(data: ReportData, column: str, ylabel: str, title: str) -> tuple[str, Figure]:
    fig, axes = _panels(data, len(data.panels))
    for panel, ax in enumerate(axes):
        for lab, xs, mean, sd in _curves(data.generations, panel, "generation", column):
            _draw(ax, xs, mean, sd, colour=data.colours[lab], label=lab)
        _axes(ax, data.panels[panel], "generation (model release)", ylabel, data.generations["generation"])
    _finish(fig, title, data, _lab_handles(data))
    return _caption(title, data), fig


def _observed(data: ReportData) -> tuple[str, Figure]:
    title = "What a lab sees: NLL on its own web-scraped benchmark (solid) and on fresh human text (dashed)"
    fig, axes = _panels(data, len(data.panels))
    for panel, ax in enumerate(axes):
        for column, style, word in (("observed_nll", "-", "observed"), ("human_nll", "--", "human")):
            for lab, xs, mean, sd in _curves(data.generations, panel, "generation", column):
                _draw(ax, xs, mean, sd, colour=data.colours[lab], label=f"{lab} ({word})", linestyle=style)
        _axes(ax, data.panels[panel], "generation (model release)", f"NLL (nats per {data.per})",
              data.generations["generation"])
    styles = [Line2D([], [], color="grey", linestyle="-", label="on its benchmark (observed)"),
              Line2D([], [], color="grey", linestyle="--", label="on human text (truth)")]
    _finish(fig, title, data, _lab_handles(data) + styles)
    return _caption(title, data), fig


def _spend(data: ReportData) -> tuple[str, Figure]:
    """Licences: excess NLL against what the lab has paid so far (NLL per dollar, read off the slope)."""
    title = "What data bought: excess NLL against cumulative spend on licences"
    keys = [c for c in ("panel", "lab", "seed", "replicate") if c in data.generations.columns]
    g = data.generations.sort("generation").with_columns(
        pl.col("spend").fill_null(0.0).cum_sum().over(keys).alias("cumulative_spend"))
    fig, axes = _panels(data, len(data.panels))
    for panel, ax in enumerate(axes):
        for lab, xs, mean, sd in _curves(g, panel, "cumulative_spend", "excess_nll"):
            _draw(ax, xs, mean, sd, colour=data.colours[lab], label=lab)
        _axes(ax, data.panels[panel], "cumulative spend on licences (the scenario's currency unit)",
              f"excess NLL (nats per {data.per})")
        ax.xaxis.set_major_locator(MaxNLocator())  # money is not an integer axis
    _finish(fig, title, data, _lab_handles(data))
    return _caption(title, data), fig


def _filters(data: ReportData) -> tuple[str, Figure]:
    title = "Filter chain as a detector of AI pages: precision (solid) and recall (dashed)"
    fig, axes = _panels(data, len(data.panels))
    drawn = False
    for panel, ax in enumerate(axes):
        for column, style, word in (("filter_precision", "-", "precision"), ("filter_recall", "--", "recall")):
            for lab, xs, mean, sd in _curves(data.generations, panel, "generation", column):
                if np.isfinite(mean).any():
                    _draw(ax, xs, mean, sd, colour=data.colours[lab], label=f"{lab} {word}", linestyle=style)
                    drawn = True
        _axes(ax, data.panels[panel], "generation (model release)", "share (0–1)", data.generations["generation"])
        ax.set_ylim(-0.05, 1.05)
    if not drawn:
        axes[0].text(0.5, 0.5, "no lab filters its crawl", ha="center", va="center", transform=axes[0].transAxes)
    styles = [Line2D([], [], color="grey", linestyle="-", label="precision: AI share of what it dropped"),
              Line2D([], [], color="grey", linestyle="--", label="recall: share of fetched AI pages dropped")]
    _finish(fig, title, data, _lab_handles(data) + styles)
    caption = _caption(title, data) + "; missing where undefined: no filter, or no AI page fetched"
    return caption, fig


def _web(data: ReportData) -> tuple[str, Figure]:
    """Per grid point, two panels: AI share of the pages published each tick, and of all pages so far."""
    title = "AI-written share of the web, by publisher population"
    t = data.ticks
    populations = t["population"].unique(maintain_order=True).to_list()
    palette = colormaps["Dark2"].colors
    colours = {p: to_hex(palette[i % len(palette)]) for i, p in enumerate(populations)}
    rows = len(data.panels)
    fig = Figure(figsize=(9.5, 3.2 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for panel in range(rows):
        for col, (column, what) in enumerate((("ai_share_new", "of the pages published that tick"),
                                              ("ai_share_all", "of all its pages so far"))):
            ax = axes[panel][col]
            for pop in populations:
                part = t.filter(pl.col("population") == pop)
                for _, xs, mean, sd in _curves(part.with_columns(pl.lit(pop).alias("lab")), panel, "tick", column):
                    _draw(ax, xs, mean, sd, colour=colours[pop], label=pop)
            if column == "ai_share_all":  # the whole web: one value per tick, the same in every population's row
                whole = t.filter(pl.col("population") == populations[0]).with_columns(pl.lit("web").alias("lab"))
                for _, xs, mean, sd in _curves(whole, panel, "tick", "web_ai_share"):
                    _draw(ax, xs, mean, sd, colour=WHOLE_WEB, label="whole web", linestyle=":")
            where = data.panels[panel]
            _axes(ax, f"{where}\n{what}" if where else what, "tick (time step)", "AI-written share of pages", t["tick"])
            ax.set_ylim(-0.03, 1.03)
    handles = [Line2D([], [], color=colours[p], marker="o", markersize=3, label=p) for p in populations]
    handles.append(Line2D([], [], color=WHOLE_WEB, linestyle=":", label="whole web (all populations)"))
    _finish(fig, title, data, handles)
    return _caption(title, data), fig


def _contamination(data: ReportData) -> tuple[str, Figure]:
    """One panel per (grid point, training lab); a curve per lab whose models wrote part of its training set."""
    title = "Training-set contamination: share of each lab's training set written by each lab's models"
    g = data.generations
    sources = [f.name for f in g.schema["train_ai_fraction_by_lab"].fields]
    long = g.select("panel", "seed", "lab", "generation",
                    *[pl.col("train_ai_fraction_by_lab").struct.field(s).alias(f"_from_{i}")
                      for i, s in enumerate(sources)])
    trainees = g["lab"].unique(maintain_order=True).to_list()
    cells = [(panel, lab) for panel in range(len(data.panels)) for lab in trainees]
    # a row per grid point when the labs fit in one
    fig, axes = _panels(data, len(cells), ncols=len(trainees) if len(trainees) <= 4 else 3)
    for (panel, trainee), ax in zip(cells, axes):
        part = long.filter(pl.col("lab") == trainee)
        for i, source in enumerate(sources):
            for _, xs, mean, sd in _curves(part, panel, "generation", f"_from_{i}"):
                if np.nanmax(mean, initial=0.0) > 0:
                    _draw(ax, xs, mean, sd, colour=data.colours[source], label=f"{trainee} ← {source}")
        where = data.panels[panel]
        _axes(ax, f"{where}\n{trainee} trains on" if where else f"{trainee} trains on",
              "generation (model release)", "share of training set", g["generation"])
    _finish(fig, title, data, _lab_handles(data, prefix="written by "))
    return _caption(title, data), fig


# ---------------------------------------------------------------- plumbing
def _has(g: pl.DataFrame, column: str) -> bool:
    return column in g.columns and g[column].null_count() < len(g)


def _curves(frame: pl.DataFrame, panel: int, x: str, y: str) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per lab of one panel: every x it has, the mean of ``y`` over seeds (NaN where none is defined) and its SD."""
    part = frame.filter(pl.col("panel") == panel)
    if part.is_empty():
        return []
    agg = (part.group_by(["lab", x], maintain_order=True)
           .agg(pl.col(y).mean().alias("mean"), pl.col(y).std().alias("sd"))
           .sort(x))
    out = []
    for lab in part["lab"].unique(maintain_order=True).to_list():
        rows = agg.filter(pl.col("lab") == lab)
        out.append((lab, rows[x].to_numpy(), rows["mean"].fill_null(np.nan).to_numpy().astype(float),
                    rows["sd"].fill_null(np.nan).to_numpy().astype(float)))
    return out


def _draw(ax, xs, mean, sd, *, colour: str, label: str, linestyle: str = "-") -> None:
    # NaN breaks the line: an undefined value is a gap, not a zero and not a bridge
    ax.plot(xs, mean, color=colour, linestyle=linestyle, marker="o", markersize=3, label=label)
    band = np.isfinite(mean) & np.isfinite(sd) & (sd > 0)
    if band.any():
        ax.fill_between(xs, mean - sd, mean + sd, where=band, color=colour, alpha=0.18, linewidth=0)


def _panels(data: ReportData, n: int, ncols: int = 3):
    ncols = min(ncols, max(n, 1))
    nrows = math.ceil(max(n, 1) / ncols)
    fig = Figure(figsize=(max(4.4 * ncols, 6.5) + 0.4, 3.3 * nrows + 0.9), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:max(n, 1)]


def _axes(ax, title: str, xlabel: str, ylabel: str, xs: pl.Series | None = None) -> None:
    if xs is not None and len(xs):  # the whole range, also where a curve starts with missing values
        ax.set_xlim(xs.min() - 0.3, xs.max() + 0.3)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _lab_handles(data: ReportData, prefix: str = "") -> list[Line2D]:
    return [Line2D([], [], color=colour, marker="o", markersize=3, label=f"{prefix}{lab}")
            for lab, colour in data.colours.items()]


def _finish(fig: Figure, title: str, data: ReportData, handles: list[Line2D]) -> None:
    fig.suptitle(f"{title}\n{data.band}", fontsize=10)
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False,
               ncols=1 if len(handles) <= 18 else 2)


def _caption(title: str, data: ReportData) -> str:
    return f"{title}. {data.band[0].upper()}{data.band[1:]}"
