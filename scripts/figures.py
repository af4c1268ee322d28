"""Figures that stay true: README.md's and BENCHMARKS.md's benchmark tables, made from bench JSON.

``python scripts/bench.py --json FILE`` writes every figure with the machine and commit it was
measured on. ``BENCHMARKS.json`` (beside BENCHMARKS.md) keeps the latest such figures of every
section, each with its own provenance; it is the single source of the documents' figures. In
README.md and BENCHMARKS.md a generated block sits between marker comments::

    <!-- bench:speed -->
    ...generated, ending with where and when it was measured...
    <!-- /bench:speed -->

Run from the repository root::

    python scripts/bench.py --json /tmp/bench.json    # measure, on a quiet machine, full sizes
    python scripts/figures.py /tmp/bench.json         # merge it into BENCHMARKS.json, rewrite every block
    python scripts/figures.py                         # rewrite the blocks from BENCHMARKS.json alone
    python scripts/figures.py --check                 # do the documents say what BENCHMARKS.json says?
    python scripts/figures.py --check /tmp/new.json --tolerance 0.25   # ... and a fresh run, within 25 %?

    python scripts/bench.py --quick --only sampler,pure_loop --json /tmp/quick.json
    python scripts/figures.py --ratios /tmp/quick.json   # CI: ratios >= 0.5x the documented ones

``--check`` compares each block's text with what the figures give: words must be equal, and every
number within ``--tolerance`` (relative; default 2 %, rounding slack). Against a fresh run (JSON
files given) the provenance lines are not compared: a new run has its own commit and date.
``--ratios`` compares only ratios of simweb against its own references measured in the same run
(``RATIOS``): absolute times vary between machines by 2x and more, ratios much less. A ratio below
``RATIO_FLOOR`` x its documented value fails; above it passes, and a ratio that has grown past
1.5x says the documents could be refreshed. Exit status: 0 agreed, 1 a mismatch or a regression,
2 a usage error (a missing file, an unknown block, a quick run offered as documentation).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "BENCHMARKS.json"
DOCS = (REPO / "README.md", REPO / "BENCHMARKS.md")
TOLERANCE = 0.02  # --check: relative difference allowed per number (rounding), unless --tolerance says otherwise
RATIO_FLOOR = 0.5  # --ratios: a quick run's ratio must be at least this share of the documented one
RATIOS = {  # section.path.to.ratio -> what it compares; every one is "simweb's speed / its reference's"
    "sampler.simweb_over_alias_ref": "ngram sampling: simweb / the plain-numpy alias reference (tokens/s)",
    "pure_loop.loops.gaussian.simweb_over_bare": "gaussian paper loop: simweb / the same fits in bare numpy",
    "pure_loop.loops.categorical.simweb_over_bare": "categorical paper loop: simweb / the same fits in bare numpy",
}
MARKER = re.compile(r"<!-- bench:([a-z0-9_]+) -->(.*?)<!-- /bench:\1 -->", re.S)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
PROVENANCE = re.compile(r"commit `[0-9a-f]+`(?: \(with local changes\))?|\d{4}-\d{2}-\d{2}")


class Usage(Exception):
    """A wrong command or input (exit 2), as opposed to figures that disagree (exit 1)."""


# ------------------------------------------------------------------ reading bench JSON

def load_sources(paths: list[Path], *, allow_quick: bool = False) -> dict[str, dict]:
    """Sections of bench JSON files, each with its run's provenance; a later file's section wins."""
    sections = {}
    for path in paths:
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise Usage(f"{path}: cannot read bench JSON: {err}") from None
        if "sections" not in report:
            raise Usage(f"{path}: not a bench JSON (no 'sections'); write one with scripts/bench.py --json")
        if report.get("quick") and not allow_quick:
            raise Usage(f"{path}: a --quick run; its sizes are not the documented ones (--allow-quick to use it)")
        for name, section in report["sections"].items():
            provenance = section.get("provenance") or {"machine": report.get("machine", {}),
                                                       "quick": report.get("quick", False)}
            sections[name] = {**section, "provenance": provenance}
    return sections


def lookup(sections: dict, dotted: str):
    """``section.key.key`` in the sections, or None."""
    value = sections
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# ------------------------------------------------------------------ formatting

def num(x: float, digits: int = 3) -> str:
    """``digits`` significant figures, thousands separated: 19.5, 706, 58,500, 0.0195."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exp = math.floor(math.log10(abs(x)))
    if exp >= digits:  # 58,512 -> 58,500
        return f"{round(x, digits - 1 - exp):,.0f}"
    return f"{x:,.{max(digits - 1 - exp, 0)}f}"


