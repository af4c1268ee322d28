"""What simweb writes and replaces: only its own runs, checked before any work; every failure one line, exit 2."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import simweb
from simweb import checkpoint, cli, runlock
from simweb.recorder import partial_dir
from tests.helpers import COLLAPSE, scenario

ROOT = os.geteuid() == 0  # root writes into a read-only directory: those checks need another user


def _simweb(*args, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "simweb", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env, **kw)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def scen(tmp_path) -> Path:
    path = tmp_path / "collapse.toml"
    path.write_text(COLLAPSE)
    return path


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts: the checks must come before it."""
    def refuse(*args, **kw):
        raise AssertionError("the simulation started before the output was checked")

    monkeypatch.setattr(simweb, "run", refuse)


def _main(capsys, *args) -> tuple[int, str]:
    code = cli.main([*map(str, args)])
    return code, _one_line(capsys.readouterr().err)


# ---------------------------------------------------------------- --out and --overwrite
def test_overwrite_never_replaces_a_directory_that_is_not_a_run(tmp_path, scen, capsys, no_simulation):
    docs = tmp_path / "docs"
    (docs / "s").mkdir(parents=True)
    (docs / "s" / "t").write_text("x")
    before = _files(tmp_path)
    code, line = _main(capsys, "run", scen, "--out", docs, "--overwrite", "--quiet")
    assert code == 2
    assert line == (f"simweb: error: --out: {str(docs)!r} is not a simweb run (it has no manifest.json); "
                    "--overwrite replaces only a run directory, so choose another directory")
    assert _files(tmp_path) == before


def test_overwrite_refuses_a_foreign_partial_directory(tmp_path, scen, capsys, no_simulation):
    out = tmp_path / "run"
    partial_dir(out).mkdir()
    (partial_dir(out) / "mine.txt").write_text("not simweb's")
    code, line = _main(capsys, "run", scen, "--out", out, "--overwrite", "--quiet")
    assert code == 2 and "is in the way and is not a simweb run" in line
    assert (partial_dir(out) / "mine.txt").read_text() == "not simweb's"


@pytest.mark.parametrize("where", [".", "..", "./", "sub/.."])
def test_out_naming_the_current_directory_or_above_fails_before_the_simulation(tmp_path, scen, capsys, monkeypatch,
                                                                               no_simulation, where):
    (tmp_path / "sub").mkdir()
    (tmp_path / "generations.parquet").write_text("the user's own")
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path.parent) if where == ".." else _files(tmp_path)
    code, line = _main(capsys, "run", scen, "--out", where, "--overwrite", "--quiet")
    assert code == 2 and "is the current directory or one above it" in line
    assert (_files(tmp_path.parent) if where == ".." else _files(tmp_path)) == before


def test_a_dangling_symlink_out_fails_before_the_simulation(tmp_path, scen, capsys, no_simulation):
    out = tmp_path / "link"
    out.symlink_to(tmp_path / "missing")
    code, line = _main(capsys, "run", scen, "--out", out, "--quiet")
    assert code == 2
    assert line == (f"simweb: error: --out: {str(out)!r} is a symbolic link to a missing "
                    f"{str(tmp_path / 'missing')!r}; give the directory itself")
    assert out.is_symlink() and not (tmp_path / "missing").exists()


