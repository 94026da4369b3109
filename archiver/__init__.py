"""archiver: provenance and integrity archiving.

The public API. Everything not listed in ``__all__`` is internal and may change.

Example::

    from archiver import Archive, KeyStore, collect, ingest, verify

    archive = Archive.init("evidence")
    archive.generate_key("alice", "archivist", passphrase=None)
    key = archive.signing_key("alice", lambda name: None, role="archivist")
    ingest(archive, collect(["article.txt"], {"language": "ar"}), key)
    report = verify(archive)
    assert report.ok
"""

from .__version__ import __version__
from .archive import Archive, locate
from .bagexport import export_bagit
from .capture import capture
from .errors import (
    ArchiveExists,
    ArchiveLocked,
    ArchiveNotFound,
    ArchiverError,
    CorruptArchive,
    DocumentNotFound,
    InvalidInput,
    KeyUnavailable,
    StoreError,
)
from .ingest import Ingested, Source, collect, ingest
from .keystore import KeyStore, SigningKey
from .problems import Counts, Problem, ProblemCode, Report
from .reading import cat, events_of, list_documents, show
from .reindex import reindex
from .timestamps import stamp_checkpoint, trust_tsa
from .verify import verify
from .waczexport import export_wacz
from .warcimport import import_warc

__all__ = [
    "Archive",
    "ArchiveExists",
    "ArchiveLocked",
    "ArchiveNotFound",
    "ArchiverError",
    "CorruptArchive",
    "Counts",
    "DocumentNotFound",
    "Ingested",
    "InvalidInput",
    "KeyStore",
    "KeyUnavailable",
    "Problem",
    "ProblemCode",
    "Report",
    "SigningKey",
    "Source",
    "StoreError",
    "__version__",
    "capture",
    "cat",
    "collect",
    "events_of",
    "export_bagit",
    "export_wacz",
    "import_warc",
    "ingest",
    "list_documents",
    "locate",
    "reindex",
    "show",
    "stamp_checkpoint",
    "trust_tsa",
    "verify",
]
