"""``archiver ingest --warc FILE``: records of WARCs made by other tools, as documents.

Each ``response`` and ``resource`` record of the file becomes a ``captured``
event: a response is stored as a response record (its HTTP head and payload
byte for byte), a resource as a resource record. The manifest's
``source.warc`` names the source file, its SHA-256 and the record's own
WARC-Record-ID, type, date and target URI: the record's provenance as the
file states it, which we vouch for only as "this file said so".

Every record's own ``WARC-Block-Digest`` and ``WARC-Payload-Digest`` (any of
sha1, sha256, sha512, md5; base32 or hex) are checked while it is read. A
record whose digest does not match, or a file that is not a readable WARC,
stops the import with nothing written, unless ``skip_bad`` asks to import
the sound records and report each bad one. Other record types (request,
revisit, metadata, warcinfo) are not documents and are left out; the import
reports how many.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from .archive import Archive
from .commit import Transaction
from .errors import InvalidInput
from .httpblock import MAX_HEAD, PayloadSplitter, is_http_record
from .ids import uuid4_hex
from .ingest import Ingested, captured_manifest, recapture_of
from .keystore import SigningKey
from .metadata import merge, validate
from .schema import is_valid
from .sealing import seal_and_queue
from .storing import digest_version, store_version
from .timeutil import format_time

CHUNK = 1 << 20
ALGORITHMS = {"sha1": "sha1", "sha256": "sha256", "sha512": "sha512", "md5": "md5"}
MAX_HEADER_VALUE = 8192


@dataclass(slots=True)
class ImportReport:
    """What ``ingest --warc`` did."""

    imported: list[Ingested] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # one line per record refused
    skipped: dict[str, int] = field(default_factory=dict)  # record type -> count left out


class _Digest:
    """A WARC digest header (``alg:value``), checked against the bytes fed to it."""

    def __init__(self, header: str | None) -> None:
        self.header = header
        self.h: Any = None
        if header and ":" in header:
            alg, _, value = header.partition(":")
            name = ALGORITHMS.get(alg.strip().lower().replace("-", ""))
            if name is not None:
                self.h = hashlib.new(name)
                self.value = value.strip()

    def update(self, data: bytes) -> None:
        if self.h is not None:
            self.h.update(data)

    def ok(self) -> bool:
        """True when absent, of an unknown algorithm, or matching (base32 or hex)."""
        if self.h is None:
            return True
        got: bytes = self.h.digest()
        v = self.value
        try:
            if len(v) == 2 * len(got) and all(c in "0123456789abcdefABCDEF" for c in v):
                return bytes.fromhex(v) == got
            return base64.b32decode(v.upper() + "=" * (-len(v) % 8)) == got
        except (binascii.Error, ValueError):
            return False


@dataclass(slots=True)
class _Spooled:
    """One record read from the source file: its head in memory, its payload on disk."""

    record_type: str
    record_id: str
    date: str | None
    target_uri: str | None
    content_type: str | None
    http_head: bytes | None
    payload: Path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            h.update(data)
    return h.hexdigest()


def _header(rec: Any, name: str) -> str | None:
    value = rec.rec_headers.get_header(name)
    if value is None:
        return None
    value = str(value)
    if len(value) > MAX_HEADER_VALUE:
        raise InvalidInput(f"{name} header longer than {MAX_HEADER_VALUE} characters")
    return value


def _spool(rec: Any, tmpdir: Path) -> tuple[_Spooled | None, str | None]:
    """Read one record's block, checking its digests; (record, None) or (None, why it is bad)."""
    rtype = _header(rec, "WARC-Type") or ""
    rid = _header(rec, "WARC-Record-ID") or "(no WARC-Record-ID)"
    ctype = _header(rec, "Content-Type")
    block_d = _Digest(_header(rec, "WARC-Block-Digest"))
    payload_d = _Digest(_header(rec, "WARC-Payload-Digest"))
    http = is_http_record(rtype, ctype)
    split = PayloadSplitter() if http else None
    fd, name = tempfile.mkstemp(dir=tmpdir, prefix="payload-")
    path = Path(name)
    declared = _header(rec, "Content-Length") or ""
    got = 0
    with os.fdopen(fd, "wb") as out:
        stream = rec.raw_stream
        while data := stream.read(CHUNK):
            got += len(data)
            block_d.update(data)
            if split is not None:
                data = split.feed(data)
            payload_d.update(data)
            out.write(data)
    if not declared.strip().isdigit() or int(declared) != got:
        return None, f"{rid}: truncated (Content-Length {declared[:20]}, {got} bytes present)"
    if split is not None and split.head is None:
        return None, f"{rid}: no HTTP head within {MAX_HEAD} bytes"
    if not block_d.ok():
        return None, f"{rid}: WARC-Block-Digest does not match its block"
    if not payload_d.ok():
        return None, f"{rid}: WARC-Payload-Digest does not match its payload"
    head = split.head if split is not None else None
    return _Spooled(
        rtype, rid, _header(rec, "WARC-Date"), _header(rec, "WARC-Target-URI"), ctype, head, path
    ), None


