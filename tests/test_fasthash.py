"""The C token-tree hashing (archiver/_fasthash.c) gives the bytes of the Python reference.

CI builds the extension and sets ARCHIVER_REQUIRE_ACCEL=1, so a build that silently fell
back to Python fails here instead of only being slower.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

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
