"""The ``simweb`` command. Exit codes: 0 success, 2 bad scenario or argument, 1 internal error."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from pathlib import Path

from simweb.errors import SimwebError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise SimwebError(f"{message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simweb", description="Simulate the synthetic web and what it does to model generations.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a scenario and write its results")
    run.add_argument("scenario", help="scenario file (TOML)")
    run.add_argument("--out", help="run directory to create: a path, or a URI of any filesystem pyarrow knows "
                                   "(s3://bucket/prefix, gs://..., hdfs://...) (default: runs/<name>-seed<seed>)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="override a scenario value, e.g. labs[0].crawl_budget=500 or labs.naive.regime=accumulate")
    run.add_argument("--seed", type=int, help="override run.seed")
    run.add_argument("--executor", choices=["local", "ray"], help="override run.executor (default: ray)")
    run.add_argument("--address", help="join this Ray cluster (else RAY_ADDRESS, else start a local one)")
    run.add_argument("--shards", type=_positive("--shards"), help="override run.shards (publisher shards)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    _force_flag(run)
    _plugin_flag(run)

    res = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    res.add_argument("out", help="the run directory the interrupted run was writing (its --out, path or URI)")
    res.add_argument("--executor", choices=["local", "ray"], help="where to run the rest (default: as before)")
    res.add_argument("--address", help="join this Ray cluster")
    res.add_argument("--quiet", action="store_true")
    _force_flag(res)
    _plugin_flag(res)

    rp = sub.add_parser("report", help="figures and a self-contained report.html for a run or a sweep")
    rp.add_argument("dir", help="a run or sweep directory (path or URI)")

    sw = sub.add_parser("sweep", help="run a scenario over a grid of values and seeds (rerun to resume)")
    sw.add_argument("scenario")
    sw.add_argument("--grid", action="append", default=[], metavar="PATH=V1,V2,...",
                    help="values of one scenario path; several --grid make a cartesian product")
    sw.add_argument("--seeds", type=_positive("--seeds"), default=1, help="replicates per grid point")
    sw.add_argument("--seed", type=int, help="override run.seed (replicate seeds derive from it)")
    sw.add_argument("--out", help="sweep directory (default: sweeps/<name>)")
    sw.add_argument("--workers", type=_positive("--workers"), help="local processes (default: the CPUs available)")
    sw.add_argument("--executor", choices=["local", "ray"], default="ray",
                    help="ray (default): each run a Ray task on the cluster; local: a pool of processes")
    sw.add_argument("--address", help="join this Ray cluster (else RAY_ADDRESS, else start a local one)")
    sw.add_argument("--quiet", action="store_true")
    _force_flag(sw)
    _plugin_flag(sw)

    rep = sub.add_parser("reproduce", help="check simweb against the closed forms of the model-collapse papers")
    rep.add_argument("--replicates", type=_positive("--replicates"), default=400)
    rep.add_argument("--only", action="append", default=[], metavar="TARGET", help="run only this target")
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="override a value in every target (e.g. run.ticks=30 for a quick check)")
    rep.add_argument("--out", default="reproduction.parquet", help="Parquet file for the table")
    rep.add_argument("--markdown", help="also write the table as Markdown (for the README)")
    rep.add_argument("--workers", type=_positive("--workers"), help="processes (default: the CPUs available)")
    rep.add_argument("--quiet", action="store_true")

    val = sub.add_parser("validate", help="check a scenario file and print it resolved")
    val.add_argument("scenario")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    val.add_argument("--quiet", action="store_true", help="print nothing on success")
    _plugin_flag(val)
    _add_analysis_parsers(sub)
    fz = sub.add_parser("forensics", help="watermark forensics of a run: does lab B's model carry lab A's watermark?")
    fz.add_argument("dir", help="a run directory (run with evaluation.forensics_tokens set)")
    _plugin_flag(fz)  # a run that used plugins names their kinds in its scenario.toml
    return parser


def _plugin_flag(parser) -> None:
    parser.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="FILE.py|MODULE",
                        help="load policies (filters, models, regimes, behaviours) from a Python file or module; "
                             "repeatable")


def _force_flag(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="run even if the estimated peak memory is more than this machine has available")


def _check_cost(scenario, args, *, executor: str | None = None, concurrent: int = 1, scenarios=None) -> None:
    """Refuse, before anything is written, a run (or a sweep's runs at once) that would not fit in memory.

    Under Ray on a cluster (``--address`` or ``RAY_ADDRESS``) the machine's memory says nothing: no check.
    """
    import os

    from simweb import cost, storage

    executor = executor or scenario.run.executor
    if executor == "ray" and (getattr(args, "address", None) or os.environ.get("RAY_ADDRESS")):
        return
    out = getattr(args, "out", None)
    # a run written to an object store is spread over actors even when small (simweb/__init__.py, _execute)
    one_actor = False if out is not None and storage.is_object(storage.location(out)) else None
    worst = max((cost.estimate(sc, executor=executor, concurrent=concurrent, one_actor=one_actor)
                 for sc in (scenarios or [scenario])), key=lambda e: e.total_bytes)
    cost.check(worst, force=getattr(args, "force", False))


def _stdout(width: int):
    """The console for tables: the terminal's width, or ``width`` columns when output is piped."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=width)


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected an integer >= 1, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name}: expected an integer >= 1, got {value}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except SimwebError as err:
        print(f"simweb: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"simweb: {_interrupted(args)}", file=sys.stderr)
        return 130
    except Exception:  # a bug in simweb, not in the input: show everything
        traceback.print_exc()
        print("simweb: internal error (the traceback above); please report it", file=sys.stderr)
        return 1


def _interrupted(args) -> str:
    """What a Ctrl-C left: a run that ``simweb resume`` continues, a sweep that reruns, or nothing."""
    from simweb.recorder import partial_dir

    run_dir, sweep_dir = getattr(args, "run_dir", None), getattr(args, "sweep_dir", None)
    if run_dir is not None and (partial_dir(run_dir) / "scenario.toml").is_file():
        return f"interrupted: resume with `simweb resume {run_dir}`"
    if sweep_dir is not None and (Path(sweep_dir) / "sweep.json").is_file():
        return "interrupted: run the same `simweb sweep` command again to go on where it stopped"
    return "interrupted; nothing was written"


def _load(args):
    from simweb.plugins import load_plugins
    from simweb.scenario import load_scenario

    args.sources = load_plugins(getattr(args, "plugins", ()))
    overrides = list(args.overrides)
    if getattr(args, "executor", None):
        overrides.append(f"run.executor={args.executor}")
    if getattr(args, "shards", None):
        overrides.append(f"run.shards={args.shards}")
    return load_scenario(args.scenario, overrides, seed=getattr(args, "seed", None))


def _cmd_validate(args) -> int:
    from simweb.scenario import dump_scenario

    from simweb import cost

    scenario = _load(args)
    if not args.quiet:
        print(dump_scenario(scenario), end="")
        print(f"# {args.scenario}: valid", file=sys.stderr)
        estimate = cost.estimate(scenario)
        for line in estimate.lines():
            print(f"# {line}", file=sys.stderr)
        available = cost.available_memory()
        if available is not None and estimate.total_bytes > available:
            print(f"# more than the {cost.human_bytes(available)} available here: `simweb run` refuses it "
                  "without --force", file=sys.stderr)
    return 0


def _cmd_run(args) -> int:
    from rich.console import Console

    import simweb
    from simweb import storage
    from simweb.recorder import check_out_dir, child
    from simweb.summary import print_summary

    scenario = _load(args)
    _check_cost(scenario, args)
    out = storage.location(args.out) if args.out else child("runs", f"{scenario.run.name}-seed{scenario.run.seed}")
    check_out_dir(out, overwrite=args.overwrite)  # on an object store: reachable, the bucket exists
    args.run_dir = out  # for the message after a Ctrl-C
    if args.mlflow and storage.is_object(out):
        raise SimwebError("--mlflow: logging a run written to object storage is not supported; write it to a "
                          "local --out")
    if args.mlflow:  # before the run, so a missing extra costs nothing
        from simweb.tracking import require_mlflow

        require_mlflow()
    console = Console(stderr=True)
    say = None if args.quiet else lambda text: console.print(text, highlight=False)
    show_progress = not args.quiet and console.is_terminal
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("ticks"), TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(scenario.run.name, total=scenario.run.ticks)
            results = simweb.run(scenario, out=out, overwrite=args.overwrite, address=args.address,
                                 on_tick=_crash_hook(lambda tick: progress.update(task, completed=tick)),
                                 plugins=args.sources, say=progress.console.print)
    else:
        results = simweb.run(scenario, out=out, overwrite=args.overwrite, address=args.address, plugins=args.sources,
                             say=say, on_tick=_crash_hook())
    if args.mlflow:
        from simweb.tracking import log_run

        log_run(args.mlflow, out, results)
    if not args.quiet:
        print_summary(results, out, _stdout(120))
    return 0


def _crash_hook(on_tick=None):
    """``on_tick``, then the test hook ``SIMWEB_CRASH_AT_TICK=N``: once N ticks are complete (and the checkpoint
    of that boundary, if any, is written), the process sends itself SIGKILL — a real ``kill -9``, no clean-up —
    so crash-and-resume tests stop a run at a chosen point instead of racing it (a run whole in one Ray actor,
    which would otherwise be ahead of this process, waits at that tick: ``simweb_halts_at``)."""
    value = os.environ.get("SIMWEB_CRASH_AT_TICK")
    if not value:
        return on_tick
    try:
        at = int(value)
    except ValueError:
        raise SimwebError(f"SIMWEB_CRASH_AT_TICK must be an integer >= 1, got {value!r}") from None
    if at < 1:
        raise SimwebError(f"SIMWEB_CRASH_AT_TICK must be an integer >= 1, got {at}")

    def hook(ticks_done: int) -> None:
        if on_tick is not None:
            on_tick(ticks_done)
        if ticks_done == at:
            os.kill(os.getpid(), signal.SIGKILL)

    hook.simweb_halts_at = at  # a run whole in one Ray actor waits at that tick for this process to end
    return hook


def _cmd_resume(args) -> int:
    from rich.console import Console

    import simweb
    from simweb import storage
    from simweb.summary import print_summary

    args.out = storage.location(args.out, "resume")
    storage.check_reachable(args.out, "resume")
    args.run_dir = args.out  # for the message after a Ctrl-C
    _check_resume_cost(args)
    console = Console(stderr=True)
    results = simweb.resume(args.out, executor=args.executor, address=args.address, plugins=args.plugins,
                            say=None if args.quiet else lambda text: console.print(text, highlight=False),
                            on_tick=_crash_hook())
    if not args.quiet:
        print_summary(results, args.out, _stdout(120))
    return 0


def _check_resume_cost(args) -> None:
    """The memory check of ``run``, on the scenario of the interrupted run (problems with it: left to resume)."""
    from simweb.plugins import load_plugins
    from simweb.recorder import partial_dir
    from simweb.scenario import parse_scenario

    path = partial_dir(args.out) / "scenario.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # simweb.resume says what is wrong with the directory
    load_plugins(args.plugins)
    scenario = parse_scenario(text, source=str(path))
    _check_cost(scenario, args, executor=args.executor)


def _cmd_report(args) -> int:
    from simweb import storage
    from simweb.report import make_report

    directory = storage.location(args.dir, "report")
    storage.check_reachable(directory, "report")
    print(f"report written to {make_report(directory)}")
    return 0


def _cmd_sweep(args) -> int:
    from rich.console import Console

    from simweb.recorder import child
    from simweb.scenario import load_scenario
    from simweb.storage import local_only
    from simweb.sweep import default_workers, run_sweep

    from simweb.plugins import load_plugins

    sources = load_plugins(args.plugins)
    base = load_scenario(args.scenario, seed=args.seed)
    _check_sweep_cost(base, args)
    out = local_only(args.out, "--out") if args.out else child("sweeps", base.run.name)
    args.sweep_dir = out  # for the message after a Ctrl-C
    if args.mlflow:
        from simweb.tracking import require_mlflow

        require_mlflow()
    console = Console(stderr=True)
    total = args.seeds * _grid_size(args.grid)
    progress = None
    if not args.quiet and console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                            TimeElapsedColumn(), console=console, transient=True)
        task = progress.add_task("sweep", total=total)

    def on_done(done: int, total: int, outcome: dict) -> None:
        tag = ("skipped (done before)" if outcome.get("skipped") else
               "done (went on from its checkpoint)" if outcome.get("resumed") else outcome["state"])
        if progress is not None:
            progress.update(task, completed=done)
            if outcome["error"]:
                progress.console.print(f"run failed: {outcome['error']}", highlight=False)
        elif not args.quiet or outcome["error"]:
            console.print(f"[{done}/{total}] {tag}" + (f": {outcome['error']}" if outcome["error"] else ""),
                          highlight=False)

    if progress is not None:
        progress.start()
    try:
        status = run_sweep(args.scenario, args.grid, seeds=args.seeds, out=out,
                           workers=args.workers or default_workers(), seed=args.seed, on_done=on_done,
                           executor=args.executor, address=args.address, plugins=sources)
    finally:
        if progress is not None:
            progress.stop()
    if args.mlflow:
        from simweb.tracking import log_sweep

        log_sweep(args.mlflow, out)
    counts = status.group_by("state").len().sort("state")
    summary = ", ".join(f"{row['len']} {row['state']}" for row in counts.iter_rows(named=True))
    if not args.quiet:
        print(f"sweep of {status.height} runs: {summary}; results in {out}/ "
              "(generations.parquet, ticks.parquet, contamination.parquet, status.parquet, runs/)")
    return 0


