"""scripts/figures.py: documents' benchmark blocks regenerated from bench JSON, checked, and CI's ratio check.

Everything runs on a small hand-written bench JSON (the shape ``scripts/bench.py --json`` writes); no
benchmark is run and nothing is timed.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("figures_script", REPO / "scripts" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MACHINE = {"nproc": 2, "cores": 2, "cpu": "Test CPU 9000", "memory_gib": 24.0, "python": "3.11.7", "numpy": "2.4.6",
           "polars": "2.1.0", "ray": "2.60.0", "torch": None, "simweb": "0.1.0", "git": "abc1234",
           "commit": "abc1234def5678abc1234def5678abc1234def5", "dirty": False, "platform": "Linux",
           "measured_at": "2026-11-26T12:00:00Z"}


def web(pages: int, wall: float) -> dict:
    return {"wall_s": wall, "sim_s": wall * 0.8, "peak_rss_mb": 706.2, "pages": pages,
            "stage_time_s": {"publish": 9.4, "crawl": 0.8, "filter": 0.8, "train": 0.7, "evaluate": 3.7,
                             "checkpoint": 3.1},
            "page_memory": {"bytes_per_token_byte": 1.42, "index_bytes": 33 * 2**20, "replica_bytes": 16 * 2**20,
                            "content_bytes": 143 * 2**20, "spilled_pages": 0}, "disk_mb": 280.4, "cluster": {}}


def bench_json(*, quick: bool = False, scale: float = 1.0, gaussian_ratio: float = 0.04) -> dict:
    """A full bench report: every section figures.py renders, small numbers, ``scale`` times each time."""
    run = {"process_s": 1.67 * scale, "import_run_s": 1.5, "sim_s": 1.17 * scale, "peak_rss_mb": 154.0,
           "pages": 52300, "stage_time_s": {"publish": 0.54, "crawl": 0.03, "filter": 0.06, "train": 0.13,
                                            "evaluate": 0.39, "checkpoint": 0.0}}
    ray_run = {**run, "process_s": 9.5 * scale, "sim_s": 1.9 * scale, "peak_rss_mb": 220.0}
    point = {"cores": 1, "pages": 440000, "sim_s": 17.8 * scale, "pages_per_s": 24700.0,
             "pages_per_s_per_node": 24700.0, "efficiency": 1.0, "efficiency_per_core": 1.0,
             "stage_time_s": {"publish": 8.0, "crawl": 0.8}}
    loop = {"scenario": "scenarios/papers/x.toml", "generations": 100, "n": 100,
            "ms_per_generation": [0.5 * scale, 0.6], "bare_ms_per_generation": [0.02, 0.021],
            "simweb_over_bare": gaussian_ratio}
    sections = {
        "quickstart": {"title": "quickstart", "command": "python scripts/bench.py --only quickstart", "reps": 3,
                       "median": {"local": run, "ray": ray_run}, "runs": {"local": [run] * 3, "ray": [ray_run] * 3},
                       "ray_over_local_sim": 1.63, "ray_over_local_process": 5.7},
        "shards": {"pages_per_tick": 100000, "speedup_2_over_1": 1.09,
                   "by_shards": {"1": {"pages_per_s": 251000.0}, "2": {"pages_per_s": 275000.0}}},
        "sampler": {"vocab_size": 2048, "doc_length": 64, "docs": 100000, "simweb_over_alias_ref": 1.06,
                    "tokens_per_s": {"simweb": 28.4e6, "alias_ref": 26.9e6, "inverse_cdf": 2.0e6}},
        "pure_loop": {"loops": {"gaussian": loop, "categorical": {**loop, "n": 20, "simweb_over_bare": 0.03}},
                      "replicates": 400, "workers": 2, "sweep_s": 11.4 * scale, "generations": 40000,
                      "reproduce": {"replicates": 400, "workers": 2, "wall_s": 95.0 * scale, "generations": 472000,
                                    "checks_passed": True}},
        "sweep": {"runs": 32, "ticks": 5, "local_1": 12.4, "local_2": 6.9, "ray_1": 15.8, "ray_2": 10.1},
        "transformer": {"simweb_s": 1.0, "bare_s": 1.01, "tokens": 134600, "ratio": 1.01},
        "web_1m": web(1_100_000, 19.5 * scale),
        "web_10m": web(11_000_000, 79.5 * scale),
        "scaling": {"points": {"1": point, "2": {**point, "cores": 2, "efficiency": 0.99},
                               "4": {**point, "cores": 2, "efficiency": 0.53}}},
    }
    return {"machine": MACHINE, "argv": ["scripts/bench.py", "--json", "x"], "quick": quick, "seed": 0,
            "sections": sections}


README = """# Project

Intro text that no one generates.

which took <!-- bench:reproduce -->old figure<!-- /bench:reproduce -->.

## Speed

