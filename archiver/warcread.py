"""A strict, bounded WARC reader for verification and ``cat``.

We do not verify with warcio's iterator: it checks digests only when asked and
only if the caller reads to the end of a record, it cannot resume after a
corrupt gzip member, and it trusts header lengths. This reader takes one
gzip member at a known offset and checks everything:

- the member decompresses (bounded: at most ``CHUNK`` bytes of output per
  step, so a gzip bomb costs time in proportion to its output, never memory);
- the WARC header is at most ``MAX_HEADER`` bytes, starts ``WARC/1.0`` or
  ``WARC/1.1``, and has a sane ``Content-Length``;
- the block is exactly ``Content-Length`` bytes, followed by CRLF CRLF and the
  end of the member (one record per member, as we write them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from isal import isal_zlib

from .fasthash import b32encode

_ZLIB_ERROR = cast("type[Exception]", isal_zlib.error)

CHUNK = 1 << 20
READ_SIZE = 1 << 18
FEED = 1 << 14  # compressed bytes first given to the decompressor (then doubling)
MAX_HEADER = 64 * 1024
MAX_CONTENT_LENGTH = 1 << 53


def warc_digest(sha256_raw: bytes) -> str:
    """``sha256:`` + base32, the form of WARC digest headers (warcio checks this form)."""
    return "sha256:" + b32encode(sha256_raw)


class WarcFormatError(Exception):
    """The bytes at an offset are not one well-formed gzip-wrapped WARC record."""


@dataclass(slots=True)
class WarcHeaders:
    """Parsed WARC header fields (names lower-cased; first occurrence wins for ``get``)."""

    version: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    first: dict[str, str] = field(default_factory=dict)  # name -> its first value

    def get(self, name: str) -> str | None:
        """The first value of a header field, or None."""
        return self.first.get(name.lower())

    @property
    def content_length(self) -> int:
        value = self.get("content-length")
        if value is None or not value.isdigit() or len(value) > 16:
            raise WarcFormatError(f"bad Content-Length {value!r}")
        n = int(value)
        if n > MAX_CONTENT_LENGTH:
            raise WarcFormatError("Content-Length too large")
        return n


def parse_headers(raw: bytes) -> WarcHeaders:
    """Parse a WARC header block (without the final empty line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WarcFormatError("WARC header is not UTF-8") from e
    lines = text.split("\r\n")
    if lines[0] not in ("WARC/1.1", "WARC/1.0"):
        raise WarcFormatError(f"not a WARC record (starts {lines[0][:20]!r})")
    headers = WarcHeaders(version=lines[0])
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers.fields:
            k, v = headers.fields[-1]
            headers.fields[-1] = (k, v + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise WarcFormatError(f"malformed WARC header line {line[:40]!r}")
        headers.fields.append((name.lower(), value.strip()))
    # ten lookups per record, so an index (reversed: the first occurrence is written last)
    headers.first = dict(reversed(headers.fields))
    return headers


class RecordReader:
    """Reads the one gzip-member WARC record at ``offset`` of ``f``.

    Use ``headers`` first, then iterate ``block()`` to its end; after that,
    ``compressed_length`` is the member's size and the record is known to be
    complete. Any defect raises ``WarcFormatError``.
    """

    def __init__(self, f: BinaryIO, offset: int, pending: bytes | memoryview | None = None) -> None:
        """Start reading at ``offset``.

        ``pending``: bytes from ``offset`` on that the caller already read
        (``leftover`` of the previous record in a sequential scan); ``f`` is
        then positioned just after them and no seek happens.
        """
        self._f = f
        self.offset = offset
        if pending is None:
            f.seek(offset)
            pending = b""
        # Bytes read but not yet fed, as a view: a read of READ_SIZE holds a hundred small
        # records, and slicing bytes would copy the rest of it for each one of them.
        self._view = memoryview(pending)
        self._at = 0
        self._feed = FEED
        self._z = isal_zlib.decompressobj(31)
        self._consumed = 0  # compressed bytes fed
        self._buf = b""  # decompressed, not yet handed out
        self.compressed_length = 0
        self.leftover: bytes | memoryview = b""
        self.headers = self._read_headers()

    def _more(self) -> bool:
        """Decompress up to CHUNK more bytes into the buffer; False at member end."""
        if self._z.eof:
            return False
        if self._z.unconsumed_tail:
            data: bytes | memoryview = self._z.unconsumed_tail
        else:
            if self._at >= len(self._view):
                read = self._f.read(READ_SIZE)
                if not read:
                    raise WarcFormatError("truncated: gzip member ends early")
                self._view, self._at = memoryview(read), 0
            # What follows the member's end comes back as ``unused_data``, a copy: small
            # slices first (most records are a few KB), larger ones for a large record
            data = self._view[self._at : self._at + self._feed]
            self._feed = min(2 * self._feed, READ_SIZE)
            self._at += len(data)
            self._consumed += len(data)
        try:
            out = self._z.decompress(data, CHUNK)
        except _ZLIB_ERROR as e:
            raise WarcFormatError(f"gzip data is corrupt ({e})") from e
        self._buf += out
        return True

    def _read_headers(self) -> WarcHeaders:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > MAX_HEADER:
                raise WarcFormatError("WARC header too long")
            if not self._more():
                raise WarcFormatError("record ends inside its header")
        raw, self._buf = self._buf[:end], self._buf[end + 4 :]
        if end > MAX_HEADER:
            raise WarcFormatError("WARC header too long")
        return parse_headers(raw)

    def block(self) -> Iterator[bytes]:
        """Yield the record block in chunks, then check the trailer and member end."""
        remaining = self.headers.content_length
        while remaining:
            if not self._buf and not self._more():
                raise WarcFormatError("truncated: block shorter than Content-Length")
            piece = self._buf[:remaining]
            self._buf = self._buf[len(piece) :]
            remaining -= len(piece)
            if piece:
                yield piece
        while len(self._buf) < 4 and self._more():
            pass
        if self._buf[:4] != b"\r\n\r\n":
            raise WarcFormatError("record block is not followed by CRLF CRLF")
        self._buf = self._buf[4:]
        while not self._z.eof:
            if self._buf:
                raise WarcFormatError("extra bytes after the record in its gzip member")
            self._more()
        if self._buf:
            raise WarcFormatError("extra bytes after the record in its gzip member")
        unused = len(self._z.unused_data)
        # ``unused_data`` ends the slice fed last, which came from the view: no copy
        self.leftover = self._view[self._at - unused :]
        self.compressed_length = self._consumed - unused


@dataclass(slots=True)
class BlockDigests:
    """Digests of a record block, taken while reading it."""

    size: int
    sha256: bytes
    sha512: bytes | None


def digest_block(reader: RecordReader, want_sha512: bool) -> BlockDigests:
    """Drain the block, hashing it."""
    h256 = hashlib.sha256()
    h512 = hashlib.sha512() if want_sha512 else None
    size = 0
    for chunk in reader.block():
        size += len(chunk)
        h256.update(chunk)
        if h512 is not None:
            h512.update(chunk)
    return BlockDigests(size=size, sha256=h256.digest(), sha512=h512.digest() if h512 else None)


def next_member_offset(f: BinaryIO, start: int, limit: int) -> int | None:
    """The next offset >= ``start`` that looks like a gzip member start, for resyncing."""
    f.seek(start)
    pos = start
    tail = b""
    while pos < limit:
        data = f.read(CHUNK)
        if not data:
            return None
        hay = tail + data
        i = hay.find(b"\x1f\x8b\x08")
        if i >= 0:
            return pos - len(tail) + i
        tail = hay[-2:]
        pos += len(data)
    return None
