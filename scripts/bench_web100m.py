"""A hundred million pages on a simulated two-node cluster: ``scenarios/web_100m.toml``.

    python scripts/bench_web100m.py            # or: python scripts/bench.py --only web_100m

A fresh process starts a ``ray.cluster_utils.Cluster`` of two nodes of one CPU each (1 GB of object store
each) and runs the scenario on it (2 shards, written to a run directory in ``$SIMWEB_BENCH_DIR`` or the
system's temporary directory, removed afterwards). A thread samples, every second, the resident memory of
every process of the run — the driver and every process the cluster started (GCS, raylets, workers, host
actors) — and keeps each one's peak. Reported: wall and simulation time, pages/s, the driver's peak RSS
(VmHWM, ``ru_maxrss`` without /proc: every page it maps, Ray's shared object store included) and every process's sampled peak.

The nodes share this machine's cores, memory and disk (see ``scripts/bench_scaling.py``'s caveat).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEB_100M = REPO / "scenarios" / "web_100m.toml"
OBJECT_STORE_MB = 1024  # per node
TIMEOUT_S = 3600


def _descendants(root: int) -> dict[int, str]:
    """pid -> a short name, for ``root`` and every process below it."""
    parent, names = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        names[int(entry)] = _name(cmd)
    out, todo = {}, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        out[pid] = names.get(pid, "?")
        todo += children.get(pid, [])
    return out


def _name(cmd: str) -> str:
    for key in ("gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py", "runtime_env", "_Host",
                "ray::", "default_worker", "plasma"):
        if key in cmd:
            return key.strip(":.") if key != "ray::" else cmd.split()[0]
    return "driver" if "bench_web100m.py" in cmd else cmd.split()[0].rsplit("/", 1)[-1] if cmd else "?"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child(overrides: list[str]) -> None:
    """Child mode: the run on a two-node cluster; one JSON line back."""
    import logging

    import ray
    from ray.cluster_utils import Cluster

    import simweb

    scenario = simweb.load_scenario(WEB_100M, overrides)
    peaks: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid, name in _descendants(os.getpid()).items():
                rss = _rss_mb(pid)
                if rss > peaks.get(pid, ("", 0.0))[1]:
                    peaks[pid] = (name, rss)
            done.wait(1.0)

    threading.Thread(target=sample, daemon=True).start()
    node_args = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_MB * 2**20}
    tmp = tempfile.mkdtemp(prefix="simweb-web100m-", dir=os.environ.get("SIMWEB_BENCH_DIR"))
    cluster = Cluster(initialize_head=True, head_node_args={**node_args, "include_dashboard": False})
    try:
        cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
        start = time.perf_counter()
        res = simweb.run(scenario, executor="ray", out=Path(tmp) / "run")
        wall = time.perf_counter() - start
        disk = sum(f.stat().st_size for f in (Path(tmp) / "run").rglob("*") if f.is_file())
    finally:
        done.set()
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    from bench_scaling import own_peak_rss_mb

    m = res.manifest
    processes = sorted(({"pid": pid, "name": name, "peak_rss_mb": round(rss, 1)} for pid, (name, rss) in peaks.items()),
                       key=lambda p: -p["peak_rss_mb"])
    print(json.dumps({"pages": m["pages"], "sites": m["sites"], "ticks": m["ticks"], "shards": m["shards"],
                      "cluster": m["cluster"], "wall_s": wall, "sim_s": m["wall_time_s"],
                      "driver_peak_rss_mb": own_peak_rss_mb(),
                      "processes": processes, "stage_time_s": m["stage_time_s"], "page_memory": m["page_memory"],
                      "disk_mb": disk / 2**20, "recoveries": m["recoveries"], "overrides": overrides}))


def run(overrides: list[str] = ()) -> dict:
    """The child in a fresh interpreter (see ``bench_scaling.run_fresh``)."""
    from bench_scaling import run_fresh

    out, _ = run_fresh([sys.executable, str(Path(__file__).resolve()), "--child", *overrides], TIMEOUT_S, "web_100m")
    return json.loads(out.strip().splitlines()[-1])


def bench_web_100m(cfg):
    """bench.py's section: takes its Config, returns its Section (--quick: 4 ticks)."""
    from bench import Section

    r = run(["run.ticks=4"] if cfg.quick else [])
    tokens = r["pages"] * 64
    driver = r["driver_peak_rss_mb"]
    rows = [["pages", f"{r['pages']:,}", "", "≥ 100,000,000" if not cfg.quick else "-"],
            ["wall time (run + writing)", f"{r['wall_s']:.0f}", "s", "≤ 1200 s"],
            ["pages/s, tokens/s (simulation)", f"{r['pages'] / r['sim_s']:,.0f} / {tokens / r['sim_s']:,.0f}", "1/s", "-"],
            ["driver peak RSS (VmHWM)", f"{driver:.0f}", "MB", "≤ 500 MB"],
            ["run directory on disk", f"{r['disk_mb']:,.0f}", "MB", "-"]]
    rows += [[f"peak RSS: {p['name']} (pid {p['pid']})", f"{p['peak_rss_mb']:.0f}", "MB", "-"]
             for p in r["processes"] if p["peak_rss_mb"] >= 20]
    rows += [[f"stage: {k}", f"{v:.1f}", "s", "-"] for k, v in r["stage_time_s"].items()]
    return Section(title=f"web_100m: {WEB_100M.relative_to(REPO)}{' (4 ticks)' if cfg.quick else ''} on a simulated "
                         "cluster of 2 one-CPU nodes (ray.cluster_utils), 2 shards, content past 2 GB spilled",
                   header=["measure", "value", "unit", "goal"], rows=rows, figures=r,
                   notes=["every process's RSS sampled each second (the processes below 20 MB left out); the "
                          "nodes share this machine's 2 cores, memory and disk",
                          f"recoveries: {r['recoveries']}; cluster: {r['cluster']}"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        print(json.dumps(run(sys.argv[1:]), indent=1))
