"""Unit and property tests of the building blocks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver import errors
from archiver.canonical import JSONFormatError, canonical_bytes, load_strict, pretty_bytes
from archiver.digests import digest_stream, sniff
from archiver.redaction import tokens
from archiver.schema import SCHEMA_NAMES, schema_errors, schema_text, validator
from archiver.textdigest import TextDigester, text_sha256
from archiver.warcread import RecordReader, WarcFormatError


class Chunky(io.RawIOBase):
    """A stream returning data in the given chunk sizes (as pipes and sockets do)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos = data, sizes or [1], 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        size = self.sizes[self.pos % len(self.sizes)] if self.pos < len(self.data) else 0
        out = self.data[self.pos : self.pos + min(size, n if n > 0 else size)]
        self.pos += len(out)
        return out


# -- RFC 8785 ------------------------------------------------------------------------------------
def test_jcs_known_answers():
    # RFC 8785 section 3.2.3 ordering and escaping rules, by example
    assert canonical_bytes({"b": 1, "a": [True, None, "\u20ac"], "\u00e9": "x"}) == (
        '{"a":[true,null,"\u20ac"],"b":1,"\u00e9":"x"}'.encode()
    )
    assert canonical_bytes({"\u20ac": 1, "\r": 2, "1": 3}) == b'{"\\r":2,"1":3,"\xe2\x82\xac":1}'
    assert canonical_bytes("\u0007") == b'"\\u0007"'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=300)
def test_jcs_idempotent_and_pretty_round_trip(value):
    try:
        c = canonical_bytes(value)
    except errors.InvalidInput:
        return  # lone surrogates cannot be canonicalised: refused, never mangled
    assert canonical_bytes(json.loads(c)) == c
    assert canonical_bytes(load_strict(pretty_bytes(value))) == c


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=25,
    )
)
@settings(max_examples=400)
def test_pretty_bytes_are_exactly_the_json_module_s(value):
    """Manifest files keep the same bytes as before pretty_bytes was written out by hand."""
    try:
        want = (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(errors.InvalidInput):
            pretty_bytes(value)
        return
    assert pretty_bytes(value) == want


@given(json_values, st.booleans())
@settings(max_examples=300)
def test_load_strict_plain_knows_what_the_jcs_fast_path_needs(value, big):
    """``plain`` from parsing agrees with the canonicaliser's own check, and the canonical
    bytes are the same whichever way it was decided."""
    from archiver.canonical import _plain, load_strict_plain

    if big:
        value = {"n": [value, 2**53]}
    try:
        raw = pretty_bytes(value)
        c = canonical_bytes(value)
    except errors.InvalidInput:
        return
    parsed, plain = load_strict_plain(raw)
    assert plain == _plain(parsed)
    if plain:
        assert canonical_bytes(parsed, plain=True) == c


# -- strict JSON -------------------------------------------------------------------------------
def test_member_names_are_shared_across_parsed_documents():
    """A verify holds every manifest: one copy of each member name, not one per document
    (both the plain and the long way)."""
    from archiver.canonical import load_strict_plain

    for extra in ("", ', "big": 9007199254740993'):  # plain, then not plain
        a, _ = load_strict_plain(('{"document_id": "a", "content": {"media_type": 1}' + extra + "}").encode())
        b, _ = load_strict_plain(('{"document_id": "b", "content": {"media_type": 2}' + extra + "}").encode())
        (ka, kb) = (next(iter(a)), next(iter(b)))
        assert ka == kb == "document_id" and ka is kb
        assert next(iter(a["content"])) is next(iter(b["content"]))


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1, 2, {"c": "x"}]}',
        '{"big": 9007199254740992, "a": 1, "a": 2}',  # not plain, then a duplicate
        '{"a": 1, "a": 2, "big": 9007199254740992}',  # a duplicate, then not plain
        '{"\u0645": 1, "x": 1.5}',  # a non-ASCII name, then a float
        '{"x": 1.5, "\u0645": 1}',
        '{"\u0645": [NaN]}',
        '{"n": -9007199254740991, "m": 9007199254740991}',  # the edges, plain
        '{"n": [-9007199254740992]}',
        '{"\u0645": {"\u0645": 1, "\u0645": 2}}',
        '{"a": {"\u0645": "\u0645"}}',  # valid, with a non-ASCII name: not plain
        '{"a": ',
    ],
)
def test_strict_parse_fast_path_agrees_with_the_long_way(text):
    """The shared decoder stops at the first sign a value is not plain and parses again
    the long way: same value, same plainness, same error as the long way alone."""
    from archiver.canonical import _load_noting_plain, load_strict_plain

    def outcome(fn):
        try:
            return fn()
        except (JSONFormatError, json.JSONDecodeError) as e:
            return type(e).__name__, str(e).split(":")[0]

    fast = outcome(lambda: load_strict_plain(text.encode()))
    slow = outcome(lambda: _load_noting_plain(text))
    if isinstance(slow, tuple) and slow and slow[0] == "JSONDecodeError":
        assert fast[0] == "JSONFormatError" and fast[1] == "not JSON"
    else:
        assert fast == slow


