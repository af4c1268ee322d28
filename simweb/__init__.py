"""simweb: simulate the synthetic web and what AI-written pages do to successive model generations.

Python API::

    import simweb
    scenario = simweb.load_scenario("scenarios/quickstart.toml", ["labs.naive.regime=accumulate"])
    results = simweb.run(scenario, out="runs/mine")   # out is optional
    results.generations  # a polars DataFrame, one row per (lab, generation)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_scenario", "run", "Results"]


def load_scenario(path, overrides=(), *, seed=None):
    """Read and validate a scenario file; ``overrides`` are ``path=value`` strings as for ``--set``."""
    from simweb.scenario import load_scenario as _load

    return _load(path, overrides, seed=seed)


def run(scenario, *, out=None, overwrite: bool = False, on_tick=None, executor=None, address=None, warn=None):
    """Run a scenario; returns :class:`Results` (polars frames) and writes them to ``out`` if given.

    ``executor`` is "local" or "ray" (default: the scenario's ``run.executor``); an executor object
    may be passed instead. ``address`` joins an existing Ray cluster (else ``RAY_ADDRESS``, else a
    local one is started and stopped again).
    """
    from simweb.engine import Engine
    from simweb.executors import make_executor
    from simweb.recorder import check_out_dir, write_run

    if out is not None:
        check_out_dir(out, overwrite=overwrite)
    ex = executor if executor is not None and not isinstance(executor, str) else make_executor(
        executor or scenario.run.executor, address=address)
    try:
        results = Engine(scenario, executor=ex, shards=scenario.run.shards, warn=warn).run(on_tick=on_tick)
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
