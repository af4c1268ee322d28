"""Run directories on object storage: a real S3 endpoint (moto's server, on 127.0.0.1) behind pyarrow.fs.

A run to s3:// writes the bytes a run to a local path writes; a kill -9 leaves a run that `simweb resume
s3://...` finishes with the same bytes; a store that fails mid-run keeps its last checkpoint; a bad URI is
one line and exit 2 before anything is written; the run's lease refuses a live writer and yields to a dead one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import simweb
from simweb import runlock, storage
from simweb.errors import SimwebError
from tests.helpers import (COLLAPSE, QUICKSTART, STORE_ARGS, STORE_FILES, finished_run, free_port, killed_on_store,
                           scenario, simweb_cli)

pytest.importorskip("moto", reason="the object-storage tests need moto[server] (pip install -e '.[test]')")

ARGS, FRAMES = STORE_ARGS, STORE_FILES
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


class S3:
    """The endpoint, and URIs on it that carry everything pyarrow needs (no configuration file)."""

    def __init__(self, port: int):
        self.port = port
        self.query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"

    def uri(self, key: str, *, bucket: str = "runs", credentials: bool = False) -> str:
        auth = "testing:testing@" if credentials else ""  # for Ray workers, whose environment is the cluster's
        return f"s3://{auth}{bucket}/{key}?{self.query}"

    def keys(self, prefix: str = "", bucket: str = "runs") -> list[str]:
        where = storage.location(f"s3://{bucket}/{prefix}?{self.query}")
        return sorted(p.key for p in where.walk_files())


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)  # for this process; subprocesses get them through _simweb's env
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server._port}").create_bucket(Bucket="runs")
        yield S3(server._port)
    finally:
        server.stop()  # by handle: the thread this fixture started
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def s3_locked(tmp_path_factory):
    """A second endpoint that checks credentials (moto's IAM): ours are refused, as an unauthorised user's."""
    import time

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield S3(port)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the process group this fixture started
        server.wait(timeout=30)


def _simweb(*args, **kw):
    return simweb_cli(*args, env=CREDENTIALS, **kw)


def _read(s3: S3, uri: str, name: str) -> bytes:
    return (storage.location(uri) / name).read_bytes()


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return finished_run(tmp_path_factory, *ARGS, env=CREDENTIALS)


def test_a_run_to_s3_writes_the_bytes_of_a_local_run_and_reports_from_there(s3, whole, tmp_path):
    uri = s3.uri("quick")
    done = _simweb("run", QUICKSTART, "--out", uri, *ARGS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in FRAMES:
        assert _read(s3, uri, name) == (whole / name).read_bytes(), name
    keys = s3.keys("quick")
    assert "runs/quick/manifest.json" in keys and "runs/quick/lock" not in keys  # committed, lease given back
    assert len({k.split("/")[3] for k in keys if k.startswith("runs/quick/checkpoint/") and k.count("/") > 3}) == 1
    assert not list(tmp_path.iterdir())  # nothing local: no "s3:" directory in the working directory
    again = _simweb("run", QUICKSTART, "--out", uri, *ARGS)
    assert again.returncode == 2 and "already exists" in again.stderr
    report = _simweb("report", uri)
    assert report.returncode == 0, report.stderr
    assert b"<html" in _read(s3, uri, "report/report.html")


def test_kill_then_resume_from_s3_gives_the_uninterrupted_output(s3, whole):
    uri = killed_on_store(s3, "broken", env=CREDENTIALS)
    meta = json.loads(_read(s3, uri, "checkpoint/" + _read(s3, uri, "checkpoint/CURRENT").decode().strip()
                            + "/meta.json"))
    assert 1 <= meta["meta"]["tick"] <= 6  # the last checkpoint is from before the kill
    again = _simweb("run", QUICKSTART, "--out", uri, *ARGS)
    assert again.returncode == 2 and "simweb resume" in again.stderr  # the dead writer's lease holds nothing
    resumed = _simweb("resume", uri, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for name in FRAMES:
        assert _read(s3, uri, name) == (whole / name).read_bytes(), name
    done = _simweb("resume", uri)
    assert done.returncode == 2 and "complete" in done.stderr


@pytest.mark.parametrize("case", ["scheme", "bucket", "endpoint", "unauthorised", "bucket_root"])
def test_a_bad_storage_uri_is_one_line_and_exit_2_before_anything_is_written(s3, s3_locked, case, tmp_path):
    uri = {"scheme": "nosuchfs://bucket/run",
           "unauthorised": s3_locked.uri("run"),
           "bucket": s3.uri("run", bucket="no-such-bucket"),
           "endpoint": f"s3://runs/run?endpoint_override=127.0.0.1:{free_port()}&scheme=http&region=us-east-1",
           "bucket_root": f"s3://runs?{s3.query}"}[case]
    before = s3.keys()
    for command in (["run", QUICKSTART, "--out", uri, *ARGS], ["resume", uri], ["report", uri]):
        proc = _simweb(*command, cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        shown = uri.split("?")[0] if case != "scheme" else "nosuchfs://"
        assert shown in lines[0] or case == "bucket" and "no-such-bucket" in lines[0], lines[0]
        assert case != "unauthorised" or "ACCESS_DENIED" in lines[0], lines[0]
    assert s3.keys() == before and not list(tmp_path.iterdir())


# the run's PUTs, in order: 1 the lease, 2 scenario.toml, then per checkpoint its arrays, meta.json, meta.sha256
# and CURRENT (10, 22, ... 82), each after a tick's page file (11, 23, ...) and index part; 88 manifest.json
@pytest.mark.parametrize("fail_from", [47, 64], ids=["page_file", "mid_checkpoint"])
def test_a_store_that_fails_mid_run_keeps_its_last_checkpoint_and_resume_finishes(s3, monkeypatch, fail_from):
    uri = s3.uri(f"flaky-{fail_from}")
    real = storage.ObjectPath.write_bytes
    writes = {"n": 0}

    def flaky(self, data):
        writes["n"] += 1
        if writes["n"] >= fail_from:  # the endpoint goes away and stays away
            raise OSError("AWS Error NETWORK_CONNECTION during PutObject operation: the endpoint went away")
        return real(self, data)

    monkeypatch.setattr(runlock, "RENEW_S", 3600.0)  # no lease renewal among the counted PUTs, however slow the run
    monkeypatch.setattr(storage.ObjectPath, "write_bytes", flaky)
    with pytest.raises(SimwebError, match="NETWORK_CONNECTION.*simweb resume"):
        simweb.run(scenario(COLLAPSE), out=uri)
    monkeypatch.setattr(storage.ObjectPath, "write_bytes", real)
    assert f"runs/flaky-{fail_from}/manifest.json" not in s3.keys(f"flaky-{fail_from}")
    from simweb import checkpoint

    state = checkpoint.load(storage.location(uri) / "checkpoint")  # intact and verified by its checksums
    assert 1 <= state["meta"]["tick"] < 6
    resumed = simweb.resume(uri)
    assert resumed.generations.equals(simweb.run(scenario(COLLAPSE)).generations)
    assert f"runs/flaky-{fail_from}/manifest.json" in s3.keys(f"flaky-{fail_from}")


def test_a_store_that_fails_mid_run_with_an_arrow_error_keeps_its_last_checkpoint_too(s3, monkeypatch):
    # Azure's SDK reports expired credentials as a bare ArrowException, not an OSError: mid-run it was an internal
    # error and a traceback; now it is the store failing, as any other
    from pyarrow import ArrowException

    uri = s3.uri("flaky-arrow")
    real = storage.location
    puts = {"n": 0}

    class Expiring:
        """The run's filesystem, until its credentials expire at the 47th upload and stay expired."""

        def __init__(self, fs):
            self._fs = fs

        def __getattr__(self, name):
            return getattr(self._fs, name)

        def open_output_stream(self, key, *args, **kwargs):
            puts["n"] += 1
            if puts["n"] >= 47:
                raise ArrowException("Unknown error: Failed to get token from DefaultAzureCredential.\nSee the logger")
            return self._fs.open_output_stream(key, *args, **kwargs)

    def expiring(text, *args, **kwargs):
        where = real(text, *args, **kwargs)
        if isinstance(where, storage.ObjectPath) and not isinstance(where.fs, Expiring):
            where = storage.ObjectPath(Expiring(where.fs), where.key, where.prefix, where.query)
        return where

    monkeypatch.setattr(runlock, "RENEW_S", 3600.0)  # no lease renewal among the counted PUTs
    monkeypatch.setattr(storage, "location", expiring)
    with pytest.raises(SimwebError, match="Failed to get token.*simweb resume") as err:
        simweb.run(scenario(COLLAPSE), out=uri)
    assert "\n" not in str(err.value) and puts["n"] >= 47
    monkeypatch.setattr(storage, "location", real)
    from simweb import checkpoint

    state = checkpoint.load(storage.location(uri) / "checkpoint")  # intact and verified by its checksums
    assert 1 <= state["meta"]["tick"] < 6
    resumed = simweb.resume(uri)
    assert resumed.generations.equals(simweb.run(scenario(COLLAPSE)).generations)


def test_a_store_that_fails_while_a_page_file_is_read_is_the_store_failing():
    # the file opened, its bytes then refused (credentials expiring between the open and the read of a
    # spilled page file): a bare ArrowException from pyarrow's reader, as an OSError like any failing store
    from pyarrow import ArrowException

    class Expiring(io.RawIOBase):
        """A 1,000-byte object whose every read is refused."""

        position = 0

        def readable(self):
            return True

        def seekable(self):
            return True

        def seek(self, offset, whence=0):
            self.position = {0: offset, 1: self.position + offset, 2: 1000 + offset}[whence]
            return self.position

        def tell(self):
            return self.position

        def readinto(self, buffer):
            raise ArrowException("Unknown error: Failed to get token from DefaultAzureCredential.\nSee the logger")

    with pytest.raises(OSError, match="Failed to get token") as err:
        storage.read_arrow(Expiring())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["ArrowInvalid", "ArrowCapacityError", "ArrowNotImplementedError"])
