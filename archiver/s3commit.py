"""The write protocol of an S3 archive (docs/scale-out.md, "Writing").

Objects are written once and stay under COMPLIANCE retention, so nothing a
command wrote can be moved away or truncated after a failure, as a local
archive's recovery does. The protocol is built so that nothing that may still
be abandoned is ever locked:

1. **Register.** The command registers a transaction in the catalog and holds its
   advisory lock while it runs (``catalog.py``).
2. **WARC files.** Records go to a local spool file; each full file (at the
   rotation size, and at the end of every group of ``GROUP`` documents) is
   uploaded *unlocked* under a fresh number from the catalog's sequence.
3. **Claims and staging.** Each group's (document, event) pairs are claimed (a
   second writer adding the same event fails here), and its signed manifests (and
   time-stamp tokens) are staged in the catalog, not yet written as objects.
4. **Commit** (the commit point), under the log's advisory lock, in one database
   transaction: the staged records' leaves appended to the log, the tree nodes,
   a checkpoint signed, the index rows, the transaction marked committed.
5. **Publish**, still under the log's lock: the WARC files locked (COMPLIANCE), the
   staged records PUT with retention, then the log segment and the checkpoint.
   An auditor looking at the objects sees a new checkpoint only once everything it
   covers is there.

**Failure before the commit** (an error, a kill, a lost machine): the uploaded
WARC versions are deleted (they were never locked), claims and staged records
dropped. A crashed writer's transaction is found by the next writer (its lock is
free) and cleaned the same way, under the log's lock, before that writer's own
work. **Failure after the commit**: the next writer (or ``reindex``) publishes
what is staged. Either way a line goes to the catalog's ``recovery_log`` and a
warning to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from . import commit
from .catalog import Catalog
from .commit import EventQueue
from .errors import InvalidInput, StoreError
from .fsutil import crashpoint
from .index import _COLS
from .keystore import SigningKey
from .layout import CHECKPOINTS, Layout, warc_key
from .logview import SEGMENTS, format_entries
from .manifest import Event
from .merkle import leaf_hash
from .s3store import S3Store, _md5
from .tlog import checkpoint_body, new_nodes, note_key_name, sign_checkpoint, subtree_root
from .warcstore import RecordRef, WarcWriter

if TYPE_CHECKING:
    from .s3archive import S3Archive

log_warning = logging.getLogger("archiver").warning

#: a command that has done its work waits this long for the log's lock to commit it
COMMIT_WAIT = 600.0
#: parallel PUTs when publishing records
PUBLISHERS = 16


class SpoolWarcWriter(WarcWriter):
    """A ``WarcWriter`` whose files are spooled locally and uploaded whole when full."""

    def __init__(
        self,
        spool: Path,
        archive_id: str,
        rotation_bytes: int,
        allocate: Callable[[], str],
        finished: Callable[[Path], None],
    ) -> None:
        (spool / "store").mkdir(parents=True, exist_ok=True)
        super().__init__(Layout(spool), archive_id, rotation_bytes)
        self._allocate = allocate
        self._finished = finished

    def _open_current(self) -> None:
        self._attach(self._layout.store / self._allocate(), new=True)

    def _ensure_room(self) -> None:
        if self._fh is None:
            self._open_current()
        elif self._pos >= self._rotation:
            self.sync()
            self._open_current()

    def sync(self) -> None:
        """Finish the current file: flushed, closed, handed to ``finished`` (the upload), removed."""
        if self._fh is None:
            return
        path = self._path
        assert path is not None
        try:
            self._fh.flush()
        except OSError as e:
            raise StoreError(f"cannot write the spool file {path}: {e.strerror}") from e
        self.close()
        self._finished(path)
        path.unlink()

    def rollback(self) -> None:
        self.close()
        for path in list(self.touched_files()):
            with contextlib.suppress(OSError):
                path.unlink()


def retain_until(archive: S3Archive) -> datetime:
    """When an object written now may be deleted at the earliest. The real time, never a
    pinned test clock: the server judges retention by its own clock."""
    return datetime.now(UTC) + timedelta(days=archive.retention_days)


class S3WriteTransaction(EventQueue):
    """The S3 counterpart of ``commit.WriteTransaction``: the same surface for the code that
    writes events (``warc``, ``index``, ``add``, ``latest``, ``done``), the protocol above."""

    def __init__(
        self,
        archive: S3Archive,
        signer: SigningKey | None,
        wait_seconds: float = 0.0,
        tsa: str | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        super().__init__()
        self.archive = archive
        self.signer = signer
        self.wait_seconds = wait_seconds
        self.tsa = tsa
        self._own_catalog = catalog is None
        self._catalog = catalog
        self.store: S3Store = archive.store
        self.pending: list[tuple[Event, bytes]] = []
        self._records: list[tuple[str, bytes]] = []
        self.recovered: list[str] = []
        self.txn = ""
        self.committed = False

    # -- setting up ------------------------------------------------------------------------------------
    def __enter__(self) -> S3WriteTransaction:
        self.archive.refuse_if_sealed()
        self.catalog = self._catalog or self.archive.catalog()
        try:
            with self.catalog.log_lock(max(self.wait_seconds, COMMIT_WAIT)):
                self.recovered = recover(self.archive, self.catalog)
            self.txn = self.catalog.begin_txn(socket.gethostname()[:200], os.getpid())
            self.index = self.catalog
            self._spool = Path(tempfile.mkdtemp(prefix="archiver-spool-"))
            self.warc = SpoolWarcWriter(
                self._spool,
                self.archive.archive_id,
                self.archive.info.rotation_bytes,
                self._new_warc,
                self._upload,
            )
            if self.tsa is not None:
                from .timestamps import trusted_certificates

                self.tsa_roots = trusted_certificates(self.store)
        except BaseException:
            self._close()
            raise
        return self

    def _new_warc(self) -> str:
        number = int(self.catalog.fetch("SELECT nextval('warc_numbers')")[0][0])
        name = f"{number:06d}.warc.gz"
        self.catalog.run(
            "INSERT INTO warc_files(name, txn, state) VALUES (%s, %s, 'writing')", (name, self.txn)
        )
        return name

    def _upload(self, path: Path) -> None:
        version, size, sha256 = self.store.upload(warc_key(path.name), path)
        crashpoint("s3-warc-uploaded")
        self.catalog.run(
            "UPDATE warc_files SET version_id = %s, size = %s, sha256 = %s WHERE name = %s",
            (version, size, sha256, path.name),
        )

    # -- the surface the event writers use ---------------------------------------------------------------
    def add(self, event: Event, data: bytes, meta: RecordRef) -> None:
        """Queue a manifest for commit (its records are already written to the spool)."""
        self.pending.append((event, data))
        self._queued(event, data, meta)
        if len(self.pending) >= commit.GROUP:
            self._flush()

    def stage_records(self, records: list[tuple[str, bytes]]) -> None:
        """Small records (keys, revocations, audits, certificates, tokens) to commit."""
        self._records += records

    # -- the protocol -----------------------------------------------------------------------------------
    def _flush(self) -> None:
        """Upload the spooled WARC file; claim and stage the group's events."""
        self.warc.sync()
        if not self.pending:
            return
        with self.catalog.transaction():
            got = self.catalog.run(
                "INSERT INTO claims(document_id, sequence, txn) SELECT d, s, %s "
                "FROM unnest(%s::text[], %s::int[]) AS t(d, s) ON CONFLICT DO NOTHING",
                (self.txn, [e.document_id for e, _ in self.pending], [e.sequence for e, _ in self.pending]),
            )
            if got != len(self.pending):
                raise _Conflict
        staged = [(e.path, data) for e, data in self.pending]
        if self.tsa is not None:
            from .timestamps import request_token, token_key

            staged += [
                (token_key(e.path), request_token(self.tsa, data, self.tsa_roots)) for e, data in self.pending
            ]
        self._stage(staged)
        self.catalog.copy_in("staged_events", "txn, " + _COLS, ((self.txn, *r) for r in self._rows))
        self._rows.clear()
        crashpoint("s3-staged")
        self.pending.clear()
        self._pending_latest.clear()

    def _stage(self, records: list[tuple[str, bytes]]) -> None:
        self.catalog.copy_in(
            "staged",
            "txn, key, data, leaf",
            ((self.txn, key, data, leaf_hash(data)) for key, data in records),
        )

    def _commit(self) -> None:
        self._flush()
        if self._records:
            self._stage(self._records)
            self._records = []
        with self.catalog.log_lock(max(self.wait_seconds, COMMIT_WAIT)):
            if not self.catalog.fetch("SELECT 1 FROM staged WHERE txn = %s LIMIT 1", (self.txn,)):
                raise _NothingToCommit
            assert self.signer is not None, "a transaction that writes needs a signer for its checkpoint"
            commit_staged(self.archive, self.catalog, self.txn, self.signer)
            crashpoint("s3-committed")
            self.committed = True
            try:
                publish(self.archive, self.catalog, self.txn, recovering=False)
            except StoreError as e:
                raise StoreError(
                    f"committed, but writing its objects failed ({e}); the next writing command "
                    "(or `archiver reindex`) writes them"
                ) from e

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                try:
                    self._commit()
                except _NothingToCommit:
                    abandon(self.archive, self.catalog, self.txn, "it wrote nothing")
                except BaseException as e:
                    if not self.committed:  # after the commit, what is staged is published later
                        with contextlib.suppress(Exception):
                            self.warc.rollback()
                            abandon(self.archive, self.catalog, self.txn, f"it failed ({type(e).__name__})")
                    raise
            else:
                # a failed command's own debris: removed now; if that fails too, the next
                # writer finds the transaction dead and removes it
                with contextlib.suppress(Exception):
                    self.warc.rollback()
                    abandon(self.archive, self.catalog, self.txn, f"it failed ({exc_type.__name__})")
        finally:
            self._close()

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            if self.txn:
                self.catalog.end_txn(self.txn)
        if getattr(self, "_spool", None) is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
        if self._own_catalog and getattr(self, "catalog", None) is not None:
            self.catalog.close()