def _records(source: Path, tmpdir: Path, report: ImportReport, skip_bad: bool) -> Iterator[_Spooled]:
    """The sound response and resource records of ``source``, one at a time.

    A WARC gzipped as one stream (not one member per record) is read through a
    decompressing stream: warcio refuses it, since it cannot seek into it.
    """
    try:
        if _one_gzip_stream(source):
            with gzip.open(source, "rb") as g:
                yield from _iterate(source, g, tmpdir, report, skip_bad)  # type: ignore[arg-type]
        else:
            with open(source, "rb") as f:
                yield from _iterate(source, f, tmpdir, report, skip_bad)
    except ArchiveLoadFailed as e:
        raise InvalidInput(f"{source.name}: not a readable WARC file ({_one_line(e)})") from None
    except (OSError, EOFError, ValueError) as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"{source.name}: malformed WARC ({type(e).__name__}: {_one_line(e)})") from None


def _one_gzip_stream(path: Path) -> bool:
    """Whether the file is gzip whose first member is the whole file (of more than one record,
    then: warcio reads only gzip with one member per record)."""
    import zlib

    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return False
        f.seek(0)
        z = zlib.decompressobj(31)
        used = 0
        pending = b""
        while not z.eof:
            if not pending:
                pending = f.read(CHUNK)
                if not pending:
                    return False  # truncated: let the reader report it
                used += len(pending)
            try:
                z.decompress(pending, CHUNK)  # output bounded (a gzip bomb stays cheap) and dropped
            except zlib.error:
                return False
            pending = z.unconsumed_tail
        return used - len(z.unused_data) == os.fstat(f.fileno()).st_size


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def _iterate(
    source: Path, f: IO[bytes], tmpdir: Path, report: ImportReport, skip_bad: bool
) -> Iterator[_Spooled]:
    it = ArchiveIterator(f, no_record_parse=True, check_digests=False)
    for rec in it:
        rtype = rec.rec_type
        if rtype not in ("response", "resource"):
            report.skipped[str(rtype)] = report.skipped.get(str(rtype), 0) + 1
            continue
        spooled, bad = _spool(rec, tmpdir)
        # (warcio's get_record_offset() reads the record to its end: ask after reading)
        offset = it.get_record_offset()
        if bad is not None:
            bad = f"record at offset {offset}: {bad}"
            if not skip_bad:
                raise InvalidInput(f"{source.name}: {bad}; nothing was imported")
            report.bad.append(bad)
            continue
        assert spooled is not None
        yield spooled
        spooled.payload.unlink(missing_ok=True)


@contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="archiver-warc-import-") as d:
        yield Path(d)


