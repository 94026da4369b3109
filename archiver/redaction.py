"""Redaction that an auditor can check with or without the original.

At capture, every text document gets a **token tree**: its decoded text is
cut into tokens (a leading run of white space, then each run of non-space
characters with the white space that follows it; the tokens concatenate to
the text exactly), and each token i becomes the leaf

    SHA-256(0x00 || salt_i || UTF-8(token_i))

of an RFC 9162 Merkle tree. The salts come from a random 32-byte seed kept in
a sealed WARC record: ``salt_i`` is bytes ``16*(i mod 1024)`` to ``+16`` of
``SHAKE-256("archiver/token-salt/1" || seed || BE64(i div 1024))``. The root
and the token count are signed in the capture manifest
(``content.redactable``). Without the salt of a token, its leaf reveals
nothing, not even for a short, guessable name.

A redaction publishes a new version in which some original tokens are
replaced, and a **proof**: the original token range is covered by segments,
in order. A ``keep`` segment gives the salts of original tokens i1..i2 and
how many characters of the redacted text they occupy (those characters are
those tokens, verbatim); a ``redact`` segment gives only the leaf hashes of
tokens i1..i2 and how many characters of replacement text stand in their
place. From the redacted text and the proof alone, anyone recomputes the
root and compares it with the capture manifest's: every character outside
the declared replacements is proven to be what was captured. With the
original and the seed, an auditor also checks each hidden leaf.

Limit, stated plainly: the capture manifest also carries the original's
SHA-256. Someone who holds it and can guess the complete redacted text can
confirm the guess; see docs/threat-model notes in docs/format.md.
"""

from __future__ import annotations

import base64
import codecs
import difflib
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .fasthash import leaf_hashes, split_tokens, text_root, text_roots
from .merkle import StreamingRoot, leaf_hash

SCHEME = "archiver/token-tree/1"
PROOF_FORMAT = "archiver/redaction-proof/1"
SALT_BLOCK = 1024
MAX_REDACT_TEXT = 64 << 20  # redaction aligns whole texts in memory

_TOKEN = re.compile(r"\s+|\S+\s*")


def tokens(text: str) -> list[str]:
    """The token list of a whole text (concatenates back to ``text``)."""
    if not text:
        return []
    first = _TOKEN.match(text)
    assert first is not None
    out = [first.group(0)]
    out += split_tokens(text, first.end())
    return out