_names = st.text(alphabet=st.sampled_from('ab:"\\\u0645{}[],'), max_size=4)
_strict_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(alphabet=st.sampled_from('x:"\\{}'), max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_names, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400)
@given(_strict_values, st.integers(0, 3), st.booleans())
def test_strict_parse_in_c_agrees_with_the_hooks(value, duplicate_at, indent):
    """json's C parser plus the C walk (``_fasthash.json_finish``, ``json_colons``) gives
    the value, the plainness and the refusals of the parse with Python hooks: names full
    of colons, quotes and backslashes, big integers, and a name given twice."""
    from archiver import fasthash
    from archiver.canonical import _load_noting_plain, load_strict_plain

    text = json.dumps(value, ensure_ascii=False, indent=2 if indent else None)
    if isinstance(value, dict) and value and duplicate_at:
        name = list(value)[duplicate_at % len(value)]
        text = text.rstrip().removesuffix("}") + ", " + json.dumps(name) + ": 0}"

    def outcome(fn):
        try:
            return fn()
        except JSONFormatError as e:
            return "refused", str(e)

    fast = outcome(lambda: load_strict_plain(text.encode()))
    assert fast == outcome(lambda: _load_noting_plain(text))
    # values interned for sharing (``shared``) are the same values
    names = frozenset(value) if isinstance(value, dict) else frozenset({"a", ""})
    assert outcome(lambda: load_strict_plain(text.encode(), names)) == fast
    if fasthash.json_colons is not None and fast[0] != "refused":
        assert fasthash.json_colons(text.encode()) == _members(fast[0])


def _every_way(raw: bytes) -> list[object]:
    """``load_strict_plain``'s outcome by each parser: orjson then the C walk, json's C
    scanner then the C walk, and the long way alone (the reference)."""
    from archiver import canonical, fasthash

    def outcome():
        try:
            return canonical.load_strict_plain(raw)
        except JSONFormatError as e:
            return "refused", str(e)

    found = [outcome()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(canonical, "_orjson_loads", None)
        found.append(outcome())
        mp.setattr(fasthash, "json_finish", None)
        found.append(outcome())
    return found


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('x:"\\{}\u0645\x00\x1f\x7f\ud800\udc00\U0001f600'), max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_names, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500)
@given(_json_values, st.booleans(), st.integers(0, 400), st.binary(max_size=3), st.integers(0, 3))
def test_strict_parse_by_orjson_agrees_with_the_long_way(value, ascii_only, at, inserted, removed):
    """orjson (the fast path's parser where installed) accepts and refuses what strict
    parsing does, with the same value and plainness: JSON with floats, integers beyond 64
    bits, lone surrogates escaped, controls, names given twice, then bytes inserted or
    removed anywhere (not UTF-8, a BOM, a broken token). Only outcomes are compared: the
    long way explains every refusal."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, dict) and value:
        text = text.removesuffix("}") + ", " + json.dumps(next(iter(value)), ensure_ascii=ascii_only) + ": 0}"
    raw = text.encode("utf-8", "surrogatepass")
    at %= len(raw) + 1
    raw = raw[:at] + inserted + raw[at + removed :]
    orjson_way, json_way, long_way = _every_way(raw)
    assert orjson_way == json_way == long_way


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\ud800"',  # a lone surrogate, escaped: json takes it, orjson refuses it
        b'{"a": "\\udc00\\ud800"}',
        b'"\xed\xa0\x80"',  # a surrogate in UTF-8: not UTF-8
        b'"\xc0\x80"',  # an overlong NUL
        b"\xef\xbb\xbf{}",  # a byte order mark
        b"18446744073709551616",  # beyond 64 bits: a float to orjson
        b"-9223372036854775809",
        b"9223372036854775808",
        b"1" * 5000,  # more digits than Python turns into an int
        b"-0",
        b"1E2",
        b"[1e400]",
        b'{"a": 1, "\\u0061": 2}',  # a name given twice, once escaped
        b'{"a": 1,}',
        b"[" * 65 + b"]" * 65,  # one level too deep
        b"[" * 2000 + b"]" * 2000,  # beyond orjson's limit
        b'"\x7f\\u0000"',
        b'{"\xd9\x85": 9007199254740992}',
    ],
)
def test_strict_parse_edges_agree_whichever_parser(raw):
    assert len({repr(x) for x in _every_way(raw)}) == 1


def test_manifests_take_the_fast_path():
    """A manifest as ingest writes it is parsed by the fast path (orjson where installed),
    not the long way: the value is the long way's, with names interned."""
    import sys

    from archiver import canonical, fasthash

    if fasthash.json_finish is None:
        pytest.skip("the C module is not built")
    doc = {"format": "archiver/manifest/1", "content": {"size": 3, "title": "\u0648\u062b\u064a\u0642\u0629"}}
    fast = canonical._parse_fast(pretty_bytes(doc))
    assert fast is not None and fast == (doc, True)
    assert all(name is sys.intern(name) for name in [*fast[0], *fast[0]["content"]])
    assert canonical._parse_fast(pretty_bytes({"\u0645": 1})) == ({"\u0645": 1}, False)
    assert canonical._orjson_loads is not None  # a declared dependency: CI has it


