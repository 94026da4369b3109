"""Ingest: files, folders or standard input into signed ``captured`` events.

Order of work (the write protocol, docs/durability.md):

1. Everything is checked first: inputs exist and are regular files, every
   metadata layer is valid. Bad input stops here with nothing written.
2. Under the writer lock, for each document: one streaming pass for the
   digests; the bytes copied into a ``resource`` record (hashed again while
   copying: a file that changes under us is refused), or a ``revisit`` record
   when the archive has these bytes already; the manifest built and signed,
   and written into the WARC as a ``metadata`` record.
3. The WARC file is fsynced; then each manifest is written atomically into
   ``manifests/events/`` and the directories fsynced; then the index rows
   are inserted in one transaction.
4. Any failure rolls all of it back: WARC files truncated to their former
   size, manifests of this batch removed, index transaction rolled back.

Re-capture: bytes identical to the current version of a document from the
same source (same URL, or with no URL the same file name) add a new
``captured`` event to that document, stored as a ``revisit`` record, so that
repeated captures build a dated record of the document staying unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from .__version__ import TOOL_NAME, __version__
from .archive import Archive
from .commit import Transaction, Written
from .errors import InvalidInput
from .gcpause import gc_paused
from .ids import uuid4_hex
from .keystore import SigningKey
from .metadata import SIDECAR_SUFFIX, merge, read_metadata_file, sidecar_for
from .prehash import Prehashed
from .sealing import seal_and_queue
from .storing import StoredVersion, digest_version, store_streamed, store_version
from .timeutil import format_time
from .warcstore import RecordRef


@dataclass(frozen=True, slots=True)
class Source:
    """One document to ingest."""

    path: Path  # for stdin: the spooled temporary copy
    display: str  # what error messages call it
    filename: str | None  # recorded in the manifest; None for stdin
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ingested:
    """What ingest did with one source."""

    document_id: str
    sequence: int
    revisit: bool
    source: str
    sha256: str
    manifest: str

    @classmethod
    def of(cls, written: Written, source: str) -> Ingested:
        """What a committed transaction says of one event, and where it came from."""
        return cls(
            document_id=written.document_id,
            sequence=written.sequence,
            revisit=written.record_type == "revisit",
            source=source,
            sha256=written.sha256,
            manifest=written.path,
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form for ``ingest --json``."""
        return {
            "document": self.document_id,
            "sequence": self.sequence,
            "revisit": self.revisit,
            "source": self.source,
            "sha256": self.sha256,
            "manifest": self.manifest,
        }


def _name_of(path: Path) -> str:
    # A file name that is not valid UTF-8 is recorded with its bytes escaped,
    # so the manifest stays valid JSON and the name stays recognisable.
    name = os.fsencode(path.name).decode("utf-8", "backslashreplace")
    return name.replace("/", "_").replace("\x00", "_")


def walk(root: Path, *, include_hidden: bool, follow_symlinks: bool) -> Iterator[tuple[Path, Path | None]]:
    """Files below ``root`` in a stable order (byte order of names), sidecars excluded, each
    with its sidecar if the folder has one (a regular file, or a link to one).

    Hidden entries (names starting with ``.``) and symbolic links are
    skipped unless asked for; followed directory links are visited once
    (no loops). Sidecars are found in the folder's listing: a ``stat`` per
    file was a tenth of collecting 55,000 files.
    """
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path) -> Iterator[tuple[Path, Path | None]]:
        st = folder.stat()
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
        except OSError as e:
            raise InvalidInput(f"{folder}: cannot list folder ({e.strerror})") from e
        by_name = {e.name: e for e in entries}
        for entry in entries:
            if entry.name.startswith(".") and not include_hidden:
                continue
            if entry.is_symlink() and not follow_symlinks:
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                yield from visit(Path(entry.path))
            elif not entry.name.endswith(SIDECAR_SUFFIX):  # (a Path per name was costly too)
                path = Path(entry.path)
                side = by_name.get(entry.name + SIDECAR_SUFFIX)
                try:
                    has_side = side is not None and side.is_file()  # follows a link, as Path.is_file
                except OSError:
                    has_side = False
                yield path, Path(side.path) if has_side and side is not None else None

    yield from visit(root)


