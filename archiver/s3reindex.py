"""Rebuild an S3 archive's catalog from its objects (``archiver reindex``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalog import DERIVED, SCHEMA, Catalog
from .errors import ArchiveLocked, CorruptArchive
from .index import row_of
from .tlog import MemoryTree

if TYPE_CHECKING:
    from .s3archive import S3Archive

#: the transaction named by claims rebuilt from the objects
REBUILT = "00000000-0000-0000-0000-000000000000"


def open_for_rebuild(archive: S3Archive) -> Catalog:
    """A connection to the catalog, its tables created if missing (a new or emptied database).

    Raises:
        CorruptArchive: the database holds another archive's catalog.
        InvalidInput / StoreError: no catalog given, or it cannot be reached.
    """
    if archive.catalog_url is None:
        archive.catalog()  # raises the message saying how to give one
    assert archive.catalog_url is not None
    cat = Catalog.connect(archive.catalog_url)
    cat.run(SCHEMA)
    rows = cat.fetch("SELECT value FROM archiver_meta WHERE key = 'archive_id'")
    if rows and rows[0][0] != archive.archive_id:
        cat.close()
        raise CorruptArchive(
            f"the catalog {cat.path} belongs to archive {rows[0][0]}, not {archive.archive_id}"
        )
    if not rows:
        from .catalog import CATALOG_FORMAT

        cat.run(
            "INSERT INTO archiver_meta VALUES ('format', %s), ('archive_id', %s), ('log_size', '0') "
            "ON CONFLICT (key) DO NOTHING",
            (CATALOG_FORMAT, archive.archive_id),
        )
    return cat


def rebuild_catalog(archive: S3Archive, wait_seconds: float = 0.0) -> tuple[int, int]:
    """Rebuild everything derived in the catalog from the objects: the index, the log's leaves
    and nodes, checkpoints, WARC files and their numbering, claims, audit dates. Interrupted
    commands are recovered first; running ones must finish. Returns (rows, skipped files).

    Raises:
        ArchiveLocked: writers are running.
    """
    from .audit import last_checked
    from .reindex import load_valid_events, manifests_in_warcs
    from .s3commit import recover
    from .snapshot import warc_sizes

    cat = open_for_rebuild(archive)
    try:
        with cat.log_lock(wait_seconds):
            recover(archive, cat)
            running = cat.live_txns()
            if running:
                raise ArchiveLocked(
                    f"{running} writing command(s) are running on this archive: "
                    "reindex when they are done, or retry with --wait SECONDS"
                )
            store = archive.store
            events, skipped = load_valid_events(archive)
            where = manifests_in_warcs(archive)
            rows = [row_of(e, where.get(e.digest)) for e in events]
            log = archive.log_view()
            entries = log.entries()
            tree = MemoryTree([h for h, _ in entries])
            checkpoints = [(int(n), log.checkpoint(n)) for n in log.checkpoint_names()]
            warcs = warc_sizes(store)
            verified = last_checked(store)
            with cat.transaction():
                for table in DERIVED:
                    cat.run(f"DELETE FROM {table}")  # noqa: S608 - our own table names
                cat.add_rows(rows)
                cat.copy_in(
                    "documents",
                    "document_id, last_verified",
                    ((d, verified.get(d)) for d in sorted({r[0] for r in rows})),
                )
                cat.copy_in("claims", "document_id, sequence, txn", ((r[0], r[1], REBUILT) for r in rows))
                cat.copy_in("log_leaves", "idx, key, leaf", ((i, k, h) for i, (h, k) in enumerate(entries)))
                cat.copy_in(
                    "log_nodes",
                    "level, idx, hash",
                    ((lv, i, h) for lv, level in enumerate(tree.levels) for i, h in enumerate(level)),
                )
                cat.copy_in("checkpoints", "size, note", checkpoints)
                cat.copy_in(
                    "warc_files", "name, state, size", ((n, "committed", size) for n, size in warcs.items())
                )
                top = max((int(n.split(".", 1)[0]) for n in warcs), default=-1)
                if top >= 0:
                    cat.fetch("SELECT setval('warc_numbers', %s, true)", (top,))
                else:
                    cat.fetch("SELECT setval('warc_numbers', 0, false)")
                cat.run("UPDATE archiver_meta SET value = %s WHERE key = 'log_size'", (str(len(entries)),))
    finally:
        cat.close()
    return len(rows), skipped
