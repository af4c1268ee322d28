"""Run directories on Google Cloud Storage: a GCS emulator (gcp-storage-emulator, on 127.0.0.1) behind
pyarrow.fs's GcsFileSystem.

The same guarantees as on S3 (tests/test_storage.py): the bytes of a local run, a kill -9 that `simweb resume
gs://...` finishes, a bad bucket refused in one line. And one that GCS tested first: pyarrow lists no prefix
as a directory there, so old checkpoint snapshots and agents' states (prefixes) must still be found and removed.
"""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest

from simweb import storage
from tests.helpers import QUICKSTART, STORE_ARGS, STORE_FILES, finished_run, free_port, killed_on_store, simweb_cli

ARGS, FRAMES = STORE_ARGS, STORE_FILES
BUCKET = "runs"


class GCS:
    def __init__(self, port: int):
        self.query = f"endpoint_override=127.0.0.1:{port}&scheme=http"

    def uri(self, key: str, bucket: str = BUCKET) -> str:
        return f"gs://anonymous@{bucket}/{key}?{self.query}"

    def keys(self, prefix: str) -> list[str]:
        return sorted(p.key for p in storage.location(self.uri(prefix)).walk_files())

    def read(self, key: str) -> bytes:
        return storage.location(self.uri(key)).read_bytes()


@pytest.fixture(scope="module")
def gcs():
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/storage/v1/b?project=test", method="POST",
                                         data=json.dumps({"name": BUCKET}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()
        yield GCS(port)
    finally:
        server.stop()  # by handle: the server this fixture started


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return finished_run(tmp_path_factory, *ARGS)


def test_a_listing_finds_the_prefixes_gcs_does_not_list(gcs):
    where = storage.location(gcs.uri("listing"))
    for key in ("a/x", "a/b/y", "c/d/e/z", "f"):
        (where / key).write_bytes(b"1")
    assert sorted(p.name for p in where.iterdir()) == ["a", "c", "f"]
    assert sorted(p.name for p in (where / "a").iterdir()) == ["b", "x"]
    assert (where / "c" / "d").iterdir() == [where / "c" / "d" / "e"]
    assert (where / "none").iterdir() == []


def test_a_run_to_gcs_writes_the_bytes_of_a_local_run_and_keeps_one_checkpoint(gcs, whole):
    done = simweb_cli("run", QUICKSTART, "--out", gcs.uri("quick"), *ARGS)
    assert done.returncode == 0, done.stderr
    for name in FRAMES:
        assert gcs.read(f"quick/{name}") == (whole / name).read_bytes(), name
    keys = gcs.keys("quick")
    assert "runs/quick/manifest.json" in keys and "runs/quick/lock" not in keys
    # the snapshots replaced were removed, as the states of the checkpoints replaced (prefixes, both)
    snapshots = {k.split("/")[3] for k in keys if k.startswith("runs/quick/checkpoint/") and k.count("/") > 3}
    assert len(snapshots) == 1, snapshots
    states = {k.split("/")[3] for k in keys if k.startswith("runs/quick/states/")}
    assert len(states - {"parts"}) == 1, states
    local_states = {p.name for p in (whole / "states").iterdir()}
    assert len(local_states - {"parts"}) == 1  # what the local run keeps


def test_kill_then_resume_from_gcs_gives_the_uninterrupted_output(gcs, whole):
    uri = killed_on_store(gcs, "broken")
    resumed = simweb_cli("resume", uri, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for name in FRAMES:
        assert gcs.read(f"broken/{name}") == (whole / name).read_bytes(), name


def test_a_bucket_that_does_not_exist_is_one_line_and_exit_2(gcs, tmp_path):
    done = simweb_cli("run", QUICKSTART, "--out", gcs.uri("x", bucket="no-such-bucket"), *ARGS)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no-such-bucket" in done.stderr and "does not exist" in done.stderr