def provenance(sections: dict, names: list[str]) -> str:
    """Where and when the figures of ``names`` were measured, one line (several when runs differ)."""
    runs: dict[str, list[str]] = {}
    for name in names:
        m = sections[name]["provenance"]["machine"]
        commit = f"`{(m.get('commit') or m.get('git') or 'unknown')[:7]}`" + (" (with local changes)" if m.get("dirty")
                                                                               else "")
        quick = "`--quick` sizes, " if sections[name]["provenance"].get("quick") else ""
        where = (f"{quick}commit {commit}, {m.get('cores', m.get('nproc'))} cores of {m.get('cpu', 'an unknown CPU')}"
                 + (f", {m['memory_gib']:g} GiB" if m.get("memory_gib") else "")
                 + f", Python {m.get('python')}, numpy {m.get('numpy')}"
                 + (f", {m['measured_at'][:10]}" if m.get("measured_at") else ""))
        runs.setdefault(where, []).append(name)
    text = "; ".join(f"{', '.join(ns)}: {where}" if len(runs) > 1 else where for where, ns in runs.items())
    return f"<sub>Measured by `python scripts/bench.py` ({text}); regenerated by `scripts/figures.py`.</sub>"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def stages(stage_time_s: dict) -> str:
    keys = ("publish", "crawl", "filter", "train", "evaluate", "checkpoint")
    return " / ".join(num(stage_time_s.get(k, 0.0), 2) for k in keys) + " s"


# ------------------------------------------------------------------ blocks: one function each

