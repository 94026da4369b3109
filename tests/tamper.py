"""Tools that damage archives on purpose, the way an attacker or a failing disk would.

They work on an archive's ``Surface`` (``backends.py``): its files, or its S3 objects
through the S3 API, by key, so the same attack runs on every backend.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from isal import isal_zlib

from archiver.signing import make_signature
from archiver.storage import Entry, Store

from backends import Surface


class MemoryStore(Store):
    """Some bytes as a ``Store`` (to run archiver's readers on a file taken out of an archive)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.data = files
        self.location = "memory"

    def files(self, prefix: str) -> list[Entry]:
        return [Entry(k, len(v)) for k, v in sorted(self.data.items()) if k.startswith(prefix)]

    def read(self, key: str, limit: int | None = None) -> bytes:
        return self.data[key][:limit]

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.data[key])

    def size(self, key: str) -> int | None:
        return len(self.data[key]) if key in self.data else None


def read_member(data: bytes, offset: int) -> tuple[bytes, int]:
    """Decompress the gzip member at offset; returns (data, compressed length)."""
    raw = data[offset:]
    d = isal_zlib.decompressobj(31)
    out = d.decompress(raw)
    assert d.eof
    return out, len(raw) - len(d.unused_data)


def gzip_member_of_length(data: bytes, length: int) -> bytes:
    """A valid gzip member of exactly ``length`` bytes holding ``data``.

    Deflate at level 9, then pad the gzip header's FEXTRA field (RFC 1952
    2.3.1.1) so the member keeps its size: offsets after it stay valid, as a
    careful attacker would arrange.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    xlen = length - 12 - len(body) - len(trailer)
    assert xlen >= 4, "re-compressed member does not fit; choose other test data"
    extra = b"AP" + struct.pack("<H", xlen - 4) + b"\x00" * (xlen - 4)
    header = b"\x1f\x8b\x08\x04" + b"\x00\x00\x00\x00" + b"\x00\xff" + struct.pack("<H", xlen)
    out = header + extra + body + trailer
    assert len(out) == length
    return out


def rewrite_member(files: Surface, key: str, offset: int, transform: Callable[[bytes], bytes]) -> None:
    """Replace the record at offset by transform(record bytes), keeping the member's length."""
    blob = bytearray(files.read(key))
    data, length = read_member(bytes(blob), offset)
    blob[offset : offset + length] = gzip_member_of_length(transform(data), length)
    files.write(key, bytes(blob))


def flip_byte(files: Surface, key: str, index: int) -> None:
    """Flip every bit of one byte of a file (a disk that went bad)."""
    blob = bytearray(files.read(key))
    blob[index] ^= 0xFF
    files.write(key, bytes(blob))


def warc_b32(data: bytes) -> str:
    import base64
    import hashlib

    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def set_header(record: bytes, name: str, value: str) -> bytes:
    head, sep, rest = record.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(name.lower().encode() + b":"):
            lines[i] = f"{name}: {value}".encode()
    return b"\r\n".join(lines) + sep + rest


def flip_payload_byte(record: bytes, index: int, fix_digest: bool) -> bytes:
    """Flip one bit of the block's index-th byte; optionally recompute the WARC digests."""
    head, sep, rest = record.partition(b"\r\n\r\n")
    block, trailer = rest[:-4], rest[-4:]
    b = bytearray(block)
    b[index] ^= 0x01
    new = head + sep + bytes(b) + trailer
    if fix_digest:
        new = set_header(new, "WARC-Block-Digest", warc_b32(bytes(b)))
        new = set_header(new, "WARC-Payload-Digest", warc_b32(bytes(b)))
    return new


def manifest_keys(files: Surface, doc: str = "") -> list[str]:
    """The manifests (of one document, given its id), by key."""
    prefix = f"manifests/events/{doc[:2]}/{doc}" if doc else "manifests/events/"
    return [k for k in files.keys(prefix) if k.endswith(".json")]


