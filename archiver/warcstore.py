"""Writes the WARC store: the only module that uses warcio.

One gzip member per record (ISA-L level 1: standard gzip, several times
faster than zlib's default), records appended to ``store/NNNNNN.warc.gz``,
a ``warcinfo`` record first in each file, rotation at the archive's size
limit. Nothing is durable until ``sync``; ``rollback`` truncates every file
back to where this writer found it, so a failed command leaves no bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from isal import isal_zlib
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from .__version__ import TOOL_NAME, __version__
from .errors import StoreError
from .fsutil import crashpoint, fsync_dir, io_error
from .layout import Layout, warc_number

COMPRESSION_LEVEL = 1
CHUNK = 1 << 20
MANIFEST_CONTENT_TYPE = "application/vnd.archiver.manifest+json"
SEED_CONTENT_TYPE = "application/vnd.archiver.sealed-seed"
DIFF_CONTENT_TYPE = "text/x-diff; charset=utf-8"
PROOF_CONTENT_TYPE = "application/vnd.archiver.redaction-proof+json"
HTTP_RESPONSE_TYPE = "application/http; msgtype=response"
HTTP_REQUEST_TYPE = "application/http; msgtype=request"


def warc_digest(sha256_raw: bytes) -> str:
    """``sha256:`` + base32, the form warcio checks."""
    return "sha256:" + base64.b32encode(sha256_raw).decode("ascii")


def new_record_id() -> str:
    """A fresh ``<urn:uuid:...>`` WARC-Record-ID."""
    return f"<urn:uuid:{uuid.uuid4()}>"


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
    """File-like sink compressing everything written to it into one gzip member."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._z = isal_zlib.compressobj(COMPRESSION_LEVEL, isal_zlib.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        self._out.write(self._z.compress(data))
        return len(data)

    def flush(self) -> None:
        # warcio calls flush() at the end of each record: that ends the member.
        self._out.write(self._z.flush())


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
        self._write(headers, "application/warc-fields", io.BytesIO(body), len(body))

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
        writer = WARCWriter(member, gzip=False, warc_version="WARC/1.1")
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
            self._fh.flush()
            self._pos = self._fh.tell()
            crashpoint("warc-record-written")
        except OSError as e:
            raise io_error("write WARC record to", self._path or "store", e) from e
        return start, self._pos - start

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
        offset, length = self._write(headers, media_type, block, size)  # type: ignore[arg-type]
        if http_head is not None:
            size -= len(http_head)
        if hashing.size != size:
            raise StoreError(f"source changed during ingest: expected {size} bytes, read {hashing.size}")
        assert self._path is not None
        ref = RecordRef(
            warc_file=self._path.name, offset=offset, length=length, record_id=rid, block_digest=digest
        )
        return ref, hashing.sha256.hexdigest()

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
        offset, length = self._write(headers, content_type, io.BytesIO(block), len(block))
        assert self._path is not None
        return RecordRef(
            warc_file=self._path.name, offset=offset, length=length, record_id=rid, block_digest=digest
        )

    # -- durability ----------------------------------------------------------
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


def _warc_now() -> str:
    from .timeutil import format_time, system_clock

    return format_time(system_clock())
