"""--mlflow: a run's resolved scenario as parameters, its generations as steps, its directory as artifacts,
written to a real local MLflow file store."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from tests.helpers import COLLAPSE

mlflow = pytest.importorskip("mlflow", reason="mlflow is the optional extra simweb[mlflow]; pip install 'simweb[mlflow]'")


@pytest.fixture(autouse=True)
def _file_store(monkeypatch):
    # MLflow 3 reads a file: store only with this set; simweb sets it for its own writes, the test for its reads
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def test_run_logs_parameters_steps_and_artifacts(tmp_path):
    scen = tmp_path / "c.toml"
    scen.write_text(COLLAPSE)
    out, store = tmp_path / "run", f"file:{tmp_path / 'mlruns'}"
    res = subprocess.run([sys.executable, "-m", "simweb", "run", str(scen), "--out", str(out), "--quiet",
                          "--executor", "local", "--mlflow", store], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    [run] = client.search_runs([client.get_experiment_by_name("collapse").experiment_id])
    params = run.data.params
    assert params["labs.keep.regime"] == "accumulate" and params["labs.replace.crawl_budget"] == "300"
    assert params["run.seed"] == "3" and params["language.vocab_size"] == "128"
    g = pl.read_parquet(out / "generations.parquet").filter(pl.col("lab") == "replace").sort("generation")
    history = client.get_metric_history(run.info.run_id, "replace.excess_nll")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == g["generation"].to_list()
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(g["excess_nll"].to_list())
    assert "keep.train_ai_fraction_by_lab.replace" in run.data.metrics  # struct columns by field
    names = {a.path for a in client.list_artifacts(run.info.run_id, "run")}
    assert {"run/generations.parquet", "run/scenario.toml", "run/manifest.json"} <= names


def test_sweep_logs_every_point(tmp_path):
    scen = tmp_path / "c.toml"
    scen.write_text(COLLAPSE.replace("ticks = 6", "ticks = 2"))
    out, store = tmp_path / "sw", f"file:{tmp_path / 'mlruns'}"
    res = subprocess.run([sys.executable, "-m", "simweb", "sweep", str(scen), "--grid", "labs.keep.reserve_fraction=0,0.5",
                          "--out", str(out), "--quiet", "--executor", "local", "--workers", "1", "--mlflow", store],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("collapse").experiment_id])
    assert sorted(r.data.params["labs.keep.reserve_fraction"] for r in runs) == ["0.0", "0.5"]
    assert sorted(r.data.tags["simweb.point"] for r in runs) == ["p00000", "p00001"]
