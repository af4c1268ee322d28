"""simweb: simulate the synthetic web and what AI-written pages do to successive model generations.

Python API::

    import simweb
    scenario = simweb.load_scenario("scenarios/quickstart.toml", ["labs.naive.regime=accumulate"])
    results = simweb.run(scenario, out="runs/mine")   # out is optional
    results.generations  # a polars DataFrame, one row per (lab, generation)

Scenarios can be built in Python (:func:`build_scenario`, :meth:`Scenario.with_overrides`), and
policies written as plugins (:func:`filter`, :func:`model`, :func:`regime`,
:func:`publisher_behaviour`; see :mod:`simweb.plugins`).
"""

from __future__ import annotations

__version__ = "0.1.0"

from simweb.plugins import (  # noqa: E402
    PluginConfig, PluginError, filter, load_plugins, model, publisher_behaviour, regime,
)

__all__ = ["__version__", "Results", "Scenario", "PluginConfig", "PluginError", "build_scenario", "dump_scenario", "filter",
           "load_plugins", "load_scenario", "model", "publisher_behaviour", "regime", "resume", "run"]


def load_scenario(path, overrides=(), *, seed=None, plugins=()):
    """Read and validate a scenario file; ``overrides`` are ``path=value`` strings as for ``--set``;
    ``plugins`` (files, module names, modules or classes) are loaded first, so the scenario may name them."""
    from simweb.scenario import load_scenario as _load

    load_plugins(plugins)
    return _load(path, overrides, seed=seed)


def build_scenario(data=None, /, **tables):
    """A scenario from plain Python values (dicts and lists, as in a TOML file), validated like a file:
    ``simweb.build_scenario(run={"seed": 1}, publishers=[{...}], labs=[{...}])``."""
    from simweb.scenario.load import validate

    return validate({**(data or {}), **tables})


def dump_scenario(scenario) -> str:
    """The TOML text that reproduces ``scenario`` (every default written out)."""
    from simweb.scenario import dump_scenario as _dump

    return _dump(scenario)


def run(scenario, *, out=None, overwrite: bool = False, on_tick=None, executor=None, address=None, warn=None,
        plugins=(), say=None):
    """Run a scenario; returns :class:`Results` (polars frames) and writes them to ``out`` if given.

    ``executor`` is "local" or "ray" (default: the scenario's ``run.executor``); an executor object
    may be passed instead. ``address`` joins an existing Ray cluster (else ``RAY_ADDRESS``, else a
    local one is started and stopped again). ``plugins``: the plugins the scenario names (files,
    module names, modules, or classes defined in one) — they travel to every Ray worker. With
    ``out``, checkpoints at every generation boundary go to a hidden sibling of ``out`` until the run
    is complete; :func:`resume` continues from them.
    """
    from simweb.engine import Engine
    from simweb.plugins import plugin_sources
    from simweb.recorder import start_run
    from simweb.scenario import dump_scenario as _dump

    sources = load_plugins(plugin_sources(plugins))
    _check_plugins_named(scenario, sources)
    started: list = []  # the run's checkpoint directory, once its partial directory exists
    toml = _dump(scenario)  # the resolved scenario: the run directory's scenario.toml, and a whole run's input

    def prepare():
        """The run directory's partial sibling, made once the executor stands (a cluster that cannot be
        joined leaves nothing behind)."""
        if out is not None:
            started.append(start_run(out, toml, overwrite=overwrite))
            if sources:
                _write_plugin_records(started[0].parent, sources)
        return started[0] if started else None

    try:
        return _execute(lambda ex, checkpoint_dir: Engine(scenario, executor=ex, shards=scenario.run.shards,
                                                          warn=warn, checkpoint_dir=checkpoint_dir, plugins=sources),
                        scenario, out=out, overwrite=overwrite, on_tick=on_tick, executor=executor, address=address,
                        say=say, prepare=prepare, warn=warn,
                        whole={"toml": toml, "plugins": sources, "resume": False})
    except PluginError:
        checkpoint_dir = started[0] if started else None
        if checkpoint_dir is not None and _at_start(checkpoint_dir):
            # a plugin broke before the first generation was done: there is nothing to resume, so nothing stays
            from simweb import storage

            storage.remove_tree(checkpoint_dir.parent)
        raise


