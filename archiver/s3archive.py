"""An archive of S3 objects with a PostgreSQL catalog (format 2; docs/scale-out.md).

``S3Archive`` is an ``Archive`` whose files are objects (``s3store.py``), whose
index is the catalog (``catalog.py``) and whose writes follow ``s3commit.py``.
Everything that only reads (verify, list, show, cat, history, log proofs, exports)
is the same code as for a local archive, through ``Store``.

Reading needs only the objects (an auditor with read access to the bucket and no
catalog can verify); writing needs the catalog, where writers on any number of
machines meet. The catalog's URL comes from ``--catalog`` or ``$ARCHIVER_CATALOG``
and is never written into the archive (it may hold a password).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .archive import DEFAULT_ROTATION, Archive, ArchiveInfo, RecordBatch, archive_info, new_identity
from .canonical import pretty_bytes
from .catalog import Catalog
from .errors import ArchiveExists, ArchiveNotFound, CorruptArchive, InvalidInput
from .layout import ARCHIVE_JSON
from .logview import LogView
from .s3commit import retain_until
from .s3store import DEFAULT_RETENTION_DAYS, S3Location, S3Store
from .timeutil import Clock, system_clock

if TYPE_CHECKING:
    from pathlib import Path

    from .commit import Transaction
    from .keystore import SigningKey
    from .layout import Layout
    from .recovery import WriteSession


def catalog_url(given: str | None) -> str | None:
    """The catalog URL: the option, else ``$ARCHIVER_CATALOG``."""
    return given or os.environ.get("ARCHIVER_CATALOG") or None


class S3Archive(Archive):
    """An open S3 archive."""

    index_name = "catalog"

    def __init__(
        self, store: S3Store, info: ArchiveInfo, clock: Clock = system_clock, catalog: str | None = None
    ) -> None:
        # no Layout: nothing here is a local file (``layout`` says so, below)
        self.info = info
        self.clock = clock
        self.store: S3Store = store
        self.catalog_url = catalog
        self.retention_days = int(info.retention_days or DEFAULT_RETENTION_DAYS)

    @property
    def layout(self) -> Layout:
        raise self._local_only()

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def open_s3(
        cls, where: S3Location, catalog: str | None = None, *, clock: Clock = system_clock
    ) -> S3Archive:
        """Open the archive at ``where``.

        Raises:
            ArchiveNotFound: no archive.json there.
            CorruptArchive: it is unreadable, invalid, or not format 2.
            StoreError: S3 cannot be reached.
        """
        store = S3Store(where)
        try:
            raw = store.read(ARCHIVE_JSON)
        except FileNotFoundError:
            raise ArchiveNotFound(
                f"no archive at {where.url} (no manifests/archive.json): "
                f"run `archiver init --store {where.url}`"
            ) from None
        _, info = archive_info(raw, f"{where.url}{ARCHIVE_JSON}")
        if info.format_version != 2:
            raise CorruptArchive(
                f"{where.url} holds a format {info.format_version} archive: S3 archives are format 2"
            )
        return cls(store, info, clock, catalog)

    @classmethod
    def init_s3(
        cls,
        where: S3Location,
        catalog: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        rotation_bytes: int = DEFAULT_ROTATION,
        clock: Clock = system_clock,
    ) -> S3Archive:
        """Create an empty archive at ``where`` (the bucket is created with Object Lock if missing)
        with its catalog in the (empty) database at ``catalog``.

        Raises:
            ArchiveExists: objects already below the prefix.
            InvalidInput: the catalog database holds another archive, or a bad setting.
            StoreError: S3 or the catalog cannot be reached, or the bucket has no Object Lock.
        """
        if not 1 <= retention_days <= 36500:
            raise InvalidInput("--retention-days must be between 1 and 36500")
        identity = new_identity(rotation_bytes, clock, retention_days=retention_days)
        store = S3Store(where)
        store.prepare_bucket()
        if store.files(""):
            raise ArchiveExists(f"{where.url} already holds objects; refusing to make an archive there")
        cat = Catalog.connect(catalog)
        try:
            with cat.transaction():
                cat.create(identity["archive_id"])
                # archive.json last: until it exists, this is not an archive (and if writing
                # it fails, the catalog's transaction is rolled back with it)
                archive = cls(store, archive_info(pretty_bytes(identity), ARCHIVE_JSON)[1], clock, catalog)
                store.put(ARCHIVE_JSON, pretty_bytes(identity), retain_until(archive))
        finally:
            cat.close()
        return archive

    def catalog(self) -> Catalog:
        """A new connection to this archive's catalog.

        Raises:
            InvalidInput: no catalog was given.
            StoreError / CorruptArchive: it cannot be reached, or it is another archive's.
        """
        if self.catalog_url is None:
            raise InvalidInput(
                f"{self.store.location} is written through its catalog: "
                "pass --catalog postgresql://... or set ARCHIVER_CATALOG"
            )
        cat = Catalog.connect(self.catalog_url)
        try:
            cat.check(self.archive_id)
        except BaseException:
            cat.close()
            raise
        return cat

    # -- writing -------------------------------------------------------------------------------------
    def transaction(
        self, signer: SigningKey, wait_seconds: float = 0.0, tsa: str | None = None
    ) -> Transaction:
        from .s3commit import S3WriteTransaction

        return S3WriteTransaction(self, signer, wait_seconds, tsa)

    @contextlib.contextmanager
    def recording(self, wait_seconds: float = 0.0) -> Iterator[RecordBatch]:
        """As for a local archive: the block runs under the log's lock (so its checks hold),
        then the records are committed and published."""
        from .s3commit import COMMIT_WAIT, S3WriteTransaction, locked_catalog

        self.refuse_if_sealed()
        # the log's lock is held only while a command commits: worth waiting for
        with locked_catalog(self, max(wait_seconds, COMMIT_WAIT)) as cat:
            batch = RecordBatch()
            yield batch
            if batch.records:
                with S3WriteTransaction(self, batch.signer, wait_seconds, catalog=cat) as tx:
                    tx.stage_records(batch.records)

    def writer_lock(self, wait_seconds: float = 0.0) -> WriteSession:
        raise self._local_only()

    def append_to_log(self, paths: list[Path], signer: SigningKey) -> None:
        raise self._local_only()

    def _local_only(self) -> InvalidInput:
        return InvalidInput(
            f"{self.store.location} is an S3 archive: this command works on local archives only"
        )

    def rebuild_index(self, wait_seconds: float = 0.0) -> tuple[int, int]:
        from .s3reindex import rebuild_catalog

        return rebuild_catalog(self, wait_seconds)

    # -- reading -------------------------------------------------------------------------------------
    def local_path(self, key: str) -> None:
        return None

    @contextlib.contextmanager
    def reading(self, wait_seconds: float) -> Iterator[frozenset[str]]:
        """With a catalog: its log lock, shared, while the snapshot is noted (no command is
        publishing then), and the WARC files of commands not committed yet, left out."""
        if self.catalog_url is None:
            yield frozenset()
            return
        cat = self.catalog()
        try:
            with cat.log_lock(wait_seconds, shared=True):
                yield cat.in_flight_warcs()
        finally:
            cat.close()

    def reading_index(self) -> Catalog | None:
        return self.catalog() if self.catalog_url is not None else None

    def proof_log(self) -> LogView:
        """Proofs from the catalog's nodes when there is one, else from the objects."""
        if self.catalog_url is None:
            return self.log_view()
        return CatalogLog(self.store, self.catalog())


class CatalogLog(LogView):
    """The log's objects for entries and checkpoints, the catalog's nodes for proofs (no need
    to read every segment to prove one record)."""

    def __init__(self, store: S3Store, catalog: Catalog) -> None:
        super().__init__(store, segmented=True)
        self.catalog = catalog

    def node(self, level: int, index: int) -> bytes:
        return self.catalog.node(level, index)

    def leaf_index(self, key: str) -> tuple[int, bytes] | None:
        return self.catalog.leaf_index(key)


def open_location(location: str, *, catalog: str | None = None, clock: Clock = system_clock) -> S3Archive:
    """Open ``s3://BUCKET/PREFIX`` (endpoint from the environment; see ``parse_s3_url``)."""
    from .s3store import parse_s3_url

    return S3Archive.open_s3(parse_s3_url(location), catalog_url(catalog), clock=clock)
