"""Writes the WARC store: the only module that uses warcio.

One gzip member per record (ISA-L level 1: standard gzip, several times
faster than zlib's default), records appended to ``store/NNNNNN.warc.gz``,
a ``warcinfo`` record first in each file, rotation at the archive's size
limit. Nothing is durable until ``sync``; ``rollback`` truncates every file
back to where this writer found it, so a failed command leaves no bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from isal import isal_zlib
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from .__version__ import TOOL_NAME, __version__
from .errors import StoreError
from .fasthash import b32encode
from .fsutil import crash_testing, crashpoint, fsync_dir, io_error, start_writeback
from .ids import uuid4_str
from .layout import MANIFEST_CONTENT_TYPE as MANIFEST_CONTENT_TYPE
from .layout import SEED_CONTENT_TYPE as SEED_CONTENT_TYPE
from .layout import Layout, warc_number
from .parhash import Hashes, Helper
from .warcread import warc_digest as warc_digest

COMPRESSION_LEVEL = 1
CHUNK = 1 << 20
SAMPLE = 1 << 20  # records up to this size are compressed in one call
PROBE = 1 << 18  # bytes of a larger record compressed to judge whether it compresses
INCOMPRESSIBLE = 0.95  # compressed/original above this: store the record
WRITEBACK = 32 << 20  # a streamed record's bytes are sent on to the disk this many at a time
DIFF_CONTENT_TYPE = "text/x-diff; charset=utf-8"
PROOF_CONTENT_TYPE = "application/vnd.archiver.redaction-proof+json"
HTTP_RESPONSE_TYPE = "application/http; msgtype=response"
HTTP_REQUEST_TYPE = "application/http; msgtype=request"


class SourceChanged(StoreError):
    """The bytes being stored are not the size they were when the command began."""


def new_record_id() -> str:
    """A fresh ``<urn:uuid:...>`` WARC-Record-ID."""
    return f"<urn:uuid:{uuid4_str()}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordRef:
    """Where a record was written."""

    warc_file: str
    offset: int
    length: int
    record_id: str
    block_digest: str

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``storage`` form (without ``record_type``)."""
        return {
            "warc_file": self.warc_file,
            "offset": self.offset,
            "length": self.length,
            "record_id": self.record_id,
        }


class _GzipMember:
    """File-like sink compressing everything written to it into one gzip member.

    A record of at most ``SAMPLE`` bytes (every article, seed and manifest) is
    compressed in one call with ISA-L level 1. A larger record is judged by its
    first ``SAMPLE`` bytes: data that does not compress (photographs, video,
    archives) is stored (deflate level 0: no CPU spent for nothing, and reading
    it back is a copy), other data takes ISA-L level 1. Either way the larger
    record is compressed 1 MiB at a time by a helper thread, overlapping the
    caller's reading and hashing; zlib releases the GIL while it works.
    Every form is a standard gzip member.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._held: list[bytes] = []
        self._held_size = 0
        self._z: Any = None  # the member's compressor, once the record is known to be large
        self._helper: Helper | None = None
        self.written = 0  # compressed bytes written to ``out``

    def write(self, data: bytes) -> int:
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size >= SAMPLE:
            self._hand_over()
        return len(data)

    def _emit(self, compressed: bytes) -> None:
        self._out.write(compressed)
        self.written += len(compressed)

    def _hand_over(self) -> None:
        data = b"".join(self._held)
        self._held.clear()
        self._held_size = 0
        if self._z is None:
            if compresses(data):
                self._z = isal_zlib.compressobj(COMPRESSION_LEVEL, isal_zlib.DEFLATED, 31)
            else:
                self._z = zlib.compressobj(0, zlib.DEFLATED, 31)
            self._helper = Helper("archiver-gzip")
        assert self._helper is not None
        # one helper thread: compression and writes happen in the order of the data
        self._helper.submit(self._compress, data)

    def _compress(self, data: bytes) -> None:
        self._emit(self._z.compress(data))

    def flush(self) -> None:
        # warcio calls flush() at the end of each record: that ends the member.
        if self._z is None:
            self._emit(isal_zlib.compress(b"".join(self._held), COMPRESSION_LEVEL, 31))
            self._held.clear()
            return
        if self._held:
            self._hand_over()
        try:
            assert self._helper is not None
            self._helper.drain()
        finally:
            self.close()
        self._emit(self._z.flush())

    def close(self) -> None:
        """Stop the helper thread (after a failure, pending work is abandoned)."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no time, OS unknown
