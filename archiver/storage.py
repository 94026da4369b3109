"""Where an archive's files are: one small reading interface over two backends.

Every reader (verify, audit, list/show/cat, reindex, the log, exports) sees an
archive as a set of *keys*, relative POSIX paths such as
``manifests/events/ab/ab…-000000.json`` or ``store/000000.warc.gz``, and asks a
``Store`` for them. ``LocalStore`` (this module) maps keys to files below the
archive's root; ``S3Store`` (``s3store.py``) to objects below a bucket prefix.
Writing differs too much between the two to share an interface (appending and
renaming files under a lock against writing objects once under Object Lock), so
each backend has its own write path (``commit.py`` and ``s3commit.py``) and
both produce the same keys with the same bytes.

Keys come from data (a manifest names its WARC file), so every backend refuses
keys that could leave the archive: absolute, ``..`` segments, backslashes, NUL.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: The largest record file any reader loads whole (manifests, keys, audits, notes).
MAX_RECORD = 64 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed file or object."""

    key: str
    size: int
    link: bool = False  # a symbolic link (local files only): listed so it can be reported, never followed

    @property
    def name(self) -> str:
        """The last path segment."""
        return self.key.rsplit("/", 1)[-1]


class NotRegular(OSError):
    """The key names something other than a regular file (a symbolic link, a folder), or is unsafe."""


def check_key(key: str) -> str:
    """Return ``key`` if it stays inside the archive.

    Raises:
        NotRegular: absolute, with ``..``, empty segments, a backslash or a NUL.
    """
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise NotRegular(f"unsafe key {key[:80]!r}")
    return key


def parent_of(key: str) -> str:
    """The folder part of a key or prefix, with its trailing slash ('' at the top)."""
    return key[: key.rfind("/") + 1]


class Store(ABC):
    """Reading an archive's files by key."""

    #: where the archive is, for messages (a folder, or s3://bucket/prefix)
    location: str
    #: how many reads are worth running at once (a network store: many)
    parallelism = 1

    def map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """``fn`` over ``items``, in order, with up to ``parallelism`` reads at once."""
        if self.parallelism <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.parallelism) as pool:
            return list(pool.map(fn, items))

    @abstractmethod
    def files(self, prefix: str) -> list[Entry]:
        """Every file whose key starts with ``prefix`` (recursively), sorted by key."""

    def names(self, prefix: str) -> list[Entry]:
        """``files``, where a size may be -1 (unknown) if the store would have to ask for each
        file's: for callers that need only names and links."""
        return self.files(prefix)

    @abstractmethod
    def read(self, key: str, limit: int | None = MAX_RECORD) -> bytes:
        """The first ``limit`` bytes (all with None) of a file.

        Raises:
            FileNotFoundError: no such file.
            NotRegular: a symbolic link, a folder, or an unsafe key.
            OSError: it could not be read.
        """

    def read_many(
        self, keys: list[str], limit: int | None = MAX_RECORD
    ) -> Iterator[tuple[str, bytes | OSError]]:
        """``read`` of many files, in order, each with its bytes or the error reading it
        (a network store reads them in parallel)."""
        for key in keys:
            try:
                yield key, self.read(key, limit)
            except OSError as e:
                yield key, e

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable binary reader (for WARC files, which are never read whole).

        Raises:
            FileNotFoundError / NotRegular / OSError: as ``read``.
        """

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The size of a regular file, or None if there is none (or it is a link)."""

    def exists(self, key: str) -> bool:
        """A regular file is there."""
        return self.size(key) is not None


class OverlayStore(Store):
    """A store with some files added (not written): to check records exactly as a reader will
    see them once written, before writing them."""

    def __init__(self, base: Store, extra: dict[str, bytes]) -> None:
        self.base = base
        self.extra = extra
        self.location = base.location
        self.parallelism = base.parallelism

    def files(self, prefix: str) -> list[Entry]:
        return self._with_extra(self.base.files(prefix), prefix)

    def names(self, prefix: str) -> list[Entry]:
        return self._with_extra(self.base.names(prefix), prefix)

    def _with_extra(self, listed: list[Entry], prefix: str) -> list[Entry]:
        out = {e.key: e for e in listed}
        out.update({k: Entry(k, len(v)) for k, v in self.extra.items() if k.startswith(prefix)})
        return [out[k] for k in sorted(out)]

    def read(self, key: str, limit: int | None = MAX_RECORD) -> bytes:
        if key in self.extra:
            return self.extra[key][:limit]
        return self.base.read(key, limit)

    def open(self, key: str) -> BinaryIO:
        import io

        return io.BytesIO(self.extra[key]) if key in self.extra else self.base.open(key)

    def size(self, key: str) -> int | None:
        return len(self.extra[key]) if key in self.extra else self.base.size(key)


