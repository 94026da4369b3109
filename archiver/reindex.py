"""Rebuild the derived index from the authoritative manifests."""

from __future__ import annotations

from .archive import Archive
from .index import Index
from .layout import EVENT_NAME, EVENTS, event_key
from .manifest import Event, ManifestError
from .warcscan import manifest_positions


def load_valid_events(archive: Archive) -> tuple[list[Event], int]:
    """Every schema-valid event of this archive, and how many files were skipped.

    Signatures are not checked here (``verify`` does that); the index only
    mirrors what the manifests say.
    """
    store = archive.store
    events: list[Event] = []
    skipped = 0
    for entry in store.files(EVENTS):
        if not EVENT_NAME.match(entry.name) or entry.link:
            skipped += not entry.name.startswith(".")
            continue
        try:
            event = Event.parse(store.read(entry.key), entry.key)
        except (OSError, ManifestError):
            skipped += 1
            continue
        if (
            event.raw["archive_id"] != archive.archive_id
            or event_key(event.document_id, event.sequence) != entry.key
        ):
            skipped += 1
            continue
        events.append(event)
    return events, skipped


def manifests_in_warcs(archive: Archive) -> dict[str, tuple[str, int]]:
    """Where each manifest's WARC copy is: reads every WARC file once."""
    from .snapshot import warc_sizes

    return manifest_positions(archive.store, list(warc_sizes(archive.store)))


def reindex_locked(archive: Archive) -> tuple[int, int]:
    """Rebuild the index; the caller holds the writer lock. Returns (rows, skipped files)."""
    events, skipped = load_valid_events(archive)
    where = manifests_in_warcs(archive)
    return Index.rebuild(archive.layout.index, [(e, where.get(e.digest)) for e in events]), skipped


def reindex(archive: Archive, wait_seconds: float = 0.0) -> tuple[int, int]:
    """Rebuild the index (a local archive's SQLite file, an S3 archive's catalog).
    Returns (rows, skipped files)."""
    return archive.rebuild_index(wait_seconds)
