"""A consistent, shareable copy of an archive: the common core of BagIt and WACZ export.

The copy is taken from a reader's snapshot (``snapshot.py``): the record
files, WARC bytes, log and checkpoints as they stood between two write
commands, while writers go on. What must not leave the archive (sealed
originals, token-tree seeds, other documents' records in a partial export)
is replaced by same-length placeholders (``withhold.py``), so the copy still
verifies with ``archiver verify`` and with ``tools/verify_standalone.py``.

``manifests/export.json`` (schema ``export``) says what the copy is: the
export time, its scope, the latest checkpoint, and every withheld record.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .__version__ import TOOL_NAME, __version__
from .archive import Archive
from .canonical import load_strict, pretty_bytes
from .errors import InvalidInput, StoreError
from .layout import ARCHIVE_JSON, CHECKPOINTS, EVENT_NAME, LOG, MANIFESTS, warc_key
from .logview import ENTRIES, SEGMENTS
from .manifest import Event, ManifestError
from .snapshot import Snapshot, take_snapshot
from .storage import Store
from .timeutil import format_time
from .tlog import parse_checkpoint
from .withhold import Withheld, event_refs, ref_pos, sealed_refs, write_placeholder

CHUNK = 1 << 20
EXPORT_FORMAT = "archiver/export/1"
EXPORT_JSON = MANIFESTS + "export.json"


@dataclass(slots=True)
class Hashed:
    """A file written into an export, with the digests BagIt and WACZ need."""

    rel: str
    size: int
    sha256: str
    sha512: str


@dataclass(slots=True)
class Copied:
    """What was exported."""

    files: list[Hashed] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    documents: dict[str, list[Event]] = field(default_factory=dict)
    export_info: dict[str, Any] = field(default_factory=dict)


class HashingWriter:
    """A file opened for writing that hashes (SHA-256 and SHA-512) what goes through it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        self.fh: BinaryIO = os.fdopen(fd, "wb")
        self.h256 = hashlib.sha256()
        self.h512 = hashlib.sha512()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h256.update(data)
        self.h512.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def close(self, rel: str) -> Hashed:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        return Hashed(rel, self.size, self.h256.hexdigest(), self.h512.hexdigest())


def copy_stream(src: BinaryIO, out: HashingWriter, limit: int) -> None:
    """Copy at most ``limit`` bytes."""
    left = limit
    while left > 0:
        data = src.read(min(CHUNK, left))
        if not data:
            break
        out.write(data)
        left -= len(data)


def load_events(archive: Archive, snap: Snapshot, documents: list[str] | None) -> dict[str, list[Event]]:
    """Every committed event of the documents exported, by document, in sequence order.

    Raises:
        InvalidInput: an unknown document.
        StoreError: a manifest cannot be read (run ``archiver verify``).
    """
    store = archive.store
    by_doc: dict[str, list[Event]] = {}
    for rel in sorted(snap.records):
        name = rel.rsplit("/", 1)[-1]
        m = EVENT_NAME.match(name)
        if not rel.startswith("manifests/events/") or m is None:
            continue
        if documents is not None and m.group(1) not in documents:
            continue
        try:
            event = Event.parse(store.read(rel), rel)
        except (OSError, ManifestError) as e:
            raise StoreError(f"{rel} cannot be exported ({e}); run `archiver verify`") from e
        by_doc.setdefault(event.document_id, []).append(event)
    for events in by_doc.values():
        events.sort(key=lambda e: e.sequence)
    if documents is not None:
        missing = [d for d in documents if d not in by_doc]
        if missing:
            raise InvalidInput(f"unknown document {missing[0]}")
    return by_doc


def _partial_withheld(archive: Archive, snap: Snapshot, keep: dict[str, list[Event]]) -> list[Withheld]:
    """In a partial export: every record (except warcinfo) that no exported event names."""
    from .warcscan import scan_file

    named = {ref_pos(r) for evs in keep.values() for e in evs for r in event_refs(e)}
    manifest_uris = {f"urn:archiver:event:{e.document_id}/{e.sequence}" for evs in keep.values() for e in evs}
    out = []
    for name, size in snap.warc_sizes.items():
        for offset, info in scan_file(archive.store, warc_key(name), limit=size):
            if offset == 0 or (name, offset) in named or info.error is not None:
                continue
            if info.record_type == "metadata" and info.target_uri in manifest_uris:
                continue  # an exported event's manifest copy
            assert info.record_id is not None
            out.append(Withheld(name, offset, info.length, info.record_id, "outside-export"))
    return out