class _Conflict(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "a document in this command was changed by another writer meanwhile (its next event "
            "is taken): run the command again"
        )


class _NothingToCommit(Exception):
    """The command ended without a record to commit (an import of records already there)."""


def commit_staged(archive: S3Archive, catalog: Catalog, txn: str, signer: SigningKey) -> int:
    """Step 4: append a transaction's staged records to the log, sign the checkpoint, add the
    index rows, mark it committed, all in one database transaction. The caller holds the log's
    lock. Returns the new log size.

    Raises:
        InvalidInput: the transaction was given up meanwhile (its writer looked dead).
    """
    with catalog.transaction():
        if catalog.run("UPDATE txns SET state = 'committing' WHERE id = %s AND state = 'open'", (txn,)) != 1:
            raise InvalidInput(
                "this command lost its connection to the catalog and was given up as dead; run it again"
            )
        size = catalog.log_size()
        leaves = catalog.fetch("SELECT key, leaf FROM staged WHERE txn = %s ORDER BY ord", (txn,))
        hashes = [bytes(h) for _, h in leaves]
        made = new_nodes(size, hashes, catalog.node)
        catalog.copy_in(
            "log_leaves", "idx, key, leaf", ((size + i, k, bytes(h)) for i, (k, h) in enumerate(leaves))
        )
        catalog.copy_in("log_nodes", "level, idx, hash", made)
        fresh = {(lv, ix): h for lv, ix, h in made}
        end = size + len(leaves)
        root = subtree_root(lambda lv, ix: fresh.get((lv, ix)) or catalog.node(lv, ix), 0, end)
        note = sign_checkpoint(
            checkpoint_body(archive.archive_id, end, root),
            note_key_name(signer.name, signer.key_id),
            signer.private,
        )
        catalog.run("INSERT INTO checkpoints(size, note) VALUES (%s, %s)", (end, note.encode()))
        catalog.run(f"INSERT INTO events({_COLS}) SELECT {_COLS} FROM staged_events WHERE txn = %s", (txn,))  # noqa: S608
        catalog.run(
            "INSERT INTO documents(document_id) SELECT document_id FROM staged_events "
            "WHERE txn = %s AND sequence = 0 ON CONFLICT DO NOTHING",
            (txn,),
        )
        catalog.run("DELETE FROM staged_events WHERE txn = %s", (txn,))
        catalog.run("UPDATE archiver_meta SET value = %s WHERE key = 'log_size'", (str(end),))
        catalog.run(
            "UPDATE txns SET state = 'committed', log_start = %s, log_end = %s WHERE id = %s",
            (size, end, txn),
        )
    return end


