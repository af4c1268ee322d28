"""The ``simweb`` command end to end, as a subprocess: exit codes, one-line errors, atomic run directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simweb.recorder import FILES
from simweb.scenario import load_scenario, parse_scenario
from tests.helpers import MINIMAL

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "scenarios" / "quickstart.toml"
# Three ticks in-process keep a real run to about a second; Ray startup alone would cost ~10 s.
FAST = ["--set", "run.ticks=3", "--executor", "local"]




def simweb(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simweb", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _lab(extra: str) -> str:
    return MINIMAL.replace('name = "lab"', f'name = "lab"\n{extra}')


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one non-empty line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if ".partial" in p.name or ".replaced" in p.name or ".tmp" in p.name]


# ---------------------------------------------------------------- bad input: exit 2, one line, nothing written
# (id, scenario text or None for the quickstart or "MISSING" for no file, extra arguments, words stderr must contain)
BAD = [
    ("wrong type", MINIMAL.replace("ticks = 3", 'ticks = "three"'), [], ["run.ticks", "expected an integer", "'three'"]),
    ("out of range", MINIMAL + '[[labs]]\nname = "b"\ncrawl_budget = -5\n', [],
     ["labs[1].crawl_budget: expected an integer >= 1, got -5"]),
    ("unknown key", _lab("crawl_budgte = 5"), [], ["labs[0].crawl_budgte", "did you mean 'crawl_budget'"]),
    ("no labs", MINIMAL.split("[[labs]]")[0], [], ["labs", "required"]),
    ("no publishers", MINIMAL.replace('[[publishers]]\nname = "pub"\nsite_share = 1.0\n', ""), [],
     ["publishers", "required"]),
    ("broken TOML", MINIMAL.replace("ticks = 3", "ticks = = 3"), [], ["not valid TOML", "line 3"]),
    ("empty file", "", [], ["bad.toml", "empty"]),
    ("missing file", "MISSING", [], ["missing.toml", "no such scenario file"]),
    ("unknown family", MINIMAL + '[language]\nfamily = "transformer"\n', [], ["language.family", "'transformer'"]),
    ("unknown filter kind", _lab('filters = [{ kind = "oracle" }]'), [], ["labs[0].filters[0].kind", "'oracle'"]),
    ("duplicate lab", MINIMAL + '[[labs]]\nname = "lab"\n', [], ["labs[1].name", "duplicate", "'lab'"]),
    ("uses an unknown lab", MINIMAL.replace("site_share = 1.0", 'site_share = 1.0\nuses = ["labz"]'), [],
     ["publishers[0].uses[0]", "'labz'", "did you mean 'lab'"]),
    ("model incompatible with language", MINIMAL + '[language]\nfamily = "gaussian"\n', [],
     ["labs[0].model.family", "gaussian", "'ngram'"]),
    ("ngram order too large", _lab("model = { order = 4 }"), [], ["labs[0].model.order", "order 4", "vocab_size 256"]),
    ("model not a table", _lab("model = 3"), [], ["labs[0].model", "expected a table", "3"]),
    ("--set out of range", None, ["--set", "labs[0].crawl_budget=0"],
     ["labs[0].crawl_budget: expected an integer >= 1, got 0"]),
    ("--set bad value", None, ["--set", "labs.naive.regime=hoard"], ["labs[0].regime", "'hoard'"]),
    ("--set unreadable path", None, ["--set", "labs[0.crawl_budget=3"], ["--set", "'labs[0.crawl_budget'"]),
    ("--set unknown lab", None, ["--set", "labs.naiv.regime=accumulate"], ["labs.naiv", "did you mean 'naive'"]),
    ("--set without =", None, ["--set", "run.ticks"], ["--set", "path=value", "'run.ticks'"]),
    ("--seed not an integer", None, ["--seed", "abc"], ["--seed", "'abc'"]),
    ("--seed negative", None, ["--seed", "-1"], ["run.seed", "-1"]),
]


@pytest.mark.parametrize(("text", "args", "words"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_scenario_exits_2_with_one_line_and_writes_nothing(tmp_path, text, args, words):
    if text is None:
        scenario = QUICKSTART
    elif text == "MISSING":
        scenario = tmp_path / "missing.toml"
    else:
        scenario = tmp_path / "bad.toml"
        scenario.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    result = simweb("run", scenario, "--out", out, *args, cwd=tmp_path)
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr}"
    line = _one_line(result.stderr)
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert result.stdout == ""
    assert not out.exists()
    assert not (tmp_path / "runs").exists()
    assert _leftovers(tmp_path) == []


def test_set_by_lab_name_reaches_the_resolved_scenario(tmp_path):
    out = tmp_path / "run"
    result = simweb("run", QUICKSTART, "--out", out, "--quiet", *FAST, "--set", "labs.naive.regime=accumulate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = load_scenario(out / "scenario.toml")
    assert [lab.regime.kind for lab in resolved.labs] == ["accumulate", "accumulate"]
    assert resolved.run.ticks == 3 and resolved.run.executor == "local"


# ---------------------------------------------------------------- a real run
def test_run_writes_the_run_directory_and_refuses_to_clobber_it(tmp_path):
    out = tmp_path / "results" / "quick"
    first = simweb("run", QUICKSTART, "--out", out, "--quiet", *FAST, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "checkpoint", "pages", "states"])
    expected = load_scenario(QUICKSTART, ["run.ticks=3", "run.executor=local"])
    assert load_scenario(out / "scenario.toml") == expected
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 7 and manifest["executor"] == "local"
    before = _files(out)

    again = simweb("run", QUICKSTART, "--out", out, "--quiet", *FAST, "--set", "run.ticks=2", cwd=tmp_path)
    assert again.returncode == 2
    line = _one_line(again.stderr)
    assert str(out) in line and "--overwrite" in line
    assert _files(out) == before, "a refused run changed the first run's files"

    replaced = simweb("run", QUICKSTART, "--out", out, "--quiet", *FAST, "--set", "run.ticks=2", "--overwrite",
                      cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "checkpoint", "pages", "states"])
    assert load_scenario(out / "scenario.toml").run.ticks == 2
    assert _files(out)["scenario.toml"] != before["scenario.toml"]
    assert _files(out)["ticks.parquet"] != before["ticks.parquet"]
    assert _leftovers(tmp_path) == []


def test_seed_overrides_run_seed_and_names_the_default_directory(tmp_path):
    result = simweb("run", QUICKSTART, "--quiet", *FAST, "--set", "run.seed=5", "--seed", "11", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "quickstart-seed11"
    assert load_scenario(out / "scenario.toml").run.seed == 11
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["seed"] == 11
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["quickstart-seed11"]


# ---------------------------------------------------------------- validate
def test_validate_prints_the_resolved_scenario(tmp_path):
    result = simweb("validate", QUICKSTART, "--set", "labs.careful.crawl_budget=700", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "valid" in result.stderr
    printed = parse_scenario(result.stdout)
    assert printed == load_scenario(QUICKSTART, ["labs.careful.crawl_budget=700"])
    assert printed.labs[1].crawl_budget == 700
    assert list(tmp_path.iterdir()) == []


def test_validate_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + '[[labs]]\nname = "b"\ncrawl_budget = -5\n', encoding="utf-8")
    result = simweb("validate", bad, cwd=tmp_path)
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "labs[1].crawl_budget: expected an integer >= 1, got -5" in line and "bad.toml" in line
    assert result.stdout == ""


def test_the_summary_gives_the_whole_time_and_its_parts():
    """The summary's wall time is the whole command's (total_s), with the simulation and Ray's start and
    stop beside it, so a run that spent most of its time starting Ray says so."""
    from rich.console import Console

    import simweb as api
    from simweb.summary import print_summary
    from tests.helpers import MINIMAL, scenario

    results = api.run(scenario(MINIMAL, 'run.executor="local"'))
    m = results.manifest
    assert m["total_s"] >= m["wall_time_s"] and m["startup_s"] == 0.0 and m["shutdown_s"] == 0.0
    console = Console(record=True, width=200)
    print_summary(results, None, console)
    assert f"wall time {m['total_s']:.1f} s (simulation {m['wall_time_s']:.1f} s)" in console.export_text()
    m.update(startup_s=6.0, shutdown_s=1.5, total_s=9.0)
    print_summary(results, None, console)
    text = console.export_text()  # export clears the record
    assert "wall time 9.0 s (simulation" in text and "Ray start and stop 7.5 s" in text
