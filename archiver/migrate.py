"""Copy a local archive into S3 and prove the copy (``archiver migrate``; docs/scale-out.md).

The copy is the same archive, not a new one: the same archive id, the same WARC
files byte for byte (manifests name them and their offsets, and are signed), the
same record files, the same log leaves in the same order, the same checkpoint files.
Only the containers change (format 2): ``archive.json`` says format 2 and the Object
Lock retention, and the log's ``entries`` file becomes segments cut at the checkpoint
sizes (``logview.py``).

Order: under the source's writer lock (nothing changes meanwhile), the source must
verify clean; then WARC files, records, segments and checkpoints are uploaded, each
read back and its SHA-256 compared with the source's; ``archive.json`` last (until it
is there, the destination is not an archive); then the catalog is built from the
objects (``reindex``), and the proof: the copy's log has the same root at every
checkpoint, its checkpoints are byte-identical, and ``verify`` of the copy is clean.

Objects are locked (COMPLIANCE) when written, so an interrupted migration cannot be
cleaned up; instead it can be run again: objects already there with the right bytes
are kept, anything else there is refused.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .archive import Archive, archive_info
from .canonical import load_strict, pretty_bytes
from .errors import ArchiveExists, CorruptArchive, InvalidInput, StoreError
from .layout import ARCHIVE_JSON, CHECKPOINTS, warc_key
from .logcheck import record_keys
from .logview import SEGMENTS, format_entries
from .s3archive import S3Archive
from .s3store import READERS, S3Location, S3Store
from .snapshot import warc_sizes

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Migrated:
    """What ``migrate`` did and proved."""

    location: str
    objects: int
    bytes: int
    skipped: int  # already there with the right bytes (a migration run again)
    log_size: int
    root: str  # base64 root hash at the latest checkpoint, the same in both
    checkpoints: int

    def to_json(self) -> dict[str, Any]:
        return {
            "to": self.location,
            "objects": self.objects,
            "bytes": self.bytes,
            "already_there": self.skipped,
            "log_size": self.log_size,
            "root_hash": self.root,
            "checkpoints": self.checkpoints,
            "verified": True,
        }


def _sha256_of_object(store: S3Store, key: str) -> str | None:
    """SHA-256 of an object as it reads back (None if it is not there)."""
    h = hashlib.sha256()
    try:
        with store.open(key) as f:
            while data := f.read(1 << 20):
                h.update(data)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def _sha256_of_file(source: Archive, key: str) -> str:
    h = hashlib.sha256()
    with source.store.open(key) as f:
        while data := f.read(1 << 20):
            h.update(data)
    return h.hexdigest()


def migrate(
    source: Archive,
    where: S3Location,
    catalog: str,
    *,
    retention_days: int,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
) -> Migrated:
    """Copy ``source`` (a local archive) to ``where`` with its catalog at ``catalog``, and prove it.

    Raises:
        InvalidInput: the source does not verify clean, or is not a local format-1 archive.
        ArchiveExists: the destination holds an archive, or objects that are not this one's.
        StoreError: S3 or the catalog failed, or an object read back differs (nothing is
            claimed then; run it again).
    """
    from .verify import verify

    if not 1 <= retention_days <= 36500:
        raise InvalidInput("--retention-days must be between 1 and 36500")
    with source.writer_lock(wait_seconds):
        report = verify(source)
        if not report.ok:
            raise InvalidInput(
                f"{source.layout.root} has {len(report.problems)} problem(s): migrate an archive that "
                "verifies clean (run `archiver verify`)"
            )
        log = source.log_view()
        entries = log.entries()
        sizes = [int(n) for n in log.checkpoint_names()]
        if not sizes or sizes[-1] != len(entries):
            raise InvalidInput(
                "the log has records after its latest checkpoint: run any writing command first"
            )
        doc = load_strict(source.store.read(ARCHIVE_JSON))
        identity = {
            **doc,
            "format": "archiver/archive/2",
            "format_version": 2,
            "object_lock": {"mode": "COMPLIANCE", "retention_days": retention_days},
        }
        dest = S3Store(where)
        dest.prepare_bucket()
        if dest.size(ARCHIVE_JSON) is not None:
            raise ArchiveExists(f"{where.url} already holds an archive; refusing to migrate onto it")
        target = S3Archive(dest, archive_info(pretty_bytes(identity), ARCHIVE_JSON)[1], source.clock, catalog)
        from .s3commit import retain_until

        until = retain_until(target)
        present = {e.key: e.size for e in dest.files("")}
        objects = skipped = total = 0

        # what the copy holds: refuse a destination holding anything else, before writing
        # (records are read when they are sent: bytes of the log's containers are made here)
        small: list[tuple[str, bytes | None]] = [(k, None) for k in record_keys(source.store)]
        start = 0
        for size in sizes:
            small.append((f"{SEGMENTS}{size:012d}", format_entries(entries[start:size])))
            small.append((f"{CHECKPOINTS}{size:012d}", log.checkpoint(f"{size:012d}")))
            start = size

        warcs = warc_sizes(source.store)
        extra = set(present) - {warc_key(n) for n in warcs} - {k for k, _ in small}
        if extra:
            raise ArchiveExists(
                f"{where.url} holds objects that are not this archive's, e.g. {sorted(extra)[0]}"
            )

        # -- WARC files: streamed up in parts, locked, read back ------------------------------------
        for name, size in warcs.items():
            key = warc_key(name)
            want = _sha256_of_file(source, key)
            if key in present:
                _same_or_refuse(dest, key, want)
                skipped += 1
            else:
                path = source.local_path(key)
                assert path is not None
                version, _, sent = dest.upload(key, path)
                if sent != want:
                    raise StoreError(f"{key} changed while it was being uploaded; run migrate again")
                dest.lock(key, version, until)
                _same_or_refuse(dest, key, want)
            objects += 1
            total += size
            if progress is not None:
                progress(1)

        # -- records, segments, checkpoints: small, in parallel -------------------------------------
        def put(item: tuple[str, bytes | None]) -> tuple[bool, int]:
            key, data = item
            if data is None:
                data = source.store.read(key)
            want = hashlib.sha256(data).hexdigest()
            if key in present:
                _same_or_refuse(dest, key, want)
                return False, len(data)
            dest.put(key, data, until)
            _same_or_refuse(dest, key, want)
            return True, len(data)

        with ThreadPoolExecutor(READERS) as pool:
            for wrote, n in pool.map(put, small):
                objects += 1
                skipped += not wrote
                total += n
                if progress is not None:
                    progress(1)

        # -- archive.json last, then the catalog and the proof --------------------------------------
        dest.put(ARCHIVE_JSON, pretty_bytes(identity), until)
        objects += 1
        copy = S3Archive.open_s3(where, catalog, clock=source.clock)
        copy.rebuild_index()
        _prove(source, copy, sizes)
    return Migrated(
        location=where.url,
        objects=objects,
        bytes=total,
        skipped=skipped,
        log_size=len(entries),
        root=base64.b64encode(log.root(len(entries))).decode(),
        checkpoints=len(sizes),
    )


def _same_or_refuse(dest: S3Store, key: str, sha256: str) -> None:
    got = _sha256_of_object(dest, key)
    if got != sha256:
        raise ArchiveExists(
            f"{dest.location}{key} reads back with SHA-256 {str(got)[:16]}..., not the source's "
            f"{sha256[:16]}...: the destination is not a copy of this archive"
        )


def _prove(source: Archive, copy: S3Archive, sizes: list[int]) -> None:
    """The copy's log has the source's root at every checkpoint, the same checkpoints, and
    the copy verifies clean."""
    from .verify import verify

    theirs, ours = copy.log_view(), source.log_view()
    if theirs.checkpoint_names() != ours.checkpoint_names():
        raise CorruptArchive("the copy's checkpoints are not the source's")
    for size in sizes:
        name = f"{size:012d}"
        if theirs.checkpoint(name) != ours.checkpoint(name) or theirs.root(size) != ours.root(size):
            raise CorruptArchive(f"the copy's log differs from the source's at size {size}")
    report = verify(copy)
    if not report.ok:
        raise CorruptArchive(
            f"the copy does not verify clean: {report.problems[0]}; run `archiver --archive "
            f"{copy.store.location} verify`"
        )
