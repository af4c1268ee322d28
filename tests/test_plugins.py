"""A user's own policies as plugins: they run like built-ins, travel to Ray workers, survive kill -9 and
resume, and every way a plugin can be wrong is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import simweb
from simweb.filters.base import TRUTH_COLUMNS
from simweb.plugins import PluginError, PluginSource, registry
from tests.helpers import COLLAPSE, batch

ROOT = Path(__file__).resolve().parents[1]

# A plugin file this project has never seen: a filter that needs the lab's model and memory across crawls.
PLUGIN = '''
import numpy as np
import simweb


@simweb.filter("{name}")
class Familiar:
    """Drops pages the lab's model finds likelier than the median of every page it scored before."""

    class Config(simweb.PluginConfig):
        quantile: float = 0.5

    needs = ("tokens", "model", "history")

    def __init__(self, config):
        self.config, self.scores = config, np.empty(0)

    def keep(self, batch, *, rng):
        if batch.model is None:
            return np.ones(len(batch), dtype=bool)
        score = batch.model.log_prob(batch.content)
        bar = np.quantile(self.scores, self.config.quantile) if len(self.scores) else np.inf
        self.scores = np.concatenate([self.scores, score])
        return score <= bar

    def state(self):
        return {{"scores": self.scores}}

    def restore(self, state):
        self.scores = np.asarray(state["scores"], dtype=float)
