"""The C token-tree hashing (archiver/_fasthash.c) gives the bytes of the Python reference.

CI builds the extension and sets ARCHIVER_REQUIRE_ACCEL=1, so a build that silently fell
back to Python fails here instead of only being slower.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver import fasthash
from archiver.merkle import root_of_leaf_hashes
from archiver.redaction import TokenTreeBuilder, tokens, tree_of

needs_c = pytest.mark.skipif(
    not fasthash.ACCELERATED and not os.environ.get("ARCHIVER_REQUIRE_ACCEL"),
    reason="archiver._fasthash is not built here",
)


def test_the_accelerator_is_built_where_required():
    if os.environ.get("ARCHIVER_REQUIRE_ACCEL"):
        assert fasthash.ACCELERATED, "archiver._fasthash did not build (a C compiler and OpenSSL headers)"
        # (taken only where the C module keeps the header fields fasthash.py names)
        assert fasthash.warc_member is not None, "archiver._fasthash keeps other WARC fields"


@needs_c
@settings(max_examples=200, deadline=None)
@given(toks=st.lists(st.text(max_size=40), max_size=300), salt_seed=st.binary(min_size=1, max_size=8))
def test_leaf_hashes_equal_the_reference(toks, salt_seed):
    salts = hashlib.shake_256(salt_seed).digest(16 * len(toks)) if toks else b""
    from archiver import _fasthash

    try:
        want = fasthash.py_leaf_hashes(salts, toks)
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        with pytest.raises(UnicodeEncodeError):
            _fasthash.leaf_hashes(salts, toks)
        return
    assert _fasthash.leaf_hashes(salts, toks) == want
    assert want == b"".join(
        hashlib.sha256(b"\x00" + salts[16 * i : 16 * i + 16] + t.encode()).digest()
        for i, t in enumerate(toks)
    )


SPACES = "".join(chr(c) for c in range(0x3100) if chr(c).isspace())  # every white space below U+3100


@needs_c
@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(SPACES) | st.characters(), max_size=400),
    pos=st.integers(-2, 420),
)
def test_split_tokens_equals_the_regex(text, pos):
    from archiver import _fasthash

    assert _fasthash.split_tokens(text, pos) == fasthash.py_split_tokens(text, max(pos, 0))


@needs_c
@pytest.mark.parametrize("k", range(10))
def test_perfect_root_equals_the_reference(k):
    from archiver import _fasthash

    leaves = [hashlib.sha256(os.urandom(8)).digest() for _ in range(1 << k)]
    packed = b"".join(leaves)
    assert _fasthash.perfect_root(packed) == fasthash.py_perfect_root(packed) == root_of_leaf_hashes(leaves)


@needs_c
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80))
def test_b32encode_equals_the_standard_library(data):
    import base64

    from archiver import _fasthash

    assert _fasthash.b32encode(data) == base64.b32encode(data).decode() == fasthash.py_b32encode(data)
    assert _fasthash.b32encode(memoryview(data)) == base64.b32encode(data).decode()


@pytest.mark.parametrize("impl", ["c", "py"])
def test_bad_arguments_are_refused(impl):
    if impl == "c" and not fasthash.ACCELERATED:
        pytest.skip("not built here")
    from archiver import _fasthash

    leaf, root = (
        (_fasthash.leaf_hashes, _fasthash.perfect_root)
        if impl == "c"
        else (fasthash.py_leaf_hashes, fasthash.py_perfect_root)
    )
    with pytest.raises(ValueError):
        leaf(b"x" * 15, ["a"])
    for bad in (b"", b"x" * 31, b"x" * 96):
        with pytest.raises(ValueError):
            root(bad)
    if impl == "c":
        with pytest.raises(TypeError):
            leaf(b"x" * 16, [b"bytes"])
        # json_finish recurses on the C stack: a depth limit beyond Python's own is refused
        # (a value nested 100,000 deep under such a limit overflowed the stack: found by
        # fuzz_accel.py under AddressSanitizer)
        deep: list[object] = []
        for _ in range(2000):
            deep = [deep]
        for bad in (0, -1, 1001, 10**6):
            with pytest.raises(ValueError, match="max_depth"):
                _fasthash.json_finish(deep, bad)
        assert _fasthash.json_finish(deep, 1000)[3] is True  # (refused: the long way decides)
        with pytest.raises(TypeError, match="shared"):
            _fasthash.json_finish({"a": "b"}, 10, ["a"])


@needs_c
def test_parsed_manifests_share_the_values_that_repeat():
    """A verify holds every manifest: the string values of the members named in
    ``manifest.SHARED_VALUES`` are one object across manifests (interned), the others
    are not, and the parsed values are equal to an unshared parse's."""
    from archiver.canonical import load_strict_plain
    from archiver.manifest import SHARED_VALUES

    def manifest(n: int) -> bytes:
        doc = {
            "actor": {"key_id": "ab" * 32, "role": "archivist"},
            "storage": {"warc_file": "000000.warc.gz", "record_id": f"<urn:uuid:{n}>"},
            "content": {"sha256": "cd" * 32, "media_type": "text/plain", "size": 10**6 + n},
            "signatures": [{"key_id": "ab" * 32, "algorithm": "ed25519"}],
        }
        return json.dumps(doc).encode()

    (one, _), (two, _) = (load_strict_plain(manifest(n), SHARED_VALUES) for n in (1, 2))
    assert one == load_strict_plain(manifest(1))[0] and two == load_strict_plain(manifest(2))[0]
    for path in (
        ("actor", "key_id"),
        ("actor", "role"),
        ("storage", "warc_file"),
        ("content", "media_type"),
    ):
        a, b = one[path[0]][path[1]], two[path[0]][path[1]]
        assert a is b, path
    assert one["signatures"][0]["key_id"] is one["actor"]["key_id"]  # (in lists too)
    assert one["signatures"][0]["algorithm"] is two["signatures"][0]["algorithm"]
    # not listed: equal, not shared
    assert one["content"]["sha256"] == two["content"]["sha256"]
    assert one["content"]["sha256"] is not two["content"]["sha256"]
    unshared = load_strict_plain(manifest(1))[0]
    assert unshared["actor"]["key_id"] is not one["actor"]["key_id"]


