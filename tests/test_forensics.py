"""Watermark forensics (simweb.forensics, issue 19): does a student carry its teacher's watermark?

A student fitted on a training set holding a share q of text watermarked with key A (the rest human)
writes A-green pairs with probability γ + q(g − γ), g the green probability of A's sampler; scored on the
U distinct (previous, token) pairs of T fresh tokens, E[z] = √U · q · (g − γ) / √(γ(1 − γ)). With q = 0
the sample does not depend on the key, so over keys the green count is Binomial(U, γ): z has mean 0 and
variance 1, even on a Zipf language where counting every token would not. Tolerances: 5 standard errors.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from simweb.language import build_language
from simweb.models import NgramModel
from simweb.scenario.models import MarkovLanguage
from simweb.watermark import Watermark, green_list, key_of, pooled_z

V, L, GAMMA, DELTA = 1024, 64, 0.25, 2.0


def _uniform() -> NgramModel:
    return NgramModel(vocab_size=V, doc_length=L, order=1).load_state_dict({"probs": np.full((V + 1, V), 1 / V)})


def _g(key: int) -> float:
    g = green_list(key, GAMMA, V).mean(axis=1)
    return float(np.mean(g * math.exp(DELTA) / (g * math.exp(DELTA) + 1 - g)))


def student_z(q: float, n_docs: int, tokens: int, seed: int) -> tuple[float, int, float]:
    """(z, distinct pairs, g) of a student fitted on n_docs documents, a share q from A's watermarked sampler."""
    rng = np.random.default_rng(seed)
    key = key_of(seed, "A")
    k = int(round(q * n_docs))
    marked = _uniform().sample(k, rng=rng, watermark=Watermark(key, GAMMA, DELTA)) if k else np.empty((0, L), int)
    corpus = np.concatenate([marked, _uniform().sample(n_docs - k, rng=rng)]).astype(np.uint16)
    student = NgramModel(vocab_size=V, doc_length=L, order=1, alpha=0.0).fit(corpus, rng=rng)
    z, pairs = pooled_z(student.sample(-(-tokens // L), rng=rng), key, GAMMA, V)
    return z, pairs, _g(key)


def test_with_no_watermarked_data_z_is_standard_normal_over_keys_even_on_zipf_text():
    language = build_language(MarkovLanguage(), 0)
    docs, _ = language.sample(3000, rng=np.random.default_rng(1))
    student = NgramModel(vocab_size=256, doc_length=64, order=1, alpha=0.0).fit(docs, rng=np.random.default_rng(2))
    n = 300
    z = np.array([pooled_z(student.sample(100_000 // 64, rng=np.random.default_rng(100 + s)), key_of(s, "A"),
                           GAMMA, 256)[0] for s in range(n)])
    assert abs(z.mean()) <= 5 / math.sqrt(n)
    assert abs(z.var(ddof=1) - 1) <= 5 * math.sqrt(2 / (n - 1))


@pytest.mark.parametrize("q, tokens", [(0.05, 20_000), (0.1, 20_000), (0.1, 5_000)])
def test_z_grows_with_q_and_the_sample_as_the_green_excess_predicts(q, tokens):
    runs = [student_z(q, 3000, tokens, seed) for seed in range(12)]
    z = np.array([r[0] for r in runs])
    law = np.mean([math.sqrt(u) * q * (g - GAMMA) / math.sqrt(GAMMA * (1 - GAMMA)) for _, u, g in runs])
    assert abs(z.mean() - law) <= 5 * z.std(ddof=1) / math.sqrt(len(z)), (z.mean(), law)


# ------------------------------------------------------------------ through the loop and the CLI
def _run(tmp_path, *overrides) -> subprocess.CompletedProcess:
    from pathlib import Path

    quickstart = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"
    args = [sys.executable, "-m", "simweb", "run", str(quickstart), "--executor", "local", "--quiet",
            "--out", str(tmp_path / "run"), "--set", "run.ticks=7"]
    for o in overrides:
        args += ["--set", o]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_a_lab_that_distils_a_watermarking_lab_carries_its_watermark(tmp_path):
    proc = _run(tmp_path, "labs.naive.watermark={gamma=0.25}", "labs.careful.distill=[{from=\"naive\", docs=600}]",
                "evaluation.forensics_tokens=50000")
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([sys.executable, "-m", "simweb", "forensics", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frame = pl.read_parquet(tmp_path / "run" / "forensics.parquet")
    assert set(frame["key"]) == {"naive"} and set(frame["suspect"]) == {"naive", "careful"}
    careful = frame.filter(pl.col("suspect") == "careful").sort("generation")
    assert abs(careful["z"][0]) < 5  # generation 0: trained on the human web only
    assert careful["z"][-1] >= 4 and frame.filter(pl.col("own_key"))["z"].min() > 10


def test_forensics_of_a_run_without_them_exits_2(tmp_path):
    assert _run(tmp_path).returncode == 0
    out = subprocess.run([sys.executable, "-m", "simweb", "forensics", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "forensics.parquet").exists()


@pytest.mark.parametrize("override, field", [
    ("evaluation.forensics_tokens=0", "evaluation.forensics_tokens"),
    ("evaluation.forensics_tokens=-5", "evaluation.forensics_tokens"),
    ("evaluation.forensics_tokens=1000", "evaluation.forensics_tokens"),  # no lab watermarks
    ("evaluation.forensics_tokens=\"many\"", "evaluation.forensics_tokens"),
])
def test_bad_forensics_keys_exit_2_with_one_line(tmp_path, override, field):
    proc = _run(tmp_path, override)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()


def test_forensics_of_a_gaussian_run_exits_2_with_one_line(tmp_path):
    # a run of a language without tokens has no forensics: one line, not a traceback on its doc_length
    run = tmp_path / "run"
    run.mkdir()
    paper = Path(__file__).resolve().parents[1] / "scenarios" / "papers" / "shumailov_gaussian_mle.toml"
    (run / "scenario.toml").write_text(paper.read_text())
    pl.DataFrame({"lab": ["lab"], "generation": [0]}).write_parquet(run / "generations.parquet")
    out = subprocess.run([sys.executable, "-m", "simweb", "forensics", str(run)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "forensics" in out.stderr
    assert not (run / "forensics.parquet").exists()


def test_forensics_of_a_run_that_used_plugins_takes_them_again(tmp_path):
    # its scenario.toml names the plugin's kinds: without --plugin it cannot be read at all
    from simweb.scenario import dump_scenario, parse_scenario

    plugin = tmp_path / "fz_plugin.py"
    plugin.write_text("import numpy as np, simweb\n\n@simweb.filter('keep_all_fz')\nclass KeepAll:\n"
                      "    def __init__(self, config): pass\n"
                      "    def keep(self, batch, *, rng): return np.ones(len(batch), bool)\n")
    quickstart = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"
    run = tmp_path / "run"
    run.mkdir()
    code = (f"import simweb.plugins as p; p.load_plugins([{str(plugin)!r}]); "
            f"from simweb.scenario import load_scenario, dump_scenario; "
            f"print(dump_scenario(load_scenario({str(quickstart)!r}, ['labs.naive.watermark={{gamma=0.25}}', "
            f"'evaluation.forensics_tokens=1000', 'labs.careful.filters=[{{kind=\"keep_all_fz\"}}]'])))")
    text = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    (run / "scenario.toml").write_text(text)
    pl.DataFrame({"run_id": ["r"], "scenario": ["quickstart"], "seed": [7], "lab": ["careful"], "generation": [0],
                  "tick": [0], "watermark_z": [{"naive": 1.5, "careful": None}]}).write_parquet(run / "generations.parquet")
    out = subprocess.run([sys.executable, "-m", "simweb", "forensics", str(run), "--plugin", str(plugin)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frame = pl.read_parquet(run / "forensics.parquet")
    assert frame["z"].to_list() == [1.5] and frame["suspect"].to_list() == ["careful"]


def test_forensics_of_a_damaged_generations_file_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    quickstart = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"
    text = quickstart.read_text().replace("[evaluation]", "[evaluation]\nforensics_tokens = 1000")
    (run / "scenario.toml").write_text(text.replace('name = "naive"', 'name = "naive"\nwatermark = { gamma = 0.25 }'))
    (run / "generations.parquet").write_bytes(b"not parquet")
    out = subprocess.run([sys.executable, "-m", "simweb", "forensics", str(run)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "generations.parquet" in out.stderr and not (run / "forensics.parquet").exists()
