"""The tamper-evident log: an RFC 9162 Merkle tree over every signed record, in append order.

On disk (``manifests/log/``):

- ``entries``: one line per leaf, ``<leaf hash hex> <path>``, where the path is
  the record's path inside the archive (a manifest, a key, a revocation, an
  audit record) and the leaf hash is SHA-256(0x00 || the file's exact bytes).
- ``level-KK``: the hashes (32 bytes each) of the complete subtrees of height
  K, in order; ``level-00`` holds the leaf hashes. A node is appended when its
  subtree completes, so an append does O(log n) work, storage stays linear
  (2n hashes), and any inclusion or consistency proof reads O(log² n) nodes.
- ``checkpoints/NNNNNNNNNNNN``: one C2SP tlog-checkpoint signed note per tree
  size reached by a command, all kept.

The node files are caches of what ``entries`` and the records imply; the
verifier recomputes everything and compares (``log-mismatch``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .fsutil import atomic_write, crashpoint, fsync_dir, io_error
from .merkle import EMPTY_ROOT, leaf_hash, node_hash
from .signing import raw_public

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HASH = 32
ENTRY_LINE = re.compile(
    r"^([0-9a-f]{64}) (manifests/(?:events|keys|audits|tsa|timestamps)/[A-Za-z0-9._/-]{1,200})$"
)
CHECKPOINT_NAME = re.compile(r"^[0-9]{12}$")
MAX_NOTE = 16 * 1024


def _largest_pow2_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


# -- proofs over any source of perfect-subtree nodes ------------------------------------------
NodeGetter = Callable[[int, int], bytes]  # (level, index) -> hash of leaves [index<<level, (index+1)<<level)


def subtree_root(node: NodeGetter, start: int, end: int) -> bytes:
    """MTH of leaves [start, end), from perfect-subtree nodes (O(log n) of them)."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and start % size == 0:
        return node(size.bit_length() - 1, start // size)
    k = _largest_pow2_below(size)
    return node_hash(subtree_root(node, start, start + k), subtree_root(node, start + k, end))


def inclusion_proof(node: NodeGetter, index: int, size: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size])."""

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n <= 1:
            return []
        k = _largest_pow2_below(n)
        if m < k:
            return [*path(m, start, start + k), subtree_root(node, start + k, end)]
        return [*path(m - k, start + k, end), subtree_root(node, start, start + k)]

    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    return path(index, 0, size)


def consistency_proof(node: NodeGetter, old: int, new: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old, D[0:new])."""

    def subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [subtree_root(node, start, end)]
        k = _largest_pow2_below(n)
        if m <= k:
            return [*subproof(m, start, start + k, b), subtree_root(node, start + k, end)]
        return [*subproof(m - k, start + k, end, False), subtree_root(node, start, start + k)]

    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to {new}")
    return subproof(old, 0, new, True)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2."""
    if old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def new_nodes(size: int, leaves: Sequence[bytes], node: NodeGetter) -> list[tuple[int, int, bytes]]:
    """The nodes (level, index, hash) that appending ``leaves`` to a tree of ``size`` leaves
    adds: each leaf, and each parent whose subtree it completes. O(log n) per leaf: a left
    sibling is the last node made at its level in this batch, or (once) read with ``node``."""
    out: list[tuple[int, int, bytes]] = []
    last: dict[int, bytes] = {}  # the most recent node made per level, in this batch
    for h in leaves:
        index, k = size, 0
        out.append((0, index, h))
        while index & 1:  # a right child: its parent is complete now
            left = last.get(k) or node(k, index - 1)
            last[k] = h
            h = node_hash(left, h)
            k += 1
            index >>= 1
            out.append((k, index, h))
        last[k] = h
        size += 1
    return out


class MemoryTree:
    """All nodes of a tree over given leaf hashes, in memory (the verifier's recomputation)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            prev = self.levels[-1]
            self.levels.append([node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return subtree_root(self.node, 0, self.size if size is None else size)


# -- the stored log ------------------------------------------------------------------------------
class Log:
    """The log files of one archive."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.entries_path = directory / "entries"
        self.checkpoints = directory / "checkpoints"

    def _level(self, k: int) -> Path:
        return self.dir / f"level-{k:02d}"

    @property
    def size(self) -> int:
        try:
            return self._level(0).stat().st_size // HASH
        except FileNotFoundError:
            return 0

    def node(self, level: int, index: int) -> bytes:
        """A stored perfect-subtree hash (one positioned read)."""
        with open(self._level(level), "rb") as f:
            f.seek(index * HASH)
            data = f.read(HASH)
        if len(data) != HASH:
            raise ValueError(f"log node {level}/{index} is missing")
        return data

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: the current size)."""
        return subtree_root(self.node, 0, self.size if size is None else size)

    def append(self, records: Iterable[tuple[str, bytes]]) -> int:
        """Append records (path, exact bytes): see ``append_leaves``."""
        return self.append_leaves((path, leaf_hash(data)) for path, data in records)

    def append_leaves(self, records: Iterable[tuple[str, bytes]]) -> int:
        """Append leaves (path, leaf hash of the record's bytes); fsync; returns the new size.

        Each leaf costs O(log n): its hash, plus one parent per subtree it
        completes (``new_nodes``).

        Raises:
            StoreError: the log files could not be written.
        """
        self.dir.mkdir(exist_ok=True)
        records = list(records)
        size = self.size
        lines = [f"{leaf.hex()} {path}\n" for path, leaf in records]
        try:
            with contextlib.ExitStack() as stack:
                files: dict[int, BinaryIO] = {}
                # within a level, nodes come in index order: each level file is appended in order
                for level, _, node in new_nodes(size, [leaf for _, leaf in records], self.node):
                    if level not in files:
                        files[level] = stack.enter_context(open(self._level(level), "ab"))
                    files[level].write(node)
                for f in files.values():
                    f.flush()
                crashpoint("log-nodes-written")
                with open(self.entries_path, "a", encoding="utf-8") as ef:
                    ef.write("".join(lines))
                    ef.flush()
                    os.fsync(ef.fileno())
                for f in files.values():
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as e:
            raise io_error("append to the log in", self.dir, e) from e
        fsync_dir(self.dir)
        return size + len(records)

    def entries(self, limit: int | None = None) -> list[tuple[bytes, str]]:
        """(leaf hash, path) for the first ``limit`` leaves (default: all), in order.

        Raises:
            ValueError: a malformed line.
        """
        from .logview import parse_entries

        if not self.entries_path.exists():
            return []
        out = parse_entries(self.entries_path.read_bytes())
        return out if limit is None else out[:limit]

    def truncate(self, size: int) -> None:
        """Cut the log back to ``size`` leaves (rolling back a failed or interrupted command).

        Complete nodes below ``size`` never change, so each level file is simply
        cut to the number of complete nodes it has at that size; a torn last
        line or node beyond it is dropped with the rest.
        """
        if not self.entries_path.exists():
            return
        keep = []
        with open(self.entries_path, "rb") as f:
            for _ in range(size):
                line = f.readline()
                if not line.endswith(b"\n"):
                    raise ValueError(f"the log holds fewer than {size} complete entries")
                keep.append(line)
        if sum(len(x) for x in keep) != self.entries_path.stat().st_size:
            atomic_write(self.entries_path, b"".join(keep), overwrite=True)
        k = 0
        while self._level(k).exists():
            want = (size >> k) * HASH
            if self._level(k).stat().st_size > want:
                os.truncate(self._level(k), want)
            k += 1

    def checkpoint_files(self) -> list[Path]:
        """Kept checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        return sorted(p for p in self.checkpoints.iterdir() if CHECKPOINT_NAME.match(p.name))


# -- checkpoints (C2SP tlog-checkpoint + signed-note) -----------------------------------------------
def origin_of(archive_id: str) -> str:
    """The checkpoint origin line: names the archive."""
    return f"archiver/{archive_id.removeprefix('urn:uuid:')}"


def note_key_name(name: str, key_id: str) -> str:
    """The signed-note key name of one of our keys (no spaces or plus signs)."""
    return f"{name}/{key_id[:16]}"


def note_key_id(key_name: str, public: bytes) -> bytes:
    """C2SP signed-note key ID: SHA-256(key name || 0x0A || 0x01 || public key)[:4]
    (``public``: the key's 32 raw bytes)."""
    return hashlib.sha256(key_name.encode() + b"\n\x01" + public).digest()[:4]


def checkpoint_body(archive_id: str, size: int, root: bytes) -> str:
    """The note text: origin, tree size, base64 root hash, each on its own line."""
    return f"{origin_of(archive_id)}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(body: str, key_name: str, private: Ed25519PrivateKey) -> str:
    """A signed note: the text, a blank line, one signature line."""
    sig = note_key_id(key_name, raw_public(private.public_key())) + private.sign(body.encode())
    return f"{body}\n\u2014 {key_name} {base64.b64encode(sig).decode()}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint (signatures not yet checked)."""

    text: str
    body: str
    origin: str
    size: int
    root: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (key name, key id || signature)


def parse_checkpoint(raw: bytes) -> Checkpoint:
    """Parse a checkpoint note.

    Raises:
        ValueError: not a well-formed signed checkpoint.
    """
    if len(raw) > MAX_NOTE:
        raise ValueError("checkpoint larger than any note")
    text = raw.decode("utf-8")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise ValueError("control characters in checkpoint")
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line before the signatures")
    body += "\n"
    lines = body.split("\n")
    if len(lines) < 4 or not lines[1].isdigit() or len(lines[1]) > 19:
        raise ValueError("checkpoint must give origin, tree size and root hash")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != HASH:
        raise ValueError("root hash is not 32 bytes")
    signatures = []
    for line in sigs.split("\n"):
        if not line:
            continue
        if not line.startswith("\u2014 "):
            raise ValueError("malformed signature line")
        name, _, b64 = line[2:].partition(" ")
        signatures.append((name, base64.b64decode(b64, validate=True)))
    if not signatures:
        raise ValueError("checkpoint is not signed")
    return Checkpoint(
        text=text, body=body, origin=lines[0], size=int(lines[1]), root=root, signatures=tuple(signatures)
    )


def checkpoint_signers(cp: Checkpoint, keys: Iterable[tuple[str, str, bytes]]) -> tuple[list[str], list[str]]:
    """(names of trusted keys whose signatures verify, names whose signatures fail).

    ``keys``: (our key name, key id, the public key's 32 raw bytes) of trusted keys. Signatures by
    unknown keys are ignored, as the signed-note spec requires.
    """
    from .signing import ed25519_valid

    known = {}
    for name, kid, public in keys:
        nname = note_key_name(name, kid)
        known[(nname, note_key_id(nname, public))] = (kid, public)
    good, bad = [], []
    for name, sig in cp.signatures:
        entry = known.get((name, sig[:4]))
        if entry is None:
            continue
        if ed25519_valid(entry[1], sig[4:], cp.body.encode()):
            good.append(entry[0])
        else:
            bad.append(entry[0])
    return good, bad


def write_checkpoint(
    log: Log, archive_id: str, key_name: str, key_id: str, private: Ed25519PrivateKey
) -> Path | None:
    """Sign and keep a checkpoint of the current tree (none if one exists for this size)."""
    size = log.size
    log.checkpoints.mkdir(exist_ok=True)
    path = log.checkpoints / f"{size:012d}"
    if path.exists():
        return None
    note = sign_checkpoint(
        checkpoint_body(archive_id, size, log.root(size)), note_key_name(key_name, key_id), private
    )
    atomic_write(path, note.encode())
    return path
