"""Reading documents: list, show, history rows, and ``cat`` of exact stored bytes."""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from .archive import Archive
from .canonical import load_strict
from .errors import CorruptArchive, DocumentNotFound, InvalidInput
from .index import EventRow, Index
from .warcread import RecordReader, WarcFormatError


def open_index(archive: Archive) -> Index:
    """The index, for reading.

    Raises:
        CorruptArchive: missing or damaged (the message says to run ``reindex``).
    """
    return Index.open(archive.layout.index)


def list_documents(archive: Archive) -> list[EventRow]:
    """The current (latest) event of every document."""
    idx = open_index(archive)
    try:
        return idx.latest()
    finally:
        idx.close()


def events_of(archive: Archive, document: str) -> list[EventRow]:
    """All events of a document (id or unique prefix), in order.

    Raises:
        DocumentNotFound: no such document, or an ambiguous prefix.
    """
    idx = open_index(archive)
    try:
        return idx.events_of(idx.resolve(document))
    finally:
        idx.close()


def select_version(rows: list[EventRow], version: int | None) -> EventRow:
    """The event for ``--version N`` (default: the latest).

    Raises:
        DocumentNotFound: no such version.
    """
    if version is None:
        return rows[-1]
    for row in rows:
        if row.sequence == version:
            return row
    raise DocumentNotFound(
        f"document {rows[0].document_id[:12]} has no version {version} (versions 0 to {rows[-1].sequence})"
    )


def show(archive: Archive, document: str, version: int | None = None) -> dict[str, Any]:
    """The signed manifest of a document's event, as stored.

    Raises:
        DocumentNotFound: unknown document or version.
        CorruptArchive: the manifest file is missing or unreadable.
    """
    row = select_version(events_of(archive, document), version)
    path = archive.layout.root / row.path
    try:
        doc = load_strict(path.read_bytes())
    except (OSError, ValueError) as e:
        raise CorruptArchive(f"cannot read manifest {row.path}: {e}; run `archiver verify`") from e
    assert isinstance(doc, dict)
    return doc


def cat(archive: Archive, document: str, out: BinaryIO, version: int | None = None) -> int:
    """Write the exact stored bytes of a document version to ``out``; returns the size.

    The bytes are hashed while they are written; if they do not match the
    manifest's SHA-256 and size the command fails (the output must then be discarded).

    Raises:
        DocumentNotFound: unknown document or version.
        CorruptArchive: the record is missing, damaged or does not match its digest.
    """
    manifest = show(archive, document, version)
    storage = manifest["storage"]
    ref = storage.get("refers_to") or storage
    expected_sha256, expected_size = manifest["content"]["sha256"], manifest["content"]["size"]
    path = archive.layout.store / str(ref["warc_file"])
    if "/" in str(ref["warc_file"]) or path.is_symlink() or not path.is_file():
        raise CorruptArchive(f"WARC file {ref['warc_file']} is missing; run `archiver verify`")
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            reader = RecordReader(f, int(ref["offset"]))
            if reader.headers.get("warc-record-id") != ref["record_id"]:
                raise CorruptArchive(
                    f"record {ref['record_id']} is not where the manifest says; run `archiver verify`"
                )
            for chunk in reader.block():
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except WarcFormatError as e:
        raise CorruptArchive(f"stored record is damaged ({e}); run `archiver verify`") from e
    except OSError as e:
        raise CorruptArchive(f"cannot read {path}: {e.strerror}") from e
    if h.hexdigest() != expected_sha256 or size != expected_size:
        raise CorruptArchive(
            "stored bytes do not match the manifest's digest; the output is not "
            "the archived document; run `archiver verify`"
        )
    return size


def check_version_arg(version: int | None) -> None:
    """Reject a negative --version.

    Raises:
        InvalidInput: when negative.
    """
    if version is not None and version < 0:
        raise InvalidInput("--version must be 0 or more")
