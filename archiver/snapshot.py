"""What a reader verifies: the archive as it stood between two write commands.

Writers hold the lock file exclusively for a whole command; a reader takes it
shared just long enough to note what exists (record files, WARC sizes, log
size, checkpoints), then verifies exactly that, lock released. Everything in
the archive is append-only (records are never rewritten, WARC files and the
log only grow), so what the reader noted stays valid while writers go on:
verifying alongside a writer never reports a half-written command as a
problem. An interrupted command that no writer has recovered yet is visible
in the snapshot and reported precisely.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fsutil import HELD_EXCLUSIVE, ArchiveLock
from .layout import KEYS, LOG, STORE, TIMESTAMPS, TSA, events_prefix, warc_names
from .logcheck import record_listing
from .logview import LogView
from .storage import Entry, Store, children

if TYPE_CHECKING:
    from .archive import Archive


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The committed state a reader checks."""

    records: frozenset[str]
    warc_sizes: dict[str, int]
    log_size: int
    checkpoints: tuple[str, ...]
    #: everything listed under ``manifests/events/`` (a whole-archive snapshot; None for
    #: some documents'): the verifier's step 2 reads this instead of listing again
    events: tuple[Entry, ...] | None = None

    def has_record(self, rel: str) -> bool:
        return rel in self.records


def take_snapshot(
    archive: Archive, documents: list[str] | None = None, wait_seconds: float = 600.0
) -> Snapshot:
    """Note the archive's state under its readers' lock (waiting for a running write command).

    With ``documents``, only their record files (and the keys) are noted: a
    single document is checked without listing the whole archive.

    Raises:
        ArchiveLocked: a writer held the archive longer than ``wait_seconds``.
    """
    with archive.reading(wait_seconds) as in_flight:
        return note(archive.store, archive.log_view(), documents, in_flight)


@contextlib.contextmanager
def local_reading(archive: Archive, wait_seconds: float) -> Iterator[frozenset[str]]:
    """A local archive's readers' lock: the lock file, shared. Yields the WARC files that
    a running command is writing (none here: the lock waits for it to finish)."""
    lock = archive.layout.lock
    if lock.exists() and lock.resolve() not in HELD_EXCLUSIVE:
        with ArchiveLock(lock, wait_seconds, shared=True):
            yield frozenset()
    else:
        yield frozenset()  # no writer ever ran here (e.g. a read-only copy)


def _records(store: Store, documents: list[str] | None) -> tuple[frozenset[str], tuple[Entry, ...] | None]:
    if documents is None:
        keys, events = record_listing(store)
        return frozenset(keys), tuple(events)
    found = [e.key for e in children(store, KEYS, ".json")]
    found += [e.key for e in children(store, TSA, ".pem")]
    for doc in documents:
        found += [e.key for e in store.files(events_prefix(doc)) if e.key.endswith(".json")]
        found += [e.key for e in store.files(f"{TIMESTAMPS}{doc[:2]}/{doc}-") if e.key.endswith(".tsr")]
    return frozenset(found), None


def note(
    store: Store, log: LogView, documents: list[str] | None, in_flight: frozenset[str] = frozenset()
) -> Snapshot:
    """What exists now; ``in_flight``: WARC files of commands still running, left out."""
    checkpoints = tuple(log.checkpoint_names())
    records, events = _records(store, documents)
    return Snapshot(
        records=records,
        events=events,
        warc_sizes=warc_sizes(store, in_flight),
        log_size=_log_size(store, log),
        checkpoints=checkpoints,
    )


def warc_sizes(store: Store, in_flight: frozenset[str] = frozenset()) -> dict[str, int]:
    """The WARC files (not links), in rotation order, with their sizes."""
    warcs = {e.name: e.size for e in children(store, STORE) if not e.link}
    return {n: warcs[n] for n in warc_names(list(warcs)) if n not in in_flight}


def _log_size(store: Store, log: LogView) -> int:
    if log.segmented:
        segments = log.segment_names()
        return int(segments[-1]) if segments else 0
    # format 1: the leaf level's node file (32 bytes a leaf), appended before the entries
    return (store.size(LOG + "level-00") or 0) // 32
