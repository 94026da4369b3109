"""The derived SQLite index (``store/index.sqlite``): fast lookups, never authoritative.

Everything in it is computed from the manifests by ``row_of``; ``reindex``
rebuilds it from scratch, and the verifier compares it row by row with what
the manifests say (``index-stale``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CorruptArchive, DocumentNotFound, InvalidInput
from .manifest import Event

INDEX_FORMAT = "2"

_COLUMNS = (
    "document_id",
    "sequence",
    "action",
    "time",
    "path",
    "manifest_digest",
    "key_id",
    "size",
    "sha256",
    "media_type",
    "title",
    "filename",
    "url",
    "warc_file",
    "offset",
    "length",
    "record_id",
    "record_type",
    "content_warc_file",
    "content_offset",
    "content_length",
    "content_record_id",
    "meta_warc_file",
    "meta_offset",
)

_INTEGER_COLUMNS = frozenset(
    {"sequence", "size", "offset", "length", "content_offset", "content_length", "meta_offset"}
)
# quoted: "offset" is a reserved word in PostgreSQL (the catalog of S3 archives shares these queries)
_COLS = ", ".join(f'"{c}"' for c in _COLUMNS)
_COLUMN_DEFS = ", ".join(f'"{c}" {"INTEGER" if c in _INTEGER_COLUMNS else "TEXT"}' for c in _COLUMNS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events({_COLUMN_DEFS}, PRIMARY KEY(document_id, sequence));
CREATE INDEX IF NOT EXISTS events_sha256 ON events(sha256);
"""

Row = tuple[Any, ...]
#: a write command's rows wait here (a table of its connection only) until its commit
_STAGING = f"CREATE TEMP TABLE IF NOT EXISTS staged AS SELECT {_COLS} FROM main.events WHERE 0"  # noqa: S608


def row_of(event: Event, meta: tuple[str, int] | None) -> Row:
    """The index row an event implies: the single definition of the index's content.

    ``meta`` is where the event's manifest was found as a WARC metadata record
    (a lookup hint, checked whenever it is used).
    """
    c = event.content
    s = event.storage
    ref = event.content_ref
    md = event.metadata
    actor = event.raw["actor"]
    return (
        event.document_id,
        event.sequence,
        event.action,
        event.raw["time"],
        event.path,
        event.digest,
        actor["key_id"],
        c["size"],
        c["sha256"],
        c["media_type"],
        md.get("title"),
        event.filename,
        md.get("url"),
        s["warc_file"],
        s["offset"],
        s["length"],
        s["record_id"],
        s["record_type"],
        ref["warc_file"],
        ref["offset"],
        ref["length"],
        ref["record_id"],
        meta[0] if meta else None,
        meta[1] if meta else None,
    )


@dataclass(frozen=True, slots=True)
class EventRow:
    """An index row with names."""

    document_id: str
    sequence: int
    action: str
    time: str
    path: str
    manifest_digest: str
    key_id: str
    size: int
    sha256: str
    media_type: str
    title: str | None
    filename: str | None
    url: str | None
    warc_file: str
    offset: int
    length: int
    record_id: str
    record_type: str
    content_warc_file: str
    content_offset: int
    content_length: int
    content_record_id: str
    meta_warc_file: str | None
    meta_offset: int | None