def collect(
    args: list[str],
    options: dict[str, Any],
    *,
    metadata_file: Path | None = None,
    include_hidden: bool = False,
    follow_symlinks: bool = False,
    stdin: BinaryIO | None = None,
    spool: list[Path] | None = None,
) -> list[Source]:
    """Resolve command-line inputs to sources with validated metadata.

    ``spool`` collects temporary files (standard input) the caller must delete.

    Raises:
        InvalidInput: a missing, unreadable or non-regular input, or bad metadata.
    """
    from .metadata import validate

    base = read_metadata_file(metadata_file) if metadata_file else {}
    validate(options, "command-line options")
    sources: list[Source] = []
    for arg in args:
        if arg == "-":
            tmp = _spool_stdin(stdin or sys.stdin.buffer)
            if spool is not None:
                spool.append(tmp)
            sources.append(Source(tmp, "<stdin>", None, merge(base, options)))
            continue
        path = Path(arg)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise InvalidInput(f"{arg}: no such file or folder") from None
        except OSError as e:
            raise InvalidInput(f"{arg}: {e.strerror}") from e
        if stat.S_ISDIR(st.st_mode):
            if not os.access(path, os.R_OK | os.X_OK):
                raise InvalidInput(f"{arg}: permission denied (cannot read folder)")
            files = list(walk(path, include_hidden=include_hidden, follow_symlinks=follow_symlinks))
        else:
            beside = sidecar_for(path)
            files = [(path, beside if beside.is_file() else None)]
        for f, side in files:
            check_readable(f)
            layer = read_metadata_file(side) if side is not None else {}
            sources.append(Source(f, str(f), _name_of(f), merge(base, layer, options)))
    if not sources:
        raise InvalidInput("nothing to ingest (empty folder, or only hidden files and links)")
    return sources