def _members(value):
    if isinstance(value, dict):
        return len(value) + sum(_members(v) for v in value.values())
    if isinstance(value, list):
        return sum(_members(v) for v in value)
    return 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"a":1.5}',
        b"NaN",
        b'{"a":Infinity}',
        b"\xff\xfe{}",
        b"[" * 100 + b"]" * 100,
        b"[" * 100000 + b"]" * 100000,
        b"{",
        b"",
    ],
    ids=["duplicate", "float", "nan", "infinity", "not-utf8", "deep", "very-deep", "truncated", "empty"],
)
def test_load_strict_rejects(raw):
    with pytest.raises(JSONFormatError):
        load_strict(raw)


# -- text digest ---------------------------------------------------------------------------------
text_alphabet = st.sampled_from(
    [
        "a",
        " ",
        "\n",
        "\r",
        "\r\n",
        "e\u0301",
        "\u00e9",
        "\u0642",
        "\u064e",
        "\u0651",
        "\ufeff",
        "\u1100",
        "\u1161",
        "\u11a8",
        "\u0b47",
        "\u0b3e",
        "\u00a0",
        "x",
    ]
)


@given(st.lists(text_alphabet, max_size=80), st.lists(st.integers(1, 9), min_size=1, max_size=8))
@settings(max_examples=500)
def test_streamed_text_digest_equals_whole_text_definition(parts, sizes):
    data = "".join(parts).encode()
    t = TextDigester("utf-8")
    stream = Chunky(data, sizes)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        t.update(chunk)
    expected = hashlib.sha256(
        unicodedata.normalize(
            "NFC", "".join(parts).removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        ).encode()
    ).hexdigest()
    assert t.result() == text_sha256(data) == expected


@given(
    st.lists(text_alphabet | st.sampled_from(["\x00", "\r\n", "\u0301", "\U0001f600"]), max_size=60),
    st.sampled_from(["utf-8", "UTF8", "utf-8-sig", "utf-16", "cp1256", "latin-1", "iso-8859-6"]),
    st.lists(st.integers(1, 9), min_size=1, max_size=8),
    st.booleans(),
)
@settings(max_examples=400)
def test_whole_text_digest_equals_the_streamed_one(parts, encoding, sizes, garble):
    """``digest_whole`` (a block taken whole, as a verify reads articles) gives what the
    streaming digester gives for the same bytes in any chunks, and the text it was fed."""
    from archiver.textdigest import digest_whole

    data = "".join(parts).encode(encoding, "replace")
    if garble and data:
        data = data[:-1]  # often cuts a multi-byte character or a UTF-16 unit: not text
    fed: list[str] = []
    t = TextDigester(encoding, fed.append)
    stream = Chunky(data, sizes)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        t.update(chunk)
    want = t.result()
    for known in (None, hashlib.sha256(data).digest()):
        digest, text = digest_whole(data, encoding, known)
        assert digest == want
        assert text == (None if want is None else "".join(fed))


