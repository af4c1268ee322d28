"""``simweb report DIR``: figures and a self-contained HTML report for a run or a sweep.

Figures (PNG, matplotlib): model quality per generation per lab (bands over
replicates for a sweep), the AI share of the web over ticks, the training-set
contamination by the lab whose models wrote it, and the filter chain's
precision and recall. ``report.html`` embeds every image (no network needed)
and a summary table of each lab's last generation.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import polars as pl

from simweb.errors import SimwebError
from simweb.recorder import atomic_write

__all__ = ["make_report"]


def _load(directory: Path) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    gens, ticks = directory / "generations.parquet", directory / "ticks.parquet"
    if not gens.is_file() or not ticks.is_file():
        raise SimwebError(f"{directory}: not a run or sweep directory (no generations.parquet / ticks.parquet)")
    g, t = pl.read_parquet(gens), pl.read_parquet(ticks)
    kind = "sweep" if "point" in g.columns else "run"
    return g, t, kind


def _series_key(g: pl.DataFrame) -> list[str]:
    """Columns that name one curve: the lab, plus the grid values of a sweep."""
    fixed = {"point", "replicate", "run_id", "scenario", "seed"}
    grid = [c for c in g.columns[: g.columns.index("run_id")] if c not in fixed] if "point" in g.columns else []
    return ["lab"] + grid


def _label(row: dict, key: list[str]) -> str:
    return ", ".join(str(row[k]) if k == "lab" else f"{k}={row[k]}" for k in key)


def _bands(frame: pl.DataFrame, key: list[str], x: str, y: str) -> list[tuple[str, np.ndarray, np.ndarray,
                                                                              np.ndarray, np.ndarray]]:
    """Per curve: x, mean, and the band of ±1 standard deviation over replicates (zero for a single run)."""
    out = []
    agg = (frame.filter(pl.col(y).is_not_null())
           .group_by(key + [x], maintain_order=True)
           .agg(pl.col(y).mean().alias("mean"), pl.col(y).std().fill_null(0.0).alias("sd"))
           .sort(key + [x]))
    for part in agg.partition_by(key, maintain_order=True):
        first = part.row(0, named=True)
        xs, mean, sd = part[x].to_numpy(), part["mean"].to_numpy(), part["sd"].to_numpy()
        out.append((_label(first, key), xs, mean, mean - sd, mean + sd))
    return out


def _figure_png(draw) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    draw(ax)
    ax.grid(alpha=0.3)
    if ax.get_legend() is not None:  # beside the plot, where many labs do not hide the curves
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  ncol=1 if len(labels) <= 16 else 2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _curves(ax, bands, ylabel: str, xlabel: str) -> None:
    for label, xs, mean, lo, hi in bands:
        line, = ax.plot(xs, mean, marker="o", markersize=3, label=label)
        if np.any(hi > lo):
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if bands:
        ax.legend(fontsize=7, ncol=2)


def make_report(directory: str | Path) -> Path:
    """Write ``DIR/report/`` (PNG figures and report.html); returns the path of report.html."""
    directory = Path(directory)
    g, t, kind = _load(directory)
    key = _series_key(g)
    token = g["excess_nll"].null_count() < len(g) and g["tail_mass_ratio"].null_count() < len(g)
    quality = "excess_nll" if g["excess_nll"].null_count() < len(g) else "mean_sq_error"
    figures: dict[str, tuple[str, bytes]] = {}

    figures["quality"] = ("Model quality: excess NLL against human text (nats per token; 0 = perfect)",
                          _figure_png(lambda ax: _curves(ax, _bands(g, key, "generation", quality), quality,
                                                         "generation")))
    if token:
        figures["tails"] = ("Tail mass: share of the language's rarest tokens the model still writes (1 = intact)",
                            _figure_png(lambda ax: _curves(ax, _bands(g, key, "generation", "tail_mass_ratio"),
                                                           "tail_mass_ratio", "generation")))
        figures["observed"] = ("What a lab sees: NLL on its own web-scraped benchmark (solid) vs on human text",
                               _figure_png(lambda ax: _observed(ax, g, key)))
    web = t.group_by(["tick"] + [c for c in ("point", "replicate") if c in t.columns], maintain_order=True).agg(
        pl.col("web_ai_share").first())
    web_key = [c for c in t.columns[: t.columns.index("run_id")] if c not in ("point", "replicate")] \
        if "point" in t.columns else []
    if web_key:
        web = web.join(t.select(["point"] + web_key).unique(), on="point")
    figures["web"] = ("AI share of all pages on the web", _figure_png(
        lambda ax: _curves(ax, _bands(web.with_columns(pl.lit("web").alias("lab")), ["lab"] + web_key, "tick",
                                      "web_ai_share"), "AI share of pages", "tick")))
    figures["contamination"] = ("Training-set contamination: share written by each lab's models",
                                _figure_png(lambda ax: _contamination(ax, g)))
    figures["filters"] = ("Filter chain as a detector of AI pages: precision (solid) and recall (dashed)",
                          _figure_png(lambda ax: _filters(ax, g, key)))

    out = directory / "report"
    out.mkdir(exist_ok=True)
    for name, (_, png) in figures.items():
        atomic_write(out / f"{name}.png", png)
    page = _html(directory, kind, g, figures, key)
    atomic_write(out / "report.html", page)
    return out / "report.html"


def _observed(ax, g, key) -> None:
    for label, xs, mean, _, _ in _bands(g, key, "generation", "observed_nll"):
        line, = ax.plot(xs, mean, marker="o", markersize=3, label=f"{label} (observed)")
        human = _bands(g.filter(pl.col("observed_nll").is_not_null()), key, "generation", "human_nll")
        for hl, hx, hm, _, _ in human:
            if hl == label:
                ax.plot(hx, hm, linestyle="--", color=line.get_color(), label=f"{label} (human)")
    ax.set_xlabel("generation")
    ax.set_ylabel("NLL (nats per token)")
    ax.legend(fontsize=7, ncol=2)


def _contamination(ax, g) -> None:
    field_names = [f.name for f in g.schema["train_ai_fraction_by_lab"].fields]
    by = g.select("lab", "generation", pl.col("train_ai_fraction_by_lab").struct.unnest())
    agg = by.group_by(["lab", "generation"], maintain_order=True).agg([pl.col(f).mean() for f in field_names])
    for lab in agg["lab"].unique(maintain_order=True):
        part = agg.filter(pl.col("lab") == lab).sort("generation")
        for writer in field_names:
            ys = part[writer].to_numpy()
            if np.any(ys > 0):
                ax.plot(part["generation"].to_numpy(), ys, marker="o", markersize=3,
                        label=f"{lab} ← written by {writer}")
    ax.set_xlabel("generation")
    ax.set_ylabel("share of training set")
    ax.legend(fontsize=7, ncol=2)


def _filters(ax, g, key) -> None:
    for label, xs, mean, _, _ in _bands(g, key, "generation", "filter_precision"):
        line, = ax.plot(xs, mean, marker="o", markersize=3, label=f"{label} precision")
        for rl, rx, rm, _, _ in _bands(g, key, "generation", "filter_recall"):
            if rl == label:
                ax.plot(rx, rm, linestyle="--", color=line.get_color(), label=f"{label} recall")
    ax.set_xlabel("generation")
    ax.set_ylim(-0.05, 1.05)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2)
    else:
        ax.text(0.5, 0.5, "no lab filters its crawl", ha="center", va="center", transform=ax.transAxes)


def _html(directory: Path, kind: str, g: pl.DataFrame, figures, key) -> str:
    last = g.sort("generation").group_by(key, maintain_order=True).last()
    cols = [c for c in ["train_ai_fraction", "filter_precision", "filter_recall", "excess_nll", "observed_nll",
                        "tail_mass_ratio", "distinct_2", "mean_sq_error", "tv"] if last[c].null_count() < len(last)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in key + ["generation"] + cols)
    rows = []
    for row in last.iter_rows(named=True):
        cells = [html.escape(str(row[k])) for k in key + ["generation"]]
        cells += ["–" if row[c] is None else f"{row[c]:.4g}" for c in cols]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    images = "\n".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>" for title, png in figures.values())
    scenario = html.escape(str(g["scenario"][0])) if "scenario" in g.columns else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simweb report: {scenario}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}}
table{{border-collapse:collapse;font-size:.85rem}}td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}}
figure{{margin:1.5rem 0}}img{{max-width:100%}}figcaption{{font-size:.9rem;color:#555}}</style></head>
<body data-images="pending">
<h1>simweb report: {scenario}</h1>
<p>{html.escape(kind)} in <code>{html.escape(str(directory))}</code>; {len(g)} rows of generations.</p>
<h2>Last generation of each {'lab and grid point' if kind == 'sweep' else 'lab'}</h2>
<table><tr>{head}</tr>{''.join(rows)}</table>
{images}
<script>
window.addEventListener("load", function () {{
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
  document.body.dataset.images = ok + "/" + imgs.length;
}});
</script>
</body></html>
"""
