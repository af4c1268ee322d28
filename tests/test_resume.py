"""Kill -9 in the middle of a run, resume it, and get exactly what an uninterrupted run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.toml"
ARGS = ["--executor", "local", "--quiet", "--set", "run.ticks=15"]


def _simweb(*args, **kw):
    return subprocess.run([sys.executable, "-m", "simweb", *args], capture_output=True, text=True, **kw)


def test_kill_then_resume_gives_the_uninterrupted_output(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert _simweb("run", str(QUICKSTART), "--out", str(whole), *ARGS).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "simweb", "run", str(QUICKSTART), "--out", str(broken), *ARGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = tmp_path / ".broken.partial" / "checkpoint" / "meta.json"
    deadline = time.monotonic() + 60
    tick = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            tick = json.loads(meta.read_text())["meta"]["tick"]
        except (OSError, ValueError):
            tick = 0
        if tick >= 5:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= tick < 15, "the run was not caught mid-way"
    assert not broken.exists()
    # a second run into the same place is refused, and points at resume
    again = _simweb("run", str(QUICKSTART), "--out", str(broken), *ARGS)
    assert again.returncode == 2 and "simweb resume" in again.stderr
    resumed = _simweb("resume", str(broken), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("generations.parquet", "ticks.parquet", "crawls.parquet", "scenario.toml"):
        assert (broken / name).read_bytes() == (whole / name).read_bytes(), name
    assert not (tmp_path / ".broken.partial").exists()
    done = _simweb("resume", str(broken))
    assert done.returncode == 2 and "complete" in done.stderr


def test_a_damaged_checkpoint_is_refused_with_a_clear_message(tmp_path):
    from simweb import checkpoint
    from simweb.errors import SimwebError

    out = tmp_path / "run"
    assert _simweb("run", str(QUICKSTART), "--out", str(out), *ARGS).returncode == 0
    ckpt = out / "checkpoint"
    npz = sorted(ckpt.glob("*.npz"))[0]
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(SimwebError, match="damaged"):
        checkpoint.load(ckpt)