def resume(out, *, on_tick=None, executor=None, address=None, warn=None, plugins=(), say=None):
    """Continue an interrupted run into ``out`` from its last checkpoint; returns its :class:`Results`.

    The final output is the one an uninterrupted run would have written. A run that used plugins
    needs them again (``plugins``), with the same source.
    """
    import json

    from simweb import checkpoint, storage
    from simweb.engine import Engine
    from simweb.errors import SimwebError
    from simweb.plugins import plugin_sources
    from simweb.recorder import lock, partial_dir
    from simweb.scenario import parse_scenario

    out = storage.location(out, "resume")
    storage.check_reachable(out, "resume")
    partial = partial_dir(out)
    # on an object store the run is written in place: a manifest there means it is complete
    done = (out / "manifest.json").is_file()
    if not (partial / "scenario.toml").is_file() or storage.is_object(out) and done:
        raise SimwebError(f"{out}: {'the run is complete; nothing to resume' if done else 'no interrupted run here'}")
    lock(partial)
    sources = plugin_sources(plugins)
    records = partial / "plugins.json"
    used = json.loads(records.read_text(encoding="utf-8")) if records.is_file() else []
    given = {s.name: s for s in sources}
    for rec in used:
        src = given.get(rec["name"])
        if src is None:
            raise SimwebError(f"{out}: the run used plugin {rec['name']!r} ({rec['path']}); pass it again with "
                              f"--plugin")
        if src.sha256 != rec["sha256"]:
            raise SimwebError(f"--plugin {src.path}: its source changed since the run started (plugin "
                              f"{rec['name']!r}); resume only with the same code, or start the run again")
    load_plugins(sources)
    toml = (partial / "scenario.toml").read_text(encoding="utf-8")
    scenario = parse_scenario(toml, source=str(partial))
    state = checkpoint.load(partial / "checkpoint") if checkpoint.exists(partial / "checkpoint") else None
    kept = tuple(given[rec["name"]] for rec in used)

    def build(ex, _):
        engine = Engine(scenario, executor=ex, shards=scenario.run.shards, warn=warn,
                        checkpoint_dir=partial / "checkpoint", plugins=kept)
        if state is not None:
            engine.restore(state)
        return engine

    return _execute(build, scenario, out=out, overwrite=out.exists(), on_tick=on_tick, executor=executor,
                    address=address, say=say, warn=warn,
                    whole={"toml": toml, "plugins": kept, "resume": True, "checkpoint_dir": partial / "checkpoint"})


def _check_plugins_named(scenario, sources) -> None:
    """Every plugin kind the scenario names must come from a plugin the run ships (else Ray workers lack it)."""
    from simweb.errors import SimwebError
    from simweb.plugins import registry

    shipped = {f"plugin {s.name!r}" for s in sources}
    for kind, name, where in _plugin_uses(scenario):
        entry = registry.get(kind, name)
        if not entry.builtin and entry.origin not in shipped and not any(
                getattr(s, "module", None) and entry.cls.__module__ == s.module for s in sources):
            raise SimwebError(f"{where}: {kind} {name!r} comes from {entry.origin}, which the run was not given; "
                              "pass it with --plugin (or plugins=[...]) so every worker loads it")


def _plugin_uses(scenario):
    for i, lab in enumerate(scenario.labs):
        yield "model", lab.model.family, f"labs[{i}].model"
        yield "regime", lab.regime.kind, f"labs[{i}].regime"
        for j, f in enumerate(lab.filters):
            yield "filter", f.kind, f"labs[{i}].filters[{j}]"
    for i, p in enumerate(scenario.publishers):
        for j, b in enumerate(p.behaviours or ()):
            yield "behaviour", b.kind, f"publishers[{i}].behaviours[{j}]"


def _at_start(checkpoint_dir) -> bool:
    """Whether the run is known to hold nothing to resume: no checkpoint at all, or only the one taken before its
    first tick. A checkpoint that cannot be read (a storage error, a damaged file) keeps the run."""
    from simweb import checkpoint

    try:
        if not checkpoint.exists(checkpoint_dir):
            return True
    except OSError:
        return False
    return checkpoint.tick_of(checkpoint_dir) == 0


