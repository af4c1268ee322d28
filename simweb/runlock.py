"""The lock of a run being written: an OS advisory lock (``flock``) that the kernel keeps.

A run's partial directory holds a file ``lock``; the writer holds an exclusive
``flock`` on it for the whole run. The kernel drops the lock when the file is
closed or the process ends, however it ends (``kill -9`` included), so a lock is
never stale and no pid is trusted: a zombie or a reused pid holds nothing. The
pid written into the file only names the writer in a message.

A lock belongs to the process, as ``flock`` does: this process's locks are kept
in one registry (:data:`_HELD`), so a caller that drops the handle does not
release it, and the thread that took a lock gets the same lock when it asks
again (a resume after a failed run); another thread is refused like another
process.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from simweb.errors import SimwebError

__all__ = ["RunLock", "lock", "release", "held_elsewhere", "LOCK_FILE"]

LOCK_FILE = "lock"

# This process's locks by (device, inode) of their file. A process-wide registry, because a flock is
# process-wide: two opens of one file in one process would lock each other out.
_HELD: dict[tuple[int, int], "RunLock"] = {}


class RunLock:
    """An exclusive flock on one run's lock file, held until :meth:`release` or the end of the process."""

    def __init__(self, fd: int, key: tuple[int, int]):
        self.fd = fd
        self.key = key
        self.thread = threading.current_thread()  # an object, not an ident: idents are reused

    def release(self) -> None:
        if _HELD.get(self.key) is self:
            del _HELD[self.key]
        if self.fd >= 0:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = -1

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _gone(held: RunLock) -> bool:
    """Whether the file a held lock is on has been deleted (its run directory removed or replaced)."""
    try:
        return os.fstat(held.fd).st_nlink == 0
    except OSError:
        return True


def acquire(path: Path) -> RunLock | None:
    """Take the flock on ``path`` (created if missing); None while another process holds it.

    Raises FileNotFoundError when the directory of ``path`` is gone.
    """
    key = _key(path)
    if key in _HELD and _gone(_HELD[key]):  # its file was deleted and the inode reused: not this lock
        _HELD.pop(key).release()
    if key in _HELD:
        return _HELD[key] if _HELD[key].thread is threading.current_thread() else None
    for _ in range(3):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != _key(path):  # the file was renamed or removed before we locked it
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        held = RunLock(fd, (st.st_dev, st.st_ino))
        _HELD[held.key] = held
        return held
    return None


def lock(partial: str | Path) -> RunLock:
    """Claim a run's partial directory for this process for the rest of the run; a live writer is refused.

    Kept until :func:`release` (the recorder releases it once the run directory is in place) or the
    process ends; the handle need not be kept.
    """
    partial = Path(partial)
    try:
        held = acquire(partial / LOCK_FILE)
    except FileNotFoundError:
        raise SimwebError(f"{str(_out_of(partial))!r}: no interrupted run here (it was moved or finished)") from None
    except OSError as err:
        raise SimwebError(f"{str(partial)!r}: cannot lock the run: {err.strerror or err}") from None
    if held is None:
        raise SimwebError(busy_message(partial))
    return held


def release(partial: str | Path) -> None:
    """Drop this process's lock on ``partial`` (or on the run directory it was renamed to), if it holds one."""
    held = _HELD.get(_key(Path(partial) / LOCK_FILE))
    if held is not None:
        held.release()


def held_elsewhere(partial: str | Path) -> bool:
    """Whether another live process holds ``partial``'s lock (a probe: it takes nothing it keeps)."""
    path = Path(partial) / LOCK_FILE
    key = _key(path)
    if key in _HELD:
        return _HELD[key].thread is not threading.current_thread()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def busy_message(partial: Path) -> str:
    try:
        pid = (partial / LOCK_FILE).read_text().strip()
    except OSError:
        pid = ""
    who = f" (pid {pid})" if pid.isdigit() else ""
    return (f"{str(_out_of(partial))!r} is being written by another simweb process{who}; "
            "wait for it, or stop it first")


def _out_of(partial: Path) -> Path:
    """The run directory of a partial directory ``.NAME.partial``."""
    name = partial.name
    if name.startswith(".") and name.endswith(".partial"):
        return partial.parent / name[1:-len(".partial")]
    return partial