<!-- bench:speed -->
| measure | figure |
|---|---|
| an old row | 0.52 ms |
<!-- /bench:speed -->

After the table.
"""

BENCHMARKS = """# Benchmarks

On <!-- bench:machine -->old machine<!-- /bench:machine -->, no GPU.

<!-- bench:web_1m -->
old
<!-- /bench:web_1m -->

<!-- bench:web_10m -->
old
<!-- /bench:web_10m -->

<!-- bench:scaling -->
old
<!-- /bench:scaling -->

<!-- bench:scaling_stages -->
old
<!-- /bench:scaling_stages -->

<!-- bench:quickstart -->
old
<!-- /bench:quickstart -->
"""


@pytest.fixture
def tree(tmp_path):
    """A documents folder with README.md, BENCHMARKS.md, and a bench run's JSON; no BENCHMARKS.json yet."""
    (tmp_path / "README.md").write_text(README)
    (tmp_path / "BENCHMARKS.md").write_text(BENCHMARKS)
    (tmp_path / "run.json").write_text(json.dumps(bench_json()))
    return tmp_path


def args(tree: Path, *extra: str) -> list[str]:
    return [*extra, "--source", str(tree / "BENCHMARKS.json"), "--docs", str(tree / "README.md"),
            str(tree / "BENCHMARKS.md")]


def test_regenerates_every_block_from_a_run_and_keeps_the_rest(figures, tree, capsys):
    assert figures.main(args(tree, str(tree / "run.json"))) == 0
    readme, benchmarks = (tree / "README.md").read_text(), (tree / "BENCHMARKS.md").read_text()
    assert "Intro text that no one generates." in readme and "After the table." in readme
    assert "0.52 ms" not in readme and "old" not in benchmarks
    assert "| pure loop, gaussian (n = 100): one generation / the same fits in bare numpy | 0.500 ms / 0.0200 ms" \
        in readme
    assert ("which took <!-- bench:reproduce -->95.0 s on 2 processes (2 cores of Test CPU 9000, commit `abc1234`)"
            "<!-- /bench:reproduce -->.") in readme
    assert "| pages | 1,100,000 | ≥ 1,000,000 |" in benchmarks
    assert ("On <!-- bench:machine -->2 cores (Test CPU 9000), 24 GiB RAM, Python 3.11.7, numpy 2.4.6, Ray 2.60.0"
            "<!-- /bench:machine -->, no GPU.") in benchmarks
    # every generated table says where it was measured
    provenance = "commit `abc1234`, 2 cores of Test CPU 9000, 24 GiB, Python 3.11.7, numpy 2.4.6, 2026-11-26"
    assert readme.count(provenance) == 1 and benchmarks.count(provenance) == 5
    source = json.loads((tree / "BENCHMARKS.json").read_text())
    assert source["sections"]["web_1m"]["provenance"]["machine"]["commit"] == MACHINE["commit"]
    assert "regenerated 8 block(s)" in capsys.readouterr().out


def test_regenerating_again_from_the_source_alone_changes_nothing(figures, tree):
    figures.main(args(tree, str(tree / "run.json")))
    before = (tree / "README.md").read_text(), (tree / "BENCHMARKS.md").read_text()
    assert figures.main(args(tree)) == 0
    assert ((tree / "README.md").read_text(), (tree / "BENCHMARKS.md").read_text()) == before


def test_check_passes_on_generated_documents(figures, tree, capsys):
    figures.main(args(tree, str(tree / "run.json")))
    assert figures.main(args(tree, "--check")) == 0
    assert "every bench block agrees" in capsys.readouterr().out


def test_check_fails_on_a_stale_number_and_names_it(figures, tree, capsys):
    figures.main(args(tree, str(tree / "run.json")))
    readme = tree / "README.md"
    readme.write_text(readme.read_text().replace("0.500 ms / 0.0200 ms", "0.520 ms / 0.0200 ms"))
    capsys.readouterr()
    assert figures.main(args(tree, "--check")) == 1
    out = capsys.readouterr().out
    assert "README.md: block 'speed': 0.520 where the figures give 0.500" in out
    assert figures.main(args(tree, "--check", "--tolerance", "0.05")) == 0  # 4 % off: within a stated 5 %


def test_check_fails_on_changed_words_and_on_blocks_without_figures(figures, tree, capsys):
    figures.main(args(tree, str(tree / "run.json")))
    bench = tree / "BENCHMARKS.md"
    bench.write_text(bench.read_text().replace("| pages | 1,100,000 |", "| pages kept | 1,100,000 |"))
    assert figures.main(args(tree, "--check")) == 1
    assert "BENCHMARKS.md: block 'web_1m': text differs" in capsys.readouterr().out
    # a source without the web_10m section cannot vouch for its block
    source = json.loads((tree / "BENCHMARKS.json").read_text())
    del source["sections"]["web_10m"]
    (tree / "BENCHMARKS.json").write_text(json.dumps(source))
    assert figures.main(args(tree, "--check")) == 1
    assert "block 'web_10m': no figures to check it against" in capsys.readouterr().out