def block_speed(s: dict) -> str:
    """README's Speed table: one or two rows per section."""
    q, sh, sa, pl_, sw, tr = (s[k] for k in ("quickstart", "shards", "sampler", "pure_loop", "sweep", "transformer"))
    w1, w10, sc = s["web_1m"], s["web_10m"], s["scaling"]
    loc, ray = q["median"]["local"], q["median"]["ray"]
    tps = sa["tokens_per_s"]
    g, c = pl_["loops"]["gaussian"], pl_["loops"]["categorical"]
    rows = [
        ["quickstart, local executor: simulation / whole process / driver peak RSS",
         f"{num(loc['sim_s'])} s / {num(loc['process_s'])} s / {num(loc['peak_rss_mb'])} MB"],
        [f"quickstart, Ray executor{_whole(q)}: simulation / whole process (incl. starting Ray) / driver peak RSS",
         f"{num(ray['sim_s'])} s / {num(ray['process_s'])} s / {num(ray['peak_rss_mb'])} MB"],
        ["— Ray / local", f"{num(q['ray_over_local_sim'])}× simulation, {num(q['ray_over_local_process'])}× whole "
                          f"process (goals ≤ 1.25×, ≤ 2×)"],
        *([["— a process that only starts and stops Ray (no run) / the local quickstart's whole process",
            f"{num(q['ray_floor_s'])} s / {num(loc['process_s'])} s = {num(q['ray_floor_over_local_process'])}×"]]
          if "ray_floor_s" in q else []),
        [f"publishing, Ray, {sh['pages_per_tick']:,} AI pages a tick" + (f" on {sh['sites']:,} sites" if "sites" in sh
                                                                         else "") + ": 1 shard / 2 shards",
         f"{num(sh['by_shards']['1']['pages_per_s'])} / {num(sh['by_shards']['2']['pages_per_s'])} pages/s "
         f"({num(sh['speedup_2_over_1'])}×; goal ≥ 1.7×)"
         + (f"; the whole simulation {num(sh['sim_speedup_2_over_1'])}×" if "sim_speedup_2_over_1" in sh else "")],
        [f"first-order ngram sampling, V = {sa['vocab_size']}, {sa['doc_length']}-token documents, "
         f"{sa['docs']:,} at once", f"{num(tps['simweb'] / 1e6)} M tokens/s (alias tables)"],
        ["— plain numpy alias-table reference / inverse-CDF (`searchsorted`) reference",
         f"{num(tps['alias_ref'] / 1e6)} M / {num(tps['inverse_cdf'] / 1e6)} M tokens/s (simweb / alias = "
         f"{num(sa['simweb_over_alias_ref'])}×; goal ≥ 0.5×)"],
        [f"pure loop, gaussian (n = {g['n']}): one generation / the same fits in bare numpy",
         f"{num(min(g['ms_per_generation']))} ms / {num(min(g['bare_ms_per_generation']))} ms (goal ≤ 1 ms)"],
        [f"pure loop, categorical (n = {c['n']}): one generation / the same fits in bare numpy",
         f"{num(min(c['ms_per_generation']))} ms / {num(min(c['bare_ms_per_generation']))} ms"],
        [f"pure loop: {pl_['replicates']} replicates × 100 generations on {pl_['workers']} processes",
         f"{num(pl_['sweep_s'])} s"],
    ]
    if "reproduce" in pl_:
        r = pl_["reproduce"]
        rows.append([f"`simweb reproduce`: {r['replicates']} replicates of every target ({r['generations']:,} "
                     f"generations) on {r['workers']} processes", f"{num(r['wall_s'])} s (goal ≤ 180 s)"])
    rows += [
        [f"sweep of {sw['runs']} quickstart runs ({sw['ticks']} ticks): 1 → 2 CPUs, process pool",
         f"{num(sw['local_1'])} s → {num(sw['local_2'])} s ({num(sw['local_1'] / sw['local_2'])}×; goal ≥ 1.7×)"],
        ["— the same on Ray tasks",
         f"{num(sw['ray_1'])} s → {num(sw['ray_2'])} s ({num(sw['ray_1'] / sw['ray_2'])}×)"],
        ["transformer trainer (2 layers × 64, V = 64, 32-token documents, 2 threads) vs a bare torch loop of the "
         "same model on the same batches",
         f"{num(tr['tokens'] / tr['simweb_s'])} vs {num(tr['tokens'] / tr['bare_s'])} tokens/s "
         f"({num(tr['ratio'])}×; goal ≥ 0.8×)"],
        [f"`scenarios/web_1m.toml`: {num(w1['pages'])} pages, local executor, run directory written",
         f"{num(w1['wall_s'])} s, {num(w1['peak_rss_mb'])} MB peak RSS; page store "
         f"{num(w1['page_memory']['bytes_per_token_byte'])}× the token bytes"],
        [f"`scenarios/web_10m.toml`: {num(w10['pages'])} pages, local executor, content past 1 GB spilled",
         f"{num(w10['wall_s'])} s, {num(w10['peak_rss_mb'])} MB peak RSS; page store "
         f"{num(w10['page_memory']['bytes_per_token_byte'])}× the token bytes"],
        [f"weak scaling, {' / '.join(sc['points'])} simulated nodes", "efficiency per node " + " / ".join(
            num(p["efficiency"]) for p in sc["points"].values()) + " (goal ≥ 0.9 at 2 nodes)"],
    ]
    names = ["quickstart", "shards", "sampler", "pure_loop", "sweep", "transformer", "web_1m", "web_10m", "scaling"]
    if "single_core" in s:
        one = s["single_core"]
        p, qs = one["publish"], one["quickstart"]
        rows += [
            [f"one core: the publish stage on issue 16's web ({num(p['pages'])} pages, {num(p['sites'])} sites, "
             f"V = {p['vocab_size']}) / the bare numpy alias sampler",
             f"{num(p['publish_tokens_per_s'] / 1e6)} M / {num(p['alias_ref_tokens_per_s'] / 1e6)} M tokens/s = "
             f"{num(p['ratio'])}× (goal ≥ 0.6×)" + (
                 f", the median of {len(p['ratios'])} processes: " + " / ".join(num(x) + "×" for x in p["ratios"])
                 if len(p.get("ratios", ())) > 1 else "")],
            [f"one core: the quickstart's local simulation at `{qs['baseline']}` (issue 16's start) / now",
             f"{num(qs['median']['baseline'])} s / {num(qs['median']['now'])} s = {num(qs['speedup'])}× "
             "(goal ≥ 1.5×)"]]
        names.append("single_core")
    return table(["measure", "figure"], rows) + "\n\n" + provenance(s, names)