def test_pyarrows_errors_that_are_bugs_or_limits_are_not_taken_for_the_store_failing(name):
    import pyarrow

    error = getattr(pyarrow, name)

    class Failing:
        def open_output_stream(self, key):
            raise error("a bug of ours or a limit, not the store's")

    with pytest.raises(error) as raised:
        storage.ObjectPath(Failing(), "bucket/run/x", "s3://", "").write_bytes(b"x")
    assert not isinstance(raised.value, OSError)


def test_the_lease_refuses_a_live_writer_and_yields_to_a_dead_or_silent_one(s3, monkeypatch):
    out = storage.location(s3.uri("leased"))
    (out / "scenario.toml").write_bytes(b"")
    lock = out / runlock.LOCK_FILE

    def record(pid: int, age: float) -> None:
        import time

        lock.write_bytes(json.dumps({"owner": "someone", "host": socket.gethostname(), "pid": pid,
                                     "renewed": time.time() - age}).encode())

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record(sleeper.pid, 0)  # a live writer on this host
        assert runlock.held_elsewhere(out)
        with pytest.raises(SimwebError, match=f"pid {sleeper.pid}"):
            runlock.lock(out)
        record(sleeper.pid, runlock.LEASE_TTL_S + 1)  # alive, but silent for longer than the lease
        runlock.lock(out).release()
    finally:
        sleeper.kill()
        sleeper.wait()
    record(sleeper.pid, 0)  # renewed just now by a process that is gone
    held = runlock.lock(out)
    assert json.loads(lock.read_bytes())["pid"] == os.getpid()
    record(sleeper.pid, 0)  # another process took it over meanwhile: this one must not commit
    with pytest.raises(SimwebError, match="took this run over"):
        held.check()
    held.release()
    assert lock.is_file()  # the other process's lease is not this one's to remove