class Salts:
    """Per-token salts derived from the document's sealed seed.

    A block's salts are the first bytes of one SHAKE-256 output, and a shorter
    output is a prefix of a longer one: so only as many salts as the text has
    tokens are derived (an article has a few hundred of a block's 1,024).
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._block = -1
        self._bytes = b""

    def _load(self, block: int, need: int) -> bytes:
        """At least the first ``need`` salts of ``block``."""
        if block != self._block or len(self._bytes) < 16 * need:
            have = len(self._bytes) // 16 if block == self._block else 0
            count = min(SALT_BLOCK, max(need + 64, 2 * have))
            self._bytes = hashlib.shake_256(
                b"archiver/token-salt/1" + self._seed + block.to_bytes(8, "big")
            ).digest(16 * count)
            self._block = block
        return self._bytes

    def span(self, start: int, n: int) -> bytes:
        """The salts of tokens ``start`` to ``start + n - 1``, concatenated."""
        parts: list[bytes] = []
        i, end = start, start + n
        while i < end:
            block, j = divmod(i, SALT_BLOCK)
            k = min(end - i, SALT_BLOCK - j)
            parts.append(self._load(block, j + k)[16 * j : 16 * (j + k)])
            i += k
        return b"".join(parts)

    def __getitem__(self, i: int) -> bytes:
        block, j = divmod(i, SALT_BLOCK)
        return self._load(block, j + 1)[16 * j : 16 * j + 16]


def token_leaf(salt: bytes, token: str) -> bytes:
    """The leaf of one token."""
    return leaf_hash(salt + token.encode("utf-8"))


#: a text up to this many characters is held and its tree computed in one call
WHOLE_TEXT = 1 << 20


class TokenTreeBuilder:
    """Streams decoded text into the token tree (constant memory but for one token).

    A text of at most ``WHOLE_TEXT`` characters (every article) is held and its
    tree computed in one call at the end (``fasthash.text_root``, in C where
    built): the Python around per-batch calls was half of verifying an
    article's tree. A longer text streams: tokens are hashed in batches
    (``fasthash.leaf_hashes``) into a ``StreamingRoot``. Both give the same
    tree (tested).
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._held: list[str] | None = []  # None once the text streams
        self._held_chars = 0
        self._salts = Salts(seed)
        self._tree = StreamingRoot()
        self._pending = ""
        self._started = False

    def _emit_many(self, toks: list[str]) -> None:
        self._tree.extend_packed(leaf_hashes(self._salts.span(self._tree.size, len(toks)), toks))

    def feed(self, text: str) -> None:
        """Add the next decoded characters."""
        if self._held is not None:
            self._held.append(text)
            self._held_chars += len(text)
            if self._held_chars <= WHOLE_TEXT:
                return
            text = "".join(self._held)
            self._held = None
        self._stream(text)

    def _stream(self, text: str) -> None:
        data = self._pending + text
        pos = 0
        if not self._started:
            m = re.match(r"\s+", data)
            if m and m.end() < len(data):
                self._emit_many([m.group(0)])
                pos = m.end()
                self._started = True
            elif data and not data[0].isspace():
                self._started = True
            else:
                self._pending = data
                return
        # every token is complete once a non-space follows its trailing white space,
        # so the last (possibly unfinished) token waits for the next chunk
        toks = split_tokens(data, pos)
        if toks:
            last = toks.pop()
            self._emit_many(toks)
            self._pending = last
        else:
            self._pending = data[pos:]

    def finish(self) -> dict[str, Any]:
        """The ``content.redactable`` member of the capture manifest."""
        if self._held is not None:
            return whole_tree("".join(self._held), self._seed)
        if self._pending:
            self._emit_many([self._pending])
            self._pending = ""
        return _redactable(self._tree.root(), self._tree.size)


def whole_tree(text: str | bytes, seed: bytes) -> dict[str, Any]:
    """The ``content.redactable`` member for a whole text, given as ``str`` or as the
    bytes of its UTF-8 (the caller has decoded them: they are UTF-8)."""
    return _redactable(*text_root(text, seed))


def whole_trees(items: list[tuple[str | bytes, bytes]]) -> list[dict[str, Any]]:
    """``whole_tree`` of each (text, seed), in one call: in C the salts of several texts
    are derived at once, eight SHAKE-256 streams side by side."""
    return [_redactable(root, count) for root, count in text_roots(items)]


def _redactable(root: bytes, count: int) -> dict[str, Any]:
    return {"scheme": SCHEME, "root": root.hex(), "tokens": count}


def tree_of(text: str, seed: bytes) -> dict[str, Any]:
    """The token tree of a whole text (reference for the streaming builder)."""
    salts = Salts(seed)
    tree = StreamingRoot()
    for i, tok in enumerate(tokens(text)):
        tree.add(token_leaf(salts[i], tok))
    return _redactable(tree.root(), tree.size)


@dataclass(frozen=True, slots=True)
class Alignment:
    """How a redacted text derives from the original, token by token."""

    proof: dict[str, Any]
    tokens_redacted: int
    replacements: int


