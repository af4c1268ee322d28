"""Faults: a full disk, an unwritable output, two writers of one run; each a clear message, nothing lost."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

import simweb
from simweb import checkpoint
from simweb.errors import SimwebError
from simweb.recorder import lock, partial_dir
from tests.helpers import COLLAPSE, scenario


def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = np.savez
    saves = {"n": 0}
    real_save = checkpoint._save

    def counting(*args, **kw):
        saves["n"] += 1
        return real_save(*args, **kw)

    def flaky(*args, **kw):
        if saves["n"] >= 4:  # after the one of tick 0, the third checkpoint hits a full disk half-way through
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kw)

    monkeypatch.setattr(checkpoint, "_save", counting)
    monkeypatch.setattr(np, "savez", flaky)
    with pytest.raises(SimwebError, match="No space left on device.*last good checkpoint is intact"):
        simweb.run(scenario(COLLAPSE), out=out)
    monkeypatch.setattr(np, "savez", real)
    ckpt = partial_dir(out) / "checkpoint"
    state = checkpoint.load(ckpt)  # intact and verified by its checksums
    assert state["meta"]["tick"] == 2
    assert not [p for p in ckpt.parent.iterdir() if ".tmp-" in p.name]
    resumed = simweb.resume(out)
    whole = simweb.run(scenario(COLLAPSE))
    assert resumed.generations.equals(whole.generations)


def test_a_full_disk_while_writing_page_files_is_one_message_and_the_run_resumes(tmp_path, monkeypatch):
    from simweb.web.store import ContentStore

    out = tmp_path / "run"
    real = ContentStore._write
    writes = {"n": 0}

    def flaky(self, chunk):
        writes["n"] += 1
        if writes["n"] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, chunk)

    monkeypatch.setattr(ContentStore, "_write", flaky)
    with pytest.raises(SimwebError, match="page files.*No space left on device.*simweb resume"):
        simweb.run(scenario(COLLAPSE, "run.page_memory_mb=0.01"), out=out)
    monkeypatch.setattr(ContentStore, "_write", real)
    resumed = simweb.resume(out)
    assert resumed.generations.equals(simweb.run(scenario(COLLAPSE)).generations)


def test_an_unwritable_output_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    proc = subprocess.run([sys.executable, "-m", "simweb", "validate", "--quiet", "/dev/null"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    scen = tmp_path / "s.toml"
    scen.write_text(COLLAPSE)
    proc = subprocess.run([sys.executable, "-m", "simweb", "run", str(scen), "--out", str(blocker / "run"),
                           "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_second_writer_of_the_same_run_is_refused(tmp_path):
    out = tmp_path / "run"
    partial = partial_dir(out)
    partial.mkdir(parents=True)
    holder = ("import sys, time\nfrom simweb.recorder import lock\n"
              f"lock({str(partial)!r})\nprint('locked', flush=True)\ntime.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(SimwebError, match=f"being written by another simweb process \\(pid {other.pid}\\)"):
            simweb.run(scenario(COLLAPSE), out=out, overwrite=True)
        assert (partial / "lock").is_file(), "a refused writer removed the live writer's lock"
    finally:
        other.kill()  # kill -9: the kernel drops its lock
        other.wait()
    held = lock(partial)
    assert (partial / "lock").read_text() == str(os.getpid())
    held.release()


@pytest.mark.slow  # starts Ray
def test_simweb_never_leaves_a_ray_instance_it_started(tmp_path):
    code = ("import simweb, ray\n"
            "from tests.helpers import COLLAPSE, scenario\n"
            "res = simweb.run(scenario(COLLAPSE, 'run.executor=\"ray\"', 'run.ticks=2'))\n"
            "print('initialized:', ray.is_initialized())\n"
            "print('one actor:', res.manifest['one_actor'], res.manifest['cluster']['nodes'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr
    assert "initialized: False" in proc.stdout
    assert "one actor: True 1" in proc.stdout  # a small run on a local instance (one node) runs whole in one actor
