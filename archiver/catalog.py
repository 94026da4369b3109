"""The catalog of an S3 archive, in PostgreSQL: its derived index, and where its writers meet.

It holds what ``store/index.sqlite`` holds for a local archive (the ``events``
table, queried by the same code, ``index.py``), and what several machines writing
into one archive must agree on:

- **the log**: its leaves and tree nodes, and its size, appended to only under one
  session-level advisory lock (``LOG_LOCK``), so that any number of writers make one
  log and one checkpoint sequence; readers take the same lock shared while they note
  a snapshot;
- **transactions** (``txns``): every writing command registers one and holds an
  advisory lock of its own for as long as it runs, so that a crashed writer on any
  machine is recognised (its lock is free) and its debris removed;
- **claims** on (document, event sequence) pairs, taken before anything is
  committed: two writers cannot both add event N to a document (a fork);
- **WARC file numbers**, from one sequence, and each file's state;
- **staged records**: a command's manifests and tokens, kept here from the moment
  they are signed until they are published as objects after the commit;
- ``documents.last_verified``: what ``audit --worker`` shares out.

Nothing in it is authoritative: ``archiver reindex`` rebuilds it from the objects
(``s3commit.rebuild_catalog``). The connection URL may carry a password: it is
never printed (``shown_url``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import ArchiveLocked, CorruptArchive, InvalidInput, StoreError
from .index import _COLS, _COLUMNS, _INTEGER_COLUMNS, Index, Row

CATALOG_FORMAT = "1"
#: advisory lock keys (two 32-bit halves): the log, and one per transaction
LOCK_SPACE = 0x41524348  # "ARCH"
LOG_LOCK = 1
TXN_SPACE = 0x41524349

_EVENT_DEFS = ", ".join(f'"{c}" {"BIGINT" if c in _INTEGER_COLUMNS else "TEXT"}' for c in _COLUMNS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS archiver_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events({_EVENT_DEFS}, PRIMARY KEY(document_id, sequence));
CREATE INDEX IF NOT EXISTS events_sha256 ON events(sha256);
CREATE TABLE IF NOT EXISTS documents(document_id TEXT PRIMARY KEY, last_verified TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS txns(
  id UUID PRIMARY KEY, state TEXT NOT NULL, host TEXT, pid INTEGER,
  started_at TIMESTAMPTZ NOT NULL DEFAULT now(), log_start BIGINT, log_end BIGINT);
CREATE TABLE IF NOT EXISTS claims(
  document_id TEXT NOT NULL, sequence INTEGER NOT NULL, txn UUID NOT NULL,
  PRIMARY KEY(document_id, sequence));
CREATE TABLE IF NOT EXISTS staged(
  txn UUID NOT NULL, ord BIGSERIAL, key TEXT NOT NULL, data BYTEA NOT NULL, leaf BYTEA NOT NULL,
  PRIMARY KEY(txn, key));
CREATE TABLE IF NOT EXISTS staged_events(txn UUID NOT NULL, {_EVENT_DEFS});
CREATE INDEX IF NOT EXISTS staged_events_txn ON staged_events(txn);
CREATE TABLE IF NOT EXISTS warc_files(
  name TEXT PRIMARY KEY, txn UUID, state TEXT NOT NULL, size BIGINT, sha256 TEXT, version_id TEXT);
CREATE SEQUENCE IF NOT EXISTS warc_numbers MINVALUE 0 START 0;
CREATE TABLE IF NOT EXISTS log_leaves(idx BIGINT PRIMARY KEY, key TEXT NOT NULL UNIQUE, leaf BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS log_nodes(level INTEGER, idx BIGINT, hash BYTEA NOT NULL, PRIMARY KEY(level, idx));
CREATE TABLE IF NOT EXISTS checkpoints(size BIGINT PRIMARY KEY, note BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS recovery_log(at TIMESTAMPTZ NOT NULL DEFAULT now(), note TEXT NOT NULL);
"""
#: the tables ``reindex`` rebuilds (everything but the live coordination state)
DERIVED = ("events", "documents", "claims", "log_leaves", "log_nodes", "checkpoints", "warc_files")


