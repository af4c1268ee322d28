"""Small scenarios for tests, built through the real loader."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from simweb.scenario import parse_scenario

# One population that writes only AI pages once a model exists; two labs.
# Small enough to run a dozen generations in well under a second.
COLLAPSE = """
[run]
name = "collapse"
seed = 3
ticks = 6
executor = "local"

[language]
vocab_size = 128
topics = 4
doc_length = 32

[web]
initial_sites = 40
sites_per_tick = 2

[[publishers]]
name = "all"
site_share = 1.0
initial_pages = 300
pages_per_tick = 300
top_p = 0.95
ai_adoption = { start = 1.0, end = 1.0 }

[[labs]]
name = "replace"
release_every = 1
crawl_budget = 300
new_only = true
model = { alpha = 0.0 }

[[labs]]
name = "keep"
market_share = 0.0
release_every = 1
crawl_budget = 300
regime = "accumulate"
reserve_docs = 300
reserve_fraction = 0.5
model = { alpha = 0.0 }

[evaluation]
human_docs = 500
sample_docs = 500
benchmark_docs = 100
"""


def refused_run(tmp_path, text: str, override: str) -> str:
    """``simweb run`` of ``text`` with ``--set override`` into ``tmp_path/out``: asserts exit 2, one line on
    stderr and nothing written (no output, no partial sibling); returns that line."""
    import subprocess
    import sys

    path, out = tmp_path / "s.toml", tmp_path / "out"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "simweb", "run", str(path), "--set", override, "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    return lines[0]


def scenario(text: str = COLLAPSE, *overrides: str):
    return parse_scenario(text, list(overrides))


# The smallest valid scenario: one population, one lab, three ticks.
MINIMAL = """
[run]
ticks = 3

[[publishers]]
name = "pub"
site_share = 1.0

[[labs]]
name = "lab"
"""


def brute_shape(row, temperature: float, top_p: float) -> np.ndarray:
    """One row shaped by hand: p^(1/T) renormalised, then the most probable entries until their mass reaches top_p."""
    p = [x ** (1.0 / temperature) if x > 0 else 0.0 for x in row]
    s = sum(p)
    p = [x / s for x in p]
    if top_p < 1.0:
        order = sorted(range(len(p)), key=lambda j: (-p[j], j))
        kept, mass = [], 0.0
        for j in order:
            if mass >= top_p:
                break
            kept.append(j)
            mass += p[j]
        p = [p[j] if j in kept else 0.0 for j in range(len(p))]
        s = sum(p)
        p = [x / s for x in p]
    return np.array(p)


def context(sc, lab=None, *, seed: int | None = None):
    """An agent context for ``sc`` whose first lab is ``lab`` (a Lab, or a dict of its keys), with ``seed``."""
    from simweb.context import AgentContext
    from simweb.plugins import parse_config  # noqa: F401 - registers the built-ins before a Lab is built
    from simweb.scenario import dump_scenario
    from simweb.scenario.models import Lab

    update = {}
    if lab is not None:
        update["labs"] = (lab if isinstance(lab, Lab) else Lab(**lab),) + tuple(sc.labs[1:])
    if seed is not None:
        update["run"] = sc.run.model_copy(update={"seed": seed})
    sc = sc.model_copy(update=update)
    return AgentContext(dump_scenario(sc), scenario=sc)


def kept(ids, content, truth, *, crawl_tick: int = 0, tick=None, site_id=None):
    """What a filter chain keeps, built by hand for a trainer: ``truth`` holds origin, lab, generation columns."""
    from simweb.stages import Kept

    ids = np.asarray(ids, dtype=np.int64)
    return Kept(ids=ids, content=content, tick=np.zeros(len(ids), np.int32) if tick is None else tick,
                site_id=np.zeros(len(ids), np.int32) if site_id is None else site_id,
                truth={k: np.asarray(truth[k])[ids] for k in ("origin", "lab", "generation")},
                steps=({"step": 0, "filter": "fetch"},), crawl_tick=crawl_tick, purpose="train")


def batch(n: int, *, content=None, truth=None, needs=(), purpose: str = "train", **extra):
    """A batch of ``n`` pages as a filter with ``needs`` sees it (``extra``: graph, model, calibration, ...)."""
    from simweb.filters.base import Batch

    return Batch(ids=np.arange(n), site_id=np.zeros(n, np.int32), tick=np.zeros(n, np.int32),
                 c2pa=np.zeros(n, np.int8), crawl_tick=0, purpose=purpose, lab="lab", vocab_size=0, watermark_keys={},
                 _content=content, _truth=truth, _extra=extra).view("test", frozenset(needs))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"


def simweb_cli(*args, crash_at: int | None = None, env: dict | None = None, cwd=None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m simweb ARGS`` in a new process, with this one's environment and ``env``; the crash-test hook
    (SIMWEB_CRASH_AT_TICK, simweb/cli.py) only where ``crash_at`` asks for it."""
    environ = {k: v for k, v in os.environ.items() if k != "SIMWEB_CRASH_AT_TICK"} | (env or {})
    if crash_at is not None:
        environ["SIMWEB_CRASH_AT_TICK"] = str(crash_at)
    return subprocess.run([sys.executable, "-m", "simweb", *map(str, args)], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=timeout)


# a quickstart run to an object store (tests/test_storage.py: S3, tests/test_storage_gcs.py: GCS), and its files
STORE_ARGS = ("--executor", "local", "--quiet", "--set", "run.ticks=9")
STORE_FILES = ("generations.parquet", "ticks.parquet", "crawls.parquet", "contamination.parquet", "scenario.toml")


def killed_on_store(store, name: str, *, env: dict | None = None) -> str:
    """The quickstart run to ``store.uri(name)`` (a test's object store server, with ``uri`` and ``keys``) and
    killed with SIGKILL at tick 6; its URI, once checked that the run left a committed checkpoint and no
    manifest."""
    import signal

    uri = store.uri(name)
    killed = simweb_cli("run", QUICKSTART, "--out", uri, *STORE_ARGS, crash_at=6, env=env)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    keys = store.keys(name)
    assert f"runs/{name}/manifest.json" not in keys and f"runs/{name}/checkpoint/CURRENT" in keys
    return uri


def finished_run(tmp_path_factory, *args, env: dict | None = None) -> Path:
    """The quickstart run to its end with ``args`` into a new directory: a test module's uninterrupted output."""
    out = tmp_path_factory.mktemp("whole") / "run"
    done = simweb_cli("run", QUICKSTART, "--out", out, *args, env=env)
    assert done.returncode == 0, done.stderr
    return out
