"""``simweb report DIR``: figures and a self-contained HTML report for a run or a sweep.

The report opens with what was simulated — the scenario's settings that differ
from the defaults, the seed(s), the simweb version and the run id(s) — then a
table of each lab's last generation (for a sweep: mean, standard deviation and
n over the seeds of each grid point), then the figures of :mod:`simweb.figures`.
``report.html`` embeds every image, so it needs no network.

What it reads is data, never trusted: a file that is not Parquet, or lacks a
column, is a :class:`~simweb.errors.SimwebError` naming the file. It writes
only ``DIR/report/`` and refuses a ``report`` that is a symbolic link, so a
run directory cannot send its report elsewhere.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from simweb import __version__, storage
from simweb.errors import SimwebError
from simweb.outputs import defined_detection, grid_column
from simweb.recorder import atomic_write
from simweb.schema import IDS, TICKS, generations_schema

__all__ = ["make_report", "load_report"]

# the last-generation table: column -> words (``{per}``: token or sample)
_TABLE = {
    "train_ai_fraction": "train AI share",
    "filter_precision": "filter precision",
    "filter_recall": "filter recall",
    "excess_nll": "excess NLL (nats per {per})",
    "observed_nll": "observed NLL (nats per {per})",
    "tail_mass_ratio": "tail mass ratio",
    "distinct_2": "distinct-2",
    "mean_sq_error": "squared error of the mean",
    "tv": "total variation",
}


@dataclass(frozen=True)
class Loaded:
    """A run or sweep directory, read and checked: what the figures and the page are made from."""

    kind: str  # "run" or "sweep"
    data: object  # simweb.figures.ReportData
    grid: list[tuple[str, str]]  # (column, path as given) of a sweep's grid
    header: list[tuple[str, str]]  # (name, value) lines of the header
    settings: list[tuple[str, str]]  # (path, TOML literal): the scenario's values that are not defaults
    runs: pl.DataFrame  # one row per run: grid values, seed, run_id


def make_report(directory: str | Path) -> Path:
    """Write ``DIR/report/`` (PNG figures and report.html); returns the path of report.html."""
    from simweb.figures import build_figures, png

    directory = storage.location(directory, "report")
    loaded = load_report(directory)
    out = _report_dir(directory)
    figures = build_figures(loaded.data)
    images = {name: (caption, png(fig)) for name, (caption, fig) in figures.items()}
    comparison = directory / "compare.parquet"  # written by `simweb compare DIR`
    if comparison.is_file() and not comparison.is_symlink():
        from simweb.compare import forest_png

        try:
            table = storage.read_parquet(comparison)
        except (OSError, pl.exceptions.PolarsError) as err:
            raise SimwebError(f"{str(comparison)!r} cannot be read: {str(err).splitlines()[0]}") from None
        images["compare"] = ("Each arm against its baseline (simweb compare): the mean difference and its 95 % "
                             "confidence interval, Holm-adjusted p-values in the table of compare.parquet",
                             forest_png(table))
    try:
        for name, (_, data) in images.items():
            atomic_write(out / f"{name}.png", data)
        atomic_write(out / "report.html", _html(directory, loaded, images))
    except OSError as err:
        raise SimwebError(f"cannot write the report into {str(out)!r}: {err.strerror or err}") from None
    return out / "report.html"


def _report_dir(directory: Path) -> Path:
    out = directory / "report"
    if out.is_symlink():
        raise SimwebError(f"{str(out)!r} is a symbolic link; simweb report writes only inside the run directory "
                          "and will not follow it (remove the link)")
    if out.exists() and not out.is_dir():
        raise SimwebError(f"{str(out)!r} exists and is not a directory")
    try:
        out.mkdir(exist_ok=True)
    except OSError as err:
        raise SimwebError(f"cannot write the report into {str(directory)!r}: {err.strerror or err}") from None
    return out


# ---------------------------------------------------------------- reading, checked
def load_report(directory: str | Path) -> Loaded:
    """Read a run or sweep directory into what the report shows; a SimwebError for anything it cannot use."""
    from simweb.figures import ReportData, lab_colours

    directory = storage.location(directory, "report")
    gens_file, ticks_file = directory / "generations.parquet", directory / "ticks.parquet"
    if not gens_file.is_file() or not ticks_file.is_file():
        raise SimwebError(f"{directory}: not a run or sweep directory (no generations.parquet / ticks.parquet)")
    g, t = _read(gens_file), _read(ticks_file)
    kind = "sweep" if "point" in g.columns else "run"
    lead = ["point", "replicate"] if kind == "sweep" else []
    _check(gens_file, g, {**{c: pl.Int64 for c in lead}, **generations_schema([])})
    _check(ticks_file, t, {**{c: pl.Int64 for c in lead}, **TICKS})
    if g.is_empty():
        raise SimwebError(f"{gens_file}: no rows")
    if kind == "sweep":
        g = g.with_columns(pl.col("point").cast(pl.Int64))
        spec = _sweep_spec(directory)
        grid = [(c, next((p for p in spec["paths"] if grid_column(p) == c), c)) for c in _grid_columns(g)]
        scenario, filtered = spec["scenario"], spec["filtered"]
        versions = _sweep_versions(directory, g)
    else:
        grid = []
        scenario = _scenario(directory / "scenario.toml")
        filtered = pl.DataFrame({"lab": [lab.name for lab in scenario.labs],
                                 "filtered": [bool(lab.filters) for lab in scenario.labs]})
        manifest = _json(directory / "manifest.json")
        versions = [str(manifest.get("simweb_version", "unknown"))]

    g = defined_detection(g, filtered)
    g, t, panels = _panels(g, t, grid)
    labs = [f.name for f in g.schema["train_ai_fraction_by_lab"].fields]
    labs += [lab for lab in g["lab"].unique(maintain_order=True).to_list() if lab not in labs]
    seeds_per_panel = g.group_by("panel").agg(pl.col("seed").n_unique())["seed"].to_list()
    data = ReportData(generations=g, ticks=t, panels=panels, colours=lab_colours(labs),
                      band=_band(kind, seeds_per_panel, g["seed"][0]),
                      per="token" if scenario.language.family == "markov" else "sample")

    from simweb.scenario.changes import changed_settings, literal

    settings = [(path, literal(value)) for path, value in changed_settings(scenario)]
    runs = g.select([c for c, _ in grid] + ["seed", "run_id"]).unique(maintain_order=True)
    seeds = g["seed"].unique(maintain_order=True).to_list()
    header = [("scenario", scenario.run.name)]
    if kind == "sweep":
        header += [("grid", "; ".join(f"{path} ∈ {{{', '.join(_show(v) for v in g[c].unique(maintain_order=True))}}}"
                                      for c, path in grid) or "none (seeds only)"),
                   ("seeds", f"{_seed_count(seeds_per_panel)} per grid point, from sweep seed {scenario.run.seed}: "
                             + ", ".join(str(s) for s in seeds)),
                   ("run ids", f"{len(runs)} runs (under “runs” below)")]
    else:
        header += [("seed", str(seeds[0])), ("run id", str(g["run_id"][0]))]
    header.append(("simweb version", ", ".join(sorted(set(versions)))
                   + ("" if set(versions) == {__version__} else f" (this report: {__version__})")))
    return Loaded(kind, data, grid, header, settings, runs)


def _read(path: Path) -> pl.DataFrame:
    try:
        return storage.read_parquet(path)
    except Exception as err:  # noqa: BLE001 — whatever the file holds, the user gets one line naming it
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SimwebError(f"{path}: not a readable Parquet file ({first[:200]})") from None


def _check(path: Path, frame: pl.DataFrame, expected: dict) -> None:
    """Every column the report uses is there, with a dtype of the same kind (integer, float, string, struct)."""
    def kind(dtype) -> str:
        if dtype.is_integer():
            return "integer"
        if dtype.is_float():
            return "float"
        return type(dtype).__name__ if not isinstance(dtype, type) else dtype.__name__

    for column, dtype in expected.items():
        if column not in frame.columns:
            raise SimwebError(f"{path}: no column {column!r}; was it written by simweb?")
        have = frame.schema[column]
        if kind(have) != kind(dtype) and not (kind(dtype) == "float" and have == pl.Null):
            raise SimwebError(f"{path}: column {column!r} is {have}, expected {kind(dtype)}")
    fields = frame.schema["train_ai_fraction_by_lab"].fields if "train_ai_fraction_by_lab" in expected else []
    if any(not f.dtype.is_float() for f in fields):
        raise SimwebError(f"{path}: train_ai_fraction_by_lab must hold floats")


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SimwebError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(value, dict):
        raise SimwebError(f"{path}: expected a JSON object")
    return value


def _scenario(path: Path):
    from simweb.scenario import load_scenario

    if not path.is_file():
        raise SimwebError(f"{path.parent}: not a run directory (no scenario.toml)")
    if storage.is_object(path):
        from simweb.scenario import parse_scenario

        return parse_scenario(path.read_text(encoding="utf-8"), source=str(path))
    return load_scenario(path)


def _sweep_spec(directory: Path) -> dict:
    """The sweep's base scenario, grid paths, and which labs filter at which point (from sweep.json)."""
    from simweb.scenario import parse_scenario
    from simweb.sweep import expand_grid

    spec = _json(directory / "sweep.json")
    if not spec:
        raise SimwebError(f"{directory}: not a sweep directory (no sweep.json)")
    try:
        text, grid, seeds, seed = spec["scenario"], list(spec["grid"]), int(spec["seeds"]), int(spec["seed"])
    except (KeyError, TypeError, ValueError):
        raise SimwebError(f"{directory / 'sweep.json'}: expected scenario, grid, seeds and seed") from None
    base = parse_scenario(text, source=str(directory / "sweep.json"))
    points = expand_grid(grid, seeds, seed)
    rows, cache = [], {}
    for p in points:
        if p.grid not in cache:
            cache[p.grid] = parse_scenario(text, p.overrides[:-1], source=str(directory / "sweep.json")).labs
        rows += [{"point": p.index, "lab": lab.name, "filtered": bool(lab.filters)} for lab in cache[p.grid]]
    filtered = pl.DataFrame(rows, schema={"point": pl.Int64, "lab": pl.String, "filtered": pl.Boolean})
    return {"scenario": base, "paths": [item.split("=", 1)[0].strip() for item in grid], "filtered": filtered}


