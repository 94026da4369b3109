"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, section 2.1.

- leaf hash: SHA-256(0x00 || entry)
- node hash: SHA-256(0x01 || left || right)
- the tree over n > 1 leaves splits at k, the largest power of two < n;
  the root of the empty tree is SHA-256 of the empty string.

``StreamingRoot`` computes the root of a sequence of leaves in O(log n)
memory (a "compact range": the roots of the perfect subtrees seen so far),
so that a document's token tree is built while it streams past.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of_leaf_hashes(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 root over already-hashed leaves (the reference definition)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(root_of_leaf_hashes(leaves[:k]), root_of_leaf_hashes(leaves[k:]))


class StreamingRoot:
    """Feed leaf hashes in order; ``root()`` equals ``root_of_leaf_hashes`` of them all.

    Memory is O(log n) plus one block of buffered leaves. Each aligned block of
    ``BLOCK`` leaves is reduced level by level (one list comprehension per
    level: far fewer Python steps per hash than merging leaf by leaf) and
    pushed as one complete subtree; the tree is the same.
    """

    def __init__(self) -> None:
        self.size = 0
        # (subtree size, subtree root), sizes strictly decreasing powers of two
        self._stack: list[tuple[int, bytes]] = []
        self._buf: list[bytes] = []  # the last leaves, not in the stack yet

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.extend([leaf])

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes, in order."""
        self.size += len(leaves)
        buf = self._buf
        buf.extend(leaves)
        if len(buf) >= BLOCK:
            # the buffer always starts at a multiple of BLOCK: whole blocks are aligned subtrees
            n = len(buf) - len(buf) % BLOCK
            for start in range(0, n, BLOCK):
                _push_run(self._stack, buf[start : start + BLOCK])
            del buf[:n]

    def root(self) -> bytes:
        """The root of the leaves added so far."""
        stack = list(self._stack)
        _push_run(stack, self._buf)
        if not stack:
            return EMPTY_ROOT
        node = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            node = node_hash(left, node)
        return node


BLOCK = 256


def _push_run(stack: list[tuple[int, bytes]], leaves: list[bytes]) -> None:
    """Push leaves that start at a multiple of BLOCK, at most BLOCK of them (so every
    chunk below is aligned to its own size): as complete subtrees of decreasing sizes
    (the binary digits of the count), each reduced level by level."""
    sha = hashlib.sha256
    i, n = 0, len(leaves)
    while i < n:
        chunk = 1 << ((n - i).bit_length() - 1)
        level = leaves[i : i + chunk]
        while len(level) > 1:
            level = [sha(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2], strict=True)]
        node, size = level[0], chunk
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            node = sha(b"\x01" + left + node).digest()
            size += left_size
        stack.append((size, node))
        i += chunk
