"""scenarios/web_100m.toml's scaled-down twin: a tenth of the web (10 M pages, a tenth of the sites and of the
labs' crawls and training sets, the content budget alike), run on a simulated Ray cluster with two shards
spilling their pages, gives byte for byte the Parquet of the same tenth run in one local process.
The full file is a benchmark (``python scripts/bench.py --only web_100m``)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

import simweb

WEB_100M = Path(__file__).resolve().parents[1] / "scenarios" / "web_100m.toml"
FRAMES = ("generations.parquet", "ticks.parquet", "crawls.parquet")


def tenth() -> list[str]:
    """Overrides that scale everything the web's size drives by 1/10, read from the file (never hard-coded)."""
    base = tomllib.loads(WEB_100M.read_text(encoding="utf-8"))
    sets = [f"run.page_memory_mb={base['run']['page_memory_mb'] / 10}"]
    sets += [f"web.{k}={base['web'][k] // 10}" for k in ("initial_sites", "sites_per_tick")]
    for i, pub in enumerate(base["publishers"]):
        sets += [f"publishers[{i}].{k}={pub[k] // 10}" for k in ("initial_pages", "pages_per_tick")]
    for i, lab in enumerate(base["labs"]):
        sets += [f"labs[{i}].{k}={lab[k] // 10}" for k in ("crawl_budget", "train_docs") if k in lab]
    return sets


@pytest.mark.slow
def test_a_tenth_of_web_100m_on_a_cluster_gives_the_output_of_one_local_process(ray_cluster, tmp_path):
    from simweb.executors.ray_executor import RayExecutor

    sc = simweb.load_scenario(WEB_100M, tenth())
    assert sc.run.ticks == 100 and len(sc.labs) == 3  # only the web's size is scaled
    try:  # ~1.6 GB of page files a run, removed as soon as the frames are read, and on failure too (the suite
        # runs on disks with little room, and pytest keeps a failed test's directory)
        local = simweb.run(sc, out=tmp_path / "local", executor="local")
        assert local.manifest["pages"] >= 10_000_000 and local.manifest["shards"] == 1
        expected = {name: (tmp_path / "local" / name).read_bytes() for name in FRAMES}
        shutil.rmtree(tmp_path / "local")
        on_ray = simweb.run(sc.replace({"run.shards": 2}), out=tmp_path / "ray", executor=RayExecutor())
        assert on_ray.manifest["shards"] == 2 and on_ray.manifest["page_memory"]["spilled_pages"] > 0
        got = {name: (tmp_path / "ray" / name).read_bytes() for name in FRAMES}
    finally:
        for run in tmp_path.iterdir():  # the runs and any partial directory a failed run left beside them
            shutil.rmtree(run, ignore_errors=True)
    for name in FRAMES:
        assert got[name] == expected[name], name