'''

SCENARIO = COLLAPSE + """
[[publishers]]
name = "humans"
site_share = 0.5
initial_pages = 200
pages_per_tick = 100
ai_adoption = { start = 0.0, end = 0.0 }
"""


def _plugin(tmp_path: Path, name: str = "familiar", body: str = PLUGIN) -> Path:
    path = tmp_path / f"user_{name}.py"
    path.write_text(textwrap.dedent(body.format(name=name)), encoding="utf-8")
    return path


def _scenario_file(tmp_path: Path, kind: str = "familiar", extra: str = "", ticks: int = 6) -> Path:
    text = SCENARIO.replace("ticks = 6", f"ticks = {ticks}").replace(
        'name = "keep"', f'name = "keep"\nfilters = [{{ kind = "{kind}"{extra} }}]', 1)
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _simweb(*args, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SIMWEB_CRASH_AT_TICK"}
    env.update(kw.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "simweb", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, **kw)


def _frames(directory: Path) -> dict[str, bytes]:
    return {n: (directory / n).read_bytes() for n in ("generations.parquet", "ticks.parquet", "crawls.parquet")}


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---------------------------------------------------------------- a plugin runs like a built-in
def test_a_plugin_filter_with_model_and_history_runs_kill_9_and_resumes_to_the_same_output(tmp_path):
    plugin, scen = _plugin(tmp_path), _scenario_file(tmp_path)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    first = _simweb("run", scen, "--plugin", plugin, "--executor", "local", "--out", whole, "--quiet")
    assert first.returncode == 0, first.stderr
    crawls = pl.read_parquet(whole / "crawls.parquet")
    used = crawls.filter(pl.col("filter") == "familiar")
    assert len(used) and used["dropped"].sum() > 0  # it acted on the pages
    manifest = json.loads((whole / "manifest.json").read_text())
    import hashlib

    assert manifest["plugins"] == [{"name": plugin.stem, "path": str(plugin),
                                    "sha256": hashlib.sha256(plugin.read_bytes()).hexdigest()}]
    crashed = _simweb("run", scen, "--plugin", plugin, "--executor", "local", "--out", broken, "--quiet",
                      env={"SIMWEB_CRASH_AT_TICK": "3"})
    assert crashed.returncode == -9 and not broken.exists()
    # resume needs the plugin again, and refuses it when its source changed
    missing = _simweb("resume", broken, "--quiet")
    assert missing.returncode == 2 and "familiar" in missing.stderr or plugin.stem in missing.stderr
    changed = tmp_path / "changed" / plugin.name
    changed.parent.mkdir()
    changed.write_text(plugin.read_text() + "\n# an edit\n")
    refused = _simweb("resume", broken, "--quiet", "--plugin", changed)
    assert refused.returncode == 2 and "changed" in _one_line(refused.stderr) and plugin.stem in refused.stderr
    resumed = _simweb("resume", broken, "--quiet", "--plugin", plugin)
    assert resumed.returncode == 0, resumed.stderr
    assert _frames(broken) == _frames(whole)


def test_a_plugin_runs_unchanged_on_a_three_node_ray_cluster(tmp_path, ray_cluster):
    """The plugin file exists only in the driver: the workers get its source with the run."""
    import ray

    from simweb.executors.ray_executor import RayExecutor

    assert len([n for n in ray.nodes() if n["Alive"]]) >= 3
    plugin = _plugin(tmp_path, "familiar_ray")
    sources = simweb.load_plugins([plugin])
    plugin.unlink()  # nothing on disk for a worker to import
    scenario = simweb.load_scenario(_scenario_file(tmp_path, "familiar_ray", ticks=5))
    local = simweb.run(scenario, executor="local", plugins=sources)
    remote = simweb.run(scenario, executor=RayExecutor(), plugins=sources)
    for table in ("generations", "ticks", "crawls"):
        assert getattr(local, table).equals(getattr(remote, table)), table
    assert (local.crawls["filter"] == "familiar_ray").any()


def test_a_scenario_built_in_python_dumps_to_the_toml_that_reproduces_it():
    sc = simweb.build_scenario(run={"seed": 4, "ticks": 3, "executor": "local"},
                               publishers=[{"name": "p", "site_share": 1.0, "initial_pages": 200}],
                               labs=[{"name": "a", "filters": [{"kind": "dedup"}], "regime": "accumulate"}])
    from simweb.errors import ScenarioError
    from simweb.scenario import parse_scenario

    assert parse_scenario(simweb.dump_scenario(sc)) == sc
    assert sc.with_overrides(["labs.a.crawl_budget=50"]).labs[0].crawl_budget == 50
    assert sc.replace({"labs.a.regime": "replace"}).labs[0].regime.kind == "replace"
    with pytest.raises(ScenarioError, match=r"labs\[0\].crawl_budget: expected an integer >= 1, got -5"):
        sc.replace({"labs.a.crawl_budget": -5})
    with pytest.raises(ScenarioError, match=r"labs\[0\].filters\[0\].kind: no filter named 'dedupe'"):
        simweb.build_scenario(publishers=[{"name": "p", "site_share": 1.0}],
                              labs=[{"name": "a", "filters": [{"kind": "dedupe"}]}])


def test_examples_run_from_toml_and_from_python_on_both_executors():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "run_my_policies.py"), "--ticks", "5"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "identical frames: True" in out.stdout
    for lab in ("plain", "self_similarity", "newest_two", "likelihood"):
        assert lab in out.stdout


# ---------------------------------------------------------------- what a filter may see
def test_a_filter_without_truth_gets_nothing_that_reveals_origin():
    rng = np.random.default_rng(0)
    n = 50
    truth = {k: rng.integers(0, 2, n) for k in TRUTH_COLUMNS}
    content = rng.integers(0, 9, (n, 4)).astype(np.uint16)
    full = batch(n, content=content, truth=truth, needs=("tokens", "truth"), population_names=["a", "b"])
    seen = full.view("curious", frozenset({"tokens", "graph", "model", "calibration", "history"}))
    with pytest.raises(PluginError, match="curious.*truth"):
        _ = seen.truth
    for name in ("language", "population_names"):
        with pytest.raises(PluginError, match="truth"):
            getattr(seen, name)
    # nothing in the object holds the truth, private fields included
    assert seen._truth is None and "language" not in seen._extra and "population_names" not in seen._extra
    hidden = full.view("blind", frozenset())
    with pytest.raises(PluginError, match="tokens"):
        _ = hidden.content
    assert hidden._content is None
    assert full.view("honest", frozenset({"truth"})).truth["origin"] is truth["origin"]


def test_built_in_filters_that_read_the_truth_say_so():
    parametric = {e.name for e in registry.entries("filter") if "truth" in e.needs}
    assert parametric == {"classifier", "verifier"}


# ---------------------------------------------------------------- bad plugins: one line, exit 2, nothing written
BAD = {
    "a file that fails to import": ("import numpy as np\nraise ValueError('broken on purpose')\n", None,
                                    "cannot import it: ValueError: broken on purpose"),
    "a syntax error": ("def oops(:\n", None, "cannot import it: SyntaxError"),
    "a class missing keep": ("import simweb\n\n@simweb.filter('lazy')\nclass Lazy:\n    pass\n", None, "lacks keep"),
    "history without state": ("import simweb\n\n@simweb.filter('forgetful')\nclass F:\n    needs = ('history',)\n"
                              "    def keep(self, batch, *, rng): return None\n", None, "lacks state, restore"),
    "an unknown need": ("import simweb\n\n@simweb.filter('greedy')\nclass G:\n    needs = ('everything',)\n"
                        "    def keep(self, batch, *, rng): return None\n", None, "unknown needs ['everything']"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_plugin_file_is_one_line_naming_it(tmp_path, case):
    source, _, message = BAD[case]
    plugin = tmp_path / "bad_plugin.py"
    plugin.write_text(source)
    scen = _scenario_file(tmp_path, "dedup")
    for command in ("validate", "run"):
        result = _simweb(command, scen, "--plugin", plugin, *(["--out", tmp_path / "out"] if command == "run" else []))
        line = _one_line(result.stderr)
        assert result.returncode == 2 and "bad_plugin.py" in line and message in line, line
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_an_unknown_kind_and_a_config_that_rejects_the_toml_are_one_line(tmp_path):
    plugin = _plugin(tmp_path)
    unknown = _simweb("validate", _scenario_file(tmp_path, "familiarr"), "--plugin", plugin)
    assert unknown.returncode == 2
    assert "labs[1].filters[0].kind: no filter named 'familiarr' (did you mean 'familiar'?)" in _one_line(
        unknown.stderr)
    rejected = _simweb("validate", _scenario_file(tmp_path, "familiar", ', quantile = "half"'), "--plugin", plugin)
    assert rejected.returncode == 2
    assert "labs[1].filters[0].quantile: expected a number, got 'half'" in _one_line(rejected.stderr)
    without = _simweb("validate", _scenario_file(tmp_path, "familiar"))
    assert without.returncode == 2 and "no filter named 'familiar'" in _one_line(without.stderr)


@pytest.mark.parametrize("result, what", [("np.ones(len(batch), dtype=int)", "dtype int64"),
                                          ("np.ones(len(batch) + 1, dtype=bool)", "shape"),
                                          ("None", "NoneType")])
def test_a_keep_of_the_wrong_shape_or_dtype_is_one_line_and_nothing_is_written(tmp_path, result, what):
    plugin = _plugin(tmp_path, "wrong", "import numpy as np\nimport simweb\n\n@simweb.filter('{name}')\nclass W:\n"
                     f"    def __init__(self, config): pass\n    def keep(self, batch, *, rng): return {result}\n")
    out = tmp_path / "out"
    run = _simweb("run", _scenario_file(tmp_path, "wrong"), "--plugin", plugin, "--executor", "local", "--out", out)
    line = _one_line(run.stderr)
    assert run.returncode == 2 and "filter 'wrong'" in line and "tick 0" in line and what in line, line
    assert "expected a bool array of shape" in line
    assert not out.exists() and not (tmp_path / ".out.partial").exists()


def test_a_plugin_that_raises_mid_run_names_itself_and_the_tick_and_the_checkpoint_stays(tmp_path):
    plugin = _plugin(tmp_path, "flaky", "import numpy as np\nimport simweb\n\n@simweb.filter('{name}')\nclass F:\n"
                     "    def __init__(self, config): pass\n    def keep(self, batch, *, rng):\n"
                     "        if batch.crawl_tick >= 3: raise ZeroDivisionError('the plugin\\'s own bug')\n"
                     "        return np.ones(len(batch), dtype=bool)\n")
    out = tmp_path / "out"
    run = _simweb("run", _scenario_file(tmp_path, "flaky"), "--plugin", plugin, "--executor", "local", "--out", out)
    line = _one_line(run.stderr)
    assert run.returncode == 2 and "filter 'flaky'" in line and "tick 3" in line and "ZeroDivisionError" in line
    meta = json.loads((tmp_path / ".out.partial" / "checkpoint" / "meta.json").read_text())
    assert meta["meta"]["tick"] == 3  # the last generation boundary before the failure, intact


def test_a_plugin_kind_cannot_take_a_built_in_name():
    with pytest.raises(PluginError, match="'dedup' is already registered by simweb"):
        PluginSource("clash", "import simweb\n\n@simweb.filter('dedup')\nclass D:\n"
                     "    def keep(self, batch, *, rng): return None\n", "clash.py").load()


def test_the_likelihood_filter_as_a_user_plugin_gives_the_built_ins_output():
    """The filter that needs the lab's model and calibration text, loaded unchanged from its one file as a
    user's plugin (under another name): the same pages are kept, the same models are trained."""
    source = (ROOT / "simweb" / "filters" / "likelihood.py").read_text()
    assert source.count('@plugins.filter("likelihood")') == 1
    sources = simweb.load_plugins([PluginSource("my_likelihood", source.replace(
        '@plugins.filter("likelihood")', '@plugins.filter("my_likelihood")'), "my_likelihood.py")])
    text = SCENARIO.replace("ticks = 6", "ticks = 5")
    from simweb.scenario import parse_scenario

    runs = {}
    for kind in ("likelihood", "my_likelihood"):
        sc = parse_scenario(text, [f'labs.keep.filters=[{{kind="{kind}", target_fpr=0.2}}]'])
        runs[kind] = simweb.run(sc, executor="local", plugins=sources if kind != "likelihood" else ())
    built_in, plugin = runs["likelihood"], runs["my_likelihood"]
    assert (plugin.crawls["filter"] == "my_likelihood").any() and plugin.crawls["dropped"].sum() > 0
    assert built_in.generations.drop("run_id").equals(plugin.generations.drop("run_id"))
    assert built_in.crawls.drop("run_id", "filter").equals(plugin.crawls.drop("run_id", "filter"))


def test_a_broken_plugin_removes_only_a_run_known_to_be_at_its_start(tmp_path, monkeypatch):
    # the run's directory goes only when there is nothing to resume: no checkpoint, or tick 0's; a checkpoint that
    # cannot be read (a storage error mid-run) keeps it, whatever tick it may hold
    from simweb import _at_start, checkpoint

    where = tmp_path / "checkpoint"
    assert _at_start(where)  # nothing written yet
    monkeypatch.setattr(checkpoint, "exists", lambda d: True)
    for tick, at_start in ((0, True), (3, False), (None, False)):  # None: meta.json unreadable
        monkeypatch.setattr(checkpoint, "tick_of", lambda d, t=tick: t)
        assert _at_start(where) is at_start, tick

    def unreachable(d):
        raise OSError("the store did not answer")

    monkeypatch.setattr(checkpoint, "exists", unreachable)
    assert _at_start(where) is False


# A regime and a behaviour that try to write into what they are given to read.
WRITERS = '''
import simweb