def publish(archive: S3Archive, catalog: Catalog, txn: str, *, recovering: bool) -> None:
    """Step 5 for a committed transaction (the caller holds the log's lock): WARC files locked,
    records, segment and checkpoint written with retention. ``recovering``: some objects may be
    there already (an interrupted publish): each is checked first, and written only if absent."""
    store = archive.store
    until = retain_until(archive)
    for name, version in catalog.fetch(
        "SELECT name, version_id FROM warc_files WHERE txn = %s AND state = 'writing'", (txn,)
    ):
        store.lock(warc_key(name), version, until)
    catalog.run("UPDATE warc_files SET state = 'committed' WHERE txn = %s", (txn,))

    def put(item: tuple[str, bytes]) -> None:
        key, data = item
        crashpoint("s3-record-published")
        if recovering:
            head = store.head(key)
            if head is not None and head.get("ETag", "").strip('"') == _md5_hex(data):
                return
        store.put(key, data, until)

    last = -1
    with ThreadPoolExecutor(PUBLISHERS) as pool:
        while True:
            batch = catalog.fetch(
                "SELECT ord, key, data FROM staged WHERE txn = %s AND ord > %s ORDER BY ord LIMIT 500",
                (txn, last),
            )
            if not batch:
                break
            list(pool.map(put, [(k, bytes(d)) for _, k, d in batch]))
            last = batch[-1][0]
    [(start, end)] = catalog.fetch("SELECT log_start, log_end FROM txns WHERE id = %s", (txn,))
    entries = catalog.fetch(
        "SELECT leaf, key FROM log_leaves WHERE idx >= %s AND idx < %s ORDER BY idx", (start, end)
    )
    put((f"{SEGMENTS}{end:012d}", format_entries([(bytes(h), k) for h, k in entries])))
    crashpoint("s3-segment-published")
    [(note,)] = catalog.fetch("SELECT note FROM checkpoints WHERE size = %s", (end,))
    put((f"{CHECKPOINTS}{end:012d}", bytes(note)))
    with catalog.transaction():
        catalog.run("UPDATE txns SET state = 'published' WHERE id = %s", (txn,))
        catalog.run("DELETE FROM staged WHERE txn = %s", (txn,))


