"""A real two-node Ray cluster started with `ray start`, exactly as the README's cluster section gives the
commands (plus --block, so the test owns the processes and stops them by process group, and a port and
one CPU per node that suit a test machine): simweb joins it and writes what the local executor writes.
A client without the cluster's token gets one line naming the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
FAST = ["--set", "run.ticks=3", "--set", "web.initial_sites=60", "--quiet"]


def _ray() -> str:
    return str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory):
    """Head and worker on 127.0.0.1, token authentication with a token of the test's own (never ~/.ray)."""
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    logs = tmp_path_factory.mktemp("ray")
    started = []
    try:
        for args in (["--head", f"--port={port}", "--include-dashboard=false"], [f"--address=127.0.0.1:{port}"]):
            log = open(logs / f"{len(started)}.log", "w")
            started.append(subprocess.Popen([_ray(), "start", *args, "--num-cpus=1", "--block"], env=env,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            _wait_for_nodes(env, port, len(started))
        yield f"127.0.0.1:{port}", env
    finally:
        for proc in reversed(started):  # what this test started, by its process group
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def _wait_for_nodes(env: dict, port: int, nodes: int) -> None:
    code = (f"import ray; ray.init(address='127.0.0.1:{port}', logging_level='ERROR'); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(nodes)]:
            return
        time.sleep(1)
    raise RuntimeError(f"the test cluster did not reach {nodes} nodes")


def _simweb(*args, env: dict, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simweb", *map(str, args)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_simweb_joins_a_cluster_started_as_the_readme_says_and_writes_the_local_output(token_cluster, tmp_path):
    address, env = token_cluster
    local = _simweb("run", QUICKSTART, "--executor", "local", "--out", tmp_path / "local", *FAST, env=env,
                    cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    joined = _simweb("run", QUICKSTART, "--address", address, "--out", tmp_path / "cluster", *FAST, env=env,
                     cwd=tmp_path)
    assert joined.returncode == 0, joined.stderr
    for name in ("generations.parquet", "ticks.parquet", "crawls.parquet"):
        assert (tmp_path / "cluster" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    import json

    manifest = json.loads((tmp_path / "cluster" / "manifest.json").read_text())
    assert manifest["executor"] == "ray" and manifest["cluster"]["nodes"] == 2


def test_a_client_without_the_clusters_token_gets_one_line_naming_the_fix(token_cluster, tmp_path):
    address, env = token_cluster
    wrong = {**env, "RAY_AUTH_TOKEN": uuid.uuid4().hex}
    # a hang guard, not a measurement: without the fix the client retries for minutes
    refused = _simweb("run", QUICKSTART, "--address", address, "--out", tmp_path / "x", *FAST, env=wrong,
                      cwd=tmp_path, timeout=120)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "RAY_AUTH_MODE=token" in lines[0] and "token" in lines[0], refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, not even the hidden partial


def test_an_address_where_nothing_answers_is_one_line_within_seconds(tmp_path):
    # a hang guard, not a measurement: Ray's own client would retry for minutes
    result = _simweb("run", QUICKSTART, "--address", f"127.0.0.1:{free_port()}", "--out", tmp_path / "x", *FAST,
                     env=dict(os.environ), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "no Ray cluster answers there" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    bad = _simweb("run", QUICKSTART, "--address", "not a host", *FAST, env=dict(os.environ), cwd=tmp_path)
    assert bad.returncode == 2 and "expected HOST:PORT" in bad.stderr
