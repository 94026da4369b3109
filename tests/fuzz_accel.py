"""Seeded hostile inputs to every entry point of the C accelerator (``archiver/_fasthash.c``).

Run by ``test_sanitized.py`` against a build with AddressSanitizer and
UndefinedBehaviorSanitizer, where any out-of-bounds access, use after free or
undefined operation ends the process. The harness itself checks only that each call
returns or raises an ordinary Python exception; what the results must be is for
``test_fasthash.py`` and ``test_warc_whole.py``, which run on the same build.

Usage: ``python fuzz_accel.py SEED ROUNDS`` (prints ``done`` at the end).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from test_warc_whole import CASES, gz, record  # (this folder is the script's: first on sys.path)

from archiver import _fasthash as F  # (the sanitized build: see test_sanitized.py)

R = random.Random(int(sys.argv[1]))
ROUNDS = int(sys.argv[2])
ARTICLE = "في صور قيصر، وثّقت الشهادات مصير المعتقلين.\n".encode()
EXPECTED = (ValueError, TypeError, OverflowError, UnicodeError, RecursionError, OSError)


def mutate(data: bytes) -> bytes:
    """Bit flips, truncation, insertion, deletion and repetition, one to six of them."""
    b = bytearray(data)
    for _ in range(R.randint(1, 6)):
        op, at = R.randrange(6), R.randrange(len(b) + 1)
        if op == 0 and at < len(b):
            b[at] ^= 1 << R.randrange(8)
        elif op == 1:
            del b[at:]
        elif op == 2:
            b[at:at] = R.randbytes(R.randint(1, 40))
        elif op == 3 and at < len(b):
            b[at] = R.choice(b"\r\n:\x00\xff 0123456789")
        elif op == 4:
            del b[at : at + R.randint(1, 30)]
        else:
            b[at:at] = b[at : at + R.randint(1, 200)]
    return bytes(b)


def header_lines() -> bytes:
    lines = [
        b"WARC-Type: resource",
        b"WARC-Type: metadata",
        b"WARC-Type: response",
        b"Content-Type: application/http; msgtype=response",
        b"Content-Type: text/plain; charset=utf-8",
        b"WARC-Record-ID: <urn:uuid:x>",
        b"WARC-Block-Digest: sha256:" + b"A" * R.randint(0, 80),
        b"X-Long: " + b"a" * R.choice([0, 1, 1000, 70_000]),
        b"Bad\x01: x",
        b" folded",
        b"NoColon",
        b"WARC-Date: " + R.randbytes(R.randint(0, 5)),
    ]
    end = b"\r\n" if R.random() < 0.8 else b""
    return b"\r\n".join(R.choice(lines) for _ in range(R.randint(0, 8))) + end


def warc_input(reference: bytes) -> bytes:
    """A damaged member, a sound gzip member around a hostile record, or plain noise."""
    kind = R.randrange(5)
    if kind == 0:
        return mutate(R.choice(list(CASES.values())))
    if kind == 1:
        block = R.randbytes(R.choice([0, 1, 10, 5000, 70_000]))
        if R.random() < 0.3:
            block = b"HTTP/1.1 200 OK\r\n" + mutate(b"A: b\r\n\r\n") + block
        length = R.choice([None, None, 0, len(block) + 1, max(0, len(block) - 1), 10**15, 10**16 - 1])
        trailer = R.choice([b"\r\n\r\n", b"", b"\r\n", b"xx\r\n\r\n"])
        raw = record(block, head=header_lines(), length=length, trailer=trailer)
        if R.random() < 0.3:
            raw = mutate(raw)
        if R.random() < 0.2:
            bad = R.choice([b"-", b"+", b" ", b"0x", b"99999999999999999999"])
            raw = raw.replace(b"Content-Length: ", b"Content-Length: " + bad, 1)
        return gz(raw, R.choice([0, 1, 6, 9]))
    if kind == 2:
        at = R.randrange(len(reference))
        return mutate(reference[at : at + R.randint(1, 8000)])
    if kind == 3:
        return gz(mutate(record(b"x" * R.randint(0, 300))))
    return R.randbytes(R.randint(0, 300))


def json_value(depth: int = 0) -> object:
    kind = R.randrange(8 if depth < 6 else 5)
    if kind == 0:
        return R.choice([None, True, False])
    if kind == 1:
        return R.choice([0, -1, 2**53, -(2**63), 2**64, 10**30, R.randint(-(10**9), 10**9)])
    if kind == 2:
        return R.choice([0.0, -0.0, 1e308, 5e-324, 1.5, math.nan, math.inf])
    if kind == 3:
        points = (R.randint(0, 0x7F), R.randint(0x80, 0xFFFF), R.randint(0x10000, 0x10FFFF), 0xD800)
        return "".join(chr(R.choice(points)) for _ in range(R.randint(0, 12)))
    if kind == 4:
        return R.randbytes(3)  # (not JSON: refused, never read past)
    if kind in (5, 6):
        return [json_value(depth + 1) for _ in range(R.randint(0, 5))]
    return {
        "".join(chr(R.randint(0x20, 0x2000)) for _ in range(R.randint(0, 5))): json_value(depth + 1)
        for _ in range(R.randint(0, 5))
    }


def text() -> str | bytes:
    kind = R.randrange(4)
    if kind == 0:
        return R.randbytes(R.randint(0, 3000))
    if kind == 1:
        chars = "".join(chr(R.randint(0, 0x10FFFF)) for _ in range(R.randint(0, 500)))
        return chars.encode("utf-8", "surrogatepass")
    if kind == 2:  # white space of every kind the token rule knows, Arabic, a lone surrogate
        points = [0x20, 0x0A, 0x627, 0x644, 0x3000, 0x85, 0xA0, 0x2028, 0x41, 0x1F600, 0xD800]
        return "".join(chr(R.choice(points)) for _ in range(R.randint(0, 2000)))
    return mutate(ARTICLE * R.randint(1, 50))


def call(function: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(*EXPECTED):  # refused: what matters here is that it did not crash
        function(*args)


def main() -> None:
    reference = (Path(__file__).resolve().parents[1] / "store" / "000000.warc.gz").read_bytes()
    for i in range(ROUNDS):
        F.x16(R.random() < 0.7)  # (both the AVX-512 and the one-at-a-time paths, where present)
        F.sha_ni(R.random() < 0.7)
        data = warc_input(reference)
        # (the output buffer only ever grows, to the largest cap yet: small caps come first,
        # so that an inflate writing past its cap would write past the buffer)
        cap = R.choice([0, 1, 100, 1 << 16] + ([1 << 20, 1 << 30] if i >= ROUNDS // 2 else []))
        call(F.warc_member, data, cap, R.choice([0, 1, 100, 65_536]))
        call(F.warc_member, memoryview(data)[R.randint(0, len(data)) :], min(cap, 1 << 16), 100)
        t = text()
        call(F.utf8_nfc_plain, t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass"))
        call(F.text_root, t, R.randbytes(R.choice([32, 32, 32, 0, 31, 33])))
        call(F.text_roots, [(text(), R.randbytes(R.choice([32, 32, 31]))) for _ in range(R.randint(0, 12))])
        if isinstance(t, str):
            call(F.split_tokens, t, R.choice([0, -1, len(t), len(t) + 5, R.randint(0, len(t) + 1)]))
            toks = F.split_tokens(t) if R.random() < 0.8 else [t]
            salts = R.choice([len(toks), len(toks) + 1, max(len(toks) - 1, 0)])
            call(F.leaf_hashes, R.randbytes(32 * salts), toks)
        call(F.perfect_root, R.randbytes(32 * R.choice([0, 1, 2, 3, 4, 16, 17, 64]) + R.choice([0, 0, 1])))
        call(F.b32encode, R.randbytes(R.randint(0, 100)))
        value = json_value()
        call(F.json_canonical, value)
        shared = R.choice([None, frozenset(), frozenset({"a", "b", ""}), {"a"}, ["a"], "a"])
        call(F.json_finish, value, R.choice([-1, 0, 1, 3, 64, 1000, 1001, 10**6]), shared)
        try:
            raw = json.dumps(value, ensure_ascii=R.random() < 0.5).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):
            raw = R.randbytes(20)
        call(F.json_colons, mutate(raw) if R.random() < 0.5 else raw)
        if i % 1000 == 0:
            print(i, flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for i in range(100):
            items = [
                (os.path.join(folder, f"f{i}-{j}"), R.randbytes(R.randint(0, 5000)))
                for j in range(R.randint(0, 5))
            ]
            if R.random() < 0.2:
                items.append((os.path.join(folder, "missing", "x"), b"x"))
            if R.random() < 0.1 and items:
                items.append(items[0])  # (exists by then: refused)
            call(F.write_new_files, items, R.random() < 0.1)
    deep: list[object] = []
    inner = deep
    for _ in range(100_000):  # far deeper than any limit: refused, not a C stack overflow
        inner.append([])
        inner = inner[0]
    call(F.json_canonical, deep)
    call(F.json_finish, deep, 64, frozenset({"a"}))
    call(F.json_colons, b"[" * 10**6)
    print("done")


if __name__ == "__main__":
    main()
