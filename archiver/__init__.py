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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .__version__ import __version__

#: API functions named like the modules that define them
_SHADOWED = frozenset({"capture", "ingest", "reindex", "verify"})


class _Package(types.ModuleType):
    """This package's module object. Importing ``archiver.verify`` (the module) would set
    the package's ``verify`` to that module and hide the function; here such a setting is
    ignored, so ``archiver.verify`` stays the function, imported when first used."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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


def __getattr__(name: str) -> object:
    module = "." + name if name in _SHADOWED else _API.get(name)
    if module is None:
        raise AttributeError(f"module 'archiver' has no attribute {name!r}")
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