def test_whole_text_digest_takes_the_known_digest_only_for_normal_utf8():
    """The shortcut (the block's own SHA-256 as its text digest) applies to UTF-8 already
    in normal form and to nothing else: a wrong "known" digest shows which path ran."""
    from archiver.textdigest import digest_whole

    wrong = b"\x01" * 32
    normal = "صور قيصر\nسطر".encode()
    assert digest_whole(normal, "utf-8", wrong)[0] == wrong.hex()
    for data, encoding in [
        ("سطر\r\nسطر".encode(), "utf-8"),  # CR LF: normalised
        ("\ufeffسطر".encode(), "utf-8"),  # BOM: removed
        ("cafe\u0301".encode(), "utf-8"),  # not NFC
        ("سطر".encode("cp1256"), "cp1256"),  # not UTF-8
        (b"plain", "utf-8-sig"),  # another codec, though the same bytes
    ]:
        assert digest_whole(data, encoding, wrong)[0] == text_sha256(data, encoding) != wrong.hex()


@pytest.mark.parametrize("codec", ["base64", "hex", "zlib", "rot13", "no-such-codec"])
def test_a_charset_that_is_not_a_text_encoding_is_refused(codec, tmp_path):
    """Bytes-to-bytes codecs decode to bytes: named as a charset they are refused like an
    unknown one (they used to reach the digester and fail with a TypeError)."""
    from archiver.textdigest import digest_whole
    from archiver.warcscan import TextCheck, read_record

    with pytest.raises(LookupError):
        TextDigester(codec)
    with pytest.raises(LookupError):
        digest_whole(b"YWJj", codec)
    with pytest.raises(LookupError):
        digest_stream(io.BytesIO(b"YWJj"), filename="a.txt", charset=codec)
    record = gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 4\r\n\r\nYWJj\r\n\r\n")
    for big in (False, True):  # a block taken whole, and one streamed
        import archiver.warcscan as warcscan

        saved = warcscan.WHOLE_BYTES
        warcscan.WHOLE_BYTES = 0 if big else saved
        try:
            info, _ = read_record(io.BytesIO(record), 0, text=TextCheck(codec, bytes(32)))
        finally:
            warcscan.WHOLE_BYTES = saved
        assert info.error is not None and "unreadable" in info.error


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("صور قيصر، أدلة على التعذيب.\n" * 300, "utf-8"),
        ("«صور» \u2014 2014 café, ١٢٣\tend", "utf-8"),  # three-byte punctuation, Latin-1: judged from bytes
        ("\ufeffسطر أول\r\nسطر ثانٍ\r\n", "utf-8"),
        ("cafe\u0301 \u0642\u064e\rline", "utf-8"),
        ("سطر أول\r\nسطر", "cp1256"),
        ("a\x00b", "utf-8"),
        ("", "utf-8"),
    ],
)
def test_a_text_record_taken_whole_or_streamed_gives_the_same(text, charset):
    """A verify takes a small text block whole (``digest_whole``, ``whole_tree``) and streams
    a large one: the same text digest, token tree and held text either way."""
    import archiver.warcscan as warcscan
    from archiver.warcscan import TextCheck, finish_tree, read_record

    block = text.encode(charset)
    head = f"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: {len(block)}\r\n\r\n".encode()
    record = gzip.compress(head + block + b"\r\n\r\n")
    seed = bytes(range(32))
    seen = []
    for whole in (True, False):
        saved = warcscan.WHOLE_BYTES
        warcscan.WHOLE_BYTES = saved if whole else -1
        try:
            with_seed, _ = read_record(io.BytesIO(record), 0, text=TextCheck(charset, seed))
            deferred, _ = read_record(io.BytesIO(record), 0, text=TextCheck(charset, None, 999))
        finally:
            warcscan.WHOLE_BYTES = saved
        assert with_seed.error is None and deferred.error is None
        held = deferred.text
        if held is not None:  # the text as decoded (UTF-8 is held as its bytes)
            assert (held.decode() if isinstance(held, bytes) else held) == text
        finish_tree(deferred, seed)  # the seed, read later
        seen.append((with_seed.text_sha256, with_seed.redactable, deferred.text_sha256, deferred.redactable))
    assert seen[0] == seen[1]
    assert seen[0][0] == text_sha256(block, charset)
    if seen[0][0] is not None:
        assert seen[0][1] == seen[0][3]
        assert seen[0][1]["tokens"] == len(tokens(text))