def block_reproduce(s: dict) -> str:
    """Inline: how long `simweb reproduce` takes at 400 replicates."""
    r = s["pure_loop"]["reproduce"]
    m = s["pure_loop"]["provenance"]["machine"]
    commit = (m.get("commit") or m.get("git") or "unknown")[:7]
    return (f"{num(r['wall_s'])} s on {r['workers']} processes ({m.get('cores')} cores of {m.get('cpu')}, "
            f"commit `{commit}`)")


def block_machine(s: dict) -> str:
    """BENCHMARKS.md's first paragraph's machine: the machine of the big webs."""
    m = s["web_1m"]["provenance"]["machine"]
    return (f"{m.get('cores')} cores ({m.get('cpu')}), {m.get('memory_gib'):g} GiB RAM, Python {m.get('python')}, "
            f"numpy {m.get('numpy')}, Ray {m.get('ray')}")


def _web(r: dict, goals: dict[str, str]) -> list[list[str]]:
    mem = r["page_memory"]
    tokens = r["pages"] * 64
    return [["pages", f"{r['pages']:,}", goals.get("pages", "")],
            ["wall time (run and writing)", f"{num(r['wall_s'])} s", goals.get("wall", "")],
            ["peak RSS (one process: every agent)", f"{num(r['peak_rss_mb'])} MB", goals.get("rss", "")],
            ["simulation throughput", f"{num(r['pages'] / r['sim_s'])} pages/s, {num(tokens / r['sim_s'] / 1e6)} M "
                                      "tokens/s", ""],
            ["page store / token bytes",
             f"{num(mem['bytes_per_token_byte'])}× (index {num(mem['index_bytes'] / 2**20)} MB, scrapers "
             f"{num(mem['replica_bytes'] / 2**20)} MB, content {num(mem['content_bytes'] / 2**20)} MB)", "≤ 1.5×"],
            ["pages spilled to disk", f"{mem['spilled_pages']:,}", ""],
            ["run directory on disk", f"{num(r['disk_mb'])} MB", ""],
            ["stages: publish / crawl / filter / train / evaluate / checkpoint", stages(r["stage_time_s"]), ""]]


def block_web_1m(s: dict) -> str:
    rows = _web(s["web_1m"], {"pages": "≥ 1,000,000", "wall": "≤ 120 s", "rss": "≤ 2,000 MB"})
    return table(["measure", "figure", "goal"], rows) + "\n\n" + provenance(s, ["web_1m"])


def block_web_10m(s: dict) -> str:
    rows = _web(s["web_10m"], {"pages": "≥ 10,000,000", "wall": "completes", "rss": "≤ 4,000 MB"})
    return table(["measure", "figure", "goal"], rows) + "\n\n" + provenance(s, ["web_10m"])


def block_web_10m_ray(s: dict) -> str:
    """The same web on Ray: the driver's peak RSS, and the simulation against the local executor's (the medians of
    the section's alternating runs on both executors)."""
    ray = s["web_10m_ray"]
    rows = _web(ray, {"pages": "≥ 10,000,000", "wall": "completes"})
    rows[2] = ["driver peak RSS (the agents live in Ray's processes)", f"{num(ray['peak_rss_mb'])} MB", "≤ 300 MB"]
    runs = ray["sim_s_runs"]
    rows.insert(4, ["simulation, local ÷ Ray (medians of alternating runs)",
                    f"{num(ray['local_sim_s'])} s ÷ {num(ray['sim_s'])} s = {num(ray['local_over_ray_sim'])}× "
                    f"(local {' / '.join(num(x) for x in runs['local'])} s; Ray "
                    f"{' / '.join(num(x) for x in runs['ray'])} s)", "≥ 1.5×"])
    return table(["measure", "figure", "goal"], rows) + "\n\n" + provenance(s, ["web_10m_ray"])