def test_overwrite_replaces_a_run_and_an_empty_directory(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    simweb.run(scenario(COLLAPSE, "run.ticks=2"), out=out, overwrite=True)  # empty: nothing to lose
    assert (out / "manifest.json").is_file()
    simweb.run(scenario(COLLAPSE, "run.ticks=3"), out=out, overwrite=True)
    assert pl.read_parquet(out / "ticks.parquet")["tick"].max() == 2
    assert not (out / "lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_run_name_of_dot_dot_cannot_send_a_sweep_into_the_current_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "generations.parquet").write_text("the user's own")
    path = tmp_path / "s.toml"
    path.write_text(COLLAPSE.replace('name = "collapse"', 'name = ".."'))
    code, line = _main(capsys, "sweep", path, "--executor", "local", "--quiet")
    assert code == 2 and "run.name" in line and "'..'" in line
    assert (tmp_path / "generations.parquet").read_text() == "the user's own"
    assert not (tmp_path / "sweeps").exists()


# ---------------------------------------------------------------- the final write
def _disk_full_at_the_final_write(monkeypatch):
    def full(self, *args, **kw):
        raise pl.exceptions.ComputeError("parquet: File out of specification: underlying IO error: "
                                         "No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)


def test_a_full_disk_at_the_final_write_is_one_line_and_resume_finishes(tmp_path, scen, capsys, monkeypatch):
    out = tmp_path / "run"
    _disk_full_at_the_final_write(monkeypatch)
    code, line = _main(capsys, "run", scen, "--out", out, "--quiet")
    monkeypatch.undo()
    assert code == 2
    assert line == (f"simweb: error: --out: cannot write {str(out)!r}: parquet: File out of specification: "
                    f"underlying IO error: No space left on device (os error 28); the checkpoints in "
                    f"{str(partial_dir(out))!r} are intact: 'simweb resume {out}' will finish the run once "
                    "this is fixed")
    assert not out.exists()
    assert cli.main(["resume", str(out), "--quiet"]) == 0
    assert pl.read_parquet(out / "generations.parquet").equals(simweb.run(scenario(COLLAPSE)).generations)


def test_a_killed_process_temporaries_never_reach_the_run_directory(tmp_path, scen, capsys, monkeypatch):
    out = tmp_path / "run"
    _disk_full_at_the_final_write(monkeypatch)
    assert cli.main(["run", str(scen), "--out", str(out), "--quiet"]) == 2
    monkeypatch.undo()
    partial = partial_dir(out)
    planted = [partial / ".checkpoint.tmp-0123abcd" / "meta.json", partial / ".checkpoint.old-89abcdef" / "x.npz",
               partial / ".generations.parquet.tmp-deadbeef", partial / ".scenario.toml.tmp-00000000",
               next(partial.glob("pages/tick=*")) / ".shard=0000-of-0001.arrow.tmp-feedf00d"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half written by a process that was killed")
    (partial / "notes.tmp-x").write_text("not a simweb temporary: kept")
    assert cli.main(["resume", str(out), "--quiet"]) == 0
    names = [p.name for p in out.rglob("*")]
    assert not [n for n in names if (".tmp-" in n or ".old-" in n) and n != "notes.tmp-x"], names
    assert (out / "notes.tmp-x").is_file()


# ---------------------------------------------------------------- Ctrl-C
def test_ctrl_c_says_how_to_resume_when_a_partial_run_remains(tmp_path, scen):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "simweb", "run", str(scen), "--out", str(out), "--quiet",
                             "--set", "run.ticks=400"], stderr=subprocess.PIPE, text=True, env=env)
    meta = partial_dir(out) / "checkpoint" / "meta.json"
    deadline = time.monotonic() + 60
    while not meta.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert _one_line(err) == f"simweb: interrupted: resume with `simweb resume {out}`"
    # resumable indeed: its lock went with the process, and its checkpoint loads (a full resume of 400 ticks
    # is test_resume's business)
    assert not runlock.held_elsewhere(partial_dir(out))
    assert checkpoint.load(partial_dir(out) / "checkpoint")["meta"]["tick"] >= 0


def test_ctrl_c_before_anything_was_written_says_so(tmp_path, scen, capsys, monkeypatch):
    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(simweb, "run", interrupted)
    assert cli.main(["run", str(scen), "--out", str(tmp_path / "run"), "--quiet"]) == 130
    assert _one_line(capsys.readouterr().err) == "simweb: interrupted; nothing was written"


def test_a_live_writer_is_not_called_an_interrupted_run(tmp_path, scen):
    out = tmp_path / "run"
    partial_dir(out).mkdir()
    (partial_dir(out) / "scenario.toml").write_text(COLLAPSE)
    holder = (f"import time\nfrom simweb.recorder import lock\nlock({str(partial_dir(out))!r})\n"
              "print('locked', flush=True)\ntime.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        assert other.stdout.readline().strip() == "locked"
        for args in (["run", scen, "--out", out, "--quiet"], ["resume", out]):
            result = _simweb(*args, cwd=tmp_path)
            assert result.returncode == 2
            line = _one_line(result.stderr)
            assert f"is being written by another simweb process (pid {other.pid})" in line
            assert "interrupted" not in line
    finally:
        other.kill()
        other.wait()


# ---------------------------------------------------------------- read-only output directories
@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A directory nothing can be written into: by its mode, or (for root, which ignores modes) by refusing
    every file and directory made under it, as a read-only file system does."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if not ROOT:
        ro.chmod(0o555)
        yield ro
        ro.chmod(0o755)
        return

    def refused(path) -> bool:
        return Path(os.path.abspath(path)).is_relative_to(ro)

    real_mkdir, real_open, real_mkstemp = Path.mkdir, os.open, __import__("tempfile").mkstemp

    def mkdir(self, *args, **kw):
        if refused(self) and not self.exists():
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kw)

    def mkstemp(*args, dir=None, **kw):
        if dir is not None and refused(dir):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kw)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    yield ro


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_writing_into_a_read_only_directory_is_one_line_and_exit_2(tmp_path, scen, read_only, capsys, command,
                                                                   monkeypatch):
    if command == "sweep":
        args = ["sweep", scen, "--out", read_only / "sweep", "--executor", "local", "--workers", "1", "--quiet"]
    else:
        args = ["reproduce", "--only", "shumailov_gaussian_mle", "--replicates", "2", "--set", "run.ticks=2",
                "--out", read_only / "table.parquet", "--workers", "1", "--quiet"]
    def no_work(*_, **__):
        raise AssertionError("the runs started before the unwritable --out was refused")

    # refused before the work, not after: nothing that runs points may be reached
    for target in ("simweb.sweep.run_points", "simweb.reproduce.simulate_points", "simweb.reproduce.worker_pool"):
        monkeypatch.setattr(target, no_work)
    code, line = _main(capsys, *args)
    assert code == 2
    assert line.startswith("simweb: error: --out: cannot write") and "Permission denied" in line
    assert str(read_only) in line
    assert list(read_only.iterdir()) == []