TEXTS = st.text(alphabet=st.sampled_from(SPACES) | st.sampled_from("ab صق.") | st.characters(), max_size=600)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, seed=st.binary(min_size=32, max_size=32))
def test_text_root_equals_the_definition(text, seed):
    """The one-call tree (C where built, and the Python reference) is ``tree_of``'s, token by token."""
    try:
        want = tree_of(text, seed)
    except UnicodeEncodeError:  # a lone surrogate: every form refuses it
        with pytest.raises(UnicodeEncodeError):
            fasthash.text_root(text, seed)
        return
    for impl in {fasthash.text_root, fasthash.py_text_root}:
        root, count = impl(text, seed)
        assert (root.hex(), count) == (want["root"], want["tokens"])


@pytest.mark.parametrize("count", [1023, 1024, 1025, 2049, 5000])
def test_text_root_across_salt_blocks(count):
    """Salts come in SHAKE-256 blocks of 1,024 tokens: trees on both sides of a block edge."""
    text = " lead " + "".join(f"w{i}\t" if i % 7 else f"ك{i}\u3000\n" for i in range(count - 2))
    seed = os.urandom(32)
    want = tree_of(text, seed)
    assert want["tokens"] == count
    assert fasthash.text_root(text, seed) == fasthash.py_text_root(text, seed)
    assert fasthash.text_root(text, seed)[0].hex() == want["root"]


