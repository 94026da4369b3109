"""Verifying the log (docs/format.md, "Verifying an archive", step 8).

1. ``entries`` parses; no path appears twice.
2. Every record file (manifests, keys, revocations, audit records, trusted TSA
   certificates, time-stamp tokens) is in the
   log, and every log entry names a file whose exact bytes hash to its leaf.
3. The stored node files equal the tree recomputed from the leaves.
4. Every kept checkpoint names this archive, is signed by a trusted key, and
   its root equals the recomputed root at its size; the latest covers the
   whole log (nothing appended after it).
5. With ``--checkpoint FILE``: the current log extends that checkpoint (its
   root is the root of the first ``size`` leaves), else ``log-rollback``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidInput
from .layout import CHECKPOINTS, MANIFESTS, Layout
from .logview import ENTRIES, SEGMENTS, LogView
from .merkle import leaf_hash
from .problems import Problem, ProblemCode
from .storage import Entry, LocalStore, Store
from .tlog import Checkpoint, MemoryTree, checkpoint_signers, origin_of, parse_checkpoint
from .trust import TrustSet

if TYPE_CHECKING:
    from .snapshot import Snapshot

RECORD_DIRS = (
    ("events", "*.json"),
    ("keys", "*.json"),
    ("audits", "*.json"),
    ("tsa", "*.pem"),
    ("timestamps", "*.tsr"),
)
Add = Callable[[ProblemCode, str, str], None]
Trusted = Sequence[tuple[str, str, bytes]]  # (name, key id, raw public key)


def record_files(layout: Layout) -> list[Path]:
    """Every file the log must contain (a local archive's, as paths: for its writers)."""
    return [layout.root / k for k in record_keys(LocalStore(layout.root))]


def record_keys(store: Store) -> list[str]:
    """Every file the log must contain, as keys."""
    return record_listing(store)[0]


def record_listing(store: Store) -> tuple[list[str], list[Entry]]:
    """``record_keys``, and every entry listed under ``manifests/events/`` on the way
    (dot files, links and unexpected names too): a verify looks at those again, and
    listing 55,000 files twice was time its worker waited."""
    out: list[str] = []
    events: list[Entry] = []
    for sub, pattern in RECORD_DIRS:
        suffix = pattern.removeprefix("*")
        listed = store.names(f"{MANIFESTS}{sub}/")
        if sub == "events":
            events = listed
        out += [e.key for e in listed if e.key.endswith(suffix) and not e.name.startswith(".")]
    return sorted(out), events


def check_log(
    store: Store,
    log: LogView,
    archive_id: str,
    trust: TrustSet,
    kept: bytes | None,
    snapshot: Snapshot | None = None,
    absent_ok: Callable[[str], bool] | None = None,
    known: dict[str, bytes] | None = None,
) -> tuple[list[Problem], int]:
    """All log findings, and the tree size (of the snapshot, when a reader gives one).

    ``absent_ok`` says which record files may be missing (an export of some
    documents leaves the others' manifests out; their leaves still count).
    ``known``: leaf hashes of record files the caller has read already (the
    verifier's manifests), so that each file is read once.
    """
    problems: list[Problem] = []

    log_file = SEGMENTS if log.segmented else ENTRIES

    def add(code: ProblemCode, message: str, file: str = log_file) -> None:
        problems.append(Problem(code=code, message=message, file=file))

    try:
        entries = log.entries(snapshot.log_size if snapshot else None)
    except (ValueError, OSError) as e:
        add(ProblemCode.LOG_MISMATCH, f"the log cannot be read: {e}")
        return problems, 0
    for message, key in log.findings:
        add(ProblemCode.LOG_MISMATCH, message, key)
    leaves: list[bytes] = []
    seen: set[str] = set()
    for i, (stored, rel) in enumerate(entries):
        if rel in seen:
            add(ProblemCode.LOG_MISMATCH, f"log entry {i} names {rel} a second time")
        seen.add(rel)
        actual = known.get(rel) if known else None
        if actual is None:
            try:
                actual = leaf_hash(store.read(rel))
            except OSError:
                actual = None
        if actual is None and absent_ok is not None and absent_ok(rel) and not _listed(store, rel):
            pass
        elif actual is None:
            add(ProblemCode.LOG_MISMATCH, f"log entry {i} names {rel}, which is missing", rel)
        elif actual != stored:
            add(ProblemCode.LOG_MISMATCH, f"{rel} is not the record the log committed to at entry {i}", rel)
        leaves.append(stored if actual is None else actual)
    # a reader's snapshot lists the record files it checks (those written after it are not
    # its business); without one, list them now
    for rel in sorted(snapshot.records) if snapshot is not None else record_keys(store):
        if rel not in seen:
            add(ProblemCode.LOG_MISMATCH, f"{rel} is not in the log", rel)
    tree = MemoryTree(leaves)
    _check_nodes(log, tree, add)
    trusted: Trusted = [(k.name, k.key_id, k.raw) for k in trust.keys.values()]
    latest = 0
    for name in log.checkpoint_names():
        if snapshot is not None and name not in snapshot.checkpoints:
            continue
        rel = CHECKPOINTS + name
        try:
            raw = log.checkpoint(name)
        except OSError as e:
            add(ProblemCode.LOG_MISMATCH, f"unreadable checkpoint: {e.strerror or e}", rel)
            continue
        cp = _load(raw, archive_id, add, rel)
        if cp is None:
            continue
        if name != f"{cp.size:012d}":
            add(ProblemCode.LOG_MISMATCH, f"checkpoint file name does not match its size {cp.size}", rel)
        _check_signers(cp, trusted, add, rel)
        if cp.size > tree.size:
            add(
                ProblemCode.LOG_MISMATCH,
                f"checkpoint of {cp.size} records, but the log holds {tree.size}",
                rel,
            )
        elif tree.root(cp.size) != cp.root:
            add(
                ProblemCode.LOG_MISMATCH,
                f"checkpoint root for size {cp.size} differs from the records' root",
                rel,
            )
        latest = max(latest, cp.size)
    if tree.size and latest < tree.size:
        add(
            ProblemCode.LOG_MISMATCH,
            f"{tree.size - latest} record(s) logged after the latest checkpoint (an interrupted command?)",
        )
    if kept is not None:
        cp = _parse_kept(kept, archive_id)
        good, bad = checkpoint_signers(cp, trusted)
        if bad or not good:
            add(
                ProblemCode.KEY_UNTRUSTED if not bad else ProblemCode.SIGNATURE_INVALID,
                "the kept checkpoint is not validly signed by a key this archive trusts",
                "--checkpoint",
            )
        if cp.size > tree.size or tree.root(cp.size) != cp.root:
            add(
                ProblemCode.LOG_ROLLBACK,
                f"this archive does not extend the kept checkpoint of {cp.size} records "
                f"(it holds {tree.size}; records were removed, altered or rolled back)",
                "--checkpoint",
            )
    return problems, tree.size


def _listed(store: Store, key: str) -> bool:
    """Anything (a file, a link) is there under that exact key."""
    return any(e.key == key for e in store.files(key))


def _check_nodes(log: LogView, tree: MemoryTree, add: Add) -> None:
    if log.segmented:
        return  # format 2 stores no nodes
    try:
        stored_levels = dict(log.stored_levels())
    except OSError:
        stored_levels = {}
    for k, level in enumerate(tree.levels):
        stored = stored_levels.get(k, b"")
        want = b"".join(level)
        # nodes beyond the snapshot's size may be appended meanwhile: compare what it covers
        if stored[: len(want)] != want:
            add(
                ProblemCode.LOG_MISMATCH,
                f"stored tree level {k} differs from the records' tree",
                f"manifests/log/level-{k:02d}",
            )


def _check_signers(cp: Checkpoint, trusted: Trusted, add: Add, rel: str) -> None:
    good, bad = checkpoint_signers(cp, trusted)
    if bad:
        add(ProblemCode.SIGNATURE_INVALID, "a checkpoint signature does not verify", rel)
    elif not good:
        add(ProblemCode.KEY_UNTRUSTED, "checkpoint not signed by any key this archive trusts", rel)


def _load(raw: bytes, archive_id: str, add: Add, rel: str) -> Checkpoint | None:
    try:
        cp = parse_checkpoint(raw)
    except (ValueError, UnicodeDecodeError) as e:
        add(ProblemCode.LOG_MISMATCH, f"unreadable checkpoint: {e}", rel)
        return None
    if cp.origin != origin_of(archive_id):
        add(ProblemCode.LOG_MISMATCH, f"checkpoint of another log ({cp.origin})", rel)
        return None
    return cp


def _parse_kept(raw: bytes, archive_id: str) -> Checkpoint:
    try:
        cp = parse_checkpoint(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"--checkpoint: not a checkpoint ({e})") from e
    if cp.origin != origin_of(archive_id):
        raise InvalidInput(f"--checkpoint: a checkpoint of another archive ({cp.origin})")
    return cp
