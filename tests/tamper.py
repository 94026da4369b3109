"""Tools that damage archives on purpose, the way an attacker or a failing disk would."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isal import isal_zlib

from archiver.signing import make_signature


def read_member(path: Path, offset: int) -> tuple[bytes, int]:
    """Decompress the gzip member at offset; returns (data, compressed length)."""
    raw = path.read_bytes()[offset:]
    d = isal_zlib.decompressobj(31)
    data = d.decompress(raw)
    assert d.eof
    return data, len(raw) - len(d.unused_data)


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


def rewrite_member(path: Path, offset: int, transform: Callable[[bytes], bytes]) -> None:
    """Replace the record at offset by transform(record bytes), keeping the member's length."""
    data, length = read_member(path, offset)
    new = gzip_member_of_length(transform(data), length)
    blob = bytearray(path.read_bytes())
    blob[offset : offset + length] = new
    path.write_bytes(bytes(blob))


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


def manifest_paths(root: Path) -> list[Path]:
    return sorted((root / "manifests" / "events").rglob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text("utf-8"))


def dump(path: Path, doc: dict[str, Any]) -> None:
    path.write_bytes((json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode())


def resign(doc: dict[str, Any], private: Any, role: str = "archivist") -> dict[str, Any]:
    doc = {k: v for k, v in doc.items() if k != "signatures"}
    doc["signatures"] = [make_signature(doc, private, role)]
    return doc


def replace_last_metadata_record(root: Path, manifest_file: Path) -> None:
    """Make the WARC copy of the last event's manifest match its (altered) file.

    Only possible for the very last record of the last WARC file (nothing
    after it shifts); a thorough attacker who rewrote a manifest would do it.
    """
    from archiver.warcread import RecordReader
    from archiver.warcstore import MANIFEST_CONTENT_TYPE, _GzipMember

    doc = load(manifest_file)
    warc = root / "store" / doc["storage"]["warc_file"]
    meta_offset = last_record_offset(warc)
    with open(warc, "rb") as f:
        old = RecordReader(f, meta_offset)
        headers = dict(old.headers.fields)
        list(old.block())
        assert headers["content-type"] == MANIFEST_CONTENT_TYPE, "the last record is not a manifest"
    data = manifest_file.read_bytes()
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(warc, "r+b") as f:
        f.truncate(meta_offset)
        f.seek(meta_offset)
        member = _GzipMember(f)  # type: ignore[arg-type]
        w = WARCWriter(member, gzip=False, warc_version="WARC/1.1")
        hs = [
            ("WARC-Type", "metadata"),
            ("WARC-Record-ID", headers["warc-record-id"]),
            ("WARC-Date", headers["warc-date"]),
            ("WARC-Target-URI", headers["warc-target-uri"]),
            ("WARC-Concurrent-To", headers["warc-concurrent-to"]),
            ("WARC-Block-Digest", warc_b32(data)),
        ]
        import io

        rec = w.create_warc_record(
            "",
            "metadata",
            payload=io.BytesIO(data),
            length=len(data),
            warc_content_type=MANIFEST_CONTENT_TYPE,
            warc_headers=StatusAndHeaders("", hs, protocol="WARC/1.1"),
        )
        w.write_record(rec)


def last_record_offset(warc: Path) -> int:
    """Offset of the last record in a WARC file."""
    from archiver.storage import LocalStore
    from archiver.warcscan import scan_file

    return [off for off, _ in scan_file(LocalStore(warc.parent), warc.name)][-1]


def random_arabic(seed: int, words: int) -> str:
    """Text that compresses like prose, not like a repeated line (so re-packed members fit)."""
    import random

    rng = random.Random(seed)
    vocab = "صور قيصر شهادة المعتقلين سوريا السجون الضحايا التعذيب أدلة الأمم المتحدة محكمة".split()
    return " ".join(rng.choice(vocab) + str(rng.randint(0, 999)) for _ in range(words))


def relog(root: Path, signer: str = "alice") -> None:
    """An insider holding a key rewrites the log to match altered records and re-signs
    every checkpoint: what remains detectable then is only what the records themselves show
    (and, with an auditor's kept checkpoint, log-rollback)."""
    from archiver import Archive, KeyStore
    from archiver.logcheck import record_files
    from archiver.merkle import leaf_hash
    from archiver.tlog import Log, MemoryTree, checkpoint_body, note_key_name, sign_checkpoint

    arch = Archive.open(root)
    log = Log(arch.layout.log)
    old_sizes = [int(p.name) for p in log.checkpoint_files()]
    kept = [p for _, p in log.entries() if (root / p).exists()]
    kept += [
        arch.layout.relative(f) for f in record_files(arch.layout) if arch.layout.relative(f) not in kept
    ]
    leaves = [leaf_hash((root / p).read_bytes()) for p in kept]
    log.entries_path.write_text("".join(f"{h.hex()} {p}\n" for h, p in zip(leaves, kept, strict=True)))
    tree = MemoryTree(leaves)
    for f in log.dir.glob("level-*"):
        f.unlink()
    for k, level in enumerate(tree.levels):
        (log.dir / f"level-{k:02d}").write_bytes(b"".join(level))
    key = KeyStore().load(signer, lambda n: None)
    for p in log.checkpoint_files():
        p.unlink()
    for size in sorted({s for s in old_sizes if s <= tree.size} | {tree.size}):
        note = sign_checkpoint(
            checkpoint_body(arch.archive_id, size, tree.root(size)),
            note_key_name(key.name, key.key_id),
            key.private,
        )
        (log.checkpoints / f"{size:012d}").write_text(note)
