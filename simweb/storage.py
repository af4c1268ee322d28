"""Where a run directory lives: a local path, or a prefix on any filesystem pyarrow knows (s3://, gs://, hdfs://).

A local path stays a :class:`pathlib.Path` and every local operation is the one simweb always did (a
temporary file, ``fsync``, ``os.replace``; memory-mapped page files), so local runs write the same bytes
as fast as before. A URI becomes an :class:`ObjectPath`: the few ``pathlib`` methods the run-directory
code uses (``/``, ``name``, ``parent``, ``exists``, ``is_file``, ``iterdir``, ``read_bytes``,
``read_text``, ``mkdir``, ``unlink``), on a :mod:`pyarrow.fs` filesystem. It pickles with its
filesystem, so Ray actors (publisher shards) write page files to the same place as the driver; the
credentials are the ones each process finds (``AWS_*`` variables, the instance's role) unless the URI
carries them (``s3://KEY:SECRET@bucket/...``; never shown in a message).

Object stores have no rename, so what a rename gave locally is built differently there (see
:func:`atomic_write`, :mod:`simweb.checkpoint` and :mod:`simweb.recorder`): one object is written by one
PUT, which is atomic (a reader sees the whole object or none); a group of objects is committed by
writing, last, one object that names it (a checkpoint's ``CURRENT``, a run's ``manifest.json``).
"""

from __future__ import annotations

import functools
import io
import os
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from simweb.errors import SimwebError, first_line