def _md5_hex(data: bytes) -> str:
    import base64

    return base64.b64decode(_md5(data)).hex()


def abandon(archive: S3Archive, catalog: Catalog, txn: str, why: str) -> str:
    """Remove an uncommitted transaction's debris: its WARC versions (never locked), claims,
    staged records. Returns what was done."""
    store = archive.store
    catalog.run("UPDATE txns SET state = 'aborting' WHERE id = %s AND state IN ('open', 'aborting')", (txn,))
    files = catalog.fetch("SELECT name, version_id FROM warc_files WHERE txn = %s", (txn,))
    for name, version in files:
        if version:
            store.delete_version(warc_key(name), version)
        else:
            _delete_unrecorded_upload(store, name)
    with catalog.transaction():
        catalog.run("DELETE FROM warc_files WHERE txn = %s", (txn,))
        catalog.run("DELETE FROM claims WHERE txn = %s", (txn,))
        catalog.run("DELETE FROM staged WHERE txn = %s", (txn,))
        catalog.run("DELETE FROM staged_events WHERE txn = %s", (txn,))
        catalog.run("UPDATE txns SET state = 'aborted' WHERE id = %s", (txn,))
    return f"gave up transaction {txn[:8]} ({why}): removed {len(files)} uncommitted WARC file(s)"


def _delete_unrecorded_upload(store: S3Store, name: str) -> None:
    """A crash between an upload and its record in the catalog: the object's versions, if any,
    are this transaction's alone (the name came from the catalog's sequence) and unlocked."""
    for v in store.versions(warc_key(name)):
        if v.key == warc_key(name) and not v.delete_marker:
            store.delete_version(v.key, v.version_id)


def recover(archive: S3Archive, catalog: Catalog) -> list[str]:
    """Give up dead writers' transactions and publish committed ones left unpublished. The
    caller holds the log's lock. Returns what was done (empty: nothing to do)."""
    actions = []
    for txn in catalog.dead_txns():
        actions.append(abandon(archive, catalog, txn, "its writer is gone"))
    for (txn,) in catalog.fetch("SELECT id::text FROM txns WHERE state IN ('aborting') ORDER BY started_at"):
        actions.append(abandon(archive, catalog, txn, "its removal was interrupted"))
    for (txn,) in catalog.fetch("SELECT id::text FROM txns WHERE state = 'committed' ORDER BY log_end"):
        publish(archive, catalog, txn, recovering=True)
        actions.append(
            f"published transaction {txn[:8]}, committed but interrupted before its objects were written"
        )
    for a in actions:
        catalog.recovery_note(a)
        log_warning("recovered an interrupted write: %s", a)
    return actions


@contextlib.contextmanager
def locked_catalog(archive: S3Archive, wait_seconds: float) -> Iterator[Catalog]:
    """A catalog connection holding the log's lock, after recovery."""
    catalog = archive.catalog()
    try:
        with catalog.log_lock(wait_seconds):
            recover(archive, catalog)
            yield catalog
    finally:
        catalog.close()