def test_check_against_a_fresh_run_uses_the_tolerance_and_ignores_provenance(figures, tree):
    figures.main(args(tree, str(tree / "run.json")))
    fresh = bench_json(scale=1.10)  # every time 10 % slower, on another commit
    fresh["machine"] = {**MACHINE, "commit": "fff0000" + "0" * 33, "measured_at": "2026-12-01T00:00:00Z"}
    (tree / "fresh.json").write_text(json.dumps(fresh))
    assert figures.main(args(tree, "--check", str(tree / "fresh.json"))) == 1
    assert figures.main(args(tree, "--check", str(tree / "fresh.json"), "--tolerance", "0.25")) == 0
    assert not (tree / "BENCHMARKS.json").read_text().count("fff0000")  # --check writes nothing


def test_a_block_whose_section_was_never_measured_is_left_alone(figures, tree, capsys):
    partial = bench_json()
    del partial["sections"]["scaling"]
    (tree / "partial.json").write_text(json.dumps(partial))
    assert figures.main(args(tree, str(tree / "partial.json"))) == 0
    assert "<!-- bench:scaling -->\nold\n<!-- /bench:scaling -->" in (tree / "BENCHMARKS.md").read_text()
    assert "<!-- bench:speed -->\n| measure | figure |\n|---|---|\n| an old row" in (tree / "README.md").read_text()
    assert "left as they were" in capsys.readouterr().out


def test_refuses_quick_runs_unknown_blocks_and_unclosed_markers(figures, tree, capsys):
    (tree / "quick.json").write_text(json.dumps(bench_json(quick=True)))
    assert figures.main(args(tree, str(tree / "quick.json"))) == 2
    assert "a --quick run" in capsys.readouterr().err
    assert figures.main(args(tree, str(tree / "quick.json"), "--allow-quick")) == 0
    readme = tree / "README.md"
    readme.write_text(README + "\n<!-- bench:speeed -->x<!-- /bench:speeed -->\n")
    assert figures.main(args(tree, str(tree / "run.json"))) == 2
    assert "unknown block 'speeed'" in capsys.readouterr().err
    readme.write_text(README + "\n<!-- bench:speed -->x\n")
    assert figures.main(args(tree, str(tree / "run.json"))) == 2
    assert "without its <!-- /bench:NAME -->" in capsys.readouterr().err


def write_quick(tree: Path, **ratios) -> Path:
    quick = bench_json(quick=True, gaussian_ratio=ratios.get("gaussian", 0.04))
    quick["sections"]["sampler"]["simweb_over_alias_ref"] = ratios.get("sampler", 1.0)
    path = tree / "quick.json"
    path.write_text(json.dumps(quick))
    return path


def test_ratios_pass_at_half_the_documented_value_and_fail_below(figures, tree, capsys):
    figures.main(args(tree, str(tree / "run.json")))  # documents sampler 1.06, gaussian loop 0.04
    assert figures.main(args(tree, "--ratios", str(write_quick(tree, sampler=0.54, gaussian=0.021)))) == 0
    out = capsys.readouterr().out
    assert out.count("ok    ") == 3 and "FAIL" not in out
    assert figures.main(args(tree, "--ratios", str(write_quick(tree, sampler=0.50)))) == 1
    out = capsys.readouterr().out
    assert "FAIL  ngram sampling: simweb / the plain-numpy alias reference (tokens/s): 0.5 here, 1.06 documented" \
        in out and "REGRESSION: 1 ratio(s)" in out


def test_ratios_without_documented_figures_skip_and_a_quick_run_without_them_is_a_usage_error(figures, tree,
                                                                                              capsys):
    assert figures.main(args(tree, "--ratios", str(write_quick(tree)))) == 0  # no BENCHMARKS.json yet
    assert capsys.readouterr().out.count("SKIP") == 3
    figures.main(args(tree, str(tree / "run.json")))
    broken = json.loads(write_quick(tree).read_text())
    del broken["sections"]["pure_loop"]
    (tree / "quick.json").write_text(json.dumps(broken))
    assert figures.main(args(tree, "--ratios", str(tree / "quick.json"))) == 2
    assert "has no pure_loop.loops.gaussian.simweb_over_bare" in capsys.readouterr().err


def test_the_repository_documents_hold_only_known_blocks(figures):
    """README.md and BENCHMARKS.md parse: every marker closed, every block one figures.py knows."""
    for doc in (REPO / "README.md", REPO / "BENCHMARKS.md"):
        names = [m.group(1) for m in figures.blocks_in(doc.read_text(encoding="utf-8"), doc)]
        assert names, doc
    assert copy.deepcopy(figures.RATIOS)  # the ratios CI checks are declared