def test_text_digest_refuses_non_text():
    assert text_sha256(b"\xff\xfe\x00") is None
    assert text_sha256(b"a\x00b") is None
    t = TextDigester("utf-8")
    t.update(b"abc\xff")
    assert t.result() is None


# -- digests -------------------------------------------------------------------------------------
@given(st.binary(max_size=5000), st.lists(st.integers(1, 700), min_size=1, max_size=6))
@settings(max_examples=200)
def test_streamed_digests_match_hashlib(data, sizes):
    d = digest_stream(Chunky(data, sizes), filename="x.bin")  # type: ignore[arg-type]
    assert d.size == len(data)
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.sha512 == hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize(
    ("first", "name", "expected"),
    [
        (b"%PDF-1.7", "x", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n", None, "image/png"),
        (b"\xff\xd8\xff\xe0", "a.txt", "image/jpeg"),
        (b"  <!DOCTYPE html>", None, "text/html"),
        (b"hello", "notes.txt", "text/plain"),
        (b"hello", "page.html", "text/html"),
        (b"??", None, None),
    ],
)
def test_sniff(first, name, expected):
    assert sniff(first, name) == expected


def test_media_type_of_undeclared_content():
    assert digest_stream(io.BytesIO("نص".encode()), filename=None).media_type == "text/plain"
    assert digest_stream(io.BytesIO(b"\x00\x01\xff"), filename=None).media_type == "application/octet-stream"
    declared = digest_stream(io.BytesIO("نص".encode("cp1256")), filename=None, charset="windows-1256")
    assert declared.charset == "windows-1256" and declared.text_sha256 == text_sha256("نص".encode())


# -- schemas -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schemas_are_valid_2020_12_with_id(name):
    from jsonschema import Draft202012Validator

    doc = json.loads(schema_text(name))
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith(f"/{name}.schema.json")
    validator(name)


def test_formats_are_checked():
    assert schema_errors("metadata", {"published": "2024-02-30"})
    assert schema_errors("metadata", {"published": "2024-02-10T25:00:00Z"})
    assert not schema_errors("metadata", {"published": "2024-02-10T12:00:00Z"})
    assert not schema_errors("metadata", {"published": "2015"})


# -- WARC reader -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("record", "needle"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", "not a WARC"),
        (b"WARC/1.1\r\nContent-Length: -5\r\n\r\n", "Content-Length"),
        (b"WARC/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", "Content-Length"),
        (b"WARC/1.1\r\nContent-Length: 10\r\n\r\nabc", "truncated"),
        (b"WARC/1.1\r\nbad line\r\nContent-Length: 0\r\n\r\n\r\n\r\n", "malformed"),
    ],
)
def test_reader_rejects_hostile_records(record, needle):
    import gzip

    with pytest.raises(WarcFormatError, match=needle):
        r = RecordReader(io.BytesIO(gzip.compress(record)), 0)
        list(r.block())


def test_reader_bounds_a_gzip_bomb():
    import gzip

    bomb = gzip.compress(b"WARC/1.1\r\nX: " + b"a" * (50 << 20))
    with pytest.raises(WarcFormatError, match="header too long"):
        RecordReader(io.BytesIO(bomb), 0)


def test_header_lookup_takes_the_first_occurrence_and_folded_lines():
    from archiver.warcread import parse_headers

    h = parse_headers(
        b"WARC/1.1\r\nWARC-Type: resource\r\nwarc-type: revisit\r\nX-Long: one\r\n  two\r\nContent-Length: 5"
    )
    assert h.get("WARC-TYPE") == "resource"
    assert h.get("x-long") == "one two"
    assert h.get("absent") is None
    assert h.content_length == 5
    assert [k for k, _ in h.fields] == ["warc-type", "warc-type", "x-long", "content-length"]


