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

from pathlib import Path
from types import TracebackType
from typing import Any

from .archive import Archive
from .fsutil import crashpoint, fsync_dir, write_new
from .index import Index
from .keystore import SigningKey
from .logwrite import log_records
from .manifest import Event
from .warcstore import MANIFEST_CONTENT_TYPE, RecordRef, WarcWriter


class WriteTransaction:
    """Lock, WARC writer and index for one all-or-nothing batch of events."""

    def __init__(self, archive: Archive, signer: SigningKey, wait_seconds: float = 0.0) -> None:
        """``signer`` signs the checkpoint written at commit."""
        self.archive = archive
        self.signer = signer
        self.layout = archive.layout
        self._session = archive.writer_lock(wait_seconds)
        self.events: list[tuple[Event, bytes, RecordRef]] = []
        self._latest: dict[str, Event] = {}

    def __enter__(self) -> WriteTransaction:
        self._session.__enter__()
        try:
            if not self.layout.index.exists():
                from .reindex import reindex_locked

                reindex_locked(self.archive)
            self.index = Index.open(self.layout.index, write=True)
        except BaseException as e:
            self._session.__exit__(type(e), e, None)
            raise
        self.warc = WarcWriter(self.layout, self.archive.archive_id, self.archive.info.rotation_bytes)
        return self

    @property
    def recovered(self) -> list[str]:
        """What crash recovery did when this transaction started (usually nothing)."""
        return self._session.recovered

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

    def add(self, event: Event, data: bytes, meta: RecordRef) -> None:
        """Queue a manifest for commit (its records are already appended)."""
        self.events.append((event, data, meta))
        self._latest[event.document_id] = event

    def latest(self, document_id: str) -> Event | None:
        """The newest event of a document queued in this transaction, if any."""
        return self._latest.get(document_id)

    def _commit(self) -> None:
        self.warc.sync()
        crashpoint("warc-synced")
        dirs: set[Path] = set()
        for event, data, _ in self.events:
            path = self.layout.root / event.path
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True)
                dirs.add(path.parent.parent)
            write_new(path, data)  # committed only once the log holds it (docs/durability.md)
            crashpoint("manifest-written")
            dirs.add(path.parent)
        for d in sorted(dirs):
            fsync_dir(d)
        log_records(
            self.layout, self.archive.archive_id, [(e.path, data) for e, data, _ in self.events], self.signer
        )
        crashpoint("checkpoint-written")
        self.index.add((e, (m.warc_file, m.offset)) for e, _, m in self.events)
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
            self.warc.close()
            self.index.close()
            # On failure the session rolls everything back to the state recorded
            # before this transaction wrote anything (or, past the checkpoint,
            # keeps the committed command and rebuilds the index).
            self._session.__exit__(exc_type, exc, tb)