@simweb.regime("{name}_regime")
class Scribble:
    needs = ("pool",)

    def __init__(self, config, lab):
        pass

    def select(self, pool, *, generation, rng):
        pool.content[:1] = 0  # the pool's rows are written to checkpoints once: editing them is refused
        return list(range(len(pool)))


@simweb.publisher_behaviour("{name}_behaviour")
class Relocate:
    def __init__(self, config):
        pass

    def apply(self, drafts, *, rng):
        drafts.content[drafts.is_draft] = 1  # rewriting the drafts is what a behaviour is for
        drafts.site_id[:] = 0  # moving pages to another site is not
'''


@pytest.mark.parametrize("part, words", [
    ("regime", "regime 'scribble_regime' of lab 'keep', generation 0"),
    ("behaviour", "publisher behaviour 'scribble_behaviour' of population 'humans'"),
])
def test_a_plugin_cannot_write_into_what_it_is_given_to_read(tmp_path, part, words):
    sources = simweb.load_plugins([_plugin(tmp_path, "scribble", WRITERS)])
    from simweb.scenario import parse_scenario

    change = ('labs.keep.regime="scribble_regime"' if part == "regime" else
              'publishers.humans.behaviours=[{kind="scribble_behaviour"}]')
    sc = parse_scenario(SCENARIO, ["run.ticks=3", "publishers.humans.ai_adoption={start=0.5, end=0.5}", change])
    with pytest.raises(PluginError, match="read-only") as info:
        simweb.run(sc, executor="local", plugins=sources)
    assert words in str(info.value)
