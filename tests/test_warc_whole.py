"""The C fast path of record reading (``_fasthash.warc_member``) gives exactly what the
streaming reader gives: the same fields, digests, lengths and, for anything it does not take,
the streaming reader's own words.

Each case is read both ways (``warcscan._member`` set to None is the streaming reader alone)
in a sequential scan and at random, and the results are compared field by field.
"""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from pathlib import Path

import pytest

from archiver import warcscan
from archiver.layout import MANIFEST_CONTENT_TYPE, SEED_CONTENT_TYPE
from archiver.storage import LocalStore
from archiver.textdigest import WHOLE_BYTES
from archiver.warcread import MAX_HEADER
from archiver.warcscan import TextCheck, read_record, scan_file

from conftest import REPO

pytestmark = pytest.mark.skipif(warcscan._member is None, reason="archiver._fasthash is not built here")


def gz(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def record(
    block: bytes, *, head: bytes | None = None, length: int | None = None, trailer: bytes = b"\r\n\r\n"
) -> bytes:
    n = len(block) if length is None else length
    head = head if head is not None else b"WARC-Type: resource\r\nContent-Type: text/plain; charset=utf-8\r\n"
    return b"WARC/1.1\r\n" + head + b"Content-Length: " + str(n).encode() + b"\r\n\r\n" + block + trailer


TEXT = "في صور قيصر، وثّقت \u0627\u0644\u0634\u0647\u0627\u062f\u0627\u062a  مصير المعتقلين.\n".encode()
SEED = bytes(range(32))

#: every way a member can differ from the plain case, and the plain cases themselves
CASES: dict[str, bytes] = {
    "plain": gz(record(TEXT)),
    "empty block": gz(record(b"")),
    "stored, not compressed": gz(record(TEXT), level=0),
    "manifest copy": gz(
        record(b'{"a": 1}', head=f"WARC-Type: metadata\r\nContent-Type: {MANIFEST_CONTENT_TYPE}\r\n".encode())
    ),
    "seed": gz(record(SEED, head=f"WARC-Type: metadata\r\nContent-Type: {SEED_CONTENT_TYPE}\r\n".encode())),
    "http response": gz(
        record(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>" + TEXT + b"</p>",
            head=b"WARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n",
        )
    ),
    "http response without its head's end": gz(
        record(
            b"HTTP/1.1 200 OK\r\n",
            head=b"WARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n",
        )
    ),
    "http head ending beyond MAX_HEAD": gz(
        record(
            b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (300 * 1024) + b"\r\n\r\npayload",
            head=b"WARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n",
        )
    ),
    "WARC/1.0": gz(record(TEXT).replace(b"WARC/1.1", b"WARC/1.0", 1)),
    "WARC/2.0": gz(record(TEXT).replace(b"WARC/1.1", b"WARC/2.0", 1)),
    "spaces around values": gz(
        record(TEXT, head=b"WARC-Type:    resource   \r\nWARC-Date:2026-12-02T00:00:00Z\r\n")
    ),
    "upper-case names, repeated fields": gz(
        record(TEXT, head=b"WARC-TYPE: resource\r\nwarc-type: revisit\r\n")
    ),
    "a field twice, Content-Length first wins": gz(record(TEXT, head=b"Content-Length: 3\r\n")),
    "folded line": gz(record(TEXT, head=b"WARC-Type: resource\r\n  continued\r\n")),
    "tab-folded line": gz(record(TEXT, head=b"WARC-Type: resource\r\n\tcontinued\r\n")),
    "first line folded": gz(b"WARC/1.1\r\n folded: x\r\n" + record(TEXT)[10:]),
    "tab in a value": gz(record(TEXT, head=b"WARC-Type:\tresource\t\r\n")),
    "space before the colon": gz(record(TEXT, head=b"WARC-Type : resource\r\n")),
    "empty name": gz(record(TEXT, head=b": resource\r\n")),
    "no colon": gz(record(TEXT, head=b"WARC-Type resource\r\n")),
    "lone LF in the header": gz(record(TEXT, head=b"WARC-Type: res\nource\r\n")),
    "lone CR in the header": gz(record(TEXT, head=b"WARC-Type: res\rource\r\n")),
    "NUL in the header": gz(record(TEXT, head=b"WARC-Type: res\x00ource\r\n")),
    "DEL in the header": gz(record(TEXT, head=b"WARC-Type: res\x7fource\r\n")),
    "UTF-8 in the header": gz(record(TEXT, head="WARC-Target-URI: urn:قيصر\r\n".encode())),
    "Latin-1 in the header": gz(record(TEXT, head=b"WARC-Target-URI: urn:caf\xe9\r\n")),
    "long field name": gz(record(TEXT, head=b"X-" + b"n" * 100 + b": v\r\n")),
    "no Content-Length": gz(b"WARC/1.1\r\nWARC-Type: resource\r\n\r\n" + TEXT + b"\r\n\r\n"),
    "Content-Length with a sign": gz(record(TEXT).replace(b"Content-Length: ", b"Content-Length: +", 1)),
    "Content-Length empty": gz(b"WARC/1.1\r\nContent-Length: \r\n\r\n\r\n\r\n"),
    "Content-Length of 17 digits": gz(b"WARC/1.1\r\nContent-Length: 00000000000000005\r\n\r\nhello\r\n\r\n"),
    "Content-Length over 2^53": gz(b"WARC/1.1\r\nContent-Length: 9007199254740993\r\n\r\nhello\r\n\r\n"),
    "Content-Length Arabic digits": gz(
        b"WARC/1.1\r\nContent-Length: " + "\u0665".encode() + b"\r\n\r\nhello\r\n\r\n"
    ),
    "block shorter than Content-Length": gz(record(TEXT, length=len(TEXT) + 3)),
    "block longer than Content-Length": gz(record(TEXT, length=len(TEXT) - 3)),
    "no trailer": gz(record(TEXT, trailer=b"")),
    "bad trailer": gz(record(TEXT, trailer=b"\r\n\n\n")),
    "extra bytes after the record": gz(record(TEXT, trailer=b"\r\n\r\nmore")),
    "header never ends": gz(b"WARC/1.1\r\nWARC-Type: resource\r\n" * 3000),
    "not WARC": gz(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\n\r\n"),
    "only the version line": gz(b"WARC/1.1\r\n\r\n\r\n\r\n"),
}


def corrupt(member: bytes, index: int) -> bytes:
    b = bytearray(member)
    b[index] ^= 0x40
    return bytes(b)


def gz_with_header(data: bytes, flags: int, extra: bytes = b"", header_crc_delta: int = 0) -> bytes:
    """A gzip member with the header fields ``flags`` names (FEXTRA, FNAME, FHCRC...)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff" + extra
    if flags & 0x02:  # FHCRC: the low 16 bits of the header's CRC-32
        head += ((zlib.crc32(head) + header_crc_delta) & 0xFFFF).to_bytes(2, "little")
    trailer = zlib.crc32(data).to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")
    return head + c.compress(data) + c.flush() + trailer


# libdeflate does not check a header's own CRC: members with FHCRC go to zlib
CASES["header CRC (FHCRC)"] = gz_with_header(record(TEXT), 0x02)
CASES["header CRC wrong"] = gz_with_header(record(TEXT), 0x02, header_crc_delta=1)
CASES["file name and comment"] = gz_with_header(record(TEXT), 0x18, b"000000.warc\0made by hand\0")
CASES["extra field"] = gz_with_header(record(TEXT), 0x04, b"\x04\0ab\x00\x00")
CASES["reserved flag"] = gz_with_header(record(TEXT), 0x20)
CASES["CRC wrong"] = corrupt(CASES["plain"], -6)
CASES["size wrong"] = corrupt(CASES["plain"], -2)
CASES["deflate data corrupt"] = corrupt(CASES["plain"], 40)
CASES["truncated member"] = CASES["plain"][:-9]
CASES["not gzip"] = b"WARC/1.1\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
CASES["a gzip bomb"] = gz(record(b"\0" * (WHOLE_BYTES + 70_000)))
CASES["a text over the whole-text size"] = gz(record(b"a " * (WHOLE_BYTES // 2 + 10)))


def both_ways(fn):
    """fn() with the fast path, then with the streaming reader alone."""
    fast = fn()
    saved = warcscan._member
    warcscan._member = None
    try:
        slow = fn()
    finally:
        warcscan._member = saved
    return fast, slow


def fields(info: warcscan.RecordInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in warcscan.RecordInfo.__slots__}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_member_read_at_random_both_ways(case):
    data = CASES[case] + CASES["plain"]  # something after it, as in a file
    texts = [None, TextCheck("utf-8", seed=SEED), TextCheck("utf-8", seed_at=len(data))]
    for text in texts:
        fast, slow = both_ways(lambda t=text: read_record(io.BytesIO(data), 0, None, t))
        assert fields(fast[0]) == fields(slow[0]), (case, text)
        assert (fast[1] is None) == (slow[1] is None)
        if fast[1] is not None and slow[1] is not None:
            assert fast[1].compressed_length == slow[1].compressed_length
            assert bytes(fast[1].leftover)[:10] == bytes(slow[1].leftover)[:10]


def test_libdeflate_is_built_in_where_required():
    from archiver import _fasthash

    if os.environ.get("ARCHIVER_REQUIRE_ACCEL"):  # CI installs libdeflate-dev
        assert _fasthash.LIBDEFLATE == 1


def test_the_fast_path_takes_the_plain_cases():
    """The comparison above means something only if the fast path did read these."""
    from archiver._fasthash import warc_member

    for case in (
        "plain",
        "empty block",
        "manifest copy",
        "seed",
        "http response",
        "WARC/1.0",
        "spaces around values",
        "header CRC (FHCRC)",
        "file name and comment",
        "extra field",
    ):
        got = warc_member(CASES[case], WHOLE_BYTES + 70_000, MAX_HEADER)
        assert isinstance(got, tuple), case
        assert got[0] == len(CASES[case])
        assert got[3] == hashlib.sha256(got[2]).digest()
    assert warc_member(CASES["truncated member"], 1 << 20, MAX_HEADER) == 0
    assert warc_member(b"", 1 << 20, MAX_HEADER) == 0
    for case in (
        "CRC wrong",
        "header CRC wrong",
        "reserved flag",
        "folded line",
        "a gzip bomb",
        "not gzip",
        "UTF-8 in the header",
        "bad trailer",
    ):
        assert warc_member(CASES[case], WHOLE_BYTES + 70_000, MAX_HEADER) == -1, case


def test_every_kept_field_lands_in_its_own_attribute():
    """Each of the nine header fields a record's findings keep reaches the attribute of its
    name, read both ways (both share the mapping, so it is checked here by name), and the
    C module keeps the same fields as ``fasthash.WARC_FIELDS`` (else it is not used)."""
    from archiver import _fasthash, fasthash

    assert _fasthash.WARC_FIELDS == fasthash.WARC_FIELDS and warcscan._member is not None
    head = (
        b"WARC-Concurrent-To: <c>\r\nWARC-Refers-To: <r>\r\nWARC-Payload-Digest: p\r\n"
        b"WARC-Block-Digest: b\r\nWARC-Target-URI: t\r\nContent-Type: ct\r\n"
        b"WARC-Date: d\r\nWARC-Record-ID: <id>\r\nWARC-Type: resource\r\nWARC-Type: later\r\n"
    )
    data = gz(record(TEXT, head=head))
    assert isinstance(_fasthash.warc_member(data, 1 << 20, MAX_HEADER), tuple)  # (the fast path)
    want = {
        "record_type": "resource",  # (the first of two)
        "record_id": "<id>",
        "date": "d",
        "content_type": "ct",
        "target_uri": "t",
        "header_block_digest": "b",
        "header_payload_digest": "p",
        "refers_to": "<r>",
        "concurrent_to": "<c>",
    }
    for info, _ in both_ways(lambda: read_record(io.BytesIO(data), 0)):
        assert {name: getattr(info, name) for name in want} == want


def test_sha512_only_for_what_can_be_content():
    info, _ = read_record(io.BytesIO(CASES["manifest copy"]), 0)
    assert info.error is None and info.payload_sha512 == b"" and info.sha256
    info, _ = read_record(io.BytesIO(CASES["seed"]), 0)
    assert info.error is None and info.payload_sha512 == b"" and info.block == SEED
    info, _ = read_record(io.BytesIO(CASES["plain"]), 0)
    assert info.payload_sha512 == hashlib.sha512(TEXT).digest()


def test_a_whole_file_scanned_both_ways(tmp_path: Path):
    """Every case in a row, in one file read in small parts: the same records, offsets and
    resynchronisation after each damaged member."""
    names = sorted(CASES)
    data = b"".join(CASES[n] + CASES["plain"] for n in names)
    (tmp_path / "000000.warc.gz").write_bytes(data)
    store = LocalStore(tmp_path)
    offsets, at = [], 0
    for n in names:
        offsets += [at, at + len(CASES[n])]
        at += len(CASES[n]) + len(CASES["plain"])
    texts = {o: TextCheck("utf-8", seed=SEED) for o in offsets[1::2]}
    fast, slow = both_ways(
        lambda: [(o, fields(i)) for o, i in scan_file(store, "000000.warc.gz", offsets, texts)]
    )
    assert fast == slow
    assert sum(1 for _, f in fast if f["error"] is None) > len(names)  # every plain one at least


def test_the_reference_archive_read_both_ways():
    store = LocalStore(REPO / "store")
    fast, slow = both_ways(lambda: [(o, fields(i)) for o, i in scan_file(store, "000000.warc.gz")])
    assert fast == slow and len(fast) > 20
    assert all(f["error"] is None for _, f in fast)


def _mutations(seed: int, count: int):
    """Seeded random damage: to the record before compression (the header parser's input) and
    to the compressed member (the inflater's)."""
    import random

    rng = random.Random(seed)
    plain = [
        record(TEXT),
        record(SEED, head=f"WARC-Type: metadata\r\nContent-Type: {SEED_CONTENT_TYPE}\r\n".encode()),
        record(b"", head=b"WARC-Type: resource\r\nWARC-Date: 2026-12-02T00:00:00Z\r\n"),
    ]
    bytes_of_interest = b"\r\n :\t\x00\x7f\x80\xff0123456789WARC/1.Content-Length"
    for _ in range(count):
        rec = bytearray(rng.choice(plain))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(rec))
            op = rng.randrange(4)
            if op == 0:
                rec[i] = rng.choice(bytes_of_interest)
            elif op == 1:
                del rec[i : i + rng.randint(1, 4)]
            elif op == 2:
                rec[i:i] = bytes(rng.choice(bytes_of_interest) for _ in range(rng.randint(1, 4)))
            else:
                rec[i] ^= 1 << rng.randrange(8)
        member = bytearray(gz(bytes(rec)))
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 2)):
                member[rng.randrange(len(member))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.2:
            member = member[: rng.randrange(len(member))]
        yield bytes(member)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_members_read_both_ways(seed):
    """800 randomly damaged members: the fast path never disagrees with the streaming reader
    (and never crashes on them)."""
    for member in _mutations(seed, 200):
        data = member + CASES["plain"]
        fast, slow = both_ways(
            lambda d=data: read_record(io.BytesIO(d), 0, None, TextCheck("utf-8", seed=SEED))
        )
        assert fields(fast[0]) == fields(slow[0]), member
        assert (fast[1] is None) == (slow[1] is None)
        if fast[1] is not None and slow[1] is not None:
            assert fast[1].compressed_length == slow[1].compressed_length


@pytest.mark.parametrize("head_kb", [200, 255, 257, 300])
def test_an_http_heads_verdict_does_not_depend_on_chunks(head_kb):
    """Fed whole (the fast path) or in 1 KB chunks (a stream), a head ending past MAX_HEAD is
    refused and one ending before it is accepted."""
    from archiver.httpblock import MAX_HEAD, HeadTooLarge, payload_chunks

    block = b"HTTP/1.1 200 OK\r\nX: " + b"a" * (head_kb * 1024) + b"\r\n\r\npayload"
    verdicts = []
    for size in (len(block), 1024):
        try:
            verdicts.append(b"".join(payload_chunks(block[i : i + size] for i in range(0, len(block), size))))
        except HeadTooLarge:
            verdicts.append(None)
    assert verdicts[0] == verdicts[1]
    assert (verdicts[0] is None) == (block.index(b"\r\n\r\n") + 4 > MAX_HEAD)
