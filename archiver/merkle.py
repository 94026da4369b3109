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

from .fasthash import perfect_root

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

    Memory is O(log n) plus one block of buffered leaves. Leaves are kept packed
    (32 bytes each, one ``bytes`` per batch); each aligned block of ``BLOCK``
    leaves is reduced at once (``fasthash.perfect_root``: in C where built) and
    pushed as one complete subtree; the tree is the same.
    """

    def __init__(self) -> None:
        self.size = 0
        # (subtree size, subtree root), sizes strictly decreasing powers of two
        self._stack: list[tuple[int, bytes]] = []
        self._buf = bytearray()  # the last leaves, packed, not in the stack yet

    def add(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.extend_packed(leaf)

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes, in order."""
        self.extend_packed(b"".join(leaves))

    def extend_packed(self, packed: bytes) -> None:
        """Append leaf hashes given concatenated, 32 bytes each, in order."""
        if len(packed) % 32:
            raise ValueError("leaf hashes are 32 bytes each")
        self.size += len(packed) // 32
        buf = self._buf
        buf += packed
        whole = len(buf) // (32 * BLOCK)
        if whole:
            # the buffer always starts at a multiple of BLOCK: whole blocks are aligned subtrees
            for k in range(whole):
                _push_run(self._stack, bytes(buf[32 * BLOCK * k : 32 * BLOCK * (k + 1)]))
            del buf[: 32 * BLOCK * whole]

    def root(self) -> bytes:
        """The root of the leaves added so far."""
        stack = list(self._stack)
        _push_run(stack, bytes(self._buf))
        if not stack:
            return EMPTY_ROOT
        node = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            node = node_hash(left, node)
        return node


BLOCK = 256


def _push_run(stack: list[tuple[int, bytes]], packed: bytes) -> None:
    """Push packed leaves that start at a multiple of BLOCK, at most BLOCK of them (so every
    chunk below is aligned to its own size): as complete subtrees of decreasing sizes
    (the binary digits of the count), each reduced at once."""
    i, n = 0, len(packed) // 32
    while i < n:
        chunk = 1 << ((n - i).bit_length() - 1)
        node, size = perfect_root(packed[32 * i : 32 * (i + chunk)]), chunk
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            node = node_hash(left, node)
            size += left_size
        stack.append((size, node))
        i += chunk