def copy_archive(
    archive: Archive,
    dest: Path,
    documents: list[str] | None,
    *,
    add_file: Callable[[Hashed], None] | None = None,
) -> Copied:
    """Copy the archive (or some documents of it) into ``dest`` (an empty folder).

    Raises:
        InvalidInput: unknown document.
        StoreError: the archive could not be read or the copy written.
    """
    store = archive.store
    snap = take_snapshot(archive)
    result = Copied()
    result.documents = load_events(archive, snap, documents)
    all_docs = result.documents if documents is None else load_events(archive, snap, None)
    sealed = sealed_refs(all_docs.values())
    withheld = dict(sealed)
    if documents is not None:
        for w in _partial_withheld(archive, snap, result.documents):
            withheld.setdefault((w.warc_file, w.offset), w)
    result.withheld = sorted(withheld.values(), key=lambda w: (w.warc_file, w.offset))
    now = format_time(archive.clock())

    def done(h: Hashed) -> None:
        result.files.append(h)
        if add_file is not None:
            add_file(h)

    # record files of the snapshot (events of other documents left out of a partial export)
    for rel in sorted(snap.records):
        m = EVENT_NAME.match(rel.rsplit("/", 1)[-1])
        if (
            documents is not None
            and rel.startswith("manifests/events/")
            and m
            and m.group(1) not in documents
        ):
            continue
        done(_copy_file(store, rel, dest))
    done(_copy_file(store, ARCHIVE_JSON, dest))
    for name in snap.checkpoints:
        done(_copy_file(store, CHECKPOINTS + name, dest))
    log = archive.log_view()
    if log.segmented:
        for name in log.segment_names():
            if int(name) <= snap.log_size:
                done(_copy_file(store, SEGMENTS + name, dest))
    else:
        done(_copy_file(store, ENTRIES, dest, limit=_entries_bytes(store, snap.log_size)))
        k, n = 0, snap.log_size
        while n and store.size(f"{LOG}level-{k:02d}") is not None:
            done(_copy_file(store, f"{LOG}level-{k:02d}", dest, limit=32 * n))
            k, n = k + 1, n // 2
    by_file: dict[str, list[Withheld]] = {}
    for w in result.withheld:
        by_file.setdefault(w.warc_file, []).append(w)
    for name, size in snap.warc_sizes.items():
        done(_copy_warc(store, warc_key(name), dest, size, by_file.get(name, []), now))
    latest = snap.checkpoints[-1] if snap.checkpoints else None
    checkpoint: dict[str, Any] | None = None
    if latest is not None:
        cp = parse_checkpoint(store.read(CHECKPOINTS + latest))
        import base64

        checkpoint = {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "file": latest}
    result.export_info = {
        "format": EXPORT_FORMAT,
        "archive_id": archive.archive_id,
        "exported_at": now,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "documents": None if documents is None else sorted(result.documents),
        "checkpoint": checkpoint,
        "withheld": [
            {
                "warc_file": w.warc_file,
                "offset": w.offset,
                "length": w.length,
                "record_id": w.record_id,
                "reason": w.reason,
            }
            for w in result.withheld
        ],
    }
    out = HashingWriter(dest / "manifests/export.json")
    out.write(pretty_bytes(result.export_info))
    done(out.close("manifests/export.json"))
    return result


def _entries_bytes(store: Store, size: int) -> int:
    """How many bytes of ``entries`` hold the first ``size`` entries (one line each)."""
    n = 0
    with store.open(ENTRIES) as f:
        for i, line in enumerate(f):
            if i >= size:
                break
            n += len(line)
    return n


def _copy_file(store: Store, rel: str, dest: Path, limit: int | None = None) -> Hashed:
    """Copy a file of the archive to the same key below ``dest`` (its first ``limit`` bytes)."""
    size = store.size(rel)
    if size is None:
        raise StoreError(f"{rel} is missing or not a regular file; run `archiver verify`")
    out = HashingWriter(dest / rel)
    try:
        with store.open(rel) as f:
            copy_stream(f, out, limit if limit is not None else size)
    except OSError as e:
        raise StoreError(f"cannot export {rel}: {e.strerror or e}") from e
    return out.close(rel)


def _copy_warc(store: Store, rel: str, dest: Path, size: int, withheld: list[Withheld], date: str) -> Hashed:
    """Copy a WARC file's first ``size`` bytes, with placeholders where records are withheld."""
    out = HashingWriter(dest / rel)
    try:
        with store.open(rel) as f:
            pos = 0
            for w in sorted(withheld, key=lambda w: w.offset):
                copy_stream(f, out, w.offset - pos)
                try:
                    write_placeholder(out, w, date)  # type: ignore[arg-type]
                except ValueError as e:
                    raise StoreError(f"cannot withhold {w.record_id} in {rel}: {e}") from e
                f.seek(w.offset + w.length)
                pos = w.offset + w.length
            copy_stream(f, out, size - pos)
    except OSError as e:
        raise StoreError(f"cannot export {rel}: {e.strerror}") from e
    return out.close(rel)


def load_export_info(store: Store) -> dict[str, Any] | None:
    """``manifests/export.json`` of an exported copy, or None for an archive."""
    if store.size(EXPORT_JSON) is None:
        return None
    try:
        info = load_strict(store.read(EXPORT_JSON))
    except (OSError, ValueError):
        return {"format": "unreadable"}
    return info if isinstance(info, dict) else {"format": "unreadable"}


def iter_current(events: dict[str, list[Event]]) -> Iterator[tuple[str, Event]]:
    """The current version of each document: its latest event that wrote bytes."""
    for doc in sorted(events):
        writers = [e for e in events[doc] if e.action in ("captured", "edited", "redacted")]
        if writers:
            yield doc, writers[-1]