def make_proof(original: str, redacted: str, seed: bytes) -> Alignment:
    """Align the redacted text with the original and build the proof.

    Raises:
        ValueError: nothing was redacted.
    """
    orig = tokens(original)
    red = tokens(redacted)
    salts = Salts(seed)
    sm = difflib.SequenceMatcher(None, orig, red, autojunk=False)
    segments: list[dict[str, Any]] = []
    hidden = 0
    replaced = 0
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        chars = sum(len(t) for t in red[j1:j2])
        if op == "equal":
            salt_bytes = b"".join(salts[i] for i in range(i1, i2))
            segments.append(
                {"keep": [i1, i2], "chars": chars, "salts": base64.b64encode(salt_bytes).decode("ascii")}
            )
        else:
            leaves = b"".join(token_leaf(salts[i], orig[i]) for i in range(i1, i2))
            segments.append(
                {"redact": [i1, i2], "chars": chars, "leaves": base64.b64encode(leaves).decode("ascii")}
            )
            hidden += i2 - i1
            replaced += 1
    if not replaced:
        raise ValueError("the redacted text is identical to the original")
    proof = {"format": PROOF_FORMAT, "scheme": SCHEME, "original_tokens": len(orig), "segments": segments}
    return Alignment(proof=proof, tokens_redacted=hidden, replacements=replaced)


def check_proof(
    proof: Any,
    redacted: str,
    redactable: dict[str, Any],
    original: str | None = None,
    seed: bytes | None = None,
) -> list[str]:
    """Check a redaction proof; returns what is wrong (empty: the derivation holds).

    Without ``original``: every character outside the declared replacements
    is proven to be the captured text (the recomputed root equals the signed
    one). With ``original`` and ``seed``: also every hidden token, i.e. the
    redacted text is the original with exactly the declared spans replaced.
    """
    try:
        return _check(proof, redacted, redactable, original, seed)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        return [f"malformed redaction proof: {e}"]


def _check(
    proof: Any, redacted: str, redactable: dict[str, Any], original: str | None, seed: bytes | None
) -> list[str]:
    if proof.get("format") != PROOF_FORMAT or proof.get("scheme") != redactable.get("scheme"):
        return ["unknown redaction proof format"]
    n = int(redactable["tokens"])
    if proof["original_tokens"] != n:
        return [f"proof covers {proof['original_tokens']} tokens, the capture had {n}"]
    orig_tokens = tokens(original) if original is not None else None
    salts = Salts(seed) if seed is not None else None
    tree = StreamingRoot()
    pos = 0
    expect = 0
    problems: list[str] = []
    for seg in proof["segments"]:
        kind = "keep" if "keep" in seg else "redact"
        i1, i2 = (int(x) for x in seg[kind])
        chars = int(seg["chars"])
        if i1 != expect or i2 < i1 or chars < 0 or pos + chars > len(redacted):
            return ["redaction proof segments do not cover the text in order"]
        piece = redacted[pos : pos + chars]
        if kind == "keep":
            salt_bytes = base64.b64decode(seg["salts"], validate=True)
            toks = tokens(piece)
            if len(toks) != i2 - i1 or len(salt_bytes) != 16 * (i2 - i1):
                return [f"kept text at character {pos} does not split into tokens {i1}..{i2}"]
            tree.extend_packed(leaf_hashes(salt_bytes, toks))
            if salts is not None:
                for k in range(len(toks)):
                    if salt_bytes[16 * k : 16 * k + 16] != salts[i1 + k]:
                        problems.append(f"token {i1 + k}: salt differs from the sealed seed's")
        else:
            leaves = base64.b64decode(seg["leaves"], validate=True)
            if len(leaves) != 32 * (i2 - i1):
                return ["redaction proof leaf list has the wrong length"]
            tree.extend_packed(leaves)
            if orig_tokens is not None and salts is not None:
                for k in range(i2 - i1):
                    if token_leaf(salts[i1 + k], orig_tokens[i1 + k]) != leaves[32 * k : 32 * k + 32]:
                        problems.append(f"hidden token {i1 + k} does not match the original")
        pos += chars
        expect = i2
    if expect != n or pos != len(redacted):
        return ["redaction proof does not cover the whole text"]
    if tree.root().hex() != redactable["root"]:
        problems.insert(
            0, "the redacted text does not derive from the signed original (token tree root differs)"
        )
    return problems


def decode(data: bytes, charset: str | None) -> str:
    """Decode document bytes for redaction.

    Raises:
        ValueError: not decodable text.
    """
    try:
        return codecs.decode(data, charset or "utf-8")
    except (UnicodeDecodeError, LookupError) as e:
        raise ValueError(f"not decodable as {charset or 'utf-8'} text") from e