def _check_sweep_cost(base, args) -> None:
    """Every grid point runs on the local executor, ``--workers`` of them at once (Ray: one per CPU)."""
    import os

    from simweb.executors import local_cpus
    from simweb.scenario import dump_scenario, parse_scenario
    from simweb.sweep import default_workers, expand_grid

    if args.executor == "ray" and (args.address or os.environ.get("RAY_ADDRESS")):
        return  # a cluster's runs: this machine's memory says nothing
    points = expand_grid(args.grid, 1, 0)
    scenarios = [parse_scenario(dump_scenario(base), p.overrides[:-1], source=args.scenario) for p in points]
    at_once = (args.workers or default_workers()) if args.executor == "local" else local_cpus()
    _check_cost(base, args, executor="local", concurrent=min(at_once, len(points) * args.seeds),
                scenarios=scenarios)


def _grid_size(grid: list[str]) -> int:
    from simweb.sweep import expand_grid

    return len(expand_grid(grid, 1, 0))


def _cmd_reproduce(args) -> int:
    import polars as pl
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from simweb.recorder import atomic_write, writable
    from simweb.reproduce import TARGETS, Z_PASS, reproduce
    from simweb.sweep import default_workers

    names = [t.name for t in TARGETS]
    for name in args.only:
        if name not in names:
            from simweb.scenario.load import _did_you_mean

            raise SimwebError(f"--only: no target named {name!r}{_did_you_mean(name, names)}; "
                              f"targets: {', '.join(names)}")
    out = writable(args.out, "--out")  # before minutes of work, not after
    if args.markdown:
        writable(args.markdown, "--markdown")
    console = Console(stderr=True)
    table = reproduce(replicates=args.replicates, only=args.only, overrides=args.overrides,
                      workers=args.workers or default_workers(),
                      on_target=None if args.quiet else lambda name: console.print(f"running {name} ...",
                                                                                    highlight=False))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, table)
        if args.markdown:
            Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(args.markdown, _markdown(table, args.replicates))
    except (OSError, pl.exceptions.PolarsError) as err:
        reason = (err.strerror if isinstance(err, OSError) else None) or str(err).strip().splitlines()[0]
        raise SimwebError(f"--out: cannot write {str(out)!r}: {reason}") from None
    if not args.quiet:
        view = Table(title=f"simweb against the literature ({args.replicates} replicates; pass: |z| <= {Z_PASS:g})",
                     title_justify="left")
        for col in ("paper", "quantity", "formula", "simulated (mean ± SE)", "z", "result"):
            view.add_column(col, justify="right" if col in ("formula", "z") else "left")
        for row in table.iter_rows(named=True):
            view.add_row(escape(row["paper"]), escape(row["quantity"]), f"{row['formula']:.5g}",
                         f"{row['simulated_mean']:.5g} ± {row['std_error']:.2g}", f"{row['z']:+.2f}",
                         "pass" if row["passed"] else "FAIL")
        _stdout(200).print(view)
        print(f"table written to {out}")
    return 0 if table["passed"].all() else 1