STORED_MAX = 0xFFFF  # the most a stored deflate block holds


def stored_blocks(data: bytes | memoryview, *, final: bool = False) -> bytes:
    """``data`` as stored (uncompressed) deflate blocks; the last one final if asked."""
    view = memoryview(data)
    if not view:
        return bytes([int(final)]) + b"\x00\x00\xff\xff"
    parts: list[bytes | memoryview] = []
    for i in range(0, len(view), STORED_MAX):
        piece = view[i : i + STORED_MAX]
        last = final and i + STORED_MAX >= len(view)
        parts += [struct.pack("<BHH", int(last), len(piece), STORED_MAX ^ len(piece)), piece]
    return b"".join(parts)


def compresses(sample: bytes) -> bool:
    """Whether data like ``sample`` is worth compressing (it is not already compressed)."""
    probe = sample[:PROBE]
    return len(isal_zlib.compress(probe, COMPRESSION_LEVEL, -15)) <= len(probe) * INCOMPRESSIBLE


class _StreamedBody:
    """The block of a streamed record as raw deflate blocks, none final, written by a
    helper thread in order while the caller reads and hashes the next chunk; keeps the
    CRC-32 and size of what it was given for the gzip trailer."""

    def __init__(self, out: BinaryIO, offset: int, *, compress: bool) -> None:
        """``offset``: where in the file ``out`` the body's first byte lands."""
        self._out = out
        self._z: Any = isal_zlib.compressobj(COMPRESSION_LEVEL, isal_zlib.DEFLATED, -15) if compress else None
        self.crc = 0
        self.size = 0
        self.written = 0
        self._offset = offset
        self._flushed = 0  # bytes of the body handed to the kernel for writeback
        self._helper = Helper("archiver-warc")

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.written += len(data)

    def _take(self, chunk: bytes) -> None:
        self.crc = isal_zlib.crc32(chunk, self.crc)  # (the same CRC-32: ISA-L's is 20 times zlib's here)
        self.size += len(chunk)
        self._emit(self._z.compress(chunk) if self._z is not None else stored_blocks(chunk))
        if self.written - self._flushed >= WRITEBACK:
            # start the disk writes now: the command's fsync would otherwise wait for all of them
            self._out.flush()
            start_writeback(self._out.fileno(), self._offset + self._flushed, self.written - self._flushed)
            self._flushed = self.written

    def feed(self, chunk: bytes) -> None:
        """Queue the next chunk (the error of an earlier one, if any, is raised here)."""
        self._helper.submit(self._take, chunk)

    def finish(self) -> None:
        """Write everything queued; a compressed block ends on a byte boundary (sync flush)."""
        self._helper.drain()
        if self._z is not None:
            self._emit(self._z.flush(isal_zlib.Z_SYNC_FLUSH))
        self.close()

    def close(self) -> None:
        """Stop the helper thread (after a failure, queued chunks are dropped)."""
        self._helper.close()


class _HashingReader(io.RawIOBase):
    """Passes a stream through, hashing what is read: detects a source changing under us."""

    def __init__(self, src: IO[bytes]) -> None:
        self._src = src
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(CHUNK if n < 0 else min(n, CHUNK))
        self.sha256.update(data)
        self.size += len(data)
        return data


class _RawHead(StatusAndHeaders):  # type: ignore[misc]
    """An HTTP head warcio writes byte for byte (it would otherwise re-serialise parsed fields)."""

    def __init__(self, raw: bytes) -> None:
        super().__init__("", [], protocol="")
        self.headers_buff = raw

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        pass

    def __bool__(self) -> bool:  # warcio tests `if record.http_headers:`; ours has no parsed fields
        return True


class _Prefixed(io.RawIOBase):
    """A head's bytes, then a stream's."""

    def __init__(self, head: bytes, rest: io.RawIOBase) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._rest.read(n) or b""


def _block_sha256(head: bytes, source: IO[bytes]) -> bytes:
    """SHA-256 of head + the stream's remaining bytes; the stream is rewound after."""
    start = source.tell()
    h = hashlib.sha256(head)
    while data := source.read(CHUNK):
        h.update(data)
    source.seek(start)
    return h.digest()


