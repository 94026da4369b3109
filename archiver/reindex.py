"""Rebuild the derived index from the authoritative manifests."""

from __future__ import annotations

from .archive import Archive
from .index import Index
from .layout import EVENT_NAME
from .manifest import Event, ManifestError
from .warcscan import manifest_positions


def load_valid_events(archive: Archive) -> tuple[list[Event], int]:
    """Every schema-valid event of this archive, and how many files were skipped.

    Signatures are not checked here (``verify`` does that); the index only
    mirrors what the manifests say.
    """
    layout = archive.layout
    events: list[Event] = []
    skipped = 0
    for path in layout.event_files():
        if not EVENT_NAME.match(path.name) or path.is_symlink():
            skipped += not path.name.startswith(".")
            continue
        try:
            event = Event.parse(path.read_bytes(), layout.relative(path))
        except (OSError, ManifestError):
            skipped += 1
            continue
        if (
            event.raw["archive_id"] != archive.archive_id
            or layout.event_file(event.document_id, event.sequence) != path
        ):
            skipped += 1
            continue
        events.append(event)
    return events, skipped


def reindex_locked(archive: Archive) -> tuple[int, int]:
    """Rebuild the index; the caller holds the writer lock. Returns (rows, skipped files).

    Reads every WARC file once, to find where each manifest's WARC copy is.
    """
    events, skipped = load_valid_events(archive)
    where = manifest_positions(archive.layout.warc_files())
    return Index.rebuild(archive.layout.index, [(e, where.get(e.digest)) for e in events]), skipped


def reindex(archive: Archive, wait_seconds: float = 0.0) -> tuple[int, int]:
    """Rebuild the index under the writer lock. Returns (rows, skipped files)."""
    with archive.writer_lock(wait_seconds):
        return reindex_locked(archive)