def test_sequential_scan_over_records_of_every_size():
    """One read holds many small members, and a large member takes many reads: each
    record's offset, length and digest must come out exact whatever its size (the
    reader hands the rest of a read on to the next record, without copying it)."""
    import gzip
    import hashlib

    from archiver.warcread import FEED, READ_SIZE
    from archiver.warcscan import scan_file

    from tamper import MemoryStore

    rng = random.Random(7)
    sizes = [0, 1, 50, 3000, FEED - 100, FEED + 5, 3 * FEED, READ_SIZE - 60, READ_SIZE + 1, 3 * READ_SIZE]
    sizes += [rng.randrange(0, 400) for _ in range(400)]  # hundreds of members in one read
    rng.shuffle(sizes)
    warc, expected = b"", []
    for i, n in enumerate(sizes):
        block = rng.randbytes(n) if i % 2 else (b"abc " * n)[:n]  # incompressible and not
        head = f"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:x:{i}>\r\n"
        head += f"Content-Length: {n}\r\n\r\n"
        member = gzip.compress(head.encode() + block + b"\r\n\r\n", compresslevel=1)
        expected.append((len(warc), len(member), hashlib.sha256(block).digest(), f"<urn:x:{i}>"))
        warc += member
    found = [
        (off, info.length, info.sha256, info.record_id)
        for off, info in scan_file(MemoryStore({"w": warc}), "w")
        if info.error is None
    ]
    assert found == expected


def test_error_hierarchy():
    for cls in (
        errors.ArchiveNotFound,
        errors.ArchiveExists,
        errors.InvalidInput,
        errors.KeyUnavailable,
        errors.ArchiveLocked,
        errors.StoreError,
        errors.CorruptArchive,
    ):
        assert issubclass(cls, errors.ArchiverError)
    assert issubclass(errors.DocumentNotFound, errors.InvalidInput)


def test_report_has_no_truth_value():
    from archiver import Counts, Report

    r = Report(archive_id="x", tool_version="0", time="t", scope="archive", counts=Counts())
    assert r.ok and not hasattr(Report, "__bool__")


_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_json = st.recursive(
    _json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(value=_json)
def test_canonical_bytes_is_rfc8785(value):
    """The fast path of canonical_bytes writes exactly what rfc8785 writes (or both refuse)."""
    import rfc8785

    from archiver.canonical import canonical_bytes
    from archiver.errors import InvalidInput

    try:
        expected = rfc8785.dumps(value)
    except Exception:  # rfc8785 refuses (integer out of range, lone surrogate)
        with pytest.raises(InvalidInput):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 70_000])
@pytest.mark.parametrize("offset", [0, 3])
def test_read_upto_reads_to_the_end_or_one_byte_past_the_limit(tmp_path, size, offset):
    import os

    from archiver.fsutil import read_upto

    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    for limit in (0, 1, 4096, 65_536, 1 << 20):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.lseek(fd, min(offset, size), os.SEEK_SET)
            got = read_upto(fd, limit)
        finally:
            os.close(fd)
        rest = data[min(offset, size) :]
        assert got == rest[: limit + 1]
        assert (len(got) > limit) == (len(rest) > limit)


def test_read_upto_reads_what_was_appended_after_the_file_was_opened(tmp_path):
    import os

    from archiver.fsutil import read_upto

    path = tmp_path / "f"
    path.write_bytes(b"a" * 10)
    fd = os.open(path, os.O_RDONLY)
    with open(path, "ab") as more:  # after open, before read_upto sizes it: it sees 200,010 bytes
        more.write(b"b" * 200_000)
    try:
        got = read_upto(fd, 100_000)
    finally:
        os.close(fd)
    assert got == (b"a" * 10 + b"b" * 200_000)[:100_001]


@pytest.mark.parametrize("impl", ["c", "python"])
def test_write_new_many_creates_files_and_never_replaces_one(tmp_path, monkeypatch, impl):
    """The batch writer of manifests (in C where built): each file created anew with its
    bytes; an existing file or a link where a file should go stops the batch there."""
    from archiver import errors, fasthash
    from archiver.fsutil import write_new_many

    if impl == "python":
        monkeypatch.setattr(fasthash, "write_new_files", None)
    elif fasthash.write_new_files is None:
        pytest.skip("the C accelerator is not built here")
    items = [(tmp_path / f"m{i}.json", f"{i} صور".encode() * i) for i in range(40)]
    write_new_many(items, sync=True)
    assert all(p.read_bytes() == d for p, d in items)

    (tmp_path / "taken.json").write_bytes(b"original")
    (tmp_path / "elsewhere").write_bytes(b"target")
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere")
    for blocker in ("taken.json", "link.json"):
        batch = [
            (tmp_path / f"{blocker}.a", b"a"),
            (tmp_path / blocker, b"new"),
            (tmp_path / f"{blocker}.c", b"c"),
        ]
        with pytest.raises(errors.StoreError):
            write_new_many(batch, sync=False)
        assert (tmp_path / f"{blocker}.a").read_bytes() == b"a"  # the files before it stay
        assert not (tmp_path / f"{blocker}.c").exists()  # nothing after it
    assert (tmp_path / "taken.json").read_bytes() == b"original"
    assert (tmp_path / "elsewhere").read_bytes() == b"target"