def import_warc(
    archive: Archive,
    source: Path,
    key: SigningKey,
    *,
    metadata: dict[str, Any] | None = None,
    skip_bad: bool = False,
    wait_seconds: float = 0.0,
    tsa: str | None = None,
) -> ImportReport:
    """Import every response and resource record of a WARC file; all or nothing.

    Raises:
        InvalidInput: unreadable or malformed file, or a record whose own digest is wrong
            (unless ``skip_bad``); nothing is written.
        StoreError: writing failed; nothing was kept.
    """
    from .ingest import check_readable

    check_readable(source)
    md = dict(metadata or {})
    validate(md, "import options")
    report = ImportReport()
    provenance = {"file": _file_name(source), "sha256": file_sha256(source)}
    with _workdir() as tmp, archive.transaction(key, wait_seconds, tsa) as tx:
        batch: dict[str, dict[str, Any]] = {}
        seen: dict[tuple[str, str | None], tuple[str, int, str]] = {}
        names: list[str] = []
        for rec in _records(source, tmp, report, skip_bad):
            _store(tx, rec, key, md, provenance, batch, seen)
            names.append(rec.record_id)
    report.imported = [Ingested.of(w, f"{source.name}#{rid}") for w, rid in zip(tx.done, names, strict=True)]
    if not report.imported:
        raise InvalidInput(f"{source.name}: no response or resource record to import")
    return report


def _file_name(path: Path) -> str:
    name = os.fsencode(path.name).decode("utf-8", "backslashreplace")
    return name.replace("/", "_").replace("\x00", "_")[:1024]


def _media(rec: _Spooled) -> tuple[str | None, str | None]:
    """(media type, charset): the HTTP Content-Type of a response, the WARC one of a resource."""
    from email.message import Message

    value = rec.content_type
    if rec.http_head is not None:
        value = None
        for line in rec.http_head.decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-type":
                value = v.strip()
                break
    if not value:
        return None, None
    msg = Message()
    msg["Content-Type"] = value[:1024]
    charset = msg.get_param("charset")
    return msg.get_content_type(), (str(charset).lower() if isinstance(charset, str) else None)


def _store(
    tx: Transaction,
    rec: _Spooled,
    key: SigningKey,
    md: dict[str, Any],
    provenance: dict[str, str],
    batch: dict[str, dict[str, Any]],
    seen: dict[tuple[str, str | None], tuple[str, int, str]],
) -> None:
    now = format_time(tx.archive.clock())
    url = rec.target_uri if rec.target_uri and is_valid("metadata", {"url": rec.target_uri}) else None
    meta = merge({"url": url} if url else {}, md)
    media_type, charset = _media(rec)
    path = rec.payload

    def opener() -> IO[bytes]:
        return open(path, "rb")

    display = f"{provenance['file']}#{rec.record_id}"
    try:
        d, seed = digest_version(
            opener,
            display=display,
            filename=None,
            media_type=md.get("media_type") or media_type,
            charset=md.get("charset") or charset,
        )
    except InvalidInput:
        # a charset the record declares but Python does not know: keep the bytes, not as text
        d, seed = digest_version(opener, display=display, filename=None, media_type=media_type, charset=None)
    # the same URL with the same payload twice in one file (or already archived): a re-capture
    place: tuple[str, int, str | None] | None = None
    earlier = seen.get((d.sha256, meta.get("url"))) if meta.get("url") else None
    if earlier is not None and tx.latest_digest(earlier[0]) == earlier[2]:
        place = (earlier[0], earlier[1] + 1, earlier[2])
    place = place or recapture_of(tx, d.sha256, meta.get("url"), None)
    doc_id, seq, prev = place or (uuid4_hex(), 0, None)
    stored = store_version(
        tx,
        opener,
        d,
        seed,
        display=display,
        language=meta.get("language"),
        record_type=rec.record_type,
        refers_to=None,
        target_uri=meta.get("url") or f"urn:archiver:document:{doc_id}",
        date=now,
        batch=batch,
        http_head=rec.http_head,
    )
    source = {
        "filename": None,
        "metadata": meta,
        "warc": {
            **provenance,
            "record_id": rec.record_id[:1024],
            "record_type": rec.record_type,
            "date": rec.date[:64] if rec.date else None,
            "target_uri": rec.target_uri,
        },
    }
    manifest = captured_manifest(tx, key, (doc_id, seq, prev), now, stored, source)
    event = seal_and_queue(tx, manifest, key, "archivist", stored.record_id, concurrent=True)
    seen[(d.sha256, meta.get("url"))] = (event.document_id, event.sequence, event.digest)