def _sweep_versions(directory: Path, g: pl.DataFrame) -> list[str]:
    versions = []
    for point in g["point"].unique().sort().to_list():
        manifest = _json(directory / "runs" / f"p{int(point):05d}" / "manifest.json")
        if manifest:
            versions.append(str(manifest.get("simweb_version", "unknown")))
    return versions or ["unknown"]


def _grid_columns(g: pl.DataFrame) -> list[str]:
    """A sweep's grid columns: those between ``replicate`` and the ids."""
    first_id = min(g.columns.index(c) for c in IDS)
    return [c for c in g.columns[:first_id] if c not in ("point", "replicate")]


def _panels(g: pl.DataFrame, t: pl.DataFrame, grid: list[tuple[str, str]]):
    """Number the grid points in point order (a ``panel`` column) and title each with its grid values."""
    columns = [c for c, _ in grid]
    if not columns:
        return g.with_columns(pl.lit(0).alias("panel")), t.with_columns(pl.lit(0).alias("panel")), [""]
    combos = g.sort("point").select(columns).unique(maintain_order=True).with_row_index("panel")
    combos = combos.with_columns(pl.col("panel").cast(pl.Int64))
    titles = [", ".join(f"{path} = {_show(row[c])}" for c, path in grid) for row in combos.iter_rows(named=True)]
    return (g.join(combos, on=columns, how="left", maintain_order="left"),
            t.join(combos, on=columns, how="left", maintain_order="left"), titles)