def block_web_100m(s: dict) -> str:
    r = s["web_100m"]
    rows = [["pages", f"{r['pages']:,} ({r['ticks']} ticks, {r['shards']} shards)", "≥ 100,000,000"],
            ["wall time (run and writing)", f"{num(r['wall_s'])} s", "≤ 1,200 s"],
            ["simulation throughput", f"{num(r['pages'] / r['sim_s'])} pages/s, "
                                      f"{num(r['pages'] * 64 / r['sim_s'] / 1e6)} M tokens/s", ""],
            ["driver peak RSS (VmHWM)", f"{num(r['driver_peak_rss_mb'])} MB", "≤ 500 MB"],
            ["run directory on disk", f"{num(r['disk_mb'])} MB", ""],
            ["stages: publish / crawl / filter / train / evaluate / checkpoint", stages(r["stage_time_s"]), ""]]
    procs = [[p["name"], str(p["pid"]), f"{num(p['peak_rss_mb'])} MB"] for p in r["processes"] if p["peak_rss_mb"] >= 20]
    return (table(["measure", "figure", "goal"], rows) + "\n\nEvery process of the run, its peak RSS sampled each "
            "second (those under 20 MB left out):\n\n" + table(["process", "pid", "peak RSS"], procs) + "\n\n"
            + provenance(s, ["web_100m"]))


def block_scaling(s: dict) -> str:
    points = s["scaling"]["points"]
    rows = [[n, str(p["cores"]), f"{p['pages']:,}", f"{num(p['sim_s'])} s", num(p["pages_per_s"]),
             num(p["pages_per_s_per_node"]), num(p["efficiency"]), num(p["efficiency_per_core"])]
            for n, p in points.items()]
    return (table(["nodes", "real cores", "pages", "simulation", "pages/s", "pages/s per node", "efficiency per node",
                   "per real core"], rows) + "\n\n" + provenance(s, ["scaling"]))


def block_scaling_stages(s: dict) -> str:
    keys = ("publish", "crawl", "filter", "train", "evaluate", "checkpoint")
    rows = [[n] + [num(p["stage_time_s"].get(k, 0.0), 2) for k in keys] for n, p in s["scaling"]["points"].items()]
    return table(["nodes", *keys], rows) + "\n\n" + provenance(s, ["scaling"])


def _whole(q: dict, sep: str = ",") -> str:
    """Words saying the quickstart's Ray runs ran whole in one actor, where the figures say so (older ones do not)."""
    return f"{sep} the run whole in one actor" if all(r.get("one_actor") for r in q["runs"]["ray"]) else ""