class Index:
    """A connection to the index."""

    def __init__(self, conn: sqlite3.Connection, path: Path | str) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = False, write: bool = False) -> Index:
        """Open the index: read-only unless ``write`` (or ``create``: a new, empty one).

        Readers open it read-only, so that verifying an archive never writes to it
        (nor creates journal files beside it), and works on a read-only copy. The
        rollback journal (not WAL) is used for the same reason: WAL readers need
        to write a shared-memory file.

        Raises:
            CorruptArchive: missing (when not creating) or not a usable index.
        """
        if not create and not path.is_file():
            raise CorruptArchive(f"the index {path} is missing: run `archiver reindex`")
        try:
            if create or write:
                conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute("PRAGMA synchronous=FULL")
            else:
                conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30, isolation_level=None
                )
            if create:
                conn.executescript(_SCHEMA)
                conn.execute("INSERT OR IGNORE INTO meta VALUES('format', ?)", (INDEX_FORMAT,))
            fmt = conn.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        except (sqlite3.DatabaseError, UnicodeDecodeError, ValueError) as e:
            raise CorruptArchive(f"the index {path} is damaged ({e}): run `archiver reindex`") from e
        if fmt is None or fmt[0] != INDEX_FORMAT:
            conn.close()
            raise CorruptArchive(f"the index {path} has an unknown format: run `archiver reindex`")
        return cls(conn, path)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # -- writing ---------------------------------------------------------------
    def add(self, events: Iterable[tuple[Event, tuple[str, int] | None]]) -> None:
        """Insert the rows of events in one transaction."""
        self.add_rows(row_of(e, m) for e, m in events)

    def add_rows(self, rows: Iterable[Row]) -> None:
        """Insert rows in one transaction."""
        marks = ",".join("?" * len(_COLUMNS))
        with self.transaction():
            self.conn.executemany(f"INSERT INTO events VALUES({marks})", list(rows))

    def stage_rows(self, rows: list[Row]) -> None:
        """Keep a write command's rows in a temporary table of this connection until
        ``commit_staged`` (readers see nothing of them before)."""
        marks = ",".join("?" * len(_COLUMNS))
        self.conn.execute(_STAGING)
        self.conn.executemany(f"INSERT INTO temp.staged VALUES({marks})", rows)

    def commit_staged(self) -> None:
        """Add the staged rows to the index, in one transaction."""
        if not self.conn.execute("SELECT name FROM temp.sqlite_master WHERE name = 'staged'").fetchall():
            return
        with self.transaction():
            self.conn.execute(f"INSERT INTO main.events SELECT {_COLS} FROM temp.staged")  # noqa: S608
            self.conn.execute("DELETE FROM temp.staged")

    def hold_read(self) -> None:
        """Start a read transaction kept open across queries: the writer's many lookups
        then take SQLite's shared lock once, instead of once per query (with a check for
        a hot journal each time). Readers are not blocked; ``release_read`` before writing."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")

    def release_read(self) -> None:
        """End the read transaction of ``hold_read``."""
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def transaction(self) -> Any:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @staticmethod
    def rebuild(path: Path, events: Iterable[tuple[Event, tuple[str, int] | None]]) -> int:
        """Write a fresh index from ``events`` and swap it in atomically. Returns the row count."""
        tmp = path.with_name(path.name + ".rebuild")
        for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            p.unlink(missing_ok=True)
        idx = Index.open(tmp, create=True)
        rows = [row_of(e, m) for e, m in events]
        marks = ",".join("?" * len(_COLUMNS))
        with idx.transaction():
            idx.conn.executemany(f"INSERT INTO events VALUES({marks})", rows)
        idx.close()
        for p in (Path(str(path) + "-wal"), Path(str(path) + "-shm")):
            p.unlink(missing_ok=True)
        tmp.replace(path)
        return len(rows)

    # -- reading ---------------------------------------------------------------
    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Run a read query; a damaged database is the archive's problem, said plainly.

        Raises:
            CorruptArchive: the index is damaged.
        """
        try:
            return self.conn.execute(sql, args).fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError, ValueError) as e:
            raise CorruptArchive(f"the index {self.path} is damaged ({e}): run `archiver reindex`") from e

    def all_rows(self) -> set[Row]:
        """Every row, for comparison with the manifests."""
        return set(self._query(f"SELECT {_COLS} FROM events"))  # noqa: S608

    def rows_of(self, documents: list[str]) -> set[Row]:
        """Every row of the given documents."""
        out: set[Row] = set()
        for doc in documents:
            out |= set(
                self._query(
                    f"SELECT {_COLS} FROM events WHERE document_id = ?",  # noqa: S608
                    (doc,),
                )
            )
        return out

    def _rows(self, where: str, args: tuple[Any, ...]) -> list[EventRow]:
        cur = self._query(f"SELECT {_COLS} FROM events WHERE {where}", args)  # noqa: S608
        return [EventRow(*r) for r in cur]

    def events_of(self, document_id: str) -> list[EventRow]:
        """A document's events in sequence order."""
        return self._rows("document_id = ? ORDER BY sequence", (document_id,))

    def latest(self) -> list[EventRow]:
        """The latest event of every document, oldest document first."""
        return self._rows(
            "sequence = (SELECT MAX(sequence) FROM events e2 "
            "WHERE e2.document_id = events.document_id) "
            "ORDER BY (SELECT time FROM events e3 WHERE e3.document_id = events.document_id "
            "AND e3.sequence = 0), document_id",
            (),
        )

    def first_with_content(self, sha256: str) -> EventRow | None:
        """The earliest event whose bytes have this digest (for revisit records)."""
        rows = self._rows(
            "sha256 = ? AND record_type IN ('resource', 'conversion', 'response') ORDER BY time LIMIT 1",
            (sha256,),
        )
        return rows[0] if rows else None

    def same_source_current(self, sha256: str, url: str | None, filename: str | None) -> EventRow | None:
        """A document whose *current* version has these bytes and the same source."""
        if url is not None:
            cands = self._rows("sha256 = ? AND url = ?", (sha256, url))
        elif filename is not None:
            cands = self._rows("sha256 = ? AND url IS NULL AND filename = ?", (sha256, filename))
        else:
            return None
        for row in sorted(cands, key=lambda r: r.document_id):
            current = self.events_of(row.document_id)[-1]
            if current.sha256 == sha256:
                return current
        return None

    def resolve(self, prefix: str) -> str:
        """The one document id starting with ``prefix``.

        Raises:
            DocumentNotFound: none, or more than one (listing the candidates).
        """
        p = prefix.strip().lower()
        if not p or any(ch not in "0123456789abcdef" for ch in p) or len(p) > 32:
            raise InvalidInput(f"{prefix[:40]!r} is not a document id (hex digits)")
        cur = self._query(
            "SELECT DISTINCT document_id FROM events WHERE document_id >= ? AND document_id < ? "
            "ORDER BY document_id LIMIT 6",
            (p, p + "g"),
        )
        ids = [r[0] for r in cur]
        if not ids:
            raise DocumentNotFound(f"no document {prefix!r} in this archive; see `archiver list`")
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise DocumentNotFound(f"document prefix {prefix!r} is ambiguous: {shown}")
        return str(ids[0])