def _markdown(table, replicates: int) -> str:
    lines = [f"| paper | quantity | formula | simulated mean ± SE ({replicates} replicates) | z | result |",
             "|---|---|---:|---:|---:|---|"]
    for r in table.iter_rows(named=True):
        quantity = r["quantity"].replace("|", "\\|")
        lines.append(f"| {r['paper']} | {quantity} | {r['formula']:.5g} | {r['simulated_mean']:.5g} ± "
                     f"{r['std_error']:.2g} | {r['z']:+.2f} | {'pass' if r['passed'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


_COMMANDS = {"run": _cmd_run, "resume": _cmd_resume, "report": _cmd_report, "sweep": _cmd_sweep, "reproduce": _cmd_reproduce, "validate": _cmd_validate}


# ---------------------------------------------------------------- analysis: compare, sensitivity (issue 20)
def _add_analysis_parsers(sub) -> None:
    for name in ("run", "sweep"):
        sub.choices[name].add_argument("--mlflow", metavar="URI",
                                       help="also log to this MLflow tracking store, e.g. file:./mlruns "
                                            "(needs simweb[mlflow])")
    cmp = sub.add_parser("compare", help="each arm (lab, or grid point × lab) against a baseline: paired by seed")
    cmp.add_argument("dir", help="a run or sweep directory")
    cmp.add_argument("--metric", default="excess_nll", help="a numeric column of generations.parquet")
    cmp.add_argument("--at", nargs="+", default=["last"], metavar="WHEN",
                     help="last (default), gen N (generation N) or tick T (the model in use at tick T)")
    cmp.add_argument("--baseline", help="the lab (--by lab) or grid point (--by grid) to compare against "
                                        "(default: the first)")
    cmp.add_argument("--by", choices=["lab", "grid"], help="arms are labs within each grid point, or grid points "
                                                             "within each lab (default: grid for a sweep with a grid)")
    cmp.add_argument("--target-halfwidth", type=float, metavar="H",
                     help="also report the seeds a 95%% interval of half-width H would need")
    cmp.add_argument("--quiet", action="store_true", help="write compare.parquet and compare.png, print nothing")

    sen = sub.add_parser("sensitivity", help="Sobol indices: which parameters move a metric (runs as a sweep)")
    sen.add_argument("scenario")
    sen.add_argument("--param", dest="params", action="append", default=[], metavar="PATH=LOW,HIGH",
                     help="a parameter drawn uniformly in [LOW, HIGH] (integers rounded); gen=LOW,HIGH varies "
                          "the generation the metric is read at")
    sen.add_argument("--samples", type=_positive("--samples"), default=64,
                     help="Saltelli base samples N, a power of 2; runs N·(D+2) settings × --seeds")
    sen.add_argument("--metric", default="excess_nll")
    sen.add_argument("--at", nargs="+", default=["last"], metavar="WHEN", help="last, gen N or tick T")
    sen.add_argument("--lab", help="the lab whose metric is analysed (default: the first)")
    sen.add_argument("--seeds", type=_positive("--seeds"), default=1,
                     help="replicates per setting, averaged (the same seeds for every setting)")
    sen.add_argument("--seed", type=int, help="override run.seed (sampling and replicate seeds derive from it)")
    sen.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="fixed overrides for every run")
    sen.add_argument("--out", help="sweep directory (default: sensitivity/<name>)")
    sen.add_argument("--workers", type=_positive("--workers"), help="local processes (default: the CPUs available)")
    sen.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="local (default): a pool of processes; ray: each run a Ray task")
    sen.add_argument("--address", help="join this Ray cluster")
    sen.add_argument("--quiet", action="store_true")