def block_quickstart(s: dict) -> str:
    q = s["quickstart"]
    med = q["median"]
    pages = q["runs"]["local"][0]["pages"]
    stage = {ex: {k: sorted(r["stage_time_s"][k] for r in q["runs"][ex])[len(q["runs"][ex]) // 2]
                  for k in q["runs"][ex][0]["stage_time_s"]} for ex in ("local", "ray")}
    rows = [["simulation (`wall_time_s`)", f"{num(med['local']['sim_s'])} s", f"{num(med['ray']['sim_s'])} s"],
            ["whole process (interpreter, import, run)", f"{num(med['local']['process_s'])} s",
             f"{num(med['ray']['process_s'])} s"],
            ["driver peak RSS", f"{num(med['local']['peak_rss_mb'])} MB", f"{num(med['ray']['peak_rss_mb'])} MB"],
            ["pages/s, tokens/s (simulation)"] + [
                f"{num(pages / med[ex]['sim_s'])} / {num(pages * 64 / med[ex]['sim_s'] / 1e6)} M"
                for ex in ("local", "ray")],
            ["stages: publish / crawl / filter / train / evaluate / checkpoint", stages(stage["local"]),
             stages(stage["ray"])]]
    return (table(["measure", "local", f"Ray (a local instance started and stopped{_whole(q, ';')})"], rows) + "\n\n"
            + provenance(s, ["quickstart"]))


def block_drift(s: dict) -> str:
    """README's speed of a drifting truth: the quickstart stationary and drifting, ratios within one run."""
    d = s["drift"]
    rows = [[name, f"{num(d['median_sim_s'][name])} s", f"{num(d['ratio'][name])}×",
             f"{num(d['cpu_ratio'][name])}×"] for name in d["median_sim_s"]]
    return "\n".join([table(["quickstart", "simulation (median)", "/ stationary", "CPU / stationary"], rows), "",
                      provenance(s, ["drift"])])


BLOCKS: dict[str, tuple[Callable[[dict], str], tuple[str, ...], bool]] = {  # name -> (render, sections, inline)
    "speed": (block_speed, ("quickstart", "shards", "sampler", "pure_loop", "sweep", "transformer", "web_1m",
                            "web_10m", "scaling"), False),
    "reproduce": (block_reproduce, ("pure_loop",), True),
    "machine": (block_machine, ("web_1m",), True),
    "web_1m": (block_web_1m, ("web_1m",), False),
    "web_10m": (block_web_10m, ("web_10m",), False),
    "web_10m_ray": (block_web_10m_ray, ("web_10m_ray",), False),
    "web_100m": (block_web_100m, ("web_100m",), False),
    "scaling": (block_scaling, ("scaling",), False),
    "scaling_stages": (block_scaling_stages, ("scaling",), False),
    "quickstart": (block_quickstart, ("quickstart",), False),
    "drift": (block_drift, ("drift",), False),
}


def render(name: str, sections: dict) -> str | None:
    """The block's text from the figures, or None when a figure it needs has not been measured."""
    fn, needs, inline = BLOCKS[name]
    try:
        text = fn(sections)
    except KeyError:  # a section never measured, or measured by an older bench.py without that figure
        return None
    return text if inline else f"\n{text}\n"


# ------------------------------------------------------------------ documents

def blocks_in(text: str, path: Path) -> list[re.Match]:
    found = list(MARKER.finditer(text))
    opened = re.findall(r"<!-- bench:([a-z0-9_]+) -->", text)
    if len(opened) != len(found):
        raise Usage(f"{path}: a <!-- bench:NAME --> marker without its <!-- /bench:NAME -->")
    for m in found:
        if m.group(1) not in BLOCKS:
            raise Usage(f"{path}: unknown block {m.group(1)!r} (blocks: {', '.join(BLOCKS)})")
    return found


def regenerate(docs: list[Path], sections: dict) -> tuple[list[str], list[str]]:
    """Rewrite every block the figures cover; returns (blocks written, blocks left as they were)."""
    written, skipped = [], []
    for path in docs:
        text = path.read_text(encoding="utf-8")
        out, last = [], 0
        for m in blocks_in(text, path):
            new = render(m.group(1), sections)
            out.append(text[last:m.start(2)])
            out.append(m.group(2) if new is None else new)
            (skipped if new is None else written).append(f"{path.name}:{m.group(1)}")
            last = m.end(2)
        out.append(text[last:])
        path.write_text("".join(out), encoding="utf-8")
    return written, skipped


def differences(doc: str, want: str, *, tolerance: float, compare_provenance: bool) -> list[str]:
    """How a block's text differs from the figures' text: words exactly, numbers within ``tolerance``."""
    lines = [(a, b) for a, b in zip(doc.strip().splitlines(), want.strip().splitlines())]
    if len(doc.strip().splitlines()) != len(want.strip().splitlines()):
        return [f"{len(doc.strip().splitlines())} lines, the figures give {len(want.strip().splitlines())}"]
    problems = []
    for a, b in lines:
        if not compare_provenance:  # a fresh run has its own commit and date
            if b.startswith("<sub>Measured"):
                continue
            a, b = PROVENANCE.sub("*", a), PROVENANCE.sub("*", b)
        if NUMBER.sub("#", a) != NUMBER.sub("#", b):
            problems.append(f"text differs: {a.strip()[:100]!r} vs {b.strip()[:100]!r}")
            continue
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
            if abs(fx - fy) > tolerance * max(abs(fx), abs(fy)):
                problems.append(f"{x} where the figures give {y} (tolerance {tolerance:.0%}): {a.strip()[:100]!r}")
    return problems


def check(docs: list[Path], sections: dict, *, tolerance: float, compare_provenance: bool) -> list[str]:
    problems = []
    for path in docs:
        text = path.read_text(encoding="utf-8")
        for m in blocks_in(text, path):
            want = render(m.group(1), sections)
            where = f"{path.name}: block {m.group(1)!r}"
            if want is None:
                needs = ", ".join(BLOCKS[m.group(1)][1])
                problems.append(f"{where}: no figures to check it against (it needs sections {needs})")
                continue
            problems += [f"{where}: {p}" for p in differences(m.group(2), want, tolerance=tolerance,
                                                              compare_provenance=compare_provenance)]
    return problems


def check_ratios(quick: dict, documented: dict, *, floor: float = RATIO_FLOOR,
                 source: str = SOURCE.name) -> tuple[list[str], list[str]]:
    """(regressions, notes): each ``RATIOS`` ratio of a quick run against its documented value."""
    regressions, notes = [], []
    for dotted, what in RATIOS.items():
        got, want = lookup(quick, dotted), lookup(documented, dotted)
        if got is None:
            raise Usage(f"the quick run has no {dotted}; run scripts/bench.py --quick --only sampler,pure_loop --json")
        if want is None:
            notes.append(f"SKIP  {what}: {got:.3g} (no documented figure yet in {source})")
            continue
        line = f"{what}: {got:.3g} here, {want:.3g} documented ({got / want:.2f}x of it; fails below {floor}x)"
        if got < floor * want:
            regressions.append(f"FAIL  {line}")
        else:
            notes.append(f"ok    {line}" + ("  -- faster than documented: refresh the figures" if got > 1.5 * want
                                            else ""))
    return regressions, notes


# ------------------------------------------------------------------ command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="*", type=Path, help="bench JSON files (scripts/bench.py --json); later wins")
    parser.add_argument("--check", action="store_true", help="compare the documents with the figures; write nothing")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help=f"--check: relative difference allowed per number (default {TOLERANCE})")
    parser.add_argument("--ratios", type=Path, metavar="QUICK_JSON",
                        help=f"check a quick run's ratios against the documented ones (>= {RATIO_FLOOR}x)")
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"the figures' file (default {SOURCE.name})")
    parser.add_argument("--docs", type=Path, nargs="+", default=list(DOCS), help="documents with bench blocks")
    parser.add_argument("--allow-quick", action="store_true", help="accept a --quick run as documentation")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Usage as err:
        print(f"figures: {err}", file=sys.stderr)
        return 2