@settings(max_examples=100, deadline=None)
@given(text=TEXTS, cuts=st.lists(st.integers(1, 80), max_size=30), whole=st.sampled_from([0, 7, 1 << 20]))
def test_the_builder_held_or_streamed_gives_the_same_tree(text, cuts, whole):
    """TokenTreeBuilder holds a short text for one call and streams a long one: the same tree
    whatever the chunks and wherever it switches."""
    from archiver import redaction

    seed = bytes(range(32))
    try:
        want = tree_of(text, seed)
    except UnicodeEncodeError:
        return
    saved, redaction.WHOLE_TEXT = redaction.WHOLE_TEXT, whole
    try:
        b = redaction.TokenTreeBuilder(seed)
        i = 0
        for k in [*cuts, len(text)]:
            b.feed(text[i : i + k])
            i += k
        assert b.finish() == want
    finally:
        redaction.WHOLE_TEXT = saved


def test_pure_python_gives_the_same_token_tree():
    """A whole text's tree, in this process (C where built) and in one forced to pure Python."""
    text = "صور قيصر أدلة على التعذيب في السجون.\r\n" * 700 + "  المحاسبة والعدالة"
    seed = bytes(range(32))
    here = TokenTreeBuilder(seed)
    for i in range(0, len(text), 1000):  # chunks, as a stream arrives
        here.feed(text[i : i + 1000])
    mine = here.finish()
    code = (
        "import json, sys; from archiver import fasthash; from archiver.redaction import tree_of; "
        "assert not fasthash.ACCELERATED; "
        "print(json.dumps(tree_of(sys.stdin.read(), bytes(range(32)))))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=text,
        capture_output=True,
        text=True,
        env={**os.environ, "ARCHIVER_PURE_PYTHON": "1", "PYTHONIOENCODING": "utf-8"},
        check=True,
    )
    assert json.loads(res.stdout) == mine
    assert mine["tokens"] == len(tokens(text))


#: white space as the token rule defines it (docs/format.md, "Token tree")
FORMAT_SPACES = {
    *range(0x09, 0x0E),
    *range(0x1C, 0x21),
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
}


def test_the_token_rule_white_space_is_pythons():
    """The format names Python's ``\\s``; the C tokenizer names the code points. A Python whose
    Unicode tables moved a character in or out of ``str.isspace`` would change every token tree
    computed through ``re``: this fails first."""
    assert {c for c in range(0x110000) if chr(c).isspace()} == FORMAT_SPACES


@pytest.fixture(params=["x16", "sha-ni", "openssl"])
def block_function(request):
    """Each of the C tree's SHA-256 paths: sixteen messages at once in AVX-512 lanes (where
    the CPU has them), the CPU's SHA instructions (likewise) and OpenSSL's block function.
    Restores the defaults afterwards."""
    if not fasthash.ACCELERATED:
        pytest.skip("archiver._fasthash is not built here")
    from archiver import _fasthash

    defaults = _fasthash.sha_ni(), _fasthash.x16()
    if request.param == "x16" and not _fasthash.x16(True):
        pytest.skip("this CPU has no AVX-512")
    if request.param != "x16":
        assert _fasthash.x16(False) is False
    if request.param == "sha-ni" and not _fasthash.sha_ni(True):
        pytest.skip("this CPU has no SHA instructions")
    if request.param == "openssl":
        assert _fasthash.sha_ni(False) is False
    yield _fasthash
    _fasthash.sha_ni(defaults[0])
    _fasthash.x16(defaults[1])


