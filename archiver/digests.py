"""One streaming pass over a document: size, SHA-256, SHA-512, media type, text digest.

Memory is bounded by ``CHUNK`` whatever the document's size.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import IO, Any

from .parhash import Hashes
from .redaction import TokenTreeBuilder
from .textdigest import TextDigester, text_codec

CHUNK = 1 << 20

# Built-in table only: the system's /etc/mime.types differs between machines,
# and the same file must get the same media type wherever it is ingested.
_MIME = mimetypes.MimeTypes(filenames=())

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"WARC/", "application/warc"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)

_TEXTUAL = ("application/json", "application/xml", "application/javascript", "image/svg+xml")


@dataclass(frozen=True, slots=True, kw_only=True)
class Digests:
    """What one pass over the bytes established."""

    size: int
    sha256: str
    sha512: str
    media_type: str
    charset: str | None
    text_sha256: str | None
    redactable: dict[str, Any] | None = None


def sniff(first: bytes, filename: str | None) -> str | None:
    """Media type from magic bytes, else from the file name's extension; None if unknown."""
    for magic, mt in _MAGIC:
        if first.startswith(magic):
            return mt
    if first[8:12] == b"WEBP" and first.startswith(b"RIFF"):
        return "image/webp"
    head = first[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if filename:
        guessed, _ = _MIME.guess_type(filename, strict=False)
        if guessed:
            return guessed
    return None


def is_textual(media_type: str) -> bool:
    """Whether a text digest applies to this media type."""
    return media_type.startswith("text/") or media_type in _TEXTUAL or media_type.endswith("+json")


def binary_media_type(
    first: bytes, *, filename: str | None, media_type: str | None = None, charset: str | None = None
) -> str | None:
    """The media type ``digest_stream`` will give content whose first chunk is ``first``,
    if that chunk already shows the content is not text; None if it may be text.

    Raises:
        LookupError: ``charset`` names no codec Python knows.
    """
    if charset is not None:
        text_codec(charset)
    detected = media_type or sniff(first, filename)
    if detected is not None and not is_textual(detected):
        return detected
    text = TextDigester(charset or "utf-8")
    text.update(first)
    if not text.failed:
        return None
    return detected or "application/octet-stream"


def digest_stream(
    stream: IO[bytes],
    *,
    filename: str | None,
    media_type: str | None = None,
    charset: str | None = None,
    tree_seed: bytes | None = None,
) -> Digests:
    """Read ``stream`` to its end once, computing everything a manifest's ``content`` needs.

    ``media_type`` and ``charset`` are the archivist's declarations and win
    over detection. With ``tree_seed``, text also gets its redaction token
    tree (``redaction.py``). Undeclared content that decodes as UTF-8 without NUL is
    ``text/plain``; otherwise ``application/octet-stream``.

    Raises:
        LookupError: ``charset`` names no codec Python knows.
        OSError: the stream could not be read.
    """
    if charset is not None:
        text_codec(charset)
    hashes = Hashes()
    first = stream.read(CHUNK)
    detected = media_type or sniff(first, filename)
    text: TextDigester | None = None
    tree: TokenTreeBuilder | None = None
    if detected is None or is_textual(detected):
        tree = TokenTreeBuilder(tree_seed) if tree_seed is not None else None
        text = TextDigester(charset or "utf-8", tree.feed if tree is not None else None)
    chunk = first
    try:
        while chunk:
            hashes.update(chunk)
            if text is not None:
                text.update(chunk)
                if text.failed:
                    text = None
            chunk = stream.read(CHUNK)
        sha256, sha512 = hashes.finish()
    finally:
        hashes.close()
    size = hashes.size
    assert sha512 is not None
    text_digest = text.result() if text is not None else None
    if detected is None:
        detected = "text/plain" if text_digest is not None and size else "application/octet-stream"
    return Digests(
        size=size,
        sha256=sha256.hex(),
        sha512=sha512.hex(),
        media_type=detected,
        charset=(charset or "utf-8").lower() if text_digest is not None else None,
        text_sha256=text_digest,
        redactable=tree.finish() if tree is not None and text_digest is not None else None,
    )
