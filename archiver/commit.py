"""The write protocol shared by every command that adds events (docs/durability.md).

Usage::

    with WriteTransaction(archive, key, wait_seconds) as tx:
        ... tx.warc.write_content(...) / write_metadata(...) ...
        tx.add(manifest_bytes, meta_ref)        # after writing its metadata record
    # on normal exit: WARC fsynced, manifests written atomically, log appended and a
    # checkpoint signed, index updated;
    # on any exception: everything this transaction appended is removed.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from .archive import Archive
from .fsutil import crash_testing, crashpoint, fsync_dir, sync_filesystem, write_new, write_new_many
from .index import Index, Row, row_of
from .keystore import SigningKey
from .logwrite import log_leaves
from .manifest import Event
from .merkle import leaf_hash
from .warcstore import MANIFEST_CONTENT_TYPE, RecordRef, WarcWriter

#: Events whose manifests are written together (after one WARC fsync): bounds memory.
#: (``ARCHIVER_TEST_GROUP`` makes groups small, for tests of many groups in one command.)
GROUP = int(os.environ.get("ARCHIVER_TEST_GROUP") or 1000)
WRITE_BATCH = 32  # manifest files handed to the writer thread at a time


@dataclass(frozen=True, slots=True)
class Written:
    """What a transaction keeps in memory of an event once its group is written (its index
    row waits in the index's staging table: memory does not grow with the row's size)."""

    document_id: str
    sequence: int
    path: str
    leaf: bytes
    record_type: str
    sha256: str


class Transaction(Protocol):
    """What the code that writes events uses of a write transaction, whatever the backend:
    ``WriteTransaction`` (local files) or ``s3commit.S3WriteTransaction``."""

    @property
    def archive(self) -> Archive: ...

    @property
    def warc(self) -> WarcWriter: ...

    @property
    def index(self) -> Index: ...

    @property
    def done(self) -> list[Written]: ...

    @property
    def recovered(self) -> list[str]: ...

    def __enter__(self) -> Transaction: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def write_manifest_record(
        self, data: bytes, event: Event, content_record_id: str, concurrent: bool
    ) -> RecordRef: ...

    def add(self, event: Event, data: bytes, meta: RecordRef) -> None: ...

    def latest(self, document_id: str) -> Event | None: ...

    def latest_digest(self, document_id: str) -> str | None: ...


class EventQueue:
    """What both write transactions (local, S3) keep of the events a command adds: the
    manifests' WARC copies, what stays in memory of each event, and the latest event per
    document not yet readable from the archive."""

    warc: WarcWriter

    def __init__(self) -> None:
        self.done: list[Written] = []
        self._rows: list[Row] = []  # index rows of the current group, staged at its end
        self._pending_latest: dict[str, Event] = {}
        self._latest_digest: dict[str, str] = {}

    def write_manifest_record(
        self, data: bytes, event: Event, content_record_id: str, concurrent: bool
    ) -> RecordRef:
        """Store a signed manifest in the WARC as a ``metadata`` record naming its content record."""
        kw: dict[str, Any] = {"concurrent_to" if concurrent else "refers_to": content_record_id}
        return self.warc.write_metadata(
            block=data,
            content_type=MANIFEST_CONTENT_TYPE,
            target_uri=f"urn:archiver:event:{event.document_id}/{event.sequence}",
            date=event.raw["time"],
            **kw,
        )

    def _queued(self, event: Event, data: bytes, meta: RecordRef) -> None:
        """Note an event added to the command."""
        self._pending_latest[event.document_id] = event
        self._latest_digest[event.document_id] = event.digest
        self._rows.append(row_of(event, (meta.warc_file, meta.offset)))
        self.done.append(
            Written(
                document_id=event.document_id,
                sequence=event.sequence,
                path=event.path,
                leaf=leaf_hash(data),
                record_type=event.storage["record_type"],
                sha256=event.content["sha256"],
            )
        )

    def latest(self, document_id: str) -> Event | None:
        """The newest event of a document queued here and not yet readable from the archive
        (once it is, ``events.load_chain`` reads it like any other)."""
        return self._pending_latest.get(document_id)

    def latest_digest(self, document_id: str) -> str | None:
        """The manifest id of the newest event of a document queued in this command."""
        return self._latest_digest.get(document_id)


class WriteTransaction(EventQueue):
    """Lock, WARC writer and index for one all-or-nothing batch of events."""

    def __init__(
        self, archive: Archive, signer: SigningKey, wait_seconds: float = 0.0, tsa: str | None = None
    ) -> None:
        """``signer`` signs the checkpoint written at commit; with ``tsa`` (a URL) every
        manifest gets an RFC 3161 time-stamp token before the commit (``timestamps.py``)."""
        self.archive = archive
        self.signer = signer
        super().__init__()
        self.tsa = tsa
        self.tokens: list[tuple[str, bytes]] = []  # (path, leaf) of token files written
        # one syncfs per group of manifests instead of an fsync per file and directory
        self._syncfs = _libc_syncfs()
        self.layout = archive.layout
        self._session = archive.writer_lock(wait_seconds)
        # queued events whose manifests are not written yet, and what stays in memory of
        # the others: a large batch holds a bounded number of whole events
        self.pending: list[tuple[Event, Path, bytes]] = []

    def __enter__(self) -> WriteTransaction:
        self._session.__enter__()
        try:
            if not self.layout.index.exists():
                from .reindex import reindex_locked

                reindex_locked(self.archive)
            self.index = Index.open(self.layout.index, write=True)
            self.index.hold_read()
            if self.tsa is not None:
                from .timestamps import trusted_certificates

                self.tsa_roots = trusted_certificates(self.archive.store)
        except BaseException as e:
            self._session.__exit__(type(e), e, None)
            raise
        self.warc = WarcWriter(self.layout, self.archive.archive_id, self.archive.info.rotation_bytes)
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archiver-manifests")
        self._writes: list[Future[None]] = []
        self._unwritten: list[tuple[Path, bytes]] = []  # manifests not yet handed to the writer
        self._made: set[Path] = set()  # manifest folders known to exist
        self._dirs: set[Path] = set()
        return self

    @property
    def recovered(self) -> list[str]:
        """What crash recovery did when this transaction started (usually nothing)."""
        return self._session.recovered

    def add(self, event: Event, data: bytes, meta: RecordRef) -> None:
        """Queue a manifest for commit (its records are already appended).

        Its file is written soon by a background thread, 32 files at a time
        (creating files is I/O latency that overlaps with the next documents'
        work); it counts only once the log holds it.
        """
        path = self.layout.root / event.path
        self._unwritten.append((path, data))
        if len(self._unwritten) >= WRITE_BATCH:
            self._hand_to_writer()
        self.pending.append((event, path, data))
        self._queued(event, data, meta)
        if len(self.pending) >= GROUP:
            self._flush()

    def _hand_to_writer(self) -> None:
        # a few dozen files per task: one hand-over per file cost the main thread more in
        # wake-ups and lock traffic than writing the file costs the writer
        batch, self._unwritten = self._unwritten, []
        # the WARC records these manifests name reach the file first: a process killed
        # between the two must not leave a manifest whose records were still in its buffer
        # (a reader would call them missing; they are leftovers of an uncommitted write)
        self.warc.hand_to_os()
        self._writes.append(self._io.submit(self._write_manifests, batch))

    def _write_manifests(self, batch: list[tuple[Path, bytes]]) -> None:
        # committed only once the log holds them (docs/durability.md); made durable in _flush
        for path, _ in batch:
            folder = path.parent
            if folder not in self._made:
                if not folder.is_dir():
                    folder.mkdir(parents=True, exist_ok=True)
                    self._dirs.add(folder.parent)
                self._made.add(folder)
            self._dirs.add(folder)
        if crash_testing():  # the crash tests stop the writer after an exact file
            for path, data in batch:
                write_new(path, data, sync=not self._syncfs)
                crashpoint("manifest-written")
        else:
            write_new_many(batch, sync=not self._syncfs)

    def _flush(self) -> None:
        """Make the pending events' records and manifest files durable.

        Not a commit: nothing counts until the log holds the manifests (``_commit``).
        """
        if not self.pending:
            return
        if self._unwritten:
            self._hand_to_writer()
        for job in self._writes:
            job.result()  # re-raises the first write error (disk full, I/O error)
        self._writes.clear()
        self.warc.sync()
        crashpoint("warc-synced")
        if self.tsa is not None:
            for _, path, data in self.pending:
                self._dirs |= self._stamp(path, data)
        if not (self._syncfs and sync_filesystem(self.layout.manifests)):
            for d in sorted(self._dirs):
                fsync_dir(d)
        self._dirs.clear()
        self.pending.clear()
        self._pending_latest.clear()
        self.index.stage_rows(self._rows)
        self._rows.clear()

    def _stamp(self, path: Path, data: bytes) -> set[Path]:
        """Obtain and write the time-stamp token over one manifest; returns directories to sync."""
        from .timestamps import request_token, token_path, write_token

        assert self.tsa is not None
        der = request_token(self.tsa, data, self.tsa_roots)
        tpath = token_path(self.layout, path)
        new_dirs = {tpath.parent.parent, self.layout.manifests} if not tpath.parent.is_dir() else set()
        write_token(tpath, der)
        self.tokens.append((self.layout.relative(tpath), leaf_hash(der)))
        return new_dirs | {tpath.parent}

    def _commit(self) -> None:
        self._flush()
        log_leaves(
            self.layout,
            self.archive.archive_id,
            [(w.path, w.leaf) for w in self.done] + self.tokens,
            self.signer,
        )
        crashpoint("checkpoint-written")
        self.index.release_read()
        self.index.commit_staged()
        crashpoint("index-written")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                try:
                    self._commit()
                except BaseException as e:
                    exc_type, exc = type(e), e
                    raise
        finally:
            # no write may land after the rollback below: wait for the manifest writer
            self._io.shutdown(wait=True, cancel_futures=True)
            self.warc.close()
            self.index.close()
            # On failure the session rolls everything back to the state recorded
            # before this transaction wrote anything (or, past the checkpoint,
            # keeps the committed command and rebuilds the index).
            self._session.__exit__(exc_type, exc, tb)


def _libc_syncfs() -> bool:
    from .fsutil import _libc

    return _libc() is not None and os.environ.get("ARCHIVER_NO_SYNCFS") is None
