"""The run lock: one writer per run whatever the timing, and a dead writer's lock is gone with it."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from simweb import runlock
from simweb.errors import SimwebError
from simweb.recorder import lock, partial_dir, start_run

TRIALS = 300


def _racer(name: str, root: str, trials: int, barrier, results) -> None:
    """One of two processes: for every trial, wait at the barrier with the other, then start the same run."""
    for trial in range(trials):
        for mode in ("fresh", "stale"):
            out = os.path.join(root, f"{mode}-{trial}", "run")
            barrier.wait()
            try:
                start_run(out, f"# {name} {mode} {trial}\n", overwrite=mode == "stale")
                outcome = "started"
            except SimwebError as err:
                outcome = str(err)
            results.put((mode, trial, name, outcome))
            barrier.wait()  # both done: the parent's checks see a settled directory
            runlock.release(partial_dir(out))


def test_two_starts_released_together_never_both_start_and_never_delete(tmp_path):
    # "stale" trials begin with an interrupted run whose writer is dead (an unlocked partial): both racers
    # pass --overwrite, so both try to take it over
    for trial in range(TRIALS):
        (tmp_path / f"fresh-{trial}").mkdir()
        stale = partial_dir(tmp_path / f"stale-{trial}" / "run")
        stale.mkdir(parents=True)
        (stale / "scenario.toml").write_text("# the dead run\n")
        (stale / "lock").write_text("1")  # pid 1 is alive, and proves nothing
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    racers = [ctx.Process(target=_racer, args=(name, str(tmp_path), TRIALS, barrier, results)) for name in "AB"]
    for p in racers:
        p.start()
    outcomes: dict[tuple[str, int], dict[str, str]] = {}
    for _ in range(4 * TRIALS):
        mode, trial, name, outcome = results.get(timeout=120)
        outcomes.setdefault((mode, trial), {})[name] = outcome
    for p in racers:
        p.join(timeout=60)
        assert p.exitcode == 0
    double = [k for k, v in outcomes.items() if list(v.values()).count("started") != 1]
    assert not double, f"{len(double)} of {2 * TRIALS} trials did not start exactly once: {double[:3]}"
    for (mode, trial), by in outcomes.items():
        winner = next(name for name, outcome in by.items() if outcome == "started")
        loser = next(outcome for name, outcome in by.items() if name != winner)
        assert "another simweb process" in loser or "interrupted run" in loser, loser
        parent = tmp_path / f"{mode}-{trial}"
        partial = partial_dir(parent / "run")
        assert (partial / "scenario.toml").read_text() == f"# {winner} {mode} {trial}\n", \
            f"{mode} trial {trial}: the winner's partial directory was damaged"
        assert (partial / "lock").is_file()
        assert sorted(p.name for p in parent.iterdir()) == [partial.name], \
            f"{mode} trial {trial}: left behind {sorted(p.name for p in parent.iterdir())}"


def test_two_threads_of_one_process_are_two_writers(tmp_path):
    out = tmp_path / "run"
    barrier, outcomes = threading.Barrier(2), []

    def start():
        barrier.wait()
        try:
            start_run(out, "# run\n", overwrite=True)
            outcomes.append("started")
        except SimwebError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("started") == 1, outcomes
    held = threading.Thread(target=lambda: outcomes.append(runlock.held_elsewhere(partial_dir(out))))
    held.start()
    held.join()
    assert outcomes[-1] is True  # for another thread, the lock is someone else's
    runlock.release(partial_dir(out))


def test_a_lock_file_naming_a_live_pid_is_not_a_lock(tmp_path):
    partial = partial_dir(tmp_path / "run")
    partial.mkdir(parents=True)
    (partial / "lock").write_text("1")  # init: always alive, never a simweb writer
    held = lock(partial)
    assert (partial / "lock").read_text() == str(os.getpid())
    held.release()


def test_a_zombie_writer_holds_nothing(tmp_path):
    partial = partial_dir(tmp_path / "run")
    partial.mkdir(parents=True)
    code = f"from simweb.recorder import lock\nlock({str(partial)!r})\nprint('locked', flush=True)\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    deadline = time.monotonic() + 30
    # exited, not yet reaped: a zombie. The leader shows "Z" while its other threads still exit (and the
    # descriptors they share stay open); a whole zombie is the leader alone
    while not (_state(child.pid) == "Z" and len(os.listdir(f"/proc/{child.pid}/task")) == 1) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert _state(child.pid) == "Z"
        assert (partial / "lock").read_text() == str(child.pid)  # its pid is still taken, and still in the file
        held = lock(partial)
        held.release()
    finally:
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def test_a_live_writer_is_refused_and_its_kill_frees_the_run_at_once(tmp_path):
    partial = partial_dir(tmp_path / "run")
    partial.mkdir(parents=True)
    code = f"import time\nfrom simweb.recorder import lock\nlock({str(partial)!r})\nprint('locked', flush=True)\ntime.sleep(60)\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(SimwebError, match=f"is being written by another simweb process \\(pid {child.pid}\\)"):
            lock(partial)
        assert runlock.held_elsewhere(partial)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not runlock.held_elsewhere(partial)
    lock(partial).release()


def test_a_symlinked_lock_file_is_not_followed(tmp_path):
    partial = partial_dir(tmp_path / "run")
    partial.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me")
    (partial / "lock").symlink_to(elsewhere)
    with pytest.raises(SimwebError, match="cannot lock the run"):
        lock(partial)
    assert elsewhere.read_text() == "keep me"


def test_a_lock_whose_file_was_deleted_does_not_refuse_a_new_file_on_the_same_inode(tmp_path):
    """The process keeps its locks by (device, inode); a deleted run's inode can come back for a new run's
    lock file, which must not count as held by the old lock's thread."""
    first = partial_dir(tmp_path / "a")
    first.mkdir(parents=True)
    box = []
    worker = threading.Thread(target=lambda: box.append(lock(first)))
    worker.start()
    worker.join()
    stale = box[0]
    shutil.rmtree(first)  # that run went away without releasing its lock
    second = partial_dir(tmp_path / "b")
    second.mkdir(parents=True)
    (second / "lock").touch()
    st = os.stat(second / "lock")
    runlock._HELD[(st.st_dev, st.st_ino)] = runlock._HELD.pop(stale.key)  # as if the inode came back
    held = lock(second)  # refused before the fix: "being written by another simweb process"
    held.release()
