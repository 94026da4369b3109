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

from typing import TYPE_CHECKING

from .__version__ import __version__

# These four share their names with their modules: imported now, so that the function, not
# the module, is what ``archiver.verify`` names (importing a submodule later sets the
# package's attribute only on its first import, which happens here).
from .capture import capture
from .ingest import ingest
from .reindex import reindex
from .verify import verify

# The other names are imported when first used (PEP 562): a command that needs a few modules
# does not pay for all of them at start-up (``archiver verify DOC`` is mostly start-up).
_API = {
    "Archive": ".archive",
    "ArchiveExists": ".errors",
    "ArchiveLocked": ".errors",
    "ArchiveNotFound": ".errors",
    "ArchiverError": ".errors",
    "CorruptArchive": ".errors",
    "Counts": ".problems",
    "DocumentNotFound": ".errors",
    "Ingested": ".ingest",
    "InvalidInput": ".errors",
    "KeyStore": ".keystore",
    "KeyUnavailable": ".errors",
    "Problem": ".problems",
    "ProblemCode": ".problems",
    "Report": ".problems",
    "SigningKey": ".keystore",
    "Source": ".ingest",
    "StoreError": ".errors",
    "cat": ".reading",
    "collect": ".ingest",
    "events_of": ".reading",
    "export_bagit": ".bagexport",
    "export_wacz": ".waczexport",
    "import_warc": ".warcimport",
    "list_documents": ".reading",
    "locate": ".archive",
    "show": ".reading",
    "stamp_checkpoint": ".timestamps",
    "trust_tsa": ".timestamps",
}

if TYPE_CHECKING:
    from .archive import Archive, locate
    from .bagexport import export_bagit
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
    from .ingest import Ingested, Source, collect
    from .keystore import KeyStore, SigningKey
    from .problems import Counts, Problem, ProblemCode, Report
    from .reading import cat, events_of, list_documents, show
    from .timestamps import stamp_checkpoint, trust_tsa
    from .waczexport import export_wacz
    from .warcimport import import_warc


def __getattr__(name: str) -> object:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'archiver' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
