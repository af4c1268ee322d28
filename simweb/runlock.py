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

On an object store (``s3://`` ...) there is no flock, no rename and, through pyarrow, no conditional
create, so the lock is a *lease* (:class:`Lease`): an object ``lock`` holding the writer's token, host,
pid and the time it was last renewed, rewritten every :data:`RENEW_S` seconds by a thread of the writer.
Another process may take the run over once the lease is stale: its writer's process is gone (same host,
pid not alive) or it was not renewed for :data:`LEASE_TTL_S` seconds (another host: a killed
writer's run can be resumed from elsewhere after that long). The writer checks that the lease is still its
own before it commits a checkpoint or the run. What it does not guarantee: two processes that start the
same run within the same instant (between one's read and its write) can both believe they hold it — the
read-back after writing narrows that window but cannot close it; a writer stalled for longer than the TTL
(a paused VM) can lose its lease and write one more object before it notices; clocks are trusted to
within a fraction of the TTL; a reused pid on the same host looks alive (the lease then has to expire).
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from simweb import storage
from simweb.errors import SimwebError

__all__ = ["RunLock", "Lease", "lock", "release", "held_elsewhere", "LOCK_FILE"]

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

    Raises FileNotFoundError when the directory of ``path`` is gone. On an object store: a :class:`Lease`.
    """
    if storage.is_object(path):
        return _acquire_lease(path)
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
    partial = storage.location(partial)
    if storage.is_object(partial):
        if not (partial / "scenario.toml").is_file():
            raise SimwebError(f"{str(partial)!r}: no interrupted run here (it was moved or finished)")
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
    partial = storage.location(partial)
    held = _LEASES.get(str(partial / LOCK_FILE)) if storage.is_object(partial) else _HELD.get(_key(partial / LOCK_FILE))
    if held is not None:
        held.release()


def held_elsewhere(partial: str | Path) -> bool:
    """Whether another live process holds ``partial``'s lock (a probe: it takes nothing it keeps)."""
    partial = storage.location(partial)
    if storage.is_object(partial):
        return _lease_held_elsewhere(partial / LOCK_FILE)
    path = partial / LOCK_FILE
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
    if storage.is_object(partial):
        return _lease_busy_message(partial)
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


# ---------------------------------------------------------------- object stores: a lease
LEASE_TTL_S = 60.0  # a lease not renewed for this long is stale: its writer is taken to be dead
RENEW_S = 15.0  # how often the writer's thread renews it

# This process's leases by the URI of their lock object (as _HELD: a lease belongs to the process).
_LEASES: dict[str, "Lease"] = {}


class Lease:
    """This process's claim on a run directory on an object store, renewed by a thread until released."""

    def __init__(self, path, token: str):
        self.path, self.token = path, token
        self.thread = threading.current_thread()
        self.lost = False  # another process's token was found in the lock object
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="simweb-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_S):
            try:
                if _read_lease(self.path).get("owner") != self.token:
                    self.lost = True
                    return
                storage.atomic_write(self.path, _lease_record(self.token))
            except OSError:
                pass  # the store did not answer this time: the lease has TTL / RENEW_S tries before it is stale

    def check(self) -> None:
        """Before a commit: the lease is still this process's, or one SimwebError."""
        try:
            owner = _read_lease(self.path).get("owner")
        except OSError:
            owner = self.token  # cannot tell: the commit that follows will fail on its own if the store is down
        if self.lost or owner != self.token:
            self.lost = True
            raise SimwebError(f"{str(self.path.parent)!r}: another simweb process took this run over (its lease "
                              "expired or was taken); this process stops without writing more")

    def release(self) -> None:
        self._stop.set()
        if self._renewer.is_alive() and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=2 * RENEW_S)
        if _LEASES.get(str(self.path)) is self:
            del _LEASES[str(self.path)]
            try:
                if _read_lease(self.path).get("owner") == self.token:
                    self.path.unlink(missing_ok=True)
            except OSError:
                pass  # left behind, it goes stale on its own

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lease_record(token: str) -> str:
    return json.dumps({"owner": token, "host": socket.gethostname(), "pid": os.getpid(), "renewed": time.time()})


def _read_lease(path) -> dict:
    """The lock object's record; {} when there is none (or it is not one of simweb's)."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _stale(record: dict) -> bool:
    """A lease whose writer is gone: no record, a dead pid on this host, or not renewed for LEASE_TTL_S."""
    if not record.get("owner"):
        return True
    pid = record.get("pid")
    if record.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass  # alive, someone else's
    renewed = record.get("renewed")
    return not isinstance(renewed, (int, float)) or time.time() - renewed > LEASE_TTL_S


def _acquire_lease(path) -> Lease | None:
    held = _LEASES.get(str(path))
    if held is not None:
        return held if held.thread is threading.current_thread() and not held.lost else None
    if not _stale(_read_lease(path)):
        return None
    token = uuid.uuid4().hex
    storage.atomic_write(path, _lease_record(token))
    if _read_lease(path).get("owner") != token:  # another process wrote its own just after: it won
        return None
    if not _LEASES:
        atexit.register(_release_all)  # after pyarrow's own atexit hooks are registered, so it runs before them
    lease = _LEASES[str(path)] = Lease(path, token)
    return lease


def _release_all() -> None:
    for lease in list(_LEASES.values()):
        lease.release()


def _lease_held_elsewhere(path) -> bool:
    held = _LEASES.get(str(path))
    if held is not None:
        return held.thread is not threading.current_thread()
    try:
        return not _stale(_read_lease(path))
    except OSError:
        return False


def _lease_busy_message(partial) -> str:
    try:
        record = _read_lease(partial / LOCK_FILE)
    except OSError:
        record = {}
    who = f" (pid {record.get('pid')} on {record.get('host')})" if record.get("host") else ""
    return (f"{str(partial)!r} is being written by another simweb process{who}; wait for it, or stop it first "
            f"(the lease of a process that died on another machine expires {LEASE_TTL_S:g} s after its last "
            "renewal)")
