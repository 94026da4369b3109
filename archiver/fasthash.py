"""The inner loops of a token tree (``redaction.py``), base32 for WARC digests and a
batch writer for manifest files: in C when built, else in Python.

``split_tokens``, ``leaf_hashes``, ``perfect_root``, ``text_root``, ``text_roots``
and ``b32encode`` are defined here in Python, as the reference (the batch writer's
reference is ``fsutil.write_new``, called once per file). ``archiver/_fasthash.c``
computes the same bytes with OpenSSL's SHA-256 and no Python object per hash,
several times faster; it is built by ``pip install`` where a C compiler and
the OpenSSL headers are present, and silently skipped where they are not (the
archive's bytes are the same either way). ``ARCHIVER_PURE_PYTHON=1`` forces
the Python versions (the tests run both and compare them); ``ARCHIVER_AVX512=0``
keeps the C token tree off its AVX-512 paths, sixteen SHA-256 lanes and eight
SHAKE-256 lanes (same trees).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable

_sha256 = hashlib.sha256


def py_leaf_hashes(salts: bytes, tokens: list[str]) -> bytes:
    """SHA-256(0x00 || salts[16i:16i+16] || UTF-8(tokens[i])) for each token, concatenated."""
    if len(salts) != 16 * len(tokens):
        raise ValueError("leaf_hashes: need 16 bytes of salt per token")
    return b"".join(
        [
            _sha256(b"\x00" + salts[16 * i : 16 * i + 16] + tok.encode("utf-8")).digest()
            for i, tok in enumerate(tokens)
        ]
    )


def py_perfect_root(nodes: bytes) -> bytes:
    """The RFC 9162 root of 2^k concatenated 32-byte hashes (interior: SHA-256(0x01 || l || r))."""
    count = len(nodes) // 32
    if len(nodes) % 32 or count == 0 or count & (count - 1):
        raise ValueError("perfect_root: need 2^k hashes of 32 bytes")
    level = [nodes[32 * i : 32 * i + 32] for i in range(count)]
    while len(level) > 1:
        level = [_sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=True)]
    return level[0]


_TOKEN_BODY = re.compile(r"\S+\s*")


def py_split_tokens(text: str, pos: int = 0) -> list[str]:
    """The tokens of ``text`` from ``pos``: each run of non-space characters with the white
    space after it (white space at ``pos`` is skipped)."""
    return _TOKEN_BODY.findall(text, pos)


_FIRST_TOKEN = re.compile(r"\s+|\S+\s*")


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 Merkle tree hash of one or more leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two below n
    return _sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def py_text_root(text: str | bytes, seed: bytes) -> tuple[bytes, int]:
    """The token-tree root of a whole text (or of its UTF-8) and its token count
    (``redaction.py`` defines the tree; this is its definition written out once more, as
    the reference)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    toks: list[str] = []
    if text:
        first = _FIRST_TOKEN.match(text)
        assert first is not None
        toks = [first.group(0), *py_split_tokens(text, first.end())]
    if not toks:
        return _sha256(b"").digest(), 0
    salts = b"".join(
        hashlib.shake_256(b"archiver/token-salt/1" + seed + block.to_bytes(8, "big")).digest(
            16 * min(1024, len(toks) - 1024 * block)
        )
        for block in range((len(toks) + 1023) // 1024)
    )
    packed = py_leaf_hashes(salts, toks)
    return _mth([packed[i : i + 32] for i in range(0, len(packed), 32)]), len(toks)


def py_text_roots(items: list[tuple[str | bytes, bytes]]) -> list[tuple[bytes, int]]:
    """``py_text_root`` of each (text, seed) (in C, the salts of several texts are derived
    together: ``_fasthash.c``)."""
    return [py_text_root(text, seed) for text, seed in items]


def py_b32encode(data: bytes) -> str:
    """RFC 4648 base32, with padding, as text."""
    return base64.b32encode(data).decode("ascii")


split_tokens: Callable[[str, int], list[str]] = py_split_tokens
leaf_hashes: Callable[[bytes, list[str]], bytes] = py_leaf_hashes
perfect_root: Callable[[bytes], bytes] = py_perfect_root
b32encode: Callable[[bytes], str] = py_b32encode
text_root: Callable[[str | bytes, bytes], tuple[bytes, int]] = py_text_root
text_roots: Callable[[list[tuple[str | bytes, bytes]]], list[tuple[bytes, int]]] = py_text_roots
#: whether bytes are UTF-8 text already in the text digest's normal form, judged without
#: decoding (``textdigest.normal_utf8``; without it, texts are decoded and checked)
utf8_nfc_plain: Callable[[bytes], bool] | None = None
#: ``fsutil.write_new`` for a batch of files in one call (no Python version: the caller loops)
write_new_files: Callable[[list[tuple[str, bytes]], bool], None] | None = None
#: strict JSON's checks after a parser without hooks (``canonical._parse_fast``): the value
#: with names interned (and the string values of the members named in its third argument),
#: its members, whether plain, whether refused (too deep, a float); without them, the Python
#: hooks do the same checks during parsing (and intern nothing)
json_finish: Callable[[object, int, frozenset[str] | None], tuple[object, int, bool, bool]] | None = None
json_colons: Callable[[bytes], int] | None = None
#: RFC 8785 bytes of a plain value, None for any other (``canonical.canonical_bytes``, whose
#: general path is the reference)
json_canonical: Callable[[object], bytes | None] | None = None
#: the header fields a record's findings keep (``warcscan.RecordInfo``), in that order
WARC_FIELDS = (
    "warc-type",
    "warc-record-id",
    "warc-date",
    "content-type",
    "warc-target-uri",
    "warc-block-digest",
    "warc-payload-digest",
    "warc-refers-to",
    "warc-concurrent-to",
)
#: a sound, plain WARC record read whole (``warcscan.read_record``; without it, and for
#: anything else, the streaming ``warcread.RecordReader``, which is its reference): bytes
#: consumed, the values of ``WARC_FIELDS`` (each field's first occurrence, None where
#: absent), block, the block's SHA-256 (the version line and every field are checked)
WholeRecord = tuple[int, tuple[str | None, ...], bytes, bytes]
warc_member: Callable[[bytes | memoryview, int, int], WholeRecord | int] | None = None
ACCELERATED = False

if not os.environ.get("ARCHIVER_PURE_PYTHON"):
    try:
        from . import _fasthash
    except ImportError:  # not built here: the Python versions above
        pass
    else:
        split_tokens = _fasthash.split_tokens
        leaf_hashes = _fasthash.leaf_hashes
        perfect_root = _fasthash.perfect_root
        b32encode = _fasthash.b32encode
        text_root = _fasthash.text_root
        text_roots = _fasthash.text_roots
        write_new_files = _fasthash.write_new_files
        utf8_nfc_plain = _fasthash.utf8_nfc_plain
        json_finish = _fasthash.json_finish
        json_colons = _fasthash.json_colons
        json_canonical = _fasthash.json_canonical
        # (only where the C module keeps the same fields in the same order, as it must)
        warc_member = _fasthash.warc_member if WARC_FIELDS == _fasthash.WARC_FIELDS else None
        ACCELERATED = True
        if os.environ.get("ARCHIVER_AVX512") == "0":
            # a CPU that slows its clock for 512-bit instructions may lose more around the
            # token tree than the tree gains (measured on one such machine: ADR 0015)
            _fasthash.x16(False)