def _band(kind: str, seeds_per_panel: list[int], seed: int) -> str:
    if kind == "run":
        return f"one run (seed {seed}); no band"
    if max(seeds_per_panel) == 1:
        return "one seed per grid point; no band"
    return f"lines: mean over seeds; band: ±1 SD over n = {_seed_count(seeds_per_panel)} seeds per grid point"


def _seed_count(seeds_per_panel: list[int]) -> str:
    lo, hi = min(seeds_per_panel), max(seeds_per_panel)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _show(value) -> str:
    from simweb.scenario.changes import literal

    return literal(value)


# ---------------------------------------------------------------- the page
def _last_generation(loaded: Loaded) -> tuple[list[str], pl.DataFrame]:
    """Each (grid point, lab) at its last generation: per metric the mean, SD and n over seeds."""
    g = loaded.data.generations
    metrics = [c for c in _TABLE if c in g.columns and g[c].null_count() < len(g)]
    key = [c for c, _ in loaded.grid] + ["lab"]
    last = g.join(g.group_by(["panel", "lab"]).agg(pl.col("generation").max().alias("_last")),
                  on=["panel", "lab"], maintain_order="left").filter(pl.col("generation") == pl.col("_last"))
    stats = (last.group_by(["panel"] + key + ["generation"], maintain_order=True)
             .agg([e for c in metrics for e in (pl.col(c).mean().alias(f"{c}:mean"), pl.col(c).std().alias(f"{c}:sd"),
                                                pl.col(c).count().alias(f"{c}:n"))])
             .sort("panel", maintain_order=True))
    return metrics, stats


