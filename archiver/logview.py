"""Reading the log through a ``Store``, in either of its two stored forms.

- **Format 1** (local archives, ``tlog.py`` writes it): one ``manifests/log/entries``
  file that grows, the ``level-KK`` node files, and ``checkpoints/``.
- **Format 2** (S3 archives, written by ``s3commit.py``): objects are written
  once and never grow, so each command's entries are a *segment* object
  ``manifests/log/segments/NNNNNNNNNNNN`` named, like the checkpoint written with
  it, by the tree size it brings the log to. The segments in name order,
  concatenated, are exactly format 1's ``entries`` file. Nodes are not stored
  (they are derived; the catalog keeps them for fast proofs), so a reader
  recomputes the tree from the leaves.

Both give the same leaves, the same roots and byte-identical checkpoints, which is
what lets ``archiver migrate`` prove a copy (docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from .layout import CHECKPOINTS, LOG
from .storage import Store, children
from .tlog import CHECKPOINT_NAME, ENTRY_LINE, HASH, MemoryTree, subtree_root

ENTRIES = LOG + "entries"
SEGMENTS = LOG + "segments/"
#: the largest entries file or segment read (64-byte hash, a space, a path of <= 220 bytes: 2^21 lines)
MAX_LOG_TEXT = 1 << 29


def parse_entries(text: bytes, first_line: int = 1) -> list[tuple[bytes, str]]:
    """(leaf hash, key) per line of an entries file or segment.

    Raises:
        ValueError: a malformed line (or bytes that are not UTF-8).
    """
    out: list[tuple[bytes, str]] = []
    lines = text.split(b"\n")
    if lines[-1]:
        raise ValueError(f"line {first_line + len(lines) - 1} of the log is cut short")
    for n, raw in enumerate(lines[:-1], first_line):
        line = raw.decode("utf-8", "strict")
        m = ENTRY_LINE.match(line)
        if m is None or ".." in line:
            raise ValueError(f"line {n} of the log is malformed")
        out.append((bytes.fromhex(m.group(1)), m.group(2)))
    return out


def find_leaf(text: bytes, key: str) -> tuple[int, bytes] | None:
    """The first line ``<hash> key`` of an entries text: (its index, the hash), or None.

    A key has no space (``ENTRY_LINE``), so the first `` key\n`` can only be that line's
    key: a line holding it is that key's, or malformed.

    Raises:
        ValueError: the line found is malformed (as ``parse_entries`` says).
    """
    needle = b" " + key.encode("utf-8") + b"\n"
    at = text.find(needle)
    if at < 0:
        return None
    start = text.rfind(b"\n", 0, at) + 1
    index = text.count(b"\n", 0, start)
    ((leaf, _),) = parse_entries(text[start : at + len(needle)], index + 1)
    return index, leaf


def format_entries(entries: list[tuple[bytes, str]]) -> bytes:
    """The text of entries, one ``<hash hex> <key>`` line each."""
    return "".join(f"{h.hex()} {k}\n" for h, k in entries).encode()


class LogView:
    """The log as a reader sees it: entries, checkpoints, nodes, problems of its containers."""

    def __init__(self, store: Store, segmented: bool) -> None:
        self.store = store
        self.segmented = segmented
        self._tree: MemoryTree | None = None
        #: container problems found while reading (segments out of line): (message, key)
        self.findings: list[tuple[str, str]] = []

    @classmethod
    def of(cls, store: Store, format_version: int) -> LogView:
        """The view for an archive of this format version."""
        return cls(store, segmented=format_version >= 2)

    def checkpoint_names(self) -> list[str]:
        """Kept checkpoints' names (their sizes, zero-padded), oldest first."""
        return sorted(e.name for e in children(self.store, CHECKPOINTS) if CHECKPOINT_NAME.match(e.name))

    def checkpoint(self, name: str) -> bytes:
        """A checkpoint's bytes (raises OSError when unreadable)."""
        return self.store.read(CHECKPOINTS + name, 1 << 16)

    def segment_names(self) -> list[str]:
        """Format 2: the segments' names, in order."""
        return sorted(e.name for e in children(self.store, SEGMENTS) if CHECKPOINT_NAME.match(e.name))

    def entries(self, limit: int | None = None) -> list[tuple[bytes, str]]:
        """(leaf hash, key) of the first ``limit`` leaves (default: all), in order.

        Raises:
            ValueError: a malformed line.
        """
        if not self.segmented:
            if self.store.size(ENTRIES) is None:
                return []
            out = parse_entries(self.store.read(ENTRIES, MAX_LOG_TEXT))
            return out if limit is None else out[:limit]
        out = []
        self.findings = []
        for name in self.segment_names():
            if limit is not None and len(out) >= limit:
                break
            key = SEGMENTS + name
            part = parse_entries(self.store.read(key, MAX_LOG_TEXT), len(out) + 1)
            if len(out) + len(part) != int(name):
                self.findings.append(
                    (
                        f"segment {name} brings the log to {len(out) + len(part)} records, not {int(name)}",
                        key,
                    )
                )
            out += part
        return out if limit is None else out[:limit]

    def stored_levels(self) -> Iterator[tuple[int, bytes]]:
        """Format 1: the stored node files, level by level (format 2 stores none)."""
        k = 0
        while not self.segmented:
            key = f"{LOG}level-{k:02d}"
            if self.store.size(key) is None:
                return
            yield k, self.store.read(key, None)
            k += 1

    # -- nodes, for proofs -------------------------------------------------------------------------
    def tree(self) -> MemoryTree:
        """The whole tree, recomputed from the leaves (cached)."""
        if self._tree is None:
            self._tree = MemoryTree([h for h, _ in self.entries()])
        return self._tree

    @property
    def size(self) -> int:
        return self.tree().size

    def node(self, level: int, index: int) -> bytes:
        """A perfect-subtree hash: a stored node (format 1) or the recomputed one."""
        if not self.segmented:
            with self.store.open(f"{LOG}level-{level:02d}") as f:
                f.seek(index * HASH)
                data = f.read(HASH)
            if len(data) == HASH:
                return data
        return self.tree().node(level, index)

    def leaf_index(self, key: str) -> tuple[int, bytes] | None:
        """Where a record is in the log: (leaf index, leaf hash), or None.

        Format 1 finds the line in the entries file without parsing the others (``log
        prove`` is start-up bound; parsing 55,000 lines was 0.2 s of it). Only the line
        found is checked: the proof's nodes come from the stored levels and the auditor
        checks the proof against the signed checkpoint; a malformed line elsewhere is
        ``verify``'s to report.

        Raises:
            ValueError: the line holding ``key`` is malformed.
        """
        if not self.segmented:
            if self.store.size(ENTRIES) is None:
                return None
            return find_leaf(self.store.read(ENTRIES, MAX_LOG_TEXT), key)
        for i, (h, k) in enumerate(self.entries()):
            if k == key:
                return i, h
        return None

    def root(self, size: int) -> bytes:
        """The root hash at ``size``."""
        return subtree_root(self.node, 0, size)