def shown_url(url: str) -> str:
    """The catalog URL without its password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "the catalog"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def _txn_key(txn: str) -> int:
    """The second half of a transaction's advisory lock key (a signed 32-bit int)."""
    return zlib.crc32(uuid.UUID(txn).bytes) - (1 << 31)


class Catalog(Index):
    """A connection to the catalog (autocommit; ``transaction()`` for atomic groups)."""

    conn: Any  # a psycopg connection

    def __init__(self, conn: Any, url: str) -> None:
        super().__init__(conn, shown_url(url))
        self.url = url

    @classmethod
    def connect(cls, url: str) -> Catalog:
        """Connect.

        Raises:
            InvalidInput: not a postgresql:// URL.
            StoreError: the server cannot be reached or refuses us.
        """
        if not url.startswith(("postgresql://", "postgres://")):
            raise InvalidInput("--catalog must be a postgresql://USER@HOST:PORT/DATABASE URL")
        try:
            import psycopg

            conn = psycopg.connect(url, autocommit=True, connect_timeout=15, application_name="archiver")
        except ImportError as e:
            raise StoreError("the PostgreSQL catalog needs psycopg: pip install 'archiver[s3]'") from e
        except Exception as e:
            raise StoreError(f"cannot connect to the catalog {shown_url(url)}: {_first_line(e)}") from e
        return cls(conn, url)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    # -- Index API ------------------------------------------------------------------------------------
    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return self.fetch(sql.replace("?", "%s"), args)

    def fetch(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        """Run a query, rows as tuples; a lost connection is one line."""
        try:
            cur = self.conn.execute(sql, tuple(args))
            return cur.fetchall() if cur.description is not None else []
        except Exception as e:
            raise StoreError(f"catalog {self.path}: {_first_line(e)}") from e

    def run(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run a statement; returns the row count."""
        try:
            return int(self.conn.execute(sql, tuple(args)).rowcount)
        except Exception as e:
            raise StoreError(f"catalog {self.path}: {_first_line(e)}") from e

    def many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """One statement for many rows."""
        batch = [tuple(r) for r in rows]
        if not batch:
            return
        try:
            with self.conn.cursor() as cur:
                cur.executemany(sql, batch)
        except Exception as e:
            raise StoreError(f"catalog {self.path}: {_first_line(e)}") from e

    def copy_in(self, table: str, columns: str, rows: Iterable[Iterable[Any]]) -> int:
        """Many rows into a table with COPY (the fast way); returns how many."""
        n = 0
        try:
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row))
                    n += 1
        except Exception as e:
            raise StoreError(f"catalog {self.path}: {_first_line(e)}") from e
        return n

    def add_rows(self, rows: Iterable[Row]) -> None:
        self.copy_in("events", _COLS, rows)

    def hold_read(self) -> None:
        pass  # PostgreSQL needs no read transaction to keep lookups cheap

    def release_read(self) -> None:
        pass

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A database transaction: everything in the block, or nothing."""
        try:
            with self.conn.transaction():
                yield
        except StoreError:
            raise
        except Exception as e:
            if not _is_db_error(e):
                raise
            raise StoreError(f"catalog {self.path}: {_first_line(e)}") from e

    # -- the archive's catalog ------------------------------------------------------------------------
    def create(self, archive_id: str) -> None:
        """Create the tables for a new archive.

        Raises:
            InvalidInput: the database already holds an archive's catalog.
        """
        with self.transaction():
            self.run(SCHEMA)
            rows = self.fetch("SELECT value FROM archiver_meta WHERE key = 'archive_id'")
            if rows:
                raise InvalidInput(
                    f"the catalog {self.path} belongs to archive {rows[0][0]} already: use an empty database"
                )
            self.run(
                "INSERT INTO archiver_meta VALUES ('format', %s), ('archive_id', %s), ('log_size', '0')",
                (CATALOG_FORMAT, archive_id),
            )

    def check(self, archive_id: str) -> None:
        """This is the catalog of that archive.

        Raises:
            CorruptArchive: it is another archive's, not a catalog, or of an unknown format.
        """
        try:
            with self.conn.transaction():
                rows = dict(self.conn.execute("SELECT key, value FROM archiver_meta").fetchall())
        except Exception as e:
            raise CorruptArchive(
                f"{self.path} is not an archiver catalog ({_first_line(e)}): "
                "run `archiver reindex` to rebuild it"
            ) from e
        if rows.get("archive_id") != archive_id:
            raise CorruptArchive(
                f"the catalog {self.path} belongs to archive {rows.get('archive_id')}, not {archive_id}"
            )
        if rows.get("format") != CATALOG_FORMAT:
            raise CorruptArchive(f"the catalog {self.path} has an unknown format: run `archiver reindex`")

    # -- locks ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def log_lock(self, wait_seconds: float, *, shared: bool = False) -> Iterator[None]:
        """The log's advisory lock (session level: a crash releases it), waited for up to
        ``wait_seconds``.

        Raises:
            ArchiveLocked: still held by another writer after that.
        """
        fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        start = time.monotonic()
        while not self.fetch(f"SELECT {fn}(%s, %s)", (LOCK_SPACE, LOG_LOCK))[0][0]:
            if time.monotonic() - start >= wait_seconds:
                raise ArchiveLocked(
                    "the archive's log is locked by another writer committing; "
                    "wait for it to finish or retry with --wait SECONDS"
                )
            time.sleep(0.05)
        try:
            yield
        finally:
            unlock = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            with contextlib.suppress(StoreError):
                self.fetch(f"SELECT {unlock}(%s, %s)", (LOCK_SPACE, LOG_LOCK))

    def begin_txn(self, host: str, pid: int) -> str:
        """Register a writing command and take its liveness lock; returns its id."""
        txn = str(uuid.uuid4())
        self.fetch("SELECT pg_advisory_lock(%s, %s)", (TXN_SPACE, _txn_key(txn)))
        self.run("INSERT INTO txns(id, state, host, pid) VALUES (%s, 'open', %s, %s)", (txn, host, pid))
        return txn

    def end_txn(self, txn: str) -> None:
        """Release a transaction's liveness lock (its row stays, with its final state)."""
        with contextlib.suppress(StoreError):
            self.fetch("SELECT pg_advisory_unlock(%s, %s)", (TXN_SPACE, _txn_key(txn)))

    def dead_txns(self, own: str | None = None) -> list[str]:
        """Open transactions whose writer is gone (their lock is free), oldest first."""
        out = []
        for (txn,) in self.fetch("SELECT id::text FROM txns WHERE state = 'open' ORDER BY started_at"):
            if txn == own:
                continue
            if self.fetch("SELECT pg_try_advisory_lock(%s, %s)", (TXN_SPACE, _txn_key(txn)))[0][0]:
                self.fetch("SELECT pg_advisory_unlock(%s, %s)", (TXN_SPACE, _txn_key(txn)))
                out.append(txn)
        return out

    def live_txns(self, own: str | None = None) -> int:
        """How many writing commands (other than ``own``) are running now."""
        open_ = [t for (t,) in self.fetch("SELECT id::text FROM txns WHERE state = 'open'") if t != own]
        return len(open_) - len(self.dead_txns(own))

    # -- what readers need ------------------------------------------------------------------------------
    def in_flight_warcs(self) -> frozenset[str]:
        """WARC files of commands that have not committed (or whose debris is not removed yet)."""
        return frozenset(n for (n,) in self.fetch("SELECT name FROM warc_files WHERE state <> 'committed'"))

    def log_size(self) -> int:
        return int(self.fetch("SELECT value FROM archiver_meta WHERE key = 'log_size'")[0][0])

    def node(self, level: int, index: int) -> bytes:
        """A stored perfect-subtree hash."""
        rows = self.fetch("SELECT hash FROM log_nodes WHERE level = %s AND idx = %s", (level, index))
        if not rows:
            raise ValueError(f"log node {level}/{index} is missing from the catalog: run `archiver reindex`")
        return bytes(rows[0][0])

    def leaf_index(self, key: str) -> tuple[int, bytes] | None:
        """Where a record is in the log: (leaf index, leaf hash)."""
        rows = self.fetch("SELECT idx, leaf FROM log_leaves WHERE key = %s", (key,))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def recovery_note(self, note: str) -> None:
        self.run("INSERT INTO recovery_log(note) VALUES (%s)", (note,))


def _is_db_error(e: Exception) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(e, psycopg.Error)


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
