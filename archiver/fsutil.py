"""File-system primitives with the durability and safety rules in one place.

- ``atomic_write``: a file appears whole or not at all (temp file in the same
  directory, fsync, rename, fsync of the directory), and never replaces an
  existing file unless asked: records are written once.
- ``WriterLock``: one writer per archive (``fcntl.flock`` on a lock file); the
  lock file records who holds it so that the error can say so.
- Paths read from data are never joined blindly: ``safe_name`` admits a single
  plain file name only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import re
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import ArchiveLocked, InvalidInput, StoreError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_name(name: str) -> str:
    """Return ``name`` if it is one plain file name (no separators, no ``..``, no NUL).

    Raises:
        InvalidInput: anything else; such a name came from hostile or corrupt data.
    """
    if not _SAFE_NAME.match(name) or ".." in name:
        raise InvalidInput(f"unsafe file name in archive data: {name[:80]!r}")
    return name


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def io_error(action: str, path: Path | str, e: OSError) -> StoreError:
    """A one-line StoreError that names the path and the OS reason (ENOSPC, EIO, ...)."""
    reason = errno.errorcode.get(e.errno or 0, "error")
    return StoreError(f"cannot {action} {path}: {e.strerror or e} [{reason}]")


def read_upto(fd: int, limit: int, size: int | None = None) -> bytes:
    """At most ``limit + 1`` bytes of an open file, from its position (the one byte more
    tells the caller the file is over its limit): its bytes as of when it is sized here
    (``size``: the caller's fstat of it).

    Allocates for the file's size, not for ``limit``: ``os.read(fd, limit + 1)``
    reserves the whole limit first (a 1 MiB mapping, and its system calls, for
    every 5 KB article and 300-byte sidecar).
    """
    if size is None:
        size = os.fstat(fd).st_size
    parts: list[bytes] = []
    got = 0
    want = min(size, limit) + 1
    while got <= limit:
        part = os.read(fd, min(want, limit + 1 - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
        if got == size:
            # the bytes the file had when sized: no read for the end (a file that grows
            # meanwhile is taken as it was; a second read per file was a tenth of collecting
            # 55,000 sidecars)
            break
        # a short read: the rest; past the size (it grew before the read): modest steps
        want = size - got + 1 if got < size else 1 << 16
    return b"".join(parts)


def write_new(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Create ``path`` (never replacing a file) with ``data``, fsynced; the directory is not.

    ``sync=False`` leaves the fsync to the caller, who writes many files and then
    makes them all durable at once (``sync_filesystem``).

    Not atomic on its own: used for records whose commit is decided elsewhere
    (a manifest counts only once the log holds it, and recovery moves away any
    record file the log does not hold).

    Raises:
        StoreError: the file exists or could not be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError as e:
        raise StoreError(f"refusing to overwrite existing record {path}") from e
    except OSError as e:
        raise io_error("write", path, e) from e
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError as e:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise io_error("write", path, e) from e
    os.close(fd)


def write_new_many(items: list[tuple[Path, bytes]], *, sync: bool) -> None:
    """``write_new`` of each (path, data), in order, stopping at the first failure.

    In one call of the C accelerator where it is built: it releases the GIL once for
    the whole batch, where the Python loop hands it over around every system call,
    and each hand-over interrupted the thread that ingests.

    Raises:
        StoreError: a file exists or could not be written (the earlier ones stay).
    """
    from .fasthash import write_new_files

    if write_new_files is None:
        for path, data in items:
            write_new(path, data, sync=sync)
        return
    try:
        write_new_files([(str(path), data) for path, data in items], sync)
    except FileExistsError as e:
        raise StoreError(f"refusing to overwrite existing record {e.filename}") from e
    except OSError as e:
        raise io_error("write", str(e.filename), e) from e


def sync_filesystem(path: Path) -> bool:
    """Make everything written on the file system holding ``path`` durable: one
    ``syncfs(2)`` instead of an fsync per file and per directory. Returns False where
    syncfs is not available (then the caller fsyncs files and directories itself).

    Raises:
        StoreError: the kernel reports a write error (EIO, ENOSPC).
    """
    libc = _libc()
    if libc is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            import ctypes  # (loaded by _libc already)

            err = ctypes.get_errno()
            raise io_error("sync the file system of", path, OSError(err, os.strerror(err)))
    finally:
        os.close(fd)
    return True


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes of a file to disk now, without waiting
    (Linux ``sync_file_range`` with ``SYNC_FILE_RANGE_WRITE``; elsewhere nothing).

    Durability still comes from the fsync at the end; this only spreads a large
    record's disk writes over the time it takes to read and hash it, instead of
    leaving them all to that fsync. Best effort: errors are the fsync's to report.
    """
    libc = _libc()
    if libc is None or length <= 0:
        return
    libc.sync_file_range(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


@functools.cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    # (imported here: ctypes, and the subprocess module ctypes.util loads, are 5-8 ms of
    # every command's start-up, and only commands that write call libc)
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if not (hasattr(libc, "syncfs") and hasattr(libc, "sync_file_range")):
            return None  # (callers fall back: fsync file by file; no early write-back)
        # (64-bit offsets: without the types, ctypes would pass Python ints as C ints)
        libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
        return libc
    except OSError:
        return None


def atomic_write(path: Path, data: bytes, *, overwrite: bool = False, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` so that it appears complete or not at all.

    Raises:
        StoreError: the write failed, or ``path`` exists and ``overwrite`` is false.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        crashpoint("atomic-tmp-written")
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target exists: a record is never silently replaced.
            os.link(tmp, path)
            os.unlink(tmp)
        if sync_dir:
            fsync_dir(path.parent)
    except FileExistsError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"refusing to overwrite existing record {path}") from e
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise io_error("write", path, e) from e


#: A writer finding the lock held by readers (who record no PID) waits this long
#: for their snapshot to finish before giving up.
READER_GRACE_SECONDS = 10.0

#: Lock files this process holds exclusively: a reader in the same process (a
#: writer verifying) must not wait for itself.
HELD_EXCLUSIVE: set[Path] = set()


class ArchiveLock:
    """The archive's lock file: exclusive for a whole write command, shared for a
    reader's snapshot (docs/durability.md, "Readers").

    A writer records ``PID N since TIME`` in the lock file, so that a second
    writer's error says who holds the archive.
    """

    def __init__(self, path: Path, wait_seconds: float = 0.0, *, shared: bool = False) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self.shared = shared
        self._fd: int | None = None

    def __enter__(self) -> ArchiveLock:
        try:
            fd = os.open(
                self.path, (os.O_RDONLY if self.shared else os.O_RDWR | os.O_CREAT) | os.O_NOFOLLOW, 0o644
            )
        except OSError as e:
            raise io_error("open lock file", self.path, e) from e
        start = time.monotonic()
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                waited = time.monotonic() - start
                limit = self.wait_seconds if holder else max(self.wait_seconds, READER_GRACE_SECONDS)
                if waited >= limit:
                    os.close(fd)
                    raise ArchiveLocked(
                        f"archive is locked by {holder or 'readers'}; "
                        "wait for it to finish or retry with --wait SECONDS"
                    ) from None
                time.sleep(0.02)
        if not self.shared:
            os.ftruncate(fd, 0)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            os.pwrite(fd, f"PID {os.getpid()} since {stamp}\n".encode(), 0)
            HELD_EXCLUSIVE.add(self.path.resolve())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            if not self.shared:
                HELD_EXCLUSIVE.discard(self.path.resolve())
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


_crash_counts: dict[str, int] = {}
# read once: the crash tests set it for the processes they start, and it sits on hot paths
_CRASH_AT = os.environ.get("ARCHIVER_TEST_CRASH_AT")


def crash_testing() -> bool:
    """TEST ONLY: whether a crash point is armed (writers then flush before each point, so
    that a kill leaves exactly what the point names on disk)."""
    return bool(_CRASH_AT)


def crashpoint(name: str) -> None:
    """TEST ONLY: die here, as in a power cut, when ``$ARCHIVER_TEST_CRASH_AT`` names this point.

    The value is ``NAME`` or ``NAME#K`` (the K-th time the point is reached).
    The crash-consistency tests use it to kill writers at exact stages of the
    write protocol; nothing else sets it.
    """
    target = _CRASH_AT
    if not target:
        return
    point, _, nth = target.partition("#")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), 9)
