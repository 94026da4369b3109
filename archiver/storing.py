"""Storing one version of a document's bytes: the shared core of capture, edit and redaction.

One streaming pass computes the digests (and, for text, the redaction token
tree with a fresh random seed); the bytes go into a ``resource`` record (a
capture) or a ``conversion`` record (a new version derived from the previous
content record), or, when the archive already holds the same bytes, a
``revisit`` record pointing at them. A text version's seed goes into a sealed
``metadata`` record.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .canonical import load_strict
from .commit import Transaction
from .digests import CHUNK, Digests, binary_media_type, digest_stream
from .errors import InvalidInput
from .warcstore import SEED_CONTENT_TYPE, RecordRef, SourceChanged

Opener = Callable[[], IO[bytes]]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """What a manifest needs to say about the stored bytes."""

    digests: Digests
    content: dict[str, Any]
    storage: dict[str, Any]
    record_id: str  # the record this event wrote (resource, conversion or revisit)


def ref_json(ref: RecordRef, sha256: str | None = None) -> dict[str, Any]:
    """A record reference for a manifest, optionally with the SHA-256 of its block."""
    out = ref.to_json()
    if sha256 is not None:
        out["sha256"] = sha256
    return out


def digest_version(
    open_source: Opener, *, display: str, filename: str | None, media_type: str | None, charset: str | None
) -> tuple[Digests, bytes]:
    """The one streaming pass over a version's bytes; returns its digests and token-tree seed.

    Raises:
        InvalidInput: unreadable source or unknown charset.
    """
    seed = os.urandom(32)
    try:
        with open_source() as fh:
            d = digest_stream(fh, filename=filename, media_type=media_type, charset=charset, tree_seed=seed)
    except LookupError:
        raise InvalidInput(f"{display}: unknown charset {charset!r}") from None
    except OSError as e:
        raise InvalidInput(f"{display}: cannot read ({e.strerror})") from e
    return d, seed


def store_streamed(
    tx: Transaction,
    open_source: Opener,
    *,
    display: str,
    filename: str | None,
    media_type: str | None,
    charset: str | None,
    target_uri: str,
    date: str,
) -> tuple[Digests, RecordRef] | None:
    """Store a large new version that is not text in one read, its digests taken while it
    is written (``WarcWriter.write_streamed``); None, with nothing written, when its first
    chunk may be text: text takes ``digest_version`` then ``store_version``, because its
    charset, text digest and token tree (with its seed record) are known only at the end.

    The record is written before anyone knows whether the archive holds these bytes
    already: ``store_version`` (given the record as ``written``) then removes it again.

    Raises:
        InvalidInput: unreadable source, unknown charset, or a source that changed.
    """
    try:
        with open_source() as fh:
            first = fh.read(CHUNK)
            media = binary_media_type(first, filename=filename, media_type=media_type, charset=charset)
            if media is None:
                return None
            size = os.fstat(fh.fileno()).st_size
            try:
                ref, hashes = tx.warc.write_streamed(
                    source=fh, first=first, size=size, target_uri=target_uri, date=date, media_type=media
                )
            except SourceChanged:
                raise InvalidInput(f"{display}: file changed while it was being read") from None
    except LookupError:
        raise InvalidInput(f"{display}: unknown charset {charset!r}") from None
    except OSError as e:
        raise InvalidInput(f"{display}: cannot read ({e.strerror})") from e
    sha256, sha512 = hashes.finish()
    assert sha512 is not None
    digests = Digests(
        size=size,
        sha256=sha256.hex(),
        sha512=sha512.hex(),
        media_type=media,
        charset=None,
        text_sha256=None,
    )
    return digests, ref


def store_version(
    tx: Transaction,
    open_source: Opener,
    d: Digests,
    seed: bytes,
    *,
    display: str,
    language: str | None,
    record_type: str,
    refers_to: str | None,
    target_uri: str,
    date: str,
    batch: dict[str, dict[str, Any]],
    http_head: bytes | None = None,
    concurrent_to: str | None = None,
    written: RecordRef | None = None,
) -> StoredVersion:
    """Store one version whose digests ``d`` were taken by ``digest_version``.

    ``batch`` maps SHA-256 to content records written earlier in this
    transaction (the index does not know them yet). The bytes are hashed
    again while they are copied; a source that changed in between is refused.
    ``written``: the version's ``resource`` record, already written by
    ``store_streamed`` (removed again if the archive holds these bytes already).

    Raises:
        InvalidInput: the source became unreadable or changed.
    """
    existing = batch.get(d.sha256)
    if existing is None:
        row = tx.index.first_with_content(d.sha256)
        if row is not None:
            existing = _existing_record(tx, row)
    if existing is not None and written is not None:
        tx.warc.discard(written)
        written = None
    storage: dict[str, Any]
    if existing is not None:
        rec = tx.warc.write_revisit(
            refers_to_id=existing["record_id"],
            refers_to_uri=existing["uri"],
            refers_to_date=existing["date"],
            sha256_raw=bytes.fromhex(d.sha256),
            target_uri=target_uri,
            date=date,
            http_head=http_head or b"",
            concurrent_to=concurrent_to,
        )
        storage = {
            **rec.to_json(),
            "record_type": "revisit",
            "block_digest": rec.block_digest,
            "refers_to": {k: existing[k] for k in ("warc_file", "offset", "length", "record_id")},
        }
    else:
        if written is not None:
            rec = written
        else:
            with open_source() as fh:
                rec, copied = tx.warc.write_content(
                    record_type=record_type,
                    source=fh,
                    size=d.size,
                    sha256_raw=bytes.fromhex(d.sha256),
                    target_uri=target_uri,
                    date=date,
                    media_type=_warc_content_type(d),
                    refers_to=refers_to,
                    http_head=http_head,
                    concurrent_to=concurrent_to,
                )
            if copied != d.sha256:
                raise InvalidInput(f"{display}: file changed while it was being read")
        storage = {**rec.to_json(), "record_type": record_type, "block_digest": rec.block_digest}
        batch[d.sha256] = {**rec.to_json(), "uri": target_uri, "date": date}
    content: dict[str, Any] = {
        "size": d.size,
        "sha256": d.sha256,
        "sha512": d.sha512,
        "media_type": d.media_type,
        "charset": d.charset,
        "language": language,
        "text_sha256": d.text_sha256,
    }
    if existing is not None:
        # The token tree belongs to the stored record: a revisit shares its seed and tree.
        if existing.get("redactable") and existing.get("seed"):
            content["redactable"] = existing["redactable"]
            storage["seed"] = existing["seed"]
    elif d.redactable is not None:
        content["redactable"] = d.redactable
        seed_ref = tx.warc.write_metadata(
            block=seed,
            content_type=SEED_CONTENT_TYPE,
            target_uri=target_uri,
            date=date,
            refers_to=rec.record_id,
        )
        storage["seed"] = ref_json(seed_ref, hashlib.sha256(seed).hexdigest())
        batch[d.sha256].update(redactable=d.redactable, seed=storage["seed"])
    return StoredVersion(digests=d, content=content, storage=storage, record_id=rec.record_id)


def _warc_content_type(d: Digests) -> str:
    return f"{d.media_type}; charset={d.charset}" if d.charset else d.media_type


def _existing_record(tx: Transaction, row: Any) -> dict[str, Any]:
    """Where the archive already holds these bytes, with their seed and token tree."""
    out: dict[str, Any] = {
        "warc_file": row.content_warc_file,
        "offset": row.content_offset,
        "length": row.content_length,
        "record_id": row.content_record_id,
        "uri": row.url or f"urn:archiver:document:{row.document_id}",
        "date": row.time,
    }
    try:
        manifest = load_strict(tx.archive.store.read(row.path))
        if manifest["content"].get("redactable") and manifest["storage"].get("seed"):
            out["redactable"] = manifest["content"]["redactable"]
            out["seed"] = manifest["storage"]["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no tree to share: the new version simply has none
    return out