def _number(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _table(loaded: Loaded) -> str:
    metrics, stats = _last_generation(loaded)
    per = loaded.data.per
    key = [path for _, path in loaded.grid] + ["lab", "generation"]
    names = [_TABLE[m].format(per=per) for m in metrics]
    sweep = loaded.kind == "sweep"
    if sweep:
        head = ("<tr>" + "".join(f'<th rowspan="2" scope="col">{html.escape(k)}</th>' for k in key)
                + "".join(f'<th colspan="3" scope="colgroup" data-metric="{m}">{html.escape(n)}</th>'
                          for m, n in zip(metrics, names)) + "</tr>\n<tr>"
                + '<th scope="col">mean</th><th scope="col">SD</th><th scope="col">n</th>' * len(metrics) + "</tr>")
    else:
        head = ("<tr>" + "".join(f'<th scope="col">{html.escape(k)}</th>' for k in key)
                + "".join(f'<th scope="col" data-metric="{m}">{html.escape(n)}</th>' for m, n in zip(metrics, names))
                + "</tr>")
    rows = []
    for row in stats.iter_rows(named=True):
        cells = [_show(row[c]) for c, _ in loaded.grid] + [html.escape(row["lab"]), str(row["generation"])]
        for m in metrics:
            n = row[f"{m}:n"]
            mean = _number(row[f"{m}:mean"])
            cells += [mean, _number(row[f"{m}:sd"]) if n >= 2 else "–", str(n)] if sweep else [mean]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    what = ("mean, standard deviation (SD) and number of seeds (n) with a value, per grid point and lab"
            if sweep else "one run")
    return (f'<table class="last-generation"><caption>Each lab\'s last generation: {what}; '
            f'“–”: undefined (a filter score of a lab without filters, or SD of one value)</caption>\n'
            f"<thead>{head}</thead>\n<tbody>{''.join(rows)}</tbody></table>")


def _html(directory: Path, loaded: Loaded, images: dict[str, tuple[str, bytes]]) -> str:
    scenario = html.escape(loaded.header[0][1])
    facts = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in loaded.header)
    settings = "".join(f"<tr><td><code>{html.escape(p)}</code></td><td><code>{html.escape(v)}</code></td></tr>"
                       for p, v in loaded.settings) or '<tr><td colspan="2">every value is a default</td></tr>'
    runs = ""
    if loaded.kind == "sweep":
        cols = [c for c, _ in loaded.grid] + ["seed", "run_id"]
        names = [p for _, p in loaded.grid] + ["seed", "run id"]
        runs = ("<details><summary>runs</summary><table class=\"runs\"><thead><tr>"
                + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(_show(r[c]) if c in dict(loaded.grid) else str(r[c]))}"
                                           "</td>" for c in cols) + "</tr>"
                          for r in loaded.runs.iter_rows(named=True))
                + "</tbody></table></details>")
    figures = "\n".join(
        f'<figure id="fig-{name}"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>" for name, (caption, data) in images.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simweb report: {scenario}</title>
<style>body{{font-family:sans-serif;max-width:72rem;margin:2rem auto;color:#222}}
table{{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}}td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}}
caption{{text-align:left;font-size:.9rem;color:#555;padding:.3rem 0}}dl{{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}}
dt{{font-weight:bold}}dd{{margin:0}}.settings td{{text-align:left}}
figure{{margin:1.5rem 0}}img{{max-width:100%}}figcaption{{font-size:.9rem;color:#555}}</style></head>
<body data-images="pending">
<header id="provenance">
<h1>simweb report: {scenario}</h1>
<p>{html.escape(loaded.kind)} in <code>{html.escape(str(directory))}</code></p>
<dl>{facts}</dl>
<table class="settings"><caption>Settings that differ from the defaults{' (the sweep’s base scenario; the grid overrides them)' if loaded.kind == 'sweep' else ''}</caption>
<thead><tr><th>path</th><th>value</th></tr></thead><tbody>{settings}</tbody></table>
{runs}
</header>
<main>
<h2>Last generation of each {'lab and grid point' if loaded.kind == 'sweep' else 'lab'}</h2>
{_table(loaded)}
{figures}
</main>
<script>
window.addEventListener("load", function () {{
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
  document.body.dataset.images = ok + "/" + imgs.length;
}});
</script>
</body></html>
"""