def _small_head(headers: list[tuple[str, str]], content_type: str, block: bytes) -> bytes:
    """The WARC head warcio's writer gives a record with this in-memory block, formatted as
    its ``StatusAndHeaders`` does (tests compare whole records): its SHA-1 payload digest
    on a record that has none, then Content-Type and Content-Length replaced or added."""
    fields = list(headers)
    if headers[0][1] not in _NO_PAYLOAD_DIGEST and not any(
        k.lower() == "warc-payload-digest" for k, _ in fields
    ):
        fields.append(
            ("WARC-Payload-Digest", "sha1:" + b32encode(hashlib.sha1(block, usedforsecurity=False).digest()))
        )
    for name, value in (("Content-Type", content_type), ("Content-Length", str(len(block)))):
        at = next((i for i, (k, _) in enumerate(fields) if k.lower() == name.lower()), None)
        if at is None:
            fields.append((name, value))
        else:
            fields[at] = (fields[at][0], value)
    return ("WARC/1.1\r\n" + "".join([f"{k}: {v}\r\n" for k, v in fields]) + "\r\n").encode("utf-8")


class WarcWriter:
    """Appends records to the archive's current WARC file."""

    def __init__(self, layout: Layout, archive_id: str, rotation_bytes: int) -> None:
        self._layout = layout
        self._archive_id = archive_id
        self._rotation = rotation_bytes
        self._fh: BinaryIO | None = None
        self._path: Path | None = None
        self._pos = 0
        # file -> size when we found it (None: created by us), for rollback
        self._touched: dict[Path, int | None] = {}
        self._new_files = False
        # one warcio writer for all records (making one looks up the host name)
        self._warcio = WARCWriter(None, gzip=False, warc_version="WARC/1.1")

    # -- files ---------------------------------------------------------------
    def _open_current(self) -> None:
        files = self._layout.warc_files()
        if files:
            path = files[-1]
            size = path.stat().st_size
            if size < self._rotation:
                self._attach(path, new=False)
                return
            number = warc_number(path.name) + 1
        else:
            number = 0
        self._attach(self._layout.store / f"{number:06d}.warc.gz", new=True)

    def _attach(self, path: Path, *, new: bool) -> None:
        if self._fh is not None:
            self._fh.close()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        if new:
            flags |= os.O_EXCL
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as e:
            raise io_error("open WARC file", path, e) from e
        self._fh = os.fdopen(fd, "ab", buffering=CHUNK)
        self._path = path
        self._pos = os.fstat(fd).st_size
        if path not in self._touched:
            self._touched[path] = None if new else self._pos
        if new:
            self._new_files = True
            self._write_warcinfo(path.name)

    def _write_warcinfo(self, filename: str) -> None:
        body = (
            f"software: {TOOL_NAME}/{__version__}\r\n"
            "format: WARC File Format 1.1\r\n"
            "conformsTo: http://iipc.github.io/warc-specifications/specifications/"
            "warc-format/warc-1.1/\r\n"
            f"isPartOf: {self._archive_id}\r\n"
        ).encode()
        headers = [
            ("WARC-Type", "warcinfo"),
            ("WARC-Record-ID", new_record_id()),
            ("WARC-Date", _warc_now()),
            ("WARC-Filename", filename),
            ("WARC-Block-Digest", warc_digest(hashlib.sha256(body).digest())),
        ]
        self._write_small(headers, "application/warc-fields", body)

    def _write(
        self,
        headers: list[tuple[str, str]],
        content_type: str,
        payload: BinaryIO,
        length: int,
        revisit_head: bytes | None = None,
    ) -> tuple[int, int]:
        assert self._fh is not None
        start = self._pos
        member = _GzipMember(self._fh)
        writer = self._warcio
        writer.out = member  # each record its own gzip member
        rec_type = headers[0][1]
        record = writer.create_warc_record(
            "",
            rec_type,
            payload=payload,
            length=length,
            warc_content_type=content_type,
            warc_headers=StatusAndHeaders("", headers, protocol="WARC/1.1"),
        )
        if revisit_head:
            # warcio writes only the HTTP head of a revisit record: hand it our bytes as they are
            record.http_headers = _RawHead(revisit_head)
        try:
            writer.write_record(record)
            # nothing is durable before ``sync`` anyway: records stay in the file buffer
            self._pos = start + member.written
            if crash_testing():
                self._fh.flush()
            crashpoint("warc-record-written")
        except OSError as e:
            raise io_error("write WARC record to", self._path or "store", e) from e
        finally:
            member.close()
        return start, self._pos - start

    def _write_small(
        self, headers: list[tuple[str, str]], content_type: str, block: bytes
    ) -> tuple[int, int]:
        """A record whose block is in memory (at most ``SAMPLE`` bytes): the same bytes as
        ``_write`` (tests compare the two), the header formatted by warcio, without the
        per-record machinery of its writer, which was a fifth of ingesting an article."""
        assert self._fh is not None
        member = isal_zlib.compress(
            _small_head(headers, content_type, block) + block + _RECORD_END, COMPRESSION_LEVEL, 31
        )
        start = self._pos
        try:
            self._fh.write(member)
            self._pos = start + len(member)
            if crash_testing():
                self._fh.flush()
            crashpoint("warc-record-written")
        except OSError as e:
            raise io_error("write WARC record to", self._path or "store", e) from e
        return start, len(member)

    def _ensure_room(self) -> None:
        if self._fh is None:
            self._open_current()
        elif self._pos >= self._rotation:
            assert self._path is not None
            number = warc_number(self._path.name) + 1
            self._attach(self._layout.store / f"{number:06d}.warc.gz", new=True)

    # -- records -------------------------------------------------------------
    def write_content(
        self,
        *,
        record_type: str,
        source: IO[bytes],
        size: int,
        sha256_raw: bytes,
        target_uri: str,
        date: str,
        media_type: str,
        refers_to: str | None = None,
        http_head: bytes | None = None,
        concurrent_to: str | None = None,
    ) -> tuple[RecordRef, str]:
        """Append a ``resource`` (captured bytes), ``conversion`` (a new version derived
        from the record ``refers_to``) or ``response`` (``http_head`` then the payload)
        whose payload is ``size`` bytes of ``source``.

        Returns the record's location and the SHA-256 (hex) of the payload bytes
        actually copied, which the caller compares with its first pass.
        """
        self._ensure_room()
        payload_digest = warc_digest(sha256_raw)
        rid = new_record_id()
        headers = [
            ("WARC-Type", record_type),
            ("WARC-Record-ID", rid),
            ("WARC-Date", date),
            ("WARC-Target-URI", target_uri),
        ]
        if refers_to is not None:
            headers.append(("WARC-Refers-To", refers_to))
        if concurrent_to is not None:
            headers.append(("WARC-Concurrent-To", concurrent_to))
        hashing = _HashingReader(source)
        block: io.RawIOBase = hashing
        digest = payload_digest
        if http_head is not None:
            # the block digest covers head and payload: one more pass over the payload, by
            # design of WARC; done here while the payload is still in the page cache
            digest = warc_digest(_block_sha256(http_head, source))
            block = _Prefixed(http_head, hashing)
            size += len(http_head)
            media_type = HTTP_RESPONSE_TYPE
        headers += [("WARC-Block-Digest", digest), ("WARC-Payload-Digest", payload_digest)]
        if http_head is None and size <= SAMPLE:
            pieces: list[bytes] = []
            while (got := sum(map(len, pieces))) <= size and (piece := hashing.read(size + 1 - got)):
                pieces.append(piece)  # one read, unless the source returns short reads
            offset, length = self._write_small(headers, media_type, b"".join(pieces))
        else:
            offset, length = self._write(headers, media_type, block, size)  # type: ignore[arg-type]
        if http_head is not None:
            size -= len(http_head)
        if hashing.size != size:
            raise SourceChanged(f"source changed during ingest: expected {size} bytes, read {hashing.size}")
        assert self._path is not None
        ref = RecordRef(
            warc_file=self._path.name, offset=offset, length=length, record_id=rid, block_digest=digest
        )
        return ref, hashing.sha256.hexdigest()

    def write_streamed(
        self,
        *,
        source: IO[bytes],
        first: bytes,
        size: int,
        target_uri: str,
        date: str,
        media_type: str,
    ) -> tuple[RecordRef, Hashes]:
        """Append a ``resource`` record of the ``size`` bytes of ``source`` (``first``: its
        first chunk, already read), reading them once: hashed while they are written.

        For large content that is not text (photographs, video, archives) this halves the
        reading and hashing of ``write_content``, whose caller hashes everything first
        because the WARC header, which comes first, carries the block's digests. Here
        the header (formatted by warcio as for any record) is written with placeholder
        digests of the same length, inside stored deflate blocks, and overwritten in
        place once the digests are known; the member's CRC-32 is combined from the
        header's and the rest's. The rewrite touches only bytes this writer appended
        and nobody reads before the commit. The result is an ordinary gzip member.

        Returns the record's location and the hashes of the block (SHA-256, SHA-512).

        Raises:
            SourceChanged: the source is not ``size`` bytes long (it changed).
            StoreError: writing failed.
        """
        self._ensure_room()
        assert self._fh is not None and self._path is not None
        rid = new_record_id()
        head = _resource_head(rid, date, target_uri, media_type, size, warc_digest(bytes(32)))
        start = self._pos
        hashes = Hashes()
        framed = stored_blocks(head)
        body = _StreamedBody(self._fh, start + len(GZIP_HEADER) + len(framed), compress=compresses(first))
        try:
            self._fh.write(GZIP_HEADER + framed)
            chunk = first
            while chunk:
                if hashes.size + len(chunk) > size:
                    break
                hashes.update(chunk)
                body.feed(chunk)
                chunk = source.read(CHUNK)
            if chunk or hashes.size != size:
                raise SourceChanged(f"source changed during ingest: expected {size} bytes")
            body.finish()
            sha256, _ = hashes.finish()
            digest = warc_digest(sha256)
            head = _resource_head(rid, date, target_uri, media_type, size, digest)
            crc = zlib.crc32(_RECORD_END, isal_zlib.crc32_combine(zlib.crc32(head), body.crc, body.size))
            tail = stored_blocks(_RECORD_END, final=True) + struct.pack(
                "<II", crc, (len(head) + size + len(_RECORD_END)) & 0xFFFFFFFF
            )
            self._fh.write(tail)
            self._fh.flush()
            self._rewrite(start + len(GZIP_HEADER), stored_blocks(head), len(framed))
            self._pos = start + len(GZIP_HEADER) + len(framed) + body.written + len(tail)
            crashpoint("warc-record-written")
        except OSError as e:
            raise io_error("write WARC record to", self._path, e) from e
        finally:
            body.close()
            hashes.close()
        ref = RecordRef(
            warc_file=self._path.name,
            offset=start,
            length=self._pos - start,
            record_id=rid,
            block_digest=digest,
        )
        return ref, hashes

    def _rewrite(self, offset: int, data: bytes, expected: int) -> None:
        """Overwrite ``expected`` bytes this writer appended at ``offset`` (a second descriptor:
        writes through the appending one always land at the end)."""
        assert self._path is not None and len(data) == expected
        fd = os.open(self._path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            view = memoryview(data)
            while view:
                n = os.pwrite(fd, view, offset)
                view, offset = view[n:], offset + n
        finally:
            os.close(fd)

    def discard(self, ref: RecordRef) -> None:
        """Remove the record just written (its bytes turned out to be in the archive already)."""
        assert self._fh is not None and self._path is not None
        assert ref.warc_file == self._path.name and ref.offset + ref.length == self._pos
        try:
            self._fh.flush()
            os.ftruncate(self._fh.fileno(), ref.offset)
        except OSError as e:
            raise io_error("truncate", self._path, e) from e
        self._pos = ref.offset

    def write_revisit(
        self,
        *,
        refers_to_id: str,
        refers_to_uri: str,
        refers_to_date: str,
        sha256_raw: bytes,
        target_uri: str,
        date: str,
        http_head: bytes = b"",
        concurrent_to: str | None = None,
    ) -> RecordRef:
        """Append a ``revisit`` record (profile identical-payload-digest): same bytes seen again.

        Its block is empty, or for a web capture the new response's HTTP head.
        """
        self._ensure_room()
        rid = new_record_id()
        empty = warc_digest(hashlib.sha256(http_head).digest())
        headers = [
            ("WARC-Type", "revisit"),
            ("WARC-Record-ID", rid),
            ("WARC-Date", date),
            ("WARC-Target-URI", target_uri),
            ("WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"),
            ("WARC-Refers-To", refers_to_id),
            ("WARC-Refers-To-Target-URI", refers_to_uri),
            ("WARC-Refers-To-Date", refers_to_date),
            ("WARC-Payload-Digest", warc_digest(sha256_raw)),
            ("WARC-Block-Digest", empty),
        ]
        if concurrent_to is not None:
            headers.append(("WARC-Concurrent-To", concurrent_to))
        content_type = HTTP_RESPONSE_TYPE if http_head else "application/octet-stream"
        offset, length = self._write(headers, content_type, io.BytesIO(b""), 0, revisit_head=http_head)
        assert self._path is not None
        return RecordRef(
            warc_file=self._path.name, offset=offset, length=length, record_id=rid, block_digest=empty
        )

    def write_metadata(
        self,
        *,
        block: bytes,
        content_type: str,
        target_uri: str,
        date: str,
        concurrent_to: str | None = None,
        refers_to: str | None = None,
        record_type: str = "metadata",
    ) -> RecordRef:
        """Append a ``metadata`` record (a signed manifest, a sealed seed, a diff, a proof),
        or a ``request`` record (the HTTP request of a capture).

        Never rotates: it stays in the same file as the record it accompanies.
        """
        if self._fh is None:
            self._open_current()
        rid = new_record_id()
        digest = warc_digest(hashlib.sha256(block).digest())
        headers = [
            ("WARC-Type", record_type),
            ("WARC-Record-ID", rid),
            ("WARC-Date", date),
            ("WARC-Target-URI", target_uri),
        ]
        if concurrent_to is not None:
            headers.append(("WARC-Concurrent-To", concurrent_to))
        if refers_to is not None:
            headers.append(("WARC-Refers-To", refers_to))
        headers.append(("WARC-Block-Digest", digest))
        if record_type == "request":
            # the payload of an HTTP message is what follows its head (empty for a GET)
            payload = block.partition(b"\r\n\r\n")[2]
            headers.append(("WARC-Payload-Digest", warc_digest(hashlib.sha256(payload).digest())))
        if len(block) <= SAMPLE:
            offset, length = self._write_small(headers, content_type, block)
        else:
            offset, length = self._write(headers, content_type, io.BytesIO(block), len(block))
        assert self._path is not None
        return RecordRef(
            warc_file=self._path.name, offset=offset, length=length, record_id=rid, block_digest=digest
        )

    # -- durability ----------------------------------------------------------
    def hand_to_os(self) -> None:
        """Pass the records written so far to the operating system (no fsync): a killed
        process then loses none of them. Manifests naming them are written only after."""
        try:
            if self._fh is not None:
                self._fh.flush()
        except OSError as e:
            raise io_error("write WARC file", self._path or "store", e) from e

    def sync(self) -> None:
        """Make everything written durable (file data, and new directory entries)."""
        try:
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            if self._new_files:
                fsync_dir(self._layout.store)
        except OSError as e:
            raise io_error("sync WARC file", self._path or "store", e) from e

    def close(self) -> None:
        """Close the current file."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def rollback(self) -> None:
        """Remove every byte this writer appended; best effort, never raises."""
        self.close()
        for path, size in self._touched.items():
            with contextlib.suppress(OSError):
                if size is None:
                    path.unlink()
                else:
                    os.truncate(path, size)
        with contextlib.suppress(OSError):
            fsync_dir(self._layout.store)
        self._touched.clear()

    def touched_files(self) -> Iterator[Path]:
        """Files this writer appended to."""
        return iter(self._touched)


_RECORD_END = b"\r\n\r\n"
_NO_PAYLOAD_DIGEST = ("warcinfo", "revisit")  # warcio's RecordBuilder.NO_PAYLOAD_DIGEST_TYPES


def _resource_head(rid: str, date: str, target_uri: str, media_type: str, size: int, digest: str) -> bytes:
    """The WARC header of a ``resource`` record, as warcio writes it in ``_write``."""
    head = StatusAndHeaders(
        "",
        [
            ("WARC-Type", "resource"),
            ("WARC-Record-ID", rid),
            ("WARC-Date", date),
            ("WARC-Target-URI", target_uri),
            ("WARC-Block-Digest", digest),
            ("WARC-Payload-Digest", digest),
        ],
        protocol="WARC/1.1",
    )
    head.replace_header("Content-Type", media_type)
    head.replace_header("Content-Length", str(size))
    return bytes(head.to_bytes(encoding="utf-8"))


def _warc_now() -> str:
    from .timeutil import format_time, system_clock

    return format_time(system_clock())