def _write_plugin_records(partial, sources) -> None:
    import json

    from simweb.recorder import atomic_write

    atomic_write(partial / "plugins.json", json.dumps([s.record() for s in sources], indent=2) + "\n")


def _execute(build, scenario, *, out, overwrite, on_tick, executor, address, say=None, prepare=None, warn=None,
             whole=None):
    """Run ``build(executor, checkpoint_dir)``'s engine; or, where the Ray executor runs a small run whole in one
    actor, :func:`_run_whole` there with ``whole`` (the scenario's TOML, its plugins, whether it resumes)."""
    import sys
    import time
    from pathlib import Path

    from simweb import storage
    from simweb.engine import MAX_RECOVERIES
    from simweb.errors import SimwebError
    from simweb.executors import ClusterFull, make_executor
    from simweb.recorder import partial_dir, write_run
    from simweb.runlock import release

    start = time.perf_counter()
    own = executor is None or isinstance(executor, str)
    ex = make_executor(executor or scenario.run.executor, address=address, say=say) if own else executor
    try:
        try:
            # on an object store the checkpoints' commits check this process's lease on the run: they stay here
            in_one = (whole is not None and getattr(ex, "runs_whole", None) is not None and ex.runs_whole(scenario)
                      and not (out is not None and storage.is_object(storage.location(out))))
            checkpoint_dir = prepare() if prepare else None
            if in_one:
                warn = warn or (lambda msg: print(f"simweb: warning: {msg}", file=sys.stderr))
                where = whole.get("checkpoint_dir", checkpoint_dir)
                # the actor's working directory is not this process's
                args = {**whole, "checkpoint_dir": where.absolute() if isinstance(where, Path) else where}
                results = ex.run_whole(_run_whole, args, on_tick=on_tick, warn=warn, restarts=MAX_RECOVERIES)
                results.manifest.update(executor=ex.name, cluster=ex.cluster(), recoveries=ex.whole_restarts)
            else:
                results = build(ex, checkpoint_dir).run(on_tick=on_tick)
            results.manifest["one_actor"] = in_one
        except ClusterFull as err:  # starting the agents, restoring a checkpoint, gathering results: not in a tick
            raise SimwebError(err.say("run again ('simweb resume' on the run directory continues it from its last "
                                      "checkpoint, if it has one)")) from None
        finally:
            if own:
                ex.shutdown()
    except BaseException:  # the run stops here: its partial directory is free for 'simweb resume' at once
        if out is not None:
            release(partial_dir(out))
        raise
    results.manifest["startup_s"] = round(getattr(ex, "startup_s", 0.0), 3)
    results.manifest["shutdown_s"] = round(getattr(ex, "shutdown_s", 0.0), 3)
    results.manifest["total_s"] = round(time.perf_counter() - start, 3)
    if out is not None:
        write_run(out, results, overwrite=overwrite)
    return results


def _run_whole(*, on_tick, warn, toml: str, plugins, checkpoint_dir, resume: bool, restart: bool):
    """A whole run with the local executor, in the Ray actor :meth:`RayExecutor.run_whole` starts: the scenario
    read from its TOML once ``plugins`` are loaded; with ``resume`` or ``restart`` (the actor before died), from
    the last checkpoint in ``checkpoint_dir`` when there is one."""
    from simweb.engine import Engine
    from simweb.executors import LocalExecutor
    from simweb.scenario import parse_scenario

    load_plugins(plugins)
    scenario = parse_scenario(toml)
    engine = Engine(scenario, executor=LocalExecutor(), shards=scenario.run.shards, warn=warn,
                    checkpoint_dir=checkpoint_dir, plugins=plugins)
    if (resume or restart) and engine.checkpoints.exists():
        engine.restore(engine.checkpoints.load())
    return engine.run(on_tick=on_tick)


def __getattr__(name):
    if name == "Results":
        from simweb.results import Results

        return Results
    if name == "Scenario":
        from simweb.scenario import Scenario

        return Scenario
    raise AttributeError(name)


def __dir__():
    return sorted(__all__)
