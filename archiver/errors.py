"""Errors that stop a command.

Every exception here means "this command cannot go on": the command line
prints ``str(error)`` as one line on stderr and exits 2. What the verifier
*finds* is not an exception but data (``archiver.problems``), because an
auditor needs every finding, not the first one.

The tree is split by what the caller does differently:

- ``ArchiveNotFound``: point the tool at an archive, or create one.
- ``InvalidInput``: fix the input (file, metadata, document id, option).
- ``KeyUnavailable``: fix the key (missing, wrong passphrase, unsafe mode, wrong role).
- ``ArchiveLocked``: another writer holds the archive; wait or retry.
- ``StoreError``: writing failed (disk full, I/O error); the archive was left as it was.
"""

from __future__ import annotations


class ArchiverError(Exception):
    """Base class: the command stops; the message is one line for a person."""


class ArchiveNotFound(ArchiverError):
    """No archive at the given path, or none found searching upward."""


class ArchiveExists(ArchiverError):
    """``init`` was asked to create an archive where one already is."""


class InvalidInput(ArchiverError):
    """A file, metadata value, option or document id that cannot be used."""


class DocumentNotFound(InvalidInput):
    """No document matches the given id or prefix, or the prefix is ambiguous."""


class KeyUnavailable(ArchiverError):
    """A private key is missing, unreadable, unsafe, encrypted with another passphrase,
    untrusted by the archive, revoked, or of a role that may not do this."""


class ArchiveLocked(ArchiverError):
    """Another process holds the archive's writer lock."""


class StoreError(ArchiverError):
    """Writing to the archive failed; the archive was rolled back to its previous state."""


class CorruptArchive(ArchiverError):
    """The archive is too damaged for a write or read to proceed safely; run ``verify``."""
