"""The README's Python examples run as written (with the local executor, so the test starts no Ray)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import simweb

ROOT = Path(__file__).resolve().parents[1]


def _python_block(section: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text[text.index(f"## {section}"):]
    body = body[:body.index("\n## ", 4)]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def test_the_python_api_example_runs(monkeypatch, capsys):
    run = simweb.run
    monkeypatch.setattr(simweb, "run", lambda scenario, **kw: run(scenario, **{"executor": "local", **kw}))
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(_python_block("Python API"), "README.md", "exec"), namespace)
    sc = namespace["sc"]
    assert sc.labs[0].crawl_budget == 500 and sc.labs[0].reserve_docs == 100
    assert namespace["results"].generations.height > 0
    printed = capsys.readouterr().out
    assert "[[labs]]" in printed and "crawl_budget = 500" in printed


def test_the_plugin_example_registers_and_runs(tmp_path, monkeypatch):
    block = _python_block("Write your own policy").replace('"odd_sites"', '"odd_sites_readme"')
    plugin = tmp_path / "my_policies.py"
    plugin.write_text(block)
    simweb.load_plugins([plugin])
    sc = simweb.build_scenario(run={"ticks": 3, "executor": "local"},
                               publishers=[{"name": "p", "site_share": 1.0, "initial_pages": 300}],
                               labs=[{"name": "a", "filters": [{"kind": "odd_sites_readme", "modulus": 3}]}])
    crawls = simweb.run(sc, plugins=[plugin]).crawls
    step = crawls.filter((crawls["filter"] == "odd_sites_readme") & (crawls["purpose"] == "train"))
    assert step.height > 0 and (step["kept"] < step["pages_in"]).all()
    from simweb.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"labs\[0\]\.filters\[0\]\.modulus: expected an integer, got 'x'"):
        simweb.build_scenario(publishers=[{"name": "p", "site_share": 1.0}],
                              labs=[{"name": "a", "filters": [{"kind": "odd_sites_readme", "modulus": "x"}]}])


def test_the_commands_block_lists_every_command():
    import argparse

    from simweb.cli import _parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text[text.index("## Commands"):]
    block = re.search(r"```\n(.*?)```", body, re.S).group(1)
    listed = set(re.findall(r"^simweb (\w+)", block, re.M))
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= listed, sorted(set(sub.choices) - listed)