def test_every_code_point_between_tokens(block_function):
    """Every code point as a token's end, between letters: the C tree (UTF-8 scan) cuts and
    hashes as the reference does (``re`` on code points)."""
    text = "".join(chr(c) + "x" for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    seed = bytes(range(32))
    assert block_function.text_root(text, seed) == fasthash.py_text_root(text, seed)


def test_tokens_of_every_length_across_block_edges(block_function):
    """Leaves of one to five SHA-256 blocks (a token of over 230 bytes takes the long way), in
    pairs and alone, in trees of every size up to 70 tokens."""
    seed = os.urandom(32)
    lengths = list(range(0, 300))
    toks = ["ب" * (n // 2) + "a" * (n % 2) + " " for n in lengths]
    salts = hashlib.shake_256(seed).digest(16 * len(toks))
    assert block_function.leaf_hashes(salts, toks) == fasthash.py_leaf_hashes(salts, toks)
    assert block_function.leaf_hashes(salts[16:], toks[1:]) == fasthash.py_leaf_hashes(salts[16:], toks[1:])
    for n in range(1, 71):
        text = "".join(toks[(7 * i) % len(toks)] for i in range(n))
        assert block_function.text_root(text, seed) == fasthash.py_text_root(text, seed)
    for k in range(8):
        nodes = os.urandom(32 << k)
        assert block_function.perfect_root(nodes) == fasthash.py_perfect_root(nodes)


def test_trees_of_many_sizes_with_long_tokens(block_function):
    """Tree sizes at and around powers of two, across the salt blocks of 1,024 tokens, and a
    long token (a two-block leaf) at odd and even places, at a salt block's edge."""
    seed = os.urandom(32)
    words = ["قيصر ", "صور ", "a ", "المعتقلين\n", "x" * 38 + " ", "ب" * 19 + " "]
    sizes = [15, 16, 17, 31, 32, 33, 48, 255, 256, 257, 511, 1023, 1024, 1025, 1040, 2049]
    for n in sizes:
        text = "".join(words[(5 * i + i // 7) % len(words)] for i in range(n))
        assert block_function.text_root(text, seed) == fasthash.py_text_root(text, seed), n
    for at in (0, 1, 7, 15, 16, 17, 1023, 1024):
        toks = ["كلمة "] * 1100
        toks[at] = "ب" * 40 + " "  # 81 bytes: a two-block leaf
        text = "".join(toks)
        assert block_function.text_root(text, seed) == fasthash.py_text_root(text, seed), at


def test_groups_of_sixteen_leaves_and_nodes(block_function):
    """The sixteen-lane path takes sixteen one-block leaves at a time (a token of up to 38
    bytes) and sixteen nodes at a time; a group with a longer token goes in pairs. Tokens at
    the one-block limit (38 and 39 bytes), a long one at every place in a group, and tree
    sizes that leave every remainder of a level."""
    seed = os.urandom(32)
    limit, over = "x" * 37 + " ", "ب" * 19 + " "  # 38 bytes (one block), 39 (two)
    assert len(limit.encode()) == 38 and len(over.encode()) == 39
    short = ["قيصر ", "a ", limit, "صور\n", "المعتقلين "]
    for n in [*range(1, 70), 95, 96, 97, 127, 128, 129, 255, 256, 257, 600, 1024, 1040]:
        text = "".join(short[(3 * i + i // 5) % len(short)] for i in range(n))
        assert block_function.text_root(text, seed) == fasthash.py_text_root(text, seed), n
    for at in range(40):
        toks = [short[i % len(short)] for i in range(64)]
        toks[at] = over
        text = "".join(toks)
        assert block_function.text_root(text, seed) == fasthash.py_text_root(text, seed), at
    for count in (32, 64, 512, 2048):
        nodes = os.urandom(32 * count)
        assert block_function.perfect_root(nodes) == fasthash.py_perfect_root(nodes)


def test_many_trees_in_one_call(block_function):
    """``text_roots`` derives several texts' salts at once (eight SHAKE-256 streams in
    AVX-512 lanes where the CPU has them; a lane that is done takes the next stream). Every
    tree of a batch is the reference's: empty texts, one-token texts, texts spanning several
    salt blocks and several windows of salts, seeds of every length around the one-block
    limit of a lane's message (106 bytes), and batches of every size from 0 to 40 taken from
    any place in the list (lanes refilled at every point)."""
    rnd = random.Random(7)
    words = ["قيصر ", "صور ", "a ", "المعتقلين\n", "x" * 38 + " ", "ب" * 19 + " ", "\u3000"]
    sizes = [0, 1, 2, 17, 300, 375, 560, 1023, 1024, 1025, 3000, 20000]
    items: list[tuple[str | bytes, bytes]] = []
    for i in range(60):
        n = sizes[i % len(sizes)] if i < 24 else rnd.randrange(150, 600)
        text = "".join(rnd.choice(words) for _ in range(n))
        seed = rnd.randbytes([32, 0, 1, 105, 106, 107, 200][i % 7] if i < 14 else 32)
        items.append((text.encode() if i % 3 else text, seed))
    want = [fasthash.py_text_root(text, seed) for text, seed in items]
    assert block_function.text_roots(items) == want
    assert block_function.text_roots([]) == []
    for start in range(0, len(items), 5):
        for size in range(0, 41, 3):
            batch = items[start : start + size]
            assert block_function.text_roots(batch) == want[start : start + size], (start, size)
    assert [block_function.text_root(text, seed) for text, seed in items] == want
    assert fasthash.py_text_roots(items) == want


def test_many_trees_refuse_what_one_tree_refuses():
    """A bad item anywhere in a batch raises as ``text_root`` does (no partial result), the
    items before it are let go (a bytearray seed can be resized again), and only a list is
    taken."""
    if not fasthash.ACCELERATED:
        pytest.skip("archiver._fasthash is not built here")
    from archiver import _fasthash

    good = ("a b", bytes(32))
    for bad, error in [
        (("\ud800 x", bytes(32)), UnicodeEncodeError),
        ((b"x", "not bytes"), TypeError),
        ((3, bytes(32)), TypeError),
        (("only the text",), TypeError),
    ]:
        with pytest.raises(error):
            _fasthash.text_roots([good, bad, good])
        held = bytearray(32)
        with pytest.raises(error):
            _fasthash.text_roots([("a b", held), bad])
        held.extend(b"x")  # (BufferError while a buffer of it is still held)
    with pytest.raises(TypeError):
        _fasthash.text_roots((good,))


def test_the_cpu_instructions_are_used_where_present():
    """``sha_ni()`` reports the CPU's SHA extensions (x86 ``sha_ni`` in /proc/cpuinfo), and
    ``x16()`` its AVX-512 (``avx512f`` and ``avx512bw``)."""
    if not fasthash.ACCELERATED:
        pytest.skip("archiver._fasthash is not built here")
    from archiver import _fasthash

    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read().split()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    assert _fasthash.sha_ni() == ("sha_ni" in flags)
    # (the system's support for the AVX-512 state is checked too: on Linux the flags say both)
    offered = "avx512f" in flags and "avx512bw" in flags
    assert _fasthash.x16() == (offered and os.environ.get("ARCHIVER_AVX512") != "0")


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 0])
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x40))  # the escapes
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(max_size=8) | st.text(alphabet='abcAB_-~\x7f\x00"', max_size=4), inner, max_size=5
        )
    ),
    max_leaves=30,
)


@needs_c
@settings(max_examples=600, deadline=None)
@given(value=JSON_VALUES)
def test_canonical_json_of_plain_values_is_rfc8785(value):
    """The C encoder gives rfc8785's bytes for every plain value, and declines (None) exactly
    the others, which the general path then takes."""
    import rfc8785

    from archiver import _fasthash
    from archiver.canonical import _plain

    out = _fasthash.json_canonical(value)
    if _plain(value):
        assert out == rfc8785.dumps(value)
    else:
        assert out is None


@needs_c
def test_canonical_json_declines_what_it_does_not_take():
    from archiver import _fasthash

    class Str(str):
        pass

    for value in (
        {"a": 1.5},
        [2**53],
        {"é": 1},
        {1: 2},
        (1, 2),
        Str("x"),
        "\ud800",
        {"a": {"b": ["\udfff"]}},
    ):
        assert _fasthash.json_canonical(value) is None, value
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    assert _fasthash.json_canonical(deep) is None
    assert _fasthash.json_canonical({"b": [True, None, False, -3, "\x7f\u2028😀"], "a": ""}) == (
        '{"a":"","b":[true,null,false,-3,"\x7f\u2028😀"]}'.encode()
    )


def test_avx512_can_be_switched_off_for_a_whole_command():
    """``ARCHIVER_AVX512=0`` keeps a command's token trees (its worker's too: a new
    interpreter reads the same environment) off the sixteen-lane path."""
    if not fasthash.ACCELERATED:
        pytest.skip("archiver._fasthash is not built here")
    probe = "import archiver.fasthash, archiver._fasthash as f; print(f.x16())"

    def x16_with(env: dict[str, str]) -> str:
        out = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    from archiver import _fasthash

    was = _fasthash.x16()
    can = _fasthash.x16(True)  # what this CPU offers
    _fasthash.x16(was)
    assert x16_with({"ARCHIVER_AVX512": "0"}) == "False"
    assert x16_with({"ARCHIVER_AVX512": "1"}) == str(can)


# -- UTF-8 text already in the text digest's normal form --------------------------------------
def _composes_after() -> set[int]:
    """Code points that can be the second of a canonical composition pair."""
    out = set()
    for c in range(0x110000):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(c):
                out.add(parts[1])
    return out


def _nfc_safe() -> set[int]:
    """What ``utf8_nfc_plain`` may accept, made again from unicodedata: in its two ranges,
    assigned characters of combining class 0 that are their own NFC and never the second of
    a composition pair, other than NUL, CR and U+FEFF."""
    after = _composes_after()
    return {
        c
        for c in [*range(0x800), *range(0x2000, 0x2080)]
        if c not in (0x00, 0x0D, 0xFEFF)
        and unicodedata.category(chr(c)) not in ("Cn", "Cs")
        and unicodedata.combining(chr(c)) == 0
        and unicodedata.normalize("NFC", chr(c)) == chr(c)
        and c not in after
    }


@pytest.fixture(scope="module")
def c_accelerator():
    if not fasthash.ACCELERATED:
        pytest.skip("archiver._fasthash is not built here")
    from archiver import _fasthash

    return _fasthash


def test_text_in_normal_form_is_judged_from_its_bytes_character_by_character(c_accelerator):
    """Every code point, alone: accepted exactly when it is in the set unicodedata gives
    (so every Arabic letter, digit and space of an article is), and each accepted pair of
    characters is its own NFC form: a text of them needs no decoding for its digest."""
    safe = _nfc_safe()
    accepted = {
        c
        for c in range(0x110000)
        if not 0xD800 <= c < 0xE000 and c_accelerator.utf8_nfc_plain(chr(c).encode())
    }
    assert accepted == safe
    assert {ord(c) for c in "قيصر سوريا أدلة، ١٢٣ 0-9 «»\n\t"} <= safe
    assert not {0x0300, 0x064B, 0x0654, 0x0D, 0x00, 0xFEFF, 0xE9 + 0x10000} & accepted
    ordered = sorted(safe)
    for a in ordered:
        pairs = "".join(chr(a) + chr(b) for b in ordered)
        assert unicodedata.normalize("NFC", pairs) == pairs, hex(a)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_text_in_normal_form_means_its_digest_is_its_sha256(c_accelerator, data):
    """Whatever the bytes (broken UTF-8, overlong forms, surrogates, CR, BOM, combining
    marks), an accepted text decodes, and its text digest is its SHA-256."""
    from archiver.textdigest import digest_whole, text_sha256

    if c_accelerator.utf8_nfc_plain(data):
        assert text_sha256(data) == hashlib.sha256(data).hexdigest()
        assert (
            digest_whole(data, "utf-8", hashlib.sha256(data).digest())[0] == hashlib.sha256(data).hexdigest()
        )


def test_text_in_normal_form_refuses_broken_utf8(c_accelerator):
    for bad in (b"\xc3", b"\xc0\xa0", b"\xe2\x80", b"\xe2\x28\xa1", b"a\xd8", b"\xd8\x41", b"\xed\xa0\x80"):
        assert not c_accelerator.utf8_nfc_plain(bad), bad
    assert c_accelerator.utf8_nfc_plain(b"") and c_accelerator.utf8_nfc_plain("\u2014 x".encode())