def run(args) -> int:
    source = load_sources([args.source], allow_quick=args.allow_quick) if args.source.is_file() else {}
    if args.ratios:
        quick = load_sources([args.ratios], allow_quick=True)
        regressions, notes = check_ratios(quick, source, source=args.source.name)
        print(f"benchmark ratios of {args.ratios} against {args.source.name} (simweb / its own reference, "
              "same run):")
        for line in notes + regressions:
            print(f"  {line}")
        if regressions:
            print(f"REGRESSION: {len(regressions)} ratio(s) below {RATIO_FLOOR}x of the documented value")
            return 1
        return 0
    for doc in args.docs:
        if not doc.is_file():
            raise Usage(f"{doc}: no such document")
    fresh = load_sources(args.json, allow_quick=args.allow_quick) if args.json else {}
    if not source and not fresh:
        raise Usage(f"{args.source}: no figures yet; measure with scripts/bench.py --json FILE, then pass FILE")
    if args.check:
        sections = {**source, **fresh}
        problems = check(args.docs, sections, tolerance=args.tolerance, compare_provenance=not args.json)
        for p in problems:
            print(f"  {p}")
        print(f"{len(problems)} figure(s) disagree" if problems else "every bench block agrees with its figures")
        return 1 if problems else 0
    sections = {**source, **fresh}
    if fresh:
        report = {"about": "the figures of README.md and BENCHMARKS.md; written by scripts/figures.py from "
                           "scripts/bench.py --json runs, each section with the machine it was measured on",
                  "sections": {k: sections[k] for k in sorted(sections)}}
        args.source.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.source} ({', '.join(sorted(fresh))} from {', '.join(map(str, args.json))})")
    written, skipped = regenerate(args.docs, sections)
    print(f"regenerated {len(written)} block(s): {', '.join(written) or '-'}")
    if skipped:
        print(f"left as they were (their sections were never measured): {', '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