@pytest.mark.slow
def test_a_ray_cluster_run_to_s3_equals_a_local_run(s3, ray_cluster, tmp_path):
    """Shards on other nodes write and spill their page files to the store themselves."""
    from simweb.executors.ray_executor import RayExecutor

    sc = scenario(COLLAPSE, "run.shards=2", "run.page_memory_mb=0.05", "web.initial_sites=80")
    uri = s3.uri("on-ray", credentials=True)
    simweb.run(sc, out=tmp_path / "local", executor="local")
    simweb.run(sc, out=uri, executor=RayExecutor())
    for name in FRAMES:
        assert _read(s3, uri, name) == (tmp_path / "local" / name).read_bytes(), name
    pages = [k for k in s3.keys("on-ray") if "/pages/" in k]
    assert any("shard=0001-of-0002" in k for k in pages)


@pytest.mark.slow
def test_a_shard_killed_on_ray_is_restored_from_the_checkpoint_on_s3(s3, ray_cluster):
    """Recovery reads the checkpoint, the index parts and the dead shard's page files back from the store."""
    from simweb.engine import Engine
    from simweb.executors import LocalExecutor
    from simweb.executors.ray_executor import RayExecutor

    sc = scenario(COLLAPSE, "run.ticks=5", "web.initial_sites=80")
    where = storage.location(s3.uri("recovered", credentials=True)) / "checkpoint"
    ex = RayExecutor()
    engine = Engine(sc, executor=ex, shards=2, warn=lambda msg: None, checkpoint_dir=where)

    def on_tick(tick: int) -> None:
        if tick == 3:  # after the checkpoint of tick 2's boundary
            ex.kill(engine.fleet.shards[1])

    res = engine.run(on_tick=on_tick)
    assert res.manifest["recoveries"] >= 1
    local = Engine(sc, executor=LocalExecutor(), shards=1).run()
    for table in ("generations", "ticks", "crawls"):
        assert getattr(res, table).equals(getattr(local, table)), table
    assert (where / "CURRENT").is_file()