def children(store: Store, folder: str, suffix: str = "") -> list[Entry]:
    """The files directly in ``folder`` (a prefix ending in ``/``) whose names end with ``suffix``."""
    return [e for e in store.files(folder) if "/" not in e.key[len(folder) :] and e.key.endswith(suffix)]


def read_limited(store: Store, key: str, limit: int) -> tuple[bytes | None, str | None]:
    """(bytes, None) for a regular file of at most ``limit`` bytes, else (None, why not)."""
    try:
        raw = store.read(key, limit + 1)
    except NotRegular as e:
        return None, f"is {e.strerror or 'not a regular file'}"
    except OSError as e:
        return None, f"unreadable: {e.strerror or e}"
    if len(raw) > limit:
        return None, f"larger than {limit} bytes"
    return raw, None


class LocalStore(Store):
    """An archive's files below a folder. Symbolic links are listed but never followed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def path(self, key: str) -> Path:
        """The file of a key."""
        return self.root / check_key(key)

    def files(self, prefix: str) -> list[Entry]:
        return self._walk(prefix, sizes=True)

    def names(self, prefix: str) -> list[Entry]:
        # the directory entries' types say what is a link or a folder: no call per file
        # (an lstat each was most of listing 55,000 manifests, twice per verify)
        return self._walk(prefix, sizes=False)

    def _walk(self, prefix: str, *, sizes: bool) -> list[Entry]:
        """Every entry below the prefix's folder but folders themselves (a symbolic link to
        a folder is an entry, never followed); unreadable folders are skipped, as entries
        removed meanwhile."""
        folder = parent_of(prefix)
        out: list[Entry] = []
        todo = [(self.root / folder if folder else self.root, folder)]
        while todo:
            path, rel = todo.pop()
            try:
                listing = os.scandir(path)
            except OSError:
                continue
            with listing:
                for entry in listing:
                    key = rel + entry.name
                    try:
                        link = entry.is_symlink()
                        if not link and entry.is_dir(follow_symlinks=False):
                            if (key + "/").startswith(prefix) or prefix.startswith(key):
                                todo.append((Path(entry.path), key + "/"))
                            continue
                        if not key.startswith(prefix):
                            continue
                        size = entry.stat(follow_symlinks=False).st_size if sizes else -1
                    except OSError:
                        continue  # removed meanwhile
                    out.append(Entry(key, size, link=link))
        out.sort(key=lambda e: e.key)
        return out

    def _fd(self, key: str) -> tuple[int, int]:
        """An open regular file and its size. O_NONBLOCK: opening a FIFO planted in the
        archive would otherwise wait for a writer forever (it is refused below); reading
        a regular file never blocks in that sense."""
        path = os.path.join(self.location, check_key(key))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == 40:  # ELOOP: the last component is a symbolic link
                raise NotRegular(40, "a symbolic link", path) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotRegular(21, "not a regular file", path)
        return fd, st.st_size

    def read(self, key: str, limit: int | None = MAX_RECORD) -> bytes:
        fd, size = self._fd(key)
        if limit is None:
            with os.fdopen(fd, "rb", buffering=0) as f:
                return f.readall()
        from .fsutil import read_upto

        try:
            # sized once: a verify reads every manifest, and a file object, more fstat
            # calls, a pathlib path and a read to see the end were half of reading a 2 KB one
            return read_upto(fd, limit - 1, size)  # (it reads one byte past what it is given)
        finally:
            os.close(fd)

    def open(self, key: str) -> BinaryIO:
        return os.fdopen(self._fd(key)[0], "rb")

    def size(self, key: str) -> int | None:
        try:
            st = os.lstat(self.path(key))
        except (OSError, ValueError):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None