__all__ = ["ObjectPath", "location", "is_object", "check_reachable", "local_only", "atomic_write",
           "read_parquet", "open_arrow", "read_arrow", "remove_tree", "sha256_of"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _store_errors(call):
    """A store's failure as an ``OSError``, which every caller takes for the storage failing (the last good
    checkpoint kept, the run resumable): pyarrow reports some failures as a bare ``ArrowException`` (Azure's
    refused or expired credentials). Its subclasses (``ArrowInvalid``, ``ArrowCapacityError`` …: a bug or a
    limit, not the store; ``ArrowIOError`` is an ``OSError`` already) go on as they are."""

    @functools.wraps(call)
    def wrapper(*args, **kwargs):
        from pyarrow import ArrowException

        try:
            return call(*args, **kwargs)
        except ArrowException as err:
            if type(err) is not ArrowException:
                raise
            raise OSError(first_line(err)) from err

    return wrapper


class ObjectPath:
    """A key (``bucket/prefix/name``) on a :mod:`pyarrow.fs` filesystem, used like a ``pathlib.Path``.

    ``prefix`` and ``query`` only make the text a user recognises (``str()``): the URI without any
    credentials, with its query (``?endpoint_override=...``) kept so ``simweb resume`` can be given it back.
    It has no ``__fspath__`` on purpose: a local-only call (``open``, ``os.rename``) given one fails loudly.
    """

    __slots__ = ("fs", "key", "prefix", "query")

    def __init__(self, fs, key: str, prefix: str, query: str = ""):
        self.fs, self.key, self.prefix, self.query = fs, key.rstrip("/"), prefix, query

    def __str__(self) -> str:
        return self.prefix + self.key + (f"?{self.query}" if self.query else "")

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectPath) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, rel) -> "ObjectPath":
        return ObjectPath(self.fs, f"{self.key}/{str(rel).strip('/')}", self.prefix, self.query)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parent(self) -> "ObjectPath":
        return ObjectPath(self.fs, self.key.rsplit("/", 1)[0], self.prefix, self.query) if "/" in self.key else self

    @_store_errors
    def _type(self):
        return self.fs.get_file_info(self.key).type

    def exists(self) -> bool:
        """A file, or a "directory": a prefix with at least one object under it."""
        from pyarrow.fs import FileType

        return self._type() != FileType.NotFound

    def is_file(self) -> bool:
        from pyarrow.fs import FileType

        return self._type() == FileType.File

    def is_dir(self) -> bool:
        from pyarrow.fs import FileType

        return self._type() == FileType.Directory

    def is_symlink(self) -> bool:
        return False  # object stores have none

    @_store_errors
    def iterdir(self) -> list["ObjectPath"]:
        """The objects and "directories" just under this prefix. pyarrow's GCS lists no prefix as a directory, only
        the objects one level down (so a checkpoint's older snapshots, prefixes, were never found to be removed):
        there they are found from every object under this prefix."""
        from pyarrow.fs import FileSelector

        deep = self.fs.type_name == "gcs"
        infos = self.fs.get_file_info(FileSelector(self.key, recursive=deep, allow_not_found=True))
        under = self.key + "/"
        names = dict.fromkeys(i.path[len(under):].split("/", 1)[0] for i in infos if i.path.startswith(under))
        return [self / name for name in names if name]

    @_store_errors
    def walk_files(self) -> list["ObjectPath"]:
        """Every object under this prefix."""
        from pyarrow.fs import FileSelector, FileType

        infos = self.fs.get_file_info(FileSelector(self.key, recursive=True, allow_not_found=True))
        return [ObjectPath(self.fs, i.path, self.prefix, self.query) for i in infos if i.type == FileType.File]

    @_store_errors
    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.key) as fh:
            return fh.read()

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    @_store_errors
    def write_bytes(self, data) -> None:
        """One PUT (a multipart upload for a big one), completed by ``close``: a reader sees it whole or not at
        all. pyarrow has no abort: should ``write`` fail and the stream's destructor complete the upload, a
        torn object could appear — every file simweb reads back is either checksummed in a checkpoint or
        written before the object that commits it (``CURRENT``, ``manifest.json``), which then is not."""
        stream = self.fs.open_output_stream(self.key)
        stream.write(data)
        stream.close()

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: on an object store a "directory" exists once an object is under it."""

    @_store_errors
    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise


def is_object(path) -> bool:
    return isinstance(path, ObjectPath)


def location(text, flag: str = "--out") -> Path | ObjectPath:
    """A run directory given as a path or a URI: a ``Path`` for a local one (``file://`` included), else an
    :class:`ObjectPath`. A scheme pyarrow does not know, or a filesystem it cannot load, is one SimwebError."""
    if isinstance(text, (Path, ObjectPath)):
        return text
    text = os.fspath(text)
    scheme, sep, _ = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return Path(text)
    from pyarrow import ArrowException
    from pyarrow.fs import FileSystem, LocalFileSystem

    parts = urlsplit(text)
    netloc = parts.netloc.rpartition("@")[2]  # credentials in the URI are used, never shown
    shown = f"{scheme}://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    try:
        fs, key = FileSystem.from_uri(text)
    except (ArrowException, OSError, ValueError) as err:
        message = first_line(err)
        userinfo = parts.netloc.rpartition("@")[0]
        if userinfo:  # pyarrow quotes a URI it cannot parse whole, credentials included
            message = message.replace(f"{userinfo}@", "").replace(userinfo, "***")
        if "Unrecognized filesystem type" in message:
            raise SimwebError(f"{flag}: {shown!r}: pyarrow knows no filesystem {scheme + '://'!r} (use a local "
                              "path, or s3://, gs://, hdfs://, file://)") from None
        raise SimwebError(f"{flag}: {shown!r}: cannot open this filesystem: {message}") from None
    if isinstance(fs, LocalFileSystem):
        return Path(key)
    key = key.strip("/")
    # s3://bucket/k and gs://bucket/k give the key "bucket/k"; hdfs://host:port/k gives "/k"
    prefix = f"{scheme}://" if key.split("/", 1)[0] == netloc else f"{scheme}://{netloc}/"
    return ObjectPath(fs, key, prefix, parts.query)


def check_reachable(path, flag: str = "--out") -> None:
    """Before any work: the store answers, with these credentials, and the bucket exists (no-op for a path)."""
    if not is_object(path):
        return
    from pyarrow import ArrowException
    from pyarrow.fs import FileType

    bucket = path.key.split("/", 1)[0]
    if not path.key or "/" not in path.key and path.prefix.endswith("://"):
        raise SimwebError(f"{flag}: {str(path)!r} names a bucket; give a prefix inside it, e.g. "
                          f"{path.prefix}{bucket or 'BUCKET'}/runs/mine")
    try:
        info = path.fs.get_file_info(bucket if path.prefix.endswith("://") else path.key)
        if path.prefix.endswith("://") and info.type == FileType.NotFound:
            raise SimwebError(f"{flag}: {str(path)!r}: the bucket {bucket!r} does not exist")
        path.fs.get_file_info(path.key)  # listing rights on the prefix itself
    except (OSError, ArrowException) as err:  # Azure's refused credentials are an ArrowException, not an OSError
        raise SimwebError(f"{flag}: cannot reach {str(path)!r}: {first_line(err)}") from None


def local_only(text, flag: str):
    """``text`` as a local Path; a URI is refused in one line (commands that write only local directories)."""
    if text is None:
        return None
    where = location(text, flag)
    if is_object(where):
        raise SimwebError(f"{flag}: {str(where)!r}: this command writes a local directory; object storage is "
                          "for 'simweb run --out', 'simweb resume' and 'simweb report'")
    return where


def atomic_write(path, data, *, durable: bool = True) -> None:
    """Write text, bytes or a polars frame (as Parquet) to ``path``, all of it or nothing.

    Locally: a temporary file, flushed to the disk (``durable``; a temporary directory needs not), then
    ``os.replace``. On an object store: one PUT of the whole buffer, which is atomic on its own.
    """
    import polars as pl

    if is_object(path):
        if isinstance(data, pl.DataFrame):
            buffer = io.BytesIO()
            data.write_parquet(buffer)
            data = buffer.getbuffer()
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if isinstance(data, pl.DataFrame):
            data.write_parquet(tmp)
            if durable:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
        else:
            with open(tmp, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_parquet(path):
    import polars as pl

    return pl.read_parquet(io.BytesIO(path.read_bytes()) if is_object(path) else path)


@_store_errors
def read_arrow(source):
    """The table of the Arrow IPC file ``source`` opened by :func:`open_arrow` (read while it is open: locally
    its buffers are the mapped file's)."""
    import pyarrow as pa

    return pa.ipc.open_file(source).read_all()


@_store_errors
def open_arrow(path):
    """A random-access file to read an Arrow IPC file from: memory-mapped locally, opened on a store."""
    import pyarrow as pa

    return path.fs.open_input_file(path.key) if is_object(path) else pa.memory_map(str(path))


def remove_tree(path) -> None:
    """Remove a directory (or every object under a prefix); errors are ignored, as ``rmtree(..., True)``."""
    if is_object(path):
        try:
            _store_errors(path.fs.delete_dir_contents)(path.key, missing_dir_ok=True)
        except OSError:
            pass
        return
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@_store_errors
def sha256_of(path) -> str:
    """SHA-256 of a file, read in blocks (checkpoint files can be larger than the memory one wants to spend)."""
    import hashlib

    digest = hashlib.sha256()
    opened = path.fs.open_input_stream(path.key) if is_object(path) else open(path, "rb")
    with opened as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()