@settings(max_examples=300, deadline=None)
@given(
    t=st.datetimes(
        min_value=datetime(1, 1, 1, 12),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([timezone(timedelta(minutes=m)) for m in (-600, 0, 330)]),
    )
)
def test_format_time_is_the_strftime_form(t):
    """Every event's time: the fast form (isoformat) is exactly the strftime one it replaced."""
    from archiver.timeutil import format_time

    assert format_time(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(0, b""), (1, b"a"), (5, b"abcde"), (6, b"abcdef"), (7, b"abcdef"), (None, b"abcdef")],
)
def test_local_store_read_stops_at_its_limit(tmp_path, limit, expected):
    from archiver.storage import LocalStore

    (tmp_path / "f").write_bytes(b"abcdef")
    assert LocalStore(tmp_path).read("f", limit) == expected


def test_local_store_listing_with_and_without_sizes(tmp_path):
    """``files`` and ``names`` list the same entries: every file, link and special file below
    the prefix, links never followed (a link to a folder is an entry, not walked into);
    ``files`` with each one's own size, ``names`` without asking for it."""
    import os

    from archiver.storage import LocalStore

    (tmp_path / "m" / "e" / "ab").mkdir(parents=True)
    (tmp_path / "m" / "e" / "ab" / "ab1.json").write_bytes(b"x" * 7)
    (tmp_path / "m" / "e" / "ab" / ".tmp").write_bytes(b"")
    (tmp_path / "m" / "e" / "cd").mkdir()
    (tmp_path / "m" / "e" / "cd" / "cd2.json").write_bytes(b"y" * 3)
    (tmp_path / "m" / "e" / "cd" / "to-file").symlink_to(tmp_path / "m" / "e" / "ab" / "ab1.json")
    (tmp_path / "m" / "e" / "cd" / "to-dir").symlink_to(tmp_path / "m" / "e" / "ab")
    (tmp_path / "m" / "e" / "cd" / "broken").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "m" / "e" / "cd" / "fifo")
    (tmp_path / "m" / "other").mkdir()
    (tmp_path / "m" / "other" / "z.json").write_bytes(b"z")
    (tmp_path / "m" / "ex.json").write_bytes(b"not below m/e/")
    store = LocalStore(tmp_path)
    want = [
        ("m/e/ab/.tmp", 0, False),
        ("m/e/ab/ab1.json", 7, False),
        ("m/e/cd/broken", None, True),
        ("m/e/cd/cd2.json", 3, False),
        ("m/e/cd/fifo", 0, False),
        ("m/e/cd/to-dir", None, True),
        ("m/e/cd/to-file", None, True),
    ]
    sized = store.files("m/e/")
    assert [(e.key, e.link) for e in sized] == [(k, link) for k, _, link in want]
    assert [e.size for e in sized] == [os.lstat(tmp_path / e.key).st_size for e in sized]
    assert [(e.key, e.size, e.link) for e in store.names("m/e/")] == [(k, -1, link) for k, _, link in want]
    assert [e.key for e in store.names("m/e/cd/c")] == ["m/e/cd/cd2.json"]
    assert [e.key for e in store.files("m/e")] == [*(k for k, *_ in want), "m/ex.json"]
    assert store.names("m/nothing/") == store.files("m/nothing/") == []


def test_split_points_cut_at_the_record_starts_nearest_even_parts():
    """A file read in parts is cut only where a record starts (an offset a manifest names),
    the nearest to even parts; never at 0 or beyond the end, never twice."""
    from archiver.warcscan import split_points

    known = [0, 100, 250, 400, 700, 950, 1000, 1200]
    assert split_points(known, 1000, 4) == [250, 400, 700]  # wanted 250, 500, 750
    assert split_points(known, 1000, 2) == [400]  # 500: 400 is nearer than 700
    cuts = split_points(known, 1000, 50)  # more parts than record starts
    assert cuts == [100, 250, 400, 700, 950]
    assert split_points([0], 1000, 4) == []
    assert split_points([], 1000, 4) == []