def test_credentials_in_a_uri_pyarrow_cannot_parse_are_never_shown():
    # pyarrow's own message quotes the URI it could not parse, credentials and all
    uri = "s3://AKIAEXAMPLE:VERYSECRETKEY@runs/x?endpoint_override=%zz"
    with pytest.raises(SimwebError) as err:
        storage.location(uri)
    assert "VERYSECRETKEY" not in str(err.value) and "AKIAEXAMPLE" not in str(err.value), str(err.value)


def test_a_store_that_refuses_with_an_arrow_error_is_one_line(monkeypatch):
    # pyarrow's Azure filesystem reports refused credentials as a bare ArrowException (not an OSError): it was a
    # traceback and "internal error"
    from pyarrow import ArrowException

    class Refusing:
        def get_file_info(self, key):
            raise ArrowException("Unknown error: Failed to get token from DefaultAzureCredential.\nSee the logger")

    where = storage.ObjectPath(Refusing(), "container/runs/x", "abfs://account.dfs.core.windows.net/", "")
    with pytest.raises(SimwebError) as err:
        storage.check_reachable(where)
    assert str(err.value).startswith("--out: cannot reach 'abfs://") and "\n" not in str(err.value)
    assert "Failed to get token" in str(err.value)


def test_forensics_reads_and_writes_a_run_on_s3_as_it_does_a_local_one(s3, tmp_path):
    marked = [*ARGS, "--set", "labs.naive.watermark={gamma=0.25}", "--set", "evaluation.forensics_tokens=1000"]
    uri, local = s3.uri("marked"), tmp_path / "run"
    for out in (uri, local):
        done = _simweb("run", QUICKSTART, "--out", out, *marked)
        assert done.returncode == 0, done.stderr
        done = _simweb("forensics", out)
        assert done.returncode == 0, done.stderr
    assert pl.read_parquet(io.BytesIO(_read(s3, uri, "forensics.parquet"))).equals(
        pl.read_parquet(local / "forensics.parquet"))
    missing = _simweb("forensics", s3.uri("nothing-here"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