def check_readable(path: Path) -> None:
    """Refuse a path that cannot be read or is not a regular file.

    Raises:
        InvalidInput: with the reason.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read ({e.strerror})") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            # FIFOs and devices could block forever or never end.
            raise InvalidInput(f"{path}: not a regular file")
    finally:
        os.close(fd)


def _spool_stdin(stream: BinaryIO) -> Path:
    fd, name = tempfile.mkstemp(prefix="archiver-stdin-")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    return Path(name)


def ingest(
    archive: Archive,
    sources: list[Source],
    key: SigningKey,
    *,
    wait_seconds: float = 0.0,
    tsa: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Ingested]:
    """Capture every source as one event; all or nothing (``tsa``: time-stamp each manifest;
    ``progress``: called with 1 after each document).

    Raises:
        InvalidInput: a source became unreadable or changed while being read.
        StoreError: writing failed (disk full, I/O error); nothing was kept.
    """
    from .prehash import Job, prehashed

    jobs = [
        Job(
            path=str(src.path),
            display=src.display,
            filename=src.filename,
            media_type=src.metadata.get("media_type"),
            charset=src.metadata.get("charset"),
            limit=SMALL_FILE,
        )
        for src in sources
    ]
    with archive.transaction(key, wait_seconds, tsa) as tx, gc_paused():
        batch: dict[str, dict[str, Any]] = {}
        by_source: dict[tuple[str, str | None, str | None], tuple[str, int, str]] = {}
        # small files are read and digested ahead, in worker processes for a large batch
        for src, pre in zip(sources, prehashed(jobs), strict=True):
            _capture(tx, src, key, batch, by_source, pre)
            if progress is not None:
                progress(1)
    return [Ingested.of(w, src.display) for w, src in zip(tx.done, sources, strict=True)]


SMALL_FILE = 1 << 20


def _large_opener(src: Source) -> Callable[[], IO[bytes]]:
    """How to read a large source: from disk each time (the second pass, the copy into
    the WARC, hashes it again, so a file changing in between is caught). Small files
    are read once (``prehash.py``), so both passes see the same bytes by construction."""

    def open_source() -> IO[bytes]:
        try:
            fd = os.open(src.path, os.O_RDONLY)
            return os.fdopen(fd, "rb", buffering=0)
        except OSError as e:
            raise InvalidInput(f"{src.display}: cannot read ({e.strerror})") from e

    return open_source


def _capture(
    tx: Transaction,
    src: Source,
    key: SigningKey,
    batch: dict[str, dict[str, Any]],
    by_source: dict[tuple[str, str | None, str | None], tuple[str, int, str]],
    pre: Prehashed | None,
) -> None:
    archive = tx.archive
    md = src.metadata
    now = format_time(archive.clock())
    url = md.get("url")
    new_id = uuid4_hex()  # the document's id, unless this is a re-capture
    written: RecordRef | None = None
    if pre is not None:  # a small file, read once and digested ahead
        data = pre.data
        opener: Callable[[], IO[bytes]] = lambda: io.BytesIO(data)  # noqa: E731
        d, seed = pre.digests, pre.seed
    else:  # a large file: read once if it is not text, else twice (hashed again while copied)
        opener = _large_opener(src)
        kind = {"media_type": md.get("media_type"), "charset": md.get("charset")}
        streamed = store_streamed(
            tx,
            opener,
            display=src.display,
            filename=src.filename,
            target_uri=url or f"urn:archiver:document:{new_id}",
            date=now,
            **kind,
        )
        if streamed is not None:
            (d, written), seed = streamed, b""
        else:
            d, seed = digest_version(opener, display=src.display, filename=src.filename, **kind)
    # Re-capture: the same bytes as the current version of a document from the same source
    # (earlier in this batch, or already in the archive).
    source_key = (d.sha256, url, None if url else src.filename)
    previous = None
    queued = by_source.get(source_key)  # (document, sequence, manifest id) captured earlier here
    if queued is not None and tx.latest_digest(queued[0]) == queued[2]:
        previous = (queued[0], queued[1] + 1, queued[2])
    if previous is None:
        previous = recapture_of(tx, d.sha256, url, src.filename)
    doc_id, seq, prev_digest = previous or (new_id, 0, None)
    target_uri = url or f"urn:archiver:document:{doc_id}"
    stored = store_version(
        tx,
        opener,
        d,
        seed,
        display=src.display,
        language=md.get("language"),
        record_type="resource",
        refers_to=None,
        target_uri=target_uri,
        date=now,
        batch=batch,
        written=written,
    )
    manifest = captured_manifest(
        tx, key, (doc_id, seq, prev_digest), now, stored, {"filename": src.filename, "metadata": md}
    )
    event = seal_and_queue(tx, manifest, key, "archivist", stored.record_id, concurrent=True)
    by_source[source_key] = (event.document_id, event.sequence, event.digest)


def captured_manifest(
    tx: Transaction,
    key: SigningKey,
    place: tuple[str, int, str | None],
    now: str,
    stored: StoredVersion,
    source: dict[str, Any],
) -> dict[str, Any]:
    """The unsigned manifest of a ``captured`` event: ``place`` is (document, sequence, previous)."""
    doc_id, seq, prev_digest = place
    return {
        "format": "archiver/manifest/1",
        "archive_id": tx.archive.archive_id,
        "document_id": doc_id,
        "sequence": seq,
        "action": "captured",
        "time": now,
        "actor": {"key_id": key.key_id, "name": key.name, "role": "archivist"},
        "reason": None,
        "previous": prev_digest,
        "content": stored.content,
        "source": source,
        "capture": {
            "captured_at": now,
            "tool": {"name": TOOL_NAME, "version": __version__},
            "operator": key.name,
        },
        "storage": stored.storage,
    }


def recapture_of(
    tx: Transaction, sha256: str, url: str | None, filename: str | None
) -> tuple[str, int, str] | None:
    """(document, next sequence, previous) when these bytes from this source are a document's
    current version in the archive: a re-capture, not a new document."""
    if not (url or filename):
        return None
    row = tx.index.same_source_current(sha256, url, filename)
    if row is not None and tx.latest_digest(row.document_id) is None:
        return (row.document_id, row.sequence + 1, row.manifest_digest)
    return None


def remove_spool(paths: list[Path]) -> None:
    """Delete temporary copies of standard input."""
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()
