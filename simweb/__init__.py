"""simweb: simulate the synthetic web and what AI-written pages do to successive model generations.

Python API::

    import simweb
    scenario = simweb.load_scenario("scenarios/quickstart.toml", ["labs.naive.regime=accumulate"])
    results = simweb.run(scenario, out="runs/mine")   # out is optional
    results.generations  # a polars DataFrame, one row per (lab, generation)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_scenario", "run", "resume", "Results"]


def load_scenario(path, overrides=(), *, seed=None):
    """Read and validate a scenario file; ``overrides`` are ``path=value`` strings as for ``--set``."""
    from simweb.scenario import load_scenario as _load

    return _load(path, overrides, seed=seed)


def run(scenario, *, out=None, overwrite: bool = False, on_tick=None, executor=None, address=None, warn=None):
    """Run a scenario; returns :class:`Results` (polars frames) and writes them to ``out`` if given.

    ``executor`` is "local" or "ray" (default: the scenario's ``run.executor``); an executor object
    may be passed instead. ``address`` joins an existing Ray cluster (else ``RAY_ADDRESS``, else a
    local one is started and stopped again). With ``out``, checkpoints at every generation boundary
    go to a hidden sibling of ``out`` until the run is complete; :func:`resume` continues from them.
    """
    from simweb.engine import Engine
    from simweb.recorder import start_run
    from simweb.scenario import dump_scenario

    checkpoint_dir = start_run(out, dump_scenario(scenario), overwrite=overwrite) if out is not None else None
    return _execute(lambda ex: Engine(scenario, executor=ex, shards=scenario.run.shards, warn=warn,
                                      checkpoint_dir=checkpoint_dir),
                    scenario, out=out, overwrite=overwrite, on_tick=on_tick, executor=executor, address=address)


def resume(out, *, on_tick=None, executor=None, address=None, warn=None):
    """Continue an interrupted run into ``out`` from its last checkpoint; returns its :class:`Results`.

    The final output is the one an uninterrupted run would have written.
    """
    from pathlib import Path

    from simweb import checkpoint
    from simweb.engine import Engine
    from simweb.errors import SimwebError
    from simweb.recorder import lock, partial_dir
    from simweb.scenario import parse_scenario

    partial = partial_dir(out)
    if not (partial / "scenario.toml").is_file():
        done = (Path(out) / "manifest.json").is_file()
        raise SimwebError(f"{out}: {'the run is complete; nothing to resume' if done else 'no interrupted run here'}")
    lock(partial)
    scenario = parse_scenario((partial / "scenario.toml").read_text(encoding="utf-8"), source=str(partial))
    state = checkpoint.load(partial / "checkpoint") if (partial / "checkpoint" / "meta.json").is_file() else None

    def build(ex):
        engine = Engine(scenario, executor=ex, shards=scenario.run.shards, warn=warn,
                        checkpoint_dir=partial / "checkpoint")
        if state is not None:
            engine.restore(state)
        return engine

    return _execute(build, scenario, out=out, overwrite=Path(out).exists(), on_tick=on_tick, executor=executor,
                    address=address)


def _execute(build, scenario, *, out, overwrite, on_tick, executor, address):
    from simweb.executors import make_executor
    from simweb.recorder import write_run

    ex = executor if executor is not None and not isinstance(executor, str) else make_executor(
        executor or scenario.run.executor, address=address)
    try:
        results = build(ex).run(on_tick=on_tick)
    finally:
        if executor is None or isinstance(executor, str):
            ex.shutdown()
    if out is not None:
        write_run(out, results, overwrite=overwrite)
    return results


def __getattr__(name):
    if name == "Results":
        from simweb.engine import Results

        return Results
    raise AttributeError(name)