def load(files: Surface, key: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(files.read(key))
    return out


def dump(files: Surface, key: str, doc: dict[str, Any]) -> None:
    files.write(key, (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode())


def resign(doc: dict[str, Any], private: Any, role: str = "archivist") -> dict[str, Any]:
    doc = {k: v for k, v in doc.items() if k != "signatures"}
    doc["signatures"] = [make_signature(doc, private, role)]
    return doc


def replace_last_metadata_record(files: Surface, manifest_key: str) -> None:
    """Make the WARC copy of the last event's manifest match its (altered) file.

    Only possible for the very last record of its WARC file (nothing after it
    shifts); a thorough attacker who rewrote a manifest would do it.
    """
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from archiver.warcread import RecordReader
    from archiver.warcstore import MANIFEST_CONTENT_TYPE, _GzipMember

    doc = load(files, manifest_key)
    key = "store/" + doc["storage"]["warc_file"]
    blob = files.read(key)
    meta_offset = last_record_offset(blob)
    f = io.BytesIO(blob)
    old = RecordReader(f, meta_offset)
    headers = dict(old.headers.fields)
    list(old.block())
    assert headers["content-type"] == MANIFEST_CONTENT_TYPE, "the last record is not a manifest"
    data = files.read(manifest_key)
    out = io.BytesIO()
    out.write(blob[:meta_offset])
    member = _GzipMember(out)  # type: ignore[arg-type]
    w = WARCWriter(member, gzip=False, warc_version="WARC/1.1")
    hs = [
        ("WARC-Type", "metadata"),
        ("WARC-Record-ID", headers["warc-record-id"]),
        ("WARC-Date", headers["warc-date"]),
        ("WARC-Target-URI", headers["warc-target-uri"]),
        ("WARC-Concurrent-To", headers["warc-concurrent-to"]),
        ("WARC-Block-Digest", warc_b32(data)),
    ]
    rec = w.create_warc_record(
        "",
        "metadata",
        payload=io.BytesIO(data),
        length=len(data),
        warc_content_type=MANIFEST_CONTENT_TYPE,
        warc_headers=StatusAndHeaders("", hs, protocol="WARC/1.1"),
    )
    w.write_record(rec)
    files.write(key, out.getvalue())


def last_record_offset(warc: bytes) -> int:
    """Offset of the last record in a WARC file's bytes."""
    from archiver.warcscan import scan_file

    return [off for off, _ in scan_file(MemoryStore({"w": warc}), "w")][-1]


def random_arabic(seed: int, words: int) -> str:
    """Text that compresses like prose, not like a repeated line (so re-packed members fit)."""
    import random

    rng = random.Random(seed)
    vocab = "صور قيصر شهادة المعتقلين سوريا السجون الضحايا التعذيب أدلة الأمم المتحدة محكمة".split()
    return " ".join(rng.choice(vocab) + str(rng.randint(0, 999)) for _ in range(words))


def _segmented(files: Surface) -> bool:
    return int(json.loads(files.read("manifests/archive.json"))["format_version"]) >= 2


def log_text(files: Surface) -> bytes:
    """The log's entries (``entries``, or the segments one after another)."""
    if _segmented(files):
        return b"".join(files.read(k) for k in files.keys("manifests/log/segments/"))
    return files.read("manifests/log/entries")


def write_log_text(files: Surface, text: bytes) -> None:
    """Replace the log's entries (and, in format 1, its node files) without re-signing
    anything: what an attacker without a key can do to the log."""
    from archiver.logview import parse_entries
    from archiver.tlog import MemoryTree

    entries = parse_entries(text)
    if _segmented(files):
        for k in files.keys("manifests/log/segments/"):
            files.delete(k)
        files.write(f"manifests/log/segments/{len(entries):012d}", text)
        return
    files.write("manifests/log/entries", text)
    for k, level in enumerate(MemoryTree([h for h, _ in entries]).levels):
        files.write(f"manifests/log/level-{k:02d}", b"".join(level))


RECORD_DIRS = (
    "manifests/events/",
    "manifests/keys/",
    "manifests/audits/",
    "manifests/tsa/",
    "manifests/timestamps/",
)


def relog(files: Surface, signer: str = "alice") -> None:
    """An insider holding a key rewrites the log to match altered records and re-signs
    every checkpoint: what remains detectable then is only what the records themselves show
    (on S3 also that objects were rewritten; with an auditor's kept checkpoint, log-rollback).

    Works on either form of the log: ``entries`` and node files (format 1), or segments
    (format 2)."""
    from archiver import KeyStore
    from archiver.logview import format_entries, parse_entries
    from archiver.merkle import leaf_hash
    from archiver.tlog import MemoryTree, checkpoint_body, note_key_name, sign_checkpoint

    info = json.loads(files.read("manifests/archive.json"))
    segmented = info["format_version"] >= 2
    old_checkpoints = files.keys("manifests/log/checkpoints/")
    old_sizes = [int(k.rsplit("/", 1)[-1]) for k in old_checkpoints]
    if segmented:
        text = b"".join(files.read(k) for k in files.keys("manifests/log/segments/"))
    else:
        text = files.read("manifests/log/entries")
    present = set(files.keys("manifests/"))
    kept = [k for _, k in parse_entries(text) if k in present]
    records = [
        k
        for k in sorted(present)
        if k.startswith(RECORD_DIRS)
        and k.endswith((".json", ".pem", ".tsr"))
        and not k.rsplit("/", 1)[-1].startswith(".")
    ]
    kept += [k for k in records if k not in kept]
    leaves = [leaf_hash(files.read(k)) for k in kept]
    tree = MemoryTree(leaves)
    sizes = sorted({s for s in old_sizes if s <= tree.size} | {tree.size})
    entries = list(zip(leaves, kept, strict=True))
    if segmented:
        new = {f"manifests/log/segments/{s:012d}" for s in sizes}
        for k in files.keys("manifests/log/segments/"):
            if k not in new:
                files.delete(k)
        start = 0
        for s in sizes:
            files.write(f"manifests/log/segments/{s:012d}", format_entries(entries[start:s]))
            start = s
    else:
        files.write("manifests/log/entries", format_entries(entries))
        for k in files.keys("manifests/log/level-"):
            files.delete(k)
        for level, nodes in enumerate(tree.levels):
            files.write(f"manifests/log/level-{level:02d}", b"".join(nodes))
    key = KeyStore().load(signer, lambda n: None)
    archive_id = info["archive_id"]
    for k in old_checkpoints:
        if int(k.rsplit("/", 1)[-1]) not in sizes:
            files.delete(k)
    for size in sizes:
        note = sign_checkpoint(
            checkpoint_body(archive_id, size, tree.root(size)),
            note_key_name(key.name, key.key_id),
            key.private,
        )
        files.write(f"manifests/log/checkpoints/{size:012d}", note.encode())