def _cmd_compare(args) -> int:
    from simweb.compare import compare_dir, print_compare
    from simweb.storage import local_only

    local_only(args.dir, "compare")
    table = compare_dir(args.dir, metric=args.metric, at=" ".join(args.at), baseline=args.baseline, by=args.by,
                        target_halfwidth=args.target_halfwidth)
    if not args.quiet:
        print_compare(table, _stdout(160))
        print(f"written: {Path(args.dir) / 'compare.parquet'}, {Path(args.dir) / 'compare.png'}")
    return 0


def _cmd_sensitivity(args) -> int:
    from rich.console import Console

    from simweb.scenario import load_scenario
    from simweb.sensitivity import print_indices, run_sensitivity
    from simweb.sweep import default_workers

    from simweb.storage import local_only

    base = load_scenario(args.scenario, args.overrides, seed=args.seed)
    out = local_only(args.out, "--out") if args.out else Path("sensitivity") / base.run.name
    console = Console(stderr=True)

    def on_done(done: int, total: int, outcome: dict) -> None:
        if outcome["error"] or (not args.quiet and (done % 50 == 0 or done == total)):
            console.print(f"[{done}/{total}] " + (outcome["error"] or "runs done"), highlight=False)

    table = run_sensitivity(args.scenario, args.params, samples=args.samples, out=out,
                            workers=args.workers or default_workers(), metric=args.metric, at=" ".join(args.at),
                            lab=args.lab, seeds=args.seeds, seed=args.seed, overrides=args.overrides,
                            executor=args.executor, address=args.address, on_done=on_done)
    if not args.quiet:
        print_indices(table, _stdout(160))
        print(f"written: {out / 'sensitivity.parquet'} (and samples.parquet, status.parquet, runs/)")
    return 0


_COMMANDS.update(compare=_cmd_compare, sensitivity=_cmd_sensitivity)


def _cmd_forensics(args) -> int:
    """``DIR/forensics.parquet``: per suspect lab, watermark key and generation, the key's z in fresh samples."""
    import polars as pl

    from simweb.forensics import write_forensics
    from simweb.plugins import load_plugins
    from simweb.storage import read_parquet

    load_plugins(args.plugins)
    out = write_forensics(args.dir)
    frame = read_parquet(out).filter(~pl.col("own_key"))
    if frame.height:
        last = frame.group_by("suspect", "key").agg(pl.col("z").last().alias("z_last"), pl.col("z").max().alias("z_max"))
        for row in last.sort("suspect", "key").iter_rows(named=True):
            print(f"{row['suspect']} carries {row['key']}'s watermark? z (last generation) = {row['z_last']:.2f}, "
                  f"max {row['z_max']:.2f}")
    print(f"written: {out}")
    return 0


_COMMANDS["forensics"] = _cmd_forensics


if __name__ == "__main__":
    sys.exit(main())
