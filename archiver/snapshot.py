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

from dataclasses import dataclass

from .fsutil import HELD_EXCLUSIVE, ArchiveLock
from .layout import Layout
from .logcheck import record_files
from .tlog import Log


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The committed state a reader checks."""

    records: frozenset[str]
    warc_sizes: dict[str, int]
    log_size: int
    checkpoints: tuple[str, ...]

    def has_record(self, rel: str) -> bool:
        return rel in self.records


def take_snapshot(
    layout: Layout, documents: list[str] | None = None, wait_seconds: float = 600.0
) -> Snapshot:
    """Note the archive's state under a shared lock (waiting for a running write command).

    With ``documents``, only their record files (and the keys) are noted: a
    single document is checked without listing the whole archive.

    Raises:
        ArchiveLocked: a writer held the archive longer than ``wait_seconds``.
    """
    if layout.lock.exists() and layout.lock.resolve() not in HELD_EXCLUSIVE:
        with ArchiveLock(layout.lock, wait_seconds, shared=True):
            return _note(layout, documents)
    return _note(layout, documents)  # no writer ever ran here (e.g. a read-only copy)


def _records(layout: Layout, documents: list[str] | None) -> frozenset[str]:
    if documents is None:
        return frozenset(layout.relative(p) for p in record_files(layout))
    found = [p for p in layout.keys.glob("*.json")] if layout.keys.is_dir() else []
    found += (layout.manifests / "tsa").glob("*.pem")
    for doc in documents:
        found += (layout.events / doc[:2]).glob(f"{doc}-*.json")
        found += (layout.manifests / "timestamps" / doc[:2]).glob(f"{doc}-*.tsr")
    return frozenset(layout.relative(p) for p in found)


def _note(layout: Layout, documents: list[str] | None) -> Snapshot:
    log = Log(layout.log)
    return Snapshot(
        records=_records(layout, documents),
        warc_sizes={p.name: p.stat().st_size for p in layout.warc_files()},
        log_size=log.size,
        checkpoints=tuple(p.name for p in log.checkpoint_files()),
    )
