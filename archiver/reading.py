"""Reading documents: list, show, history rows, and ``cat`` of exact stored bytes."""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO

from .archive import Archive
from .canonical import load_strict
from .errors import CorruptArchive, DocumentNotFound, InvalidInput
from .httpblock import HeadTooLarge
from .index import EventRow, Index
from .layout import warc_key
from .warcread import RecordReader, WarcFormatError


def open_index(archive: Archive) -> Index:
    """The index, for reading.

    Raises:
        CorruptArchive: missing or damaged (the message says to run ``reindex``).
    """
    idx = archive.reading_index()
    if idx is None:
        raise CorruptArchive(f"the index {archive.index_name} is missing: run `archiver reindex`")
    return idx


def count_documents(archive: Archive) -> int:
    """How many documents the archive holds, from the manifest file names (no index needed).

    Only sizes a progress bar: a misnamed file is not counted, and verify reports it.
    """
    from .audit import documents

    return len(documents(archive.store))


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
    try:
        doc = load_strict(archive.store.read(row.path))
    except (OSError, ValueError) as e:
        raise CorruptArchive(f"cannot read manifest {row.path}: {e}; run `archiver verify`") from e
    assert isinstance(doc, dict)
    return doc


def cat(
    archive: Archive, document: str, out: BinaryIO, version: int | None = None, sealed: bool = False
) -> int:
    """Write the exact stored bytes of a document version to ``out``; returns the size.

    The bytes are hashed while they are written; if they do not match the
    manifest's SHA-256 and size the command fails (the output must then be discarded).

    A version that a later redaction replaced is sealed: it is only written
    with ``sealed=True``.

    Raises:
        DocumentNotFound: unknown document or version.
        InvalidInput: the version is sealed and ``sealed`` is false.
        CorruptArchive: the record is missing, damaged or does not match its digest.
    """
    rows = events_of(archive, document)
    row = select_version(rows, version)
    redacted_later = [r.sequence for r in rows if r.action == "redacted" and r.sequence > row.sequence]
    if redacted_later and not sealed:
        raise InvalidInput(
            f"version {row.sequence} of {row.document_id[:12]} is sealed: it was redacted by event "
            f"{redacted_later[0]}; use --sealed to read the original (it must not be published)"
        )
    manifest = show(archive, document, row.sequence)
    storage = manifest["storage"]
    ref = storage.get("refers_to") or storage
    expected_sha256, expected_size = manifest["content"]["sha256"], manifest["content"]["size"]
    key = warc_key(str(ref["warc_file"]))
    if "/" in str(ref["warc_file"]) or archive.store.size(key) is None:
        raise CorruptArchive(f"WARC file {ref['warc_file']} is missing; run `archiver verify`")
    h = hashlib.sha256()
    size = 0
    try:
        with archive.store.open(key) as f:
            from .warcscan import payload_of

            reader = RecordReader(f, int(ref["offset"]))
            if reader.headers.get("warc-record-id") != ref["record_id"]:
                raise CorruptArchive(
                    f"record {ref['record_id']} is not where the manifest says; run `archiver verify`"
                )
            for chunk in payload_of(reader):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (WarcFormatError, HeadTooLarge) as e:
        raise CorruptArchive(f"stored record is damaged ({e}); run `archiver verify`") from e
    except OSError as e:
        raise CorruptArchive(f"cannot read {key}: {e.strerror or e}") from e
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


def history(archive: Archive, document: str) -> list[dict[str, Any]]:
    """A document's whole chain as a timeline: who did what, when, why, and who held it after."""
    from .custody import CustodyState, step
    from .events import load_chain

    idx = open_index(archive)
    try:
        doc_id = idx.resolve(document)
    finally:
        idx.close()
    chain = load_chain(archive.store, doc_id)
    trust = archive.trust()
    names = {k: v.name for k, v in trust.keys.items()}
    archivists = frozenset(k for k, v in trust.keys.items() if v.role == "archivist")
    state = CustodyState()
    out = []
    for e in chain:
        findings = step(state, e.raw, e.digest, archivists, archive.clock())
        raw = e.raw
        entry: dict[str, Any] = {
            "sequence": e.sequence,
            "time": raw["time"],
            "action": e.action,
            "actor": {
                "key_id": raw["actor"]["key_id"],
                "name": raw["actor"]["name"],
                "role": raw["actor"]["role"],
            },
            "reason": raw["reason"],
            "content_sha256": raw["content"]["sha256"],
            "size": raw["content"]["size"],
            "custodian": {"key_id": state.custodian, "name": names.get(state.custodian or "")},
            "pending_transfer_to": state.pending_to,
            "manifest": e.path,
            "manifest_id": e.digest,
            "problems": [f"{code.value}: {msg}" for code, msg in findings],
        }
        for member in ("transfer", "accept", "attestation", "diff", "redaction"):
            if raw.get(member) is not None:
                entry[member] = raw[member]
        out.append(entry)
    return out


def stored_diff(archive: Archive, entry: dict[str, Any]) -> str | None:
    """The unified diff stored with an edit, checked against the digest its manifest signed.

    Raises:
        CorruptArchive: the stored diff is missing or does not match.
    """
    from .warcscan import read_block

    diff = entry.get("diff") or {}
    ref = diff.get("record")
    if not ref:
        return None
    block = read_block(archive.store, warc_key(str(ref["warc_file"])), int(ref["offset"]), 64 << 20)
    if block is None or hashlib.sha256(block).hexdigest() != ref["sha256"]:
        raise CorruptArchive(
            f"the stored diff of event {entry['sequence']} is damaged; run `archiver verify`"
        )
    return block.decode("utf-8")
