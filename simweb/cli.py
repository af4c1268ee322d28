"""The ``simweb`` command. Exit codes: 0 success, 2 bad scenario or argument, 1 internal error."""

from __future__ import annotations

import argparse
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
    run.add_argument("--out", help="run directory to create (default: runs/<name>-seed<seed>)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="override a scenario value, e.g. labs[0].crawl_budget=500 or labs.naive.regime=accumulate")
    run.add_argument("--seed", type=int, help="override run.seed")
    run.add_argument("--executor", choices=["local"], help="override run.executor")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")

    val = sub.add_parser("validate", help="check a scenario file and print it resolved")
    val.add_argument("scenario")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    val.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except SimwebError as err:
        print(f"simweb: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("simweb: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception:  # a bug in simweb, not in the input: show everything
        traceback.print_exc()
        print("simweb: internal error (the traceback above); please report it", file=sys.stderr)
        return 1


def _load(args):
    from simweb.scenario import load_scenario

    overrides = list(args.overrides)
    if getattr(args, "executor", None):
        overrides.append(f"run.executor={args.executor}")
    return load_scenario(args.scenario, overrides, seed=getattr(args, "seed", None))


def _cmd_validate(args) -> int:
    from simweb.scenario import dump_scenario

    scenario = _load(args)
    if not args.quiet:
        print(dump_scenario(scenario), end="")
        print(f"# {args.scenario}: valid", file=sys.stderr)
    return 0


def _cmd_run(args) -> int:
    from rich.console import Console

    import simweb
    from simweb.recorder import check_out_dir
    from simweb.summary import print_summary

    scenario = _load(args)
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.run.name}-seed{scenario.run.seed}"
    check_out_dir(out, overwrite=args.overwrite)
    console = Console(stderr=True)
    show_progress = not args.quiet and console.is_terminal
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("ticks"), TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(scenario.run.name, total=scenario.run.ticks)
            results = simweb.run(scenario, out=out, overwrite=args.overwrite,
                                 on_tick=lambda tick: progress.update(task, completed=tick))
    else:
        results = simweb.run(scenario, out=out, overwrite=args.overwrite)
    if not args.quiet:
        stdout = Console()
        print_summary(results, out, stdout if stdout.is_terminal else Console(width=120))
    return 0


_COMMANDS = {"run": _cmd_run, "validate": _cmd_validate}


if __name__ == "__main__":
    sys.exit(main())
