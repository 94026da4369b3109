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
    """Feed leaf hashes in order; ``root()`` equals ``root_of_leaf_hashes`` of them all."""

    def __init__(self) -> None:
        self.size = 0
        # (subtree size, subtree root), sizes strictly decreasing powers of two
        self._stack: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash: amortised O(1) hashing, O(log n) memory."""
        size, node = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            node = node_hash(left, node)
            size += left_size
        self._stack.append((size, node))
        self.size += 1

    def extend(self, leaves: list[bytes]) -> None:
        """``add`` each leaf, in order (the same merges, inlined for speed)."""
        stack = self._stack
        sha = hashlib.sha256
        for node in leaves:
            size = 1
            while stack and stack[-1][0] == size:
                left_size, left = stack.pop()
                node = sha(b"\x01" + left + node).digest()
                size += left_size
            stack.append((size, node))
        self.size += len(leaves)

    def root(self) -> bytes:
        """The root of the leaves added so far."""
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
