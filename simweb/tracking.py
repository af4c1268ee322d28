"""Log runs to MLflow (optional extra ``simweb[mlflow]``): parameters, per-generation metrics, the run directory.

Each simweb run becomes one MLflow run in the experiment named after the scenario:
its resolved scenario as parameters (flattened paths, ``labs.naive.crawl_budget``),
every numeric column of ``generations.parquet`` as a metric per lab with the
generation as its step (``naive.excess_nll``), and the run directory as artifacts.
A sweep logs each finished point the same way, tagged with its point and replicate.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from pathlib import Path
from typing import Any

import polars as pl

from simweb.errors import SimwebError

__all__ = ["require_mlflow", "flatten", "log_run", "log_sweep"]

_IDS = {"run_id", "scenario", "seed", "lab", "generation", "point", "replicate"}


def require_mlflow():
    """The mlflow module, or a one-line error saying how to get it."""
    try:
        import mlflow
    except ImportError:
        raise SimwebError("--mlflow: mlflow is not installed; pip install 'simweb[mlflow]'") from None
    return mlflow


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Scenario tables as ``path: value`` pairs; lists of named tables are keyed by name (``labs.naive.regime``)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        names = [v.get("name") for v in value]
        unique = all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{names[i]}" if unique else f"{prefix}[{i}]"))
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return out


def _metrics(g: pl.DataFrame) -> dict[int, dict[str, float]]:
    """Per generation: ``lab.metric`` → value, struct columns by field (``lab.train_ai_fraction_by_lab.other``)."""
    steps: dict[int, dict[str, float]] = {}
    for row in g.iter_rows(named=True):
        step = steps.setdefault(int(row["generation"]), {})
        for col, value in row.items():
            if col in _IDS:
                continue
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for field, v in items:
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    step[f"{row['lab']}.{col}" + (f".{field}" if field else "")] = float(v)
    return steps


def _client(uri: str):
    """An MlflowClient for ``uri``. A ``file:`` store is what a laptop user without a server has; MLflow 3 keeps it
    in maintenance mode behind MLFLOW_ALLOW_FILE_STORE, which is set here (unless the user set it) for such URIs."""
    import os

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # fails here, not half-way through logging, on a bad store
    except MlflowException as err:
        raise SimwebError(f"--mlflow {uri}: {str(err).splitlines()[0]}") from None
    return client


def log_run(uri: str, out_dir: str | Path, results=None, *, tags: dict[str, str] | None = None) -> str:
    """Log one finished run directory to the MLflow tracking store at ``uri``; returns the MLflow run id.

    ``results`` (what :func:`simweb.run` returned) saves reading ``generations.parquet`` back.
    """
    require_mlflow()
    from mlflow.entities import Metric, Param

    out_dir = Path(out_dir)
    scenario = tomllib.loads((out_dir / "scenario.toml").read_text(encoding="utf-8"))
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    g = results.generations if results is not None else pl.read_parquet(out_dir / "generations.parquet")
    client = _client(uri)
    name = scenario.get("run", {}).get("name", "simweb")
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run_tags = {"simweb.run_dir": str(out_dir.resolve()), "simweb.seed": str(manifest.get("seed")),
                "simweb.version": str(manifest.get("simweb_version", "")),
                "mlflow.runName": out_dir.name, **(tags or {})}
    run = client.create_run(experiment_id, tags=run_tags)
    run_id = run.info.run_id
    params = [Param(k, v[:6000]) for k, v in flatten(scenario).items()]
    for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
        client.log_batch(run_id, params=params[i:i + 100])
    stamp = int(time.time() * 1000)
    metrics = [Metric(k, v, stamp, step) for step, values in sorted(_metrics(g).items()) for k, v in values.items()]
    for i in range(0, len(metrics), 1000):  # and at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[i:i + 1000])
    client.log_artifacts(run_id, str(out_dir), artifact_path=out_dir.name)
    client.set_terminated(run_id)
    return run_id


def log_sweep(uri: str, out: str | Path) -> list[str]:
    """Log every finished point of a sweep directory (``status.parquet`` says which) as its own run."""
    out = Path(out)
    status = pl.read_parquet(out / "status.parquet").filter(pl.col("state") == "done")
    ids = []
    for row in status.iter_rows(named=True):
        ids.append(log_run(uri, out / "runs" / row["name"], tags={
            "simweb.sweep": str(out.resolve()), "simweb.point": row["name"],
            "simweb.replicate": str(row["replicate"]), "simweb.overrides": row["overrides"]}))
    return ids
