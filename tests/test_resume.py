"""Kill -9 in the middle of a run, resume it, and get exactly what an uninterrupted run writes.

The run kills itself at a chosen point (the test hook SIMWEB_CRASH_AT_TICK in simweb/cli.py: SIGKILL right
after that many ticks are complete), so the test never polls or races the process it stops.
"""

from __future__ import annotations

import json
import shutil
import signal

import pytest

from tests.helpers import QUICKSTART, finished_run, simweb_cli

TICKS = 15
ARGS = ["--executor", "local", "--quiet", "--set", f"run.ticks={TICKS}"]
FRAMES = ("generations.parquet", "ticks.parquet", "crawls.parquet", "scenario.toml")


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return finished_run(tmp_path_factory, *ARGS)


# 5: just after a generation boundary's checkpoint; 6: a tick past it, so the resume redoes work the kill lost
@pytest.mark.parametrize("crash_at", [5, 6])
def test_kill_then_resume_gives_the_uninterrupted_output(tmp_path, whole, crash_at):
    broken = tmp_path / "broken"
    killed = simweb_cli("run", QUICKSTART, "--out", broken, *ARGS, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    assert not broken.exists()
    meta = json.loads((tmp_path / ".broken.partial" / "checkpoint" / "meta.json").read_text())
    assert 1 <= meta["meta"]["tick"] <= crash_at  # the last checkpoint is from before the kill
    # a second run into the same place is refused, and points at resume
    again = simweb_cli("run", QUICKSTART, "--out", broken, *ARGS)
    assert again.returncode == 2 and "simweb resume" in again.stderr
    resumed = simweb_cli("resume", broken, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for name in FRAMES:
        assert (broken / name).read_bytes() == (whole / name).read_bytes(), name
    assert not (tmp_path / ".broken.partial").exists()
    done = simweb_cli("resume", broken)
    assert done.returncode == 2 and "complete" in done.stderr


def test_a_resume_killed_again_resumes_to_the_same_output(tmp_path, whole):
    broken = tmp_path / "broken"
    assert simweb_cli("run", QUICKSTART, "--out", broken, *ARGS, crash_at=4).returncode == -signal.SIGKILL
    # the resume itself is killed further on; the hook counts the ticks of the whole run
    assert simweb_cli("resume", broken, "--quiet", crash_at=10).returncode == -signal.SIGKILL
    resumed = simweb_cli("resume", broken, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for name in FRAMES:
        assert (broken / name).read_bytes() == (whole / name).read_bytes(), name


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_a_malformed_crash_hook_is_refused_before_the_run_starts(tmp_path, monkeypatch, capsys, value):
    from simweb.cli import main

    monkeypatch.setenv("SIMWEB_CRASH_AT_TICK", value)
    assert main(["run", str(QUICKSTART), "--out", str(tmp_path / "r"), *ARGS]) == 2
    assert "SIMWEB_CRASH_AT_TICK" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing was started


def test_a_damaged_checkpoint_is_refused_with_a_clear_message(tmp_path, whole):
    from simweb import checkpoint
    from simweb.errors import SimwebError

    out = tmp_path / "run"
    shutil.copytree(whole, out)
    ckpt = out / "checkpoint"
    npz = sorted(ckpt.glob("*.npz"))[0]
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(SimwebError, match="damaged"):
        checkpoint.load(ckpt)
