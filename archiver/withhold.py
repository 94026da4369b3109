"""Records an export must not carry, and the placeholders that stand in for them.

What is withheld (docs/format.md, "Exports"):

- every ``sealed seed``: with a version's seed, the salts of its redaction
  token tree can be recomputed, and a redacted word guessed from a list;
- the bytes of every *sealed* version (a version that a later redaction
  replaced), and the diff records of edits between sealed versions, which
  quote them;
- in an export of some documents only, every record of the other documents.

An export must still verify, and every offset a signed manifest names must
still hold. So a withheld record is replaced, in the exported copy of its
WARC file, by a *placeholder* gzip member of exactly the same length: a
standard WARC ``metadata`` record (``Content-Type:
application/vnd.archiver.withheld+json``, ``WARC-Refers-To`` the withheld
record) whose block is a short JSON object padded with spaces. Its length
is matched exactly with the gzip header's ``FEXTRA`` field (RFC 1952
2.3.1) and stored deflate blocks, so every other byte of the WARC file is
unchanged. The verifier accepts a placeholder only where this module says
something may be withheld; anywhere else it is reported.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from .manifest import Event

WITHHELD_CONTENT_TYPE = "application/vnd.archiver.withheld+json"
_STORED_MAX = 0xFFFF
_CHUNK = 1 << 20

Pos = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Withheld:
    """One record left out of an export: where, which, and why."""

    warc_file: str
    offset: int
    length: int
    record_id: str
    reason: str  # "sealed-seed" | "sealed-version" | "sealed-diff" | "outside-export"


def ref_pos(ref: Mapping[str, object]) -> Pos:
    """(WARC file, offset) of a record reference."""
    return (str(ref["warc_file"]), int(str(ref["offset"])))


def _withheld(ref: Mapping[str, object], reason: str) -> Withheld:
    return Withheld(
        warc_file=str(ref["warc_file"]),
        offset=int(str(ref["offset"])),
        length=int(str(ref["length"])),
        record_id=str(ref["record_id"]),
        reason=reason,
    )


def sealed_refs(chains: Iterable[list[Event]]) -> dict[Pos, Withheld]:
    """What no export may carry, from the documents' event chains (each in sequence order)."""
    out: dict[Pos, Withheld] = {}
    for events in chains:
        sealed_before = max((e.sequence for e in events if e.action == "redacted"), default=-1)
        for e in events:
            writes = e.action in ("captured", "edited", "redacted")
            if not writes:
                continue
            seed = e.storage.get("seed")
            if seed is not None:
                out.setdefault(ref_pos(seed), _withheld(seed, "sealed-seed"))
            if e.sequence < sealed_before:
                ref = e.content_ref
                out.setdefault(ref_pos(ref), _withheld(ref, "sealed-version"))
                diff = e.raw.get("diff") or {}
                if diff.get("record"):
                    out.setdefault(ref_pos(diff["record"]), _withheld(diff["record"], "sealed-diff"))
    return out


def event_refs(e: Event) -> Iterator[Mapping[str, object]]:
    """Every WARC record an event names (its own, its content, attachments)."""
    s = e.storage
    yield s
    if "refers_to" in s:
        yield s["refers_to"]
    if e.action in ("captured", "edited", "redacted"):
        for key in ("seed", "request"):
            if key in s:
                yield s[key]
        for hop in ((e.raw.get("source") or {}).get("http") or {}).get("redirects") or []:
            yield hop["request"]
            yield hop["response"]
    diff = e.raw.get("diff") or {}
    if diff.get("record"):
        yield diff["record"]
    if e.raw.get("redaction"):
        yield e.raw["redaction"]["proof"]


# -- placeholders --------------------------------------------------------------------------------
def _stored_size(n: int) -> int:
    """Bytes of ``n`` data bytes as stored deflate blocks (5 bytes of header per block)."""
    return n + 5 * max(1, -(-n // _STORED_MAX))


class _Plan:
    """The parts of one placeholder member whose total length is fixed in advance."""

    def __init__(self, length: int, w: Withheld, date: str, pad: int, digest: bool = True) -> None:
        body = json.dumps({"reason": w.reason}, separators=(",", ":")).encode()
        self.pad = pad
        block_len = len(body) + pad
        h = hashlib.sha256(body)
        spaces = b" " * _CHUNK
        left = pad
        while left:
            n = min(left, _CHUNK)
            h.update(spaces[:n])
            left -= n
        fields = [
            ("WARC-Type", "metadata"),
            ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>"),
            ("WARC-Date", date),
            ("WARC-Refers-To", w.record_id),
            ("Content-Type", WITHHELD_CONTENT_TYPE),
        ]
        if digest:  # optional in WARC 1.1: left out only where a tiny record leaves no room
            fields.append(("WARC-Block-Digest", "sha256:" + base64.b32encode(h.digest()).decode()))
        fields.append(("Content-Length", str(block_len)))
        head = ("WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode()
        self.prefix = head + body
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        # a sync flush ends the compressed part on a byte boundary: stored blocks follow
        self.compressed = z.compress(self.prefix) + z.flush(zlib.Z_SYNC_FLUSH)
        self.tail_len = pad + 4  # the spaces, then the record's closing CRLF CRLF
        self.extra = length - (10 + 2 + len(self.compressed) + _stored_size(self.tail_len) + 8)


def _plan(length: int, w: Withheld, date: str) -> _Plan:
    """Choose the padding so that FEXTRA (4..65535 bytes) absorbs the remainder exactly."""
    target = 512  # aim the FEXTRA size here; the compressed header's length varies a little
    pad = 0
    for _ in range(8):
        plan = _Plan(length, w, date, pad)
        if 4 <= plan.extra <= _STORED_MAX:
            return plan
        if plan.extra < 4 and pad == 0:
            plan = _Plan(length, w, date, 0, digest=False)
            if 4 <= plan.extra <= _STORED_MAX:
                return plan
            break
        pad = max(0, pad + plan.extra - target)
        # the stored-block overhead grows with the padding: correct for it
        pad = max(0, pad - 5 * (pad // _STORED_MAX + 1) + 5)
    raise ValueError(f"record of {length} bytes is too small to replace with a placeholder")


def write_placeholder(out: BinaryIO, w: Withheld, date: str) -> None:
    """Write a gzip member of exactly ``w.length`` bytes standing in for the withheld record.

    Raises:
        ValueError: the record is too short for any placeholder (never for records this tool writes).
    """
    plan = _plan(w.length, w, date)
    crc = zlib.crc32(plan.prefix)
    extra = b"AW" + struct.pack("<H", plan.extra - 4) + b"\0" * (plan.extra - 4)
    out.write(b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", plan.extra) + extra)
    out.write(plan.compressed)
    start = 0
    while start < plan.tail_len:
        end = min(plan.tail_len, start + _STORED_MAX)
        # the tail is pad spaces then the record's closing CRLF CRLF, cut into stored blocks
        data = (
            b" " * max(0, min(end, plan.pad) - start)
            + b"\r\n\r\n"[max(0, start - plan.pad) : max(0, end - plan.pad)]
        )
        crc = zlib.crc32(data, crc)
        out.write(
            bytes([1 if end == plan.tail_len else 0]) + struct.pack("<HH", len(data), len(data) ^ 0xFFFF)
        )
        out.write(data)
        start = end
    total = len(plan.prefix) + plan.tail_len
    out.write(struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))
