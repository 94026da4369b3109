"""The verifier: trusts nothing but ``manifests/keys/`` and re-reads every byte.

Steps (numbered as in docs/format.md, "Verifying an archive"):

1. Load the trusted keys and revocations (``trust.load_trust``).
2. Read every file under ``manifests/events/``: strict JSON, schema, archive
   id, file name agreeing with document and sequence.
3. Check each event's signatures: trusted key, right role for the action,
   valid Ed25519 over the canonical form, not after the key's revocation;
   the actor must be among the signers.
4. Check each document's chain: sequences 0..n-1, ``previous`` naming the
   digest of the prior manifest file, no two events with one predecessor;
   then, on an intact chain, custody and time (``custody.py``).
5. Read the WARC records each event names: its content record (or revisit
   and the record it revisits), the sealed seed, the diff and redaction
   proof, and the ``metadata`` record carrying the manifest: present,
   well-formed, WARC digest right, headers and bytes agreeing with the
   manifest (size, SHA-256, SHA-512, text digest, token tree); redaction
   proofs checked both without and with the original.
6. Full verification also reads every WARC file from end to end: every
   record must be accounted for by a manifest (``record-orphan``), every
   byte must parse (``warc-invalid``: a torn tail is reported at its offset).
7. Compare the derived index with what the manifests imply (``index-stale``).
8. The log (``logcheck.py``): every record in it, the tree recomputed, every
   kept checkpoint signed and matching, and an auditor's kept checkpoint
   extended (``log-mismatch``, ``log-rollback``).

It never stops at the first problem; each problem carries its code, the
document, the event and the file.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .__version__ import __version__
from .archive import Archive
from .custody import replay
from .diffs import diff_counts
from .errors import CorruptArchive, DocumentNotFound, InvalidInput
from .exportcopy import load_export_info
from .gcpause import gc_paused
from .index import Row, row_of
from .layout import EVENT_NAME, EVENTS, KEYS, MANIFEST_CONTENT_TYPE, STORE, events_prefix, warc_key
from .logcheck import check_log
from .manifest import ACTION_ROLES, Event, ManifestError
from .merkle import leaf_hash
from .problems import Counts, Problem, ProblemCode, Report
from .redaction import MAX_REDACT_TEXT, check_proof, decode
from .s3store import S3Store
from .snapshot import Snapshot, take_snapshot
from .storage import LocalStore, OverlayStore, Store
from .timeutil import format_time, parse_time
from .trust import load_trust
from .warcread import warc_digest
from .warcscan import (
    RecordInfo,
    TextCheck,
    read_block,
    read_payload,
    read_record,
    scan_range,
    scan_range_packed,
    split_points,
    unpack_records,
)
from .withhold import WITHHELD_CONTENT_TYPE, sealed_refs

if TYPE_CHECKING:  # (the module itself is imported only by a full verify that uses it)
    from concurrent.futures import ProcessPoolExecutor

Pos = tuple[str, int]  # (warc file name, offset)
R = TypeVar("R")
# what ``independent_checks`` found: audit records, log, time stamps; the index's rows
Independent = tuple[list[Problem], list[Problem], list[Problem], "dict[tuple[str, int], Row] | str | None"]
PARALLEL_MANIFESTS = 2000  # from this many manifests on, a worker process shares their checks
PARALLEL_BYTES = 8 << 20  # below this, one process reads the file
MANIFESTS_PER_JOB = 200  # manifests per shared job (tens of milliseconds)
PART_BYTES = 1 << 20  # a large WARC file is read in parts of about this size, shared


def _manifest_threshold() -> int:
    # ``ARCHIVER_PARALLEL_*`` lower the thresholds, for tests of the shared paths
    return max(int(os.environ.get("ARCHIVER_PARALLEL_MANIFESTS", PARALLEL_MANIFESTS)), 2)


def _bytes_threshold() -> int:
    return int(os.environ.get("ARCHIVER_PARALLEL_BYTES", PARALLEL_BYTES))


MAX_ATTACHMENT = 64 << 20  # diffs and proofs are read whole; nothing legitimate is larger
MAX_DEFERRED_TEXT = 16 << 20  # a text held while its seed is reached; larger ones: seed read first


class _NotReady(Exception):
    """An early check (``_Verifier.check_early``) needs a record not read yet."""


def _pos(ref: Mapping[str, Any]) -> Pos:
    return (str(ref["warc_file"]), int(ref["offset"]))


@dataclass(frozen=True, slots=True)
class _LetGo:
    """Where a record the full scan read was, once the document accounting for it is
    checked (``_Verifier.let_go``): asked for again, it is read again. A sound metadata
    record keeps its target URI, which ``damaged_manifest_record`` searches."""

    target_uri: str | None = None


_LET_GO = _LetGo()


class _Verifier:
    def __init__(
        self, archive: Archive, documents: list[str] | None, checkpoint: bytes | None = None
    ) -> None:
        self.archive = archive
        self.kept_checkpoint = checkpoint
        snap = take_snapshot(archive, documents)
        # step 2 takes the snapshot's listing of the manifests and drops it when done with it
        self.listed = snap.events
        self.snap: Snapshot = replace(snap, events=None)
        self.store: Store = archive.store
        if isinstance(archive.store, S3Store):
            # several steps read each record file (the events, the log, tokens): over the
            # network, read them once, in parallel
            got = archive.store.read_many(sorted(self.snap.records))
            self.store = OverlayStore(archive.store, {k: v for k, v in got if isinstance(v, bytes)})
        self.documents = documents
        self.full = documents is None
        self.problems: list[Problem] = []
        self.counts = Counts()
        self.records: dict[Pos, RecordInfo | _LetGo] = {}
        # content records revisits name: kept once read (``let_go``)
        self.kept_records: set[Pos] = set()
        self.texts: dict[Pos, TextCheck] = {}
        self.claimed: set[Pos] = set()  # named by invalid manifests: not orphans
        self.leaves: dict[str, bytes] = {}  # manifest key -> log leaf hash of the bytes read
        self.text_plans: dict[str, tuple[Pos, TextCheck, bool]] = {}  # manifest key -> text_plan
        self.manifest_at: dict[str, Pos] = {}  # manifest id -> metadata record carrying it
        self.now = archive.clock()
        self.tsa_roots: list[Any] | None = None  # None: the archive's trusted TSA certificates
        self.progress: Callable[[int], None] | None = None  # advanced once per document checked
        self.pool: ProcessPoolExecutor | None = None  # the worker sharing a full verify's work
        self.independent: Independent | None = None  # ``independent_checks``, once run
        # step 7 as each document is checked (``rows_made``): once the index is read
        # (``run_independent``), its rows not compared yet, by (document, sequence), and how
        # many disagreed; before, the rows documents checked so far imply, waiting
        self.index_read = False
        self.index_left: dict[tuple[str, int], Row] | None = None
        self.rows_differ = 0
        self.rows_waiting: list[list[Row]] = []
        # the documents checked (early, ``check_early``, or after the reading), and the WARC
        # positions they account for
        self.checked: set[str] = set()
        self.accounted: set[Pos] = set()
        self.early_mode = False  # checking early: what is not read yet raises _NotReady
        self.ticked: set[str] = set()  # documents counted by ``progress``
        self.chains: dict[str, list[Event]] = {}  # each document's events, sorted (``_run``)

    def add(
        self,
        code: ProblemCode,
        message: str,
        *,
        document: str | None = None,
        event: int | None = None,
        file: str | None = None,
    ) -> None:
        self.problems.append(Problem(code=code, message=message, document=document, event=event, file=file))

    # -- steps 1-3 ------------------------------------------------------------------------------
    def load_events(self) -> dict[str, list[Event]]:
        by_doc: dict[str, list[Event]] = defaultdict(list)
        if self.documents is None:
            # (listed when the snapshot was taken; a store without the listing lists now)
            entries = self.listed if self.listed is not None else self.store.names(EVENTS)
            self.listed = None
        else:  # only these documents' files: no need to list the whole archive
            entries = sorted(
                (e for d in self.documents for e in self.store.names(events_prefix(d))), key=lambda e: e.key
            )
        todo: list[str] = []
        for entry in entries:
            rel, name = entry.key, entry.name
            if not self.snap.has_record(rel) and EVENT_NAME.match(name):
                continue  # written after this reader's snapshot
            m = EVENT_NAME.match(name)
            if self.documents is not None and (m.group(1) if m else None) not in self.documents:
                continue
            if m is None or rel != f"{EVENTS}{name[:2]}/{name}":
                if not name.startswith("."):  # dot files: an interrupted atomic write
                    self.add(ProblemCode.SCHEMA_INVALID, "unexpected file in manifests/events/", file=rel)
                continue
            if entry.link:
                where: dict[str, Any] = {"document": m.group(1), "event": int(m.group(2)), "file": rel}
                self.add(ProblemCode.SCHEMA_INVALID, "manifest is a symbolic link", **where)
                continue
            todo.append(rel)
        if self.full:
            # each document's positions, noted as its manifests come in: the cut points and
            # the early checks' plan both need them
            self.expected: dict[str, list[int]] = defaultdict(list)
            self.named: dict[str, list[Pos]] = defaultdict(list)

        def take(part: list[Examined]) -> list[Problem]:
            """What does not depend on the order manifests come in, done as each job's
            results come in (the worker takes more jobs meanwhile); the problems, to be
            reported in the files' order."""
            problems: list[Problem] = []
            for found in part:
                problems += found.problems
                self.claimed |= found.claimed
                if found.leaf is not None:
                    self.leaves[found.rel] = found.leaf
                if found.counted:
                    self.counts.events += 1
                e = found.event
                if e is not None:
                    by_doc[e.document_id].append(e)
                    self.note_event(e)
            return problems

        for problems in self._examine(todo, take):
            self.problems.extend(problems)
        return by_doc

    def note_event(self, e: Event) -> None:
        """What the later steps need of one event, worked out as it comes in."""
        if self.full:
            found = self.positions(e)
            self.named[e.document_id] += found
            for name, offset in found:
                self.expected[name].append(offset)
            if found[1] != found[0]:  # a revisit: its content is an earlier capture's record
                self.kept_records.add(found[1])
        text = self.text_plan(e)
        if text is not None:
            self.text_plans[e.path] = text

    def _examine(self, rels: list[str], take: Callable[[list[Examined]], R]) -> list[R]:
        """``take(examine_manifests(...))`` of every file, in jobs, results in job order; a
        large archive's shared with the worker process (``take`` runs here, as each job's
        results come in)."""
        keys = frozenset(r for r in self.snap.records if r.startswith(KEYS))
        if self.pool is None or len(rels) < _manifest_threshold():
            return [take(examine_manifests(self.store, self.archive.archive_id, keys, rels))]
        from .prehash import share_each

        per = max(1, min(MANIFESTS_PER_JOB, len(rels) // 8))
        jobs = [
            (self.store, self.archive.archive_id, keys, rels[i : i + per]) for i in range(0, len(rels), per)
        ]
        taken: list[R | None] = [None] * len(jobs)

        def consume(i: int, part: list[Examined]) -> None:
            taken[i] = take(part)

        share_each(self.pool, examine_manifests, jobs, consume, packed=(examine_packed, unpack_examined))
        return [t for t in taken if t is not None]

    # -- step 4 -----------------------------------------------------------------------------------
    def check_chains(self, chains: dict[str, list[Event]], at: int) -> None:
        """Step 4 for every document (its events sorted), its problems put at ``at`` in the
        report: a full verify does this while its worker starts on the WARC files."""
        later, self.problems = self.problems[at:], self.problems[:at]
        for doc, events in chains.items():
            if self.check_chain(doc, events):
                self.check_custody(doc, events)
        self.problems += later

    def check_chain(self, doc: str, events: list[Event]) -> bool:
        """Report chain problems (``events`` sorted by sequence); True when the chain is intact."""
        intact = True
        by_prev: dict[str | None, list[Event]] = defaultdict(list)
        for e in events:
            by_prev[e.previous].append(e)
        for prev, claimants in by_prev.items():
            if len(claimants) > 1:
                intact = False
                seqs = ", ".join(str(e.sequence) for e in claimants)
                self.add(
                    ProblemCode.CHAIN_FORK,
                    f"events {seqs} all claim predecessor {prev or '(none: first event)'}",
                    document=doc,
                    event=claimants[1].sequence,
                    file=claimants[1].path,
                )
        for i, e in enumerate(events):
            if e.sequence != i:
                self.add(
                    ProblemCode.CHAIN_BROKEN,
                    f"expected event {i}, found {e.sequence}: events missing or out of order",
                    document=doc,
                    event=e.sequence,
                    file=e.path,
                )
                return False
            expected = None if i == 0 else events[i - 1].digest
            if e.previous != expected and intact:
                self.add(
                    ProblemCode.CHAIN_BROKEN,
                    f"previous is {e.previous}, expected {expected}",
                    document=doc,
                    event=e.sequence,
                    file=e.path,
                )
                intact = False
        return intact

    def check_custody(self, doc: str, events: list[Event]) -> None:
        archivists = frozenset(k for k, v in self.trust.keys.items() if v.role == "archivist")
        _, found = replay([e.raw for e in events], [e.digest for e in events], archivists, self.now)
        for seq, (code, msg) in found:
            self.add(code, msg, document=doc, event=seq, file=events[seq].path)

    # -- steps 5-6: WARC records ------------------------------------------------------------------
    def record(self, pos: Pos) -> RecordInfo | None:
        """The record at a position: from the full scan, or read now (documents scope, or
        let go: read again, not counted again)."""
        got = self.records.get(pos)
        if isinstance(got, RecordInfo):
            return got
        if got is None:
            if pos[1] >= self.snap.warc_sizes.get(pos[0], 0):
                return None
            if self.early_mode:
                raise _NotReady  # in a part not read yet, or not a record's start
        try:
            with self.store.open(warc_key(pos[0])) as f:
                info = read_record(f, pos[1], text=self.texts.get(pos))[0]
        except OSError as e:
            info = RecordInfo(error=f"unreadable: {e.strerror or e}")
        if got is None:
            self.records[pos] = info
            self.count(info)
        return info

    def let_go(self, positions: set[Pos]) -> None:
        """A full verify lets go of the records a document accounts for once it is checked:
        the WARC records' findings grew with the archive to the end of the reading (165 MB
        at 55,000 documents), though nothing but another document's check reads them
        again. Another document may name one (its manifest damaged, or a record moved):
        then it is read again (``record``). Content records revisits name are kept: a
        large file recaptured would be read again."""
        for pos in positions - self.kept_records:
            info = self.records.get(pos)
            if isinstance(info, RecordInfo):
                sound_meta = info.error is None and info.record_type == "metadata"
                self.records[pos] = _LetGo(info.target_uri) if sound_meta else _LET_GO

    def count(self, info: RecordInfo) -> None:
        if info.error is None:
            self.counts.records += 1
            self.counts.bytes += info.size

    def scan_all(
        self,
        expected: dict[str, list[int]],
        meanwhile: Callable[[], None],
        chains: dict[str, list[Event]],
        named: dict[str, list[Pos]],
    ) -> None:
        """Step 6: read every WARC file once. A large file is cut at record boundaries
        the manifests name and its parts read in worker processes in parallel;
        ``meanwhile`` runs here while the worker starts on them. Each document whose
        records are all in the parts read so far is checked as soon as they are
        (``check_early``), between two parts: that work is shared too."""
        from .prehash import share_each

        jobs: list[tuple[Any, ...]] = []
        texts_in: dict[str, dict[int, TextCheck]] = defaultdict(dict)
        for (name, off), t in self.texts.items():
            texts_in[name][off] = t
        starts: dict[str, tuple[int, list[int]]] = {}  # file -> (its first job, its parts' starts)
        for warc in self.snap.warc_sizes:
            size = self.snap.warc_sizes[warc]
            texts = texts_in.get(warc, {})
            known = sorted(set(expected.get(warc, [])))
            text_offsets = sorted(texts)
            parts = max(2, size // int(os.environ.get("ARCHIVER_PART_BYTES", PART_BYTES)))
            cuts = split_points(known, size, parts) if self.pool and size >= _bytes_threshold() else []
            bounds = [0, *cuts, size]
            starts[warc] = (len(jobs), bounds[:-1])
            for a, b in itertools.pairwise(bounds):
                # only what lies in the part: each job is sent to the worker whole
                inside = known[bisect.bisect_left(known, a) : bisect.bisect_left(known, b)]
                with_text = text_offsets[
                    bisect.bisect_left(text_offsets, a) : bisect.bisect_left(text_offsets, b)
                ]
                part = {o: texts[o] for o in with_text}
                jobs.append((self.archive.store, warc_key(warc), inside, part, a, b))

        ranks = {name: i for i, name in enumerate(self.snap.warc_sizes)}

        def job_of(pos: Pos) -> int | None:
            first, part_starts = starts.get(pos[0], (0, []))
            if not 0 <= pos[1] < self.snap.warc_sizes.get(pos[0], 0):
                return None  # reported missing, whenever checked
            return first + bisect.bisect_right(part_starts, pos[1]) - 1

        # the documents each part's reading may complete, and how many parts each waits for
        # (``named``: each document's positions, emptied). Worked out once the worker has its jobs
        # (in ``plan_then_meanwhile``), or at the first result, whichever comes first.
        waiting_on: dict[int, list[str]] = defaultdict(list)
        outstanding: dict[str, int] = {}

        planned = False

        def plan() -> None:
            nonlocal planned
            if planned:
                return
            planned = True
            for doc, found in named.items():
                needed = {k for p in found if (k := job_of(p)) is not None}
                outstanding[doc] = len(needed)
                for k in needed:
                    waiting_on[k].append(doc)
            named.clear()  # (the records read next reuse its memory)

        def plan_then_meanwhile() -> None:
            plan()
            meanwhile()

        def consume(k: int, found: list[tuple[int, RecordInfo]]) -> None:
            plan()
            name = jobs[k][1].removeprefix(STORE)
            rank = ranks[name]
            for offset, info in found:
                self.records[(name, offset)] = info
                self.count(info)
                if (
                    info.error is None
                    and info.record_type == "metadata"
                    and (info.content_type == MANIFEST_CONTENT_TYPE)
                ):
                    # a manifest's first copy in the files' order, whatever order parts come in
                    key = "sha256:" + info.sha256.hex()
                    had = self.manifest_at.get(key)
                    if had is None or (rank, offset) < (ranks[had[0]], had[1]):
                        self.manifest_at[key] = (name, offset)
            for doc in waiting_on.pop(k, ()):
                outstanding[doc] -= 1
                if outstanding[doc] == 0:
                    self.check_early(doc, chains[doc])

        share_each(
            self.pool,
            scan_range,
            jobs,
            consume,
            packed=(scan_range_packed, unpack_records),
            meanwhile=plan_then_meanwhile,
        )

    def fetch(self, e: Event, pos: Pos, what: str, record_id: str) -> RecordInfo | None:
        """A record a manifest names, with the checks common to all of them."""
        if pos[0] in self.snap.warc_sizes:
            info = self.record(pos)
            if (
                info is not None
                and info.error is None
                and info.record_id == record_id
                and not (info.record_type == "metadata" and info.content_type == WITHHELD_CONTENT_TYPE)
                and info.header_block_digest == warc_digest(info.sha256)
            ):
                return info  # the usual case: sound, and nothing to report (nor to locate)
        return self.fetch_reporting(e, pos, what, record_id)

    def fetch_reporting(self, e: Event, pos: Pos, what: str, record_id: str) -> RecordInfo | None:
        """``fetch`` of a record with something to report (or a withheld placeholder)."""
        where: dict[str, Any] = {
            "document": e.document_id,
            "event": e.sequence,
            "file": f"store/{pos[0]}@{pos[1]}",
        }
        if pos[0] not in self.snap.warc_sizes:
            self.add(ProblemCode.RECORD_MISSING, f"WARC file {pos[0]} is missing", **where)
            return None
        info = self.record(pos)
        if info is None:
            self.add(ProblemCode.RECORD_MISSING, f"no {what} record at offset {pos[1]}", **where)
            return None
        if info.error is not None:
            self.add(ProblemCode.WARC_INVALID, f"{what} record unreadable: {info.error}", **where)
            return None
        if info.record_type == "metadata" and info.content_type == WITHHELD_CONTENT_TYPE:
            self.check_withheld(pos, info, record_id, what, where)
            return None
        if info.record_id != record_id:
            self.add(
                ProblemCode.RECORD_MISSING,
                f"expected {what} record {record_id}, found {info.record_id}",
                **where,
            )
            return None
        if info.header_block_digest != warc_digest(info.sha256):
            self.add(
                ProblemCode.WARC_INVALID,
                f"{what} record's WARC-Block-Digest {info.header_block_digest} does not match its "
                f"block ({warc_digest(info.sha256)})",
                **where,
            )
        return info

    def check_withheld(
        self, pos: Pos, info: RecordInfo, record_id: str, what: str, where: dict[str, Any]
    ) -> None:
        """A placeholder stands where a record was: allowed only for what exports withhold."""
        if info.header_block_digest is not None and info.header_block_digest != warc_digest(info.sha256):
            self.add(ProblemCode.WARC_INVALID, "withheld-record placeholder is damaged", **where)
        elif pos in self.may_withhold and info.refers_to == record_id and self.export is not None:
            self.withheld.add(pos)
        else:
            self.add(
                ProblemCode.CONTENT_MISMATCH,
                f"{what} record {record_id} was replaced by a withheld-record placeholder "
                "where nothing may be withheld",
                **where,
            )

    def check_event_records(self, e: Event) -> tuple[set[Pos], Pos | None]:
        """Step 5 for one event; returns the positions it accounts for, and where its
        manifest copy is (``find_manifest_record``)."""
        s, ref = e.storage, e.content_ref
        own, content_pos = _pos(s), _pos(ref)

        def problem(code: ProblemCode, msg: str, pos: Pos) -> None:
            self.add(code, msg, document=e.document_id, event=e.sequence, file=f"store/{pos[0]}@{pos[1]}")

        accounted = {own, content_pos}
        writes_record = e.action in ("captured", "edited", "redacted")
        own_info = self.fetch(e, own, s["record_type"], s["record_id"])
        if own_info is not None:
            if own_info.record_type != s["record_type"]:
                problem(
                    ProblemCode.WARC_INVALID,
                    f"record type is {own_info.record_type}, manifest says {s['record_type']}",
                    own,
                )
            if own_info.length != s["length"]:
                problem(
                    ProblemCode.WARC_INVALID,
                    f"record is {own_info.length} bytes, manifest says {s['length']}",
                    own,
                )
            if writes_record and own_info.date != e.raw["time"]:
                problem(
                    ProblemCode.WARC_INVALID,
                    f"WARC-Date {own_info.date} differs from the event time {e.raw['time']}",
                    own,
                )
            if own_info.header_block_digest != s["block_digest"]:
                problem(
                    ProblemCode.CONTENT_MISMATCH,
                    f"record's block digest {own_info.header_block_digest} "
                    f"differs from the manifest's {s['block_digest']}",
                    own,
                )
            if s["record_type"] == "revisit":
                if own_info.refers_to != ref["record_id"]:
                    problem(
                        ProblemCode.WARC_INVALID,
                        f"revisit refers to {own_info.refers_to}, manifest says {ref['record_id']}",
                        own,
                    )
                if own_info.header_payload_digest != warc_digest(bytes.fromhex(e.content["sha256"])):
                    problem(
                        ProblemCode.CONTENT_MISMATCH,
                        "revisit's WARC-Payload-Digest differs from the manifest's SHA-256",
                        own,
                    )
        content = own_info if content_pos == own else self.fetch(e, content_pos, "content", ref["record_id"])
        if content is not None:
            self.check_content(e, content, content_pos)
        for name, att in self.attachments(e):
            accounted.add(_pos(att))
            info = self.fetch(e, _pos(att), name, att["record_id"])
            if info is not None and info.sha256.hex() != att["sha256"]:
                problem(
                    ProblemCode.CONTENT_MISMATCH,
                    f"{name} record differs from the digest the manifest signed",
                    _pos(att),
                )
        found = meta = self.find_manifest_record(e)
        if meta is None:
            meta = self.damaged_manifest_record(e)
            if meta is not None:
                accounted.add(meta)
            else:
                self.add(
                    ProblemCode.RECORD_MISSING,
                    "no WARC metadata record carries this manifest",
                    document=e.document_id,
                    event=e.sequence,
                    file=e.path,
                )
        else:
            accounted.add(meta)
            info = self.record(meta)
            assert info is not None  # (the copy was found there)
            if s["record_id"] not in (info.concurrent_to, info.refers_to) and ref["record_id"] not in (
                info.concurrent_to,
                info.refers_to,
            ):
                problem(ProblemCode.WARC_INVALID, "the manifest's metadata record names another record", meta)
        return accounted, found

    def damaged_manifest_record(self, e: Event) -> Pos | None:
        """Where this event's manifest copy should be, if a different or damaged one is there.

        Reported precisely (``content-mismatch``: the copy differs from the file;
        ``warc-invalid``: it is unreadable) rather than as missing plus orphan.
        """
        uri = f"urn:archiver:event:{e.document_id}/{e.sequence}"
        candidates: list[Pos] = []
        if self.full:
            # (sorted: records arrive in no set order when parts are read in parallel)
            candidates = sorted(
                p
                for p, i in self.records.items()
                if i.target_uri == uri and (isinstance(i, _LetGo) or i.error is None)
            )
        after = _after_own_records(e)
        if after is not None:
            candidates.append(after)
        where: dict[str, Any] = {"document": e.document_id, "event": e.sequence}
        for pos in candidates:
            info = self.record(pos)
            if info is None:
                continue
            if info.error is not None:
                self.add(
                    ProblemCode.WARC_INVALID,
                    f"manifest copy unreadable: {info.error}",
                    file=f"store/{pos[0]}@{pos[1]}",
                    **where,
                )
                return pos
            if info.record_type == "metadata" and info.target_uri == uri:
                self.add(
                    ProblemCode.CONTENT_MISMATCH,
                    "the manifest copy in the WARC differs from the manifest file",
                    file=f"store/{pos[0]}@{pos[1]}",
                    **where,
                )
                return pos
        return None

    @staticmethod
    def attachments(e: Event) -> list[tuple[str, dict[str, Any]]]:
        """The records an event names besides its own and its content's."""
        # (the raw value once, rather than a typed view per use: this runs for every event
        # while the worker waits, and again in each document's check)
        raw = e.raw
        storage, action = raw["storage"], raw["action"]
        out = []
        if "seed" in storage and action in ("captured", "edited", "redacted"):
            out.append(("sealed seed", storage["seed"]))
        if "request" in storage and action == "captured":
            out.append(("HTTP request", storage["request"]))
            for hop in ((raw.get("source") or {}).get("http") or {}).get("redirects") or []:
                out += [("redirect request", hop["request"]), ("redirect response", hop["response"])]
        diff = raw.get("diff")
        if diff and diff.get("record"):
            out.append(("diff", diff["record"]))
        redaction = raw.get("redaction")
        if redaction:
            out.append(("redaction proof", redaction["proof"]))
        return out

    def positions(self, e: Event) -> list[Pos]:
        """The WARC positions an event names: its own record, its content's, its attachments'."""
        found = [_pos(e.storage), _pos(e.content_ref)]
        found += [_pos(a) for _, a in self.attachments(e)]
        return found

    def find_manifest_record(self, e: Event) -> Pos | None:
        """Where this manifest's WARC copy is (the full scan, else the index's hint, else a scan)."""
        if self.full:
            # where the event wrote it, if it is there; else its first copy in the files'
            # order (a check while the files are still read waits for the last part)
            after = _after_own_records(e)
            if after is not None:
                info = self.records.get(after)
                if isinstance(info, _LetGo):
                    info = self.record(after)
                if (
                    info is not None
                    and info.error is None
                    and info.record_type == "metadata"
                    and info.content_type == MANIFEST_CONTENT_TYPE
                    and "sha256:" + info.sha256.hex() == e.digest
                ):
                    return after
            if self.early_mode:
                raise _NotReady
            return self.manifest_at.get(e.digest)
        hint = self.hints.get((e.document_id, e.sequence))
        if hint is not None:
            info = self.record(hint)
            if info is not None and info.error is None and "sha256:" + info.sha256.hex() == e.digest:
                return hint
        if not self.manifest_at:  # the hint failed: look everywhere once
            from .warcscan import manifest_positions

            self.manifest_at = manifest_positions(self.store, list(self.snap.warc_sizes))
        pos = self.manifest_at.get(e.digest)
        if pos is not None:
            self.record(pos)
        return pos

    def check_content(self, e: Event, info: RecordInfo, pos: Pos) -> None:
        if info.text is not None and self.early_mode:
            raise _NotReady  # its token tree still waits for its seed
        c = e.content
        diffs = []
        if info.payload_size != c["size"]:
            diffs.append(f"size {info.payload_size}, manifest says {c['size']}")
        if info.payload_sha256.hex() != c["sha256"]:
            diffs.append(f"SHA-256 {info.payload_sha256.hex()[:16]}..., manifest says {c['sha256'][:16]}...")
        if info.payload_sha512.hex() != c["sha512"]:
            diffs.append("SHA-512 differs")
        if c["text_sha256"] is not None and info.text_sha256 != c["text_sha256"]:
            diffs.append("normalised-text digest differs")
        if c.get("redactable"):
            tree = info.redactable
            if (tree is None or tree != c["redactable"]) and not diffs:
                # (none: the scan left it out; another: a record several events name is
                # hashed in the scan with one event's seed, ``prepare_texts``, and another's
                # signed tree is checked with its own, or an innocent document is blamed)
                tree = self.tree_now(e, pos)
            if tree is not None and tree != c["redactable"]:
                diffs.append("redaction token tree differs from the signed one")
        if diffs:
            self.add(
                ProblemCode.CONTENT_MISMATCH,
                "stored bytes do not match the manifest: " + "; ".join(diffs),
                document=e.document_id,
                event=e.sequence,
                file=f"store/{pos[0]}@{pos[1]}",
            )

    def tree_now(self, e: Event, pos: Pos) -> dict[str, Any] | None:
        """The token tree of a sound text that came out of the scan without one, from the
        record read again with its seed: a signed tree is never passed unchecked, whatever
        path left it out. None when the seed is unreadable (its own record's check says so)."""
        seed = self.seed_of(e) if "seed" in e.storage else None
        if seed is None:
            return None
        try:
            with self.store.open(warc_key(pos[0])) as f:
                info, _ = read_record(f, pos[1], text=TextCheck(e.content["charset"] or "utf-8", seed))
        except OSError:
            return None  # (the scan read it: gone since, which the next verify reports)
        return info.redactable

    def seed_of(self, e: Event) -> bytes | None:
        """The 32-byte token-tree seed an event's manifest names, or None (unreadable)."""
        sref = e.storage["seed"]
        raw = read_block(self.store, warc_key(str(sref["warc_file"])), int(sref["offset"]), 64)
        return raw if raw is not None and len(raw) == 32 else None

    def text_plan(self, e: Event) -> tuple[Pos, TextCheck, bool] | None:
        """For an event whose content is text: where its content record is, how to check it
        (its charset; where its seed is when a full scan reads it there, after its text in
        the same file), and whether its seed is to be read now, before the scan."""
        content = e.content
        if content["text_sha256"] is None:
            return None
        storage, ref = e.storage, e.content_ref
        sref = storage.get("seed")
        at: int | None = None
        if (
            self.full
            and content.get("redactable")
            and sref
            and sref["warc_file"] == ref["warc_file"]
            and int(sref["offset"]) > int(ref["offset"])
            and int(content["size"]) <= MAX_DEFERRED_TEXT
        ):
            at = int(sref["offset"])
        now = at is None and bool(content.get("redactable")) and "seed" in storage
        return _pos(ref), TextCheck(content["charset"] or "utf-8", None, at), now

    def prepare_texts(self, events: list[Event]) -> None:
        """Which content records hold text, with their charset and token-tree seed
        (``text_plan``, worked out as each event came in); for a record several events
        name, the first event's plan in the chains' order, unless a later one has a seed
        read now. A full scan reads a seed where it is; the others are read now."""
        plans, self.text_plans = self.text_plans, {}
        texts = [(e, plan) for e in events if (plan := plans.get(e.path)) is not None]

        # (a full scan defers almost every seed: only the others are read now, in parallel)
        now = [e for e, plan in texts if plan[2]]
        seeds = dict(zip(map(id, now), self.store.map(self.seed_of, now), strict=True))
        for e, (pos, check, _) in texts:
            seed = seeds.get(id(e))
            if seed is not None:
                self.texts[pos] = TextCheck(check.charset, seed, check.seed_at)
            elif pos not in self.texts:
                self.texts[pos] = check

    def check_redaction(self, before: Event, e: Event) -> None:
        """Step 5, redactions: the new text derives from the previous one as the proof declares."""
        where: dict[str, Any] = {"document": e.document_id, "event": e.sequence, "file": e.path}
        red = e.raw["redaction"]
        if not before.content.get("redactable"):
            self.add(ProblemCode.CONTENT_MISMATCH, "redaction of a version without a token tree", **where)
            return
        proof_raw = self.block_of(red["proof"])
        new_raw = self.block_of(e.content_ref)
        if proof_raw is None or new_raw is None:
            return  # unreadable records are reported by the record checks
        try:
            proof = json.loads(proof_raw)
            redacted = decode(new_raw, e.content["charset"])
        except ValueError as err:
            self.add(ProblemCode.CONTENT_MISMATCH, f"redaction unreadable: {err}", **where)
            return
        original = seed = None
        old_raw = self.block_of(before.content_ref)
        seed_ref = before.storage.get("seed")
        if old_raw is not None and seed_ref is not None:
            seed = self.block_of(seed_ref)
            with contextlib.suppress(ValueError):
                original = decode(old_raw, before.content["charset"])
        for msg in check_proof(proof, redacted, before.content["redactable"], original, seed):
            self.add(ProblemCode.CONTENT_MISMATCH, msg, **where)

    def block_of(self, ref: Mapping[str, Any]) -> bytes | None:
        pos = _pos(ref)
        if pos in self.may_withhold:
            info = self.record(pos)
            if info is None or info.content_type == WITHHELD_CONTENT_TYPE:
                return None  # withheld from this export: nothing to read
        return read_payload(self.store, warc_key(str(ref["warc_file"])), int(ref["offset"]), MAX_REDACT_TEXT)

    def check_diff(self, e: Event) -> None:
        diff = e.raw["diff"]
        if not diff or not diff.get("record"):
            return
        raw = self.block_of(diff["record"])
        if raw is None:
            return
        counts = diff_counts(raw.decode("utf-8", "replace"))
        if any(counts[k] != diff[k] for k in counts):
            self.add(
                ProblemCode.CONTENT_MISMATCH,
                "the stored diff does not match the signed diff summary",
                document=e.document_id,
                event=e.sequence,
                file=e.path,
            )

    # -- step 7 -----------------------------------------------------------------------------------
    def index_rows(self) -> dict[tuple[str, int], Row] | str | None:
        """The derived index's rows (of the documents checked): None without an index,
        the reason if it cannot be read."""
        try:
            idx = self.archive.reading_index()
        except CorruptArchive as err:
            return str(err)
        if idx is None:
            # The index is derived and never authoritative: a copy or an export may come
            # without one, and the next writer rebuilds it. Nothing to compare.
            return None
        try:
            rows = idx.all_rows() if self.documents is None else idx.rows_of(self.documents)
            return {(r[0], r[1]): r for r in rows}
        except CorruptArchive as err:
            return str(err)
        finally:
            idx.close()

    def check_index(self, rows: dict[tuple[str, int], Row] | str | None) -> None:
        """Step 7's verdict, once every document is checked: ``rows_made`` compared the
        rows each document's events imply with the index's (``index_rows``) as it was
        checked; the index's rows left (``rows``, as ``index_left`` left them) are rows no
        event implies. Each (document, sequence) that differs counts once."""
        if rows is None:
            return
        if isinstance(rows, str):
            self.add(ProblemCode.INDEX_STALE, rows, file=self.archive.index_name)
            return
        differ = self.rows_differ + len(rows)
        if differ:
            self.add(
                ProblemCode.INDEX_STALE,
                f"index disagrees with the manifests on {differ} event(s); run `archiver reindex`",
                file=self.archive.index_name,
            )

    def index_actual(self, rows: dict[tuple[str, int], Row]) -> dict[tuple[str, int], Row]:
        """The index's rows this verify compares (step 7): those of the documents checked,
        less those of events written after the snapshot, which are not this reader's
        business. Rows whose manifest does not exist at all stay: they are stale."""
        actual = rows
        if self.documents is not None:
            actual = {k: r for k, r in actual.items() if k[0] in self.documents}
        # (set operations in C: the usual archive has every row's manifest in the snapshot)
        unseen = {r[4] for r in actual.values()} - self.snap.records
        later = {path for path in unseen if self.store.size(path) is not None}
        if later:
            actual = {k: r for k, r in actual.items() if r[4] not in later}
        return actual

    def rows_made(self, rows: list[Row]) -> None:
        """Step 7 for one document, as its check makes its rows (a full verify does this
        between WARC parts, while the worker reads on): each against the index's row of
        the same (document, sequence), taken out of ``index_left``. Neither is kept (both
        were held to the end, and the rows kept most of their manifest's strings alive);
        ``check_index`` adds the index's rows left.

        The last two columns are lookup hints for manifest copies: checked only where the
        copy was found, since a missing copy is reported as such, not as a stale index.
        The events of one key are all one document's (its first column): of a fork's
        events sharing one, the last in the chain's order is compared."""
        if not self.index_read:
            self.rows_waiting.append(rows)  # (a documents-scope verify reads the index last)
            return
        if self.index_left is None:
            return  # no index, or unreadable: nothing to compare
        for key, want in {(r[0], r[1]): r for r in rows}.items():
            have = self.index_left.pop(key, None)
            if have is None or (want != have and not _rows_agree(want, have)):
                self.rows_differ += 1

    def load_hints(self) -> None:
        self.hints: dict[tuple[str, int], Pos] = {}
        if self.full:
            return
        with contextlib.suppress(CorruptArchive):
            idx = self.archive.reading_index()
            if idx is None:
                return
            try:
                for doc in self.documents or []:
                    for row in idx.events_of(doc):
                        if row.meta_warc_file is not None and row.meta_offset is not None:
                            self.hints[(doc, row.sequence)] = (row.meta_warc_file, row.meta_offset)
            finally:
                idx.close()

    # -- all --------------------------------------------------------------------------------------
    def run(self, started: ProcessPoolExecutor | None = None) -> Report:
        """Every step; a full verify of a large local archive shares its heavy steps (the
        manifests, the WARC files) with one worker process: ``started`` (``worker_ahead``),
        else one started here."""
        manifests = sum(1 for r in self.snap.records if r.startswith(EVENTS))
        large = manifests >= _manifest_threshold() or any(
            size >= _bytes_threshold() for size in self.snap.warc_sizes.values()
        )
        if not (self.full and large and isinstance(self.store, LocalStore)):
            return self._run()
        if started is not None:
            return self._run_sharing(started)
        with _worker_pool_warming() as pool:
            return self._run_sharing(pool)

    def _run_sharing(self, pool: ProcessPoolExecutor | None) -> Report:
        self.pool = pool
        try:
            return self._run()
        finally:
            self.pool = None

    def _run(self) -> Report:
        self.trust = load_trust(self.store, self.archive.archive_id, self.snap.records)
        self.problems.extend(self.trust.problems)
        self.counts.keys = len(self.trust.keys)
        by_doc = self.load_events()
        self.counts.documents = len(by_doc)
        chains: dict[str, list[Event]] = {}
        for doc in sorted(by_doc):
            found = by_doc[doc]
            chains[doc] = found if len(found) == 1 else sorted(found, key=lambda e: (e.sequence, e.path))
        del by_doc  # (the chains hold the events now: see ``keep_checked``)
        self.chains = chains
        all_events = [e for doc in chains for e in chains[doc]]
        chain_problems_at = len(self.problems)  # (step 4's, in their place however run)
        self.load_export(chains)
        self.prepare_texts(all_events)
        self.load_hints()
        if self.full:

            def meanwhile() -> None:  # while the worker starts on the WARC files
                self.check_chains(chains, chain_problems_at)
                self.run_independent(all_events)
                all_events.clear()  # (each document's events are let go once it is checked)

            named, self.named = self.named, {}  # (handed over: the plan empties it once made)
            self.scan_all(self.expected, meanwhile, chains, named)
        else:
            self.check_chains(chains, chain_problems_at)
        for doc, events in chains.items():
            if doc not in self.checked:
                self.keep_checked(doc, self.check_document(events))
        if self.full:
            self.accounted.update((name, 0) for name in self.snap.warc_sizes)
            self.check_orphans(self.accounted | self.claimed)
        if isinstance(self.archive.store, S3Store):
            from .objectcheck import check_objects

            self.problems.extend(check_objects(self.archive.store, self.snap, self.documents))
        if self.independent is None:  # (a full verify ran them during the WARC scan)
            self.run_independent(all_events)
        assert self.independent is not None
        audit_found, log_found, ts_found, rows = self.independent
        self.problems.extend(audit_found)
        self.problems.extend(log_found)
        self.check_index(rows)
        self.counts.withheld = len(self.withheld)
        self.problems.extend(ts_found)
        return Report(
            archive_id=self.archive.archive_id,
            tool_version=__version__,
            time=format_time(self.now),
            scope="archive" if self.full else "documents",
            counts=self.counts,
            problems=tuple(self.problems),
        )

    def check_document(self, events: list[Event]) -> tuple[set[Pos], list[Row]]:
        """Steps 5-6 for one document's chain: the positions its events account for, and
        the index rows its events imply (for step 7: with where each manifest copy is)."""
        accounted: set[Pos] = set()
        rows: list[Row] = []
        before: Event | None = None
        for e in events:
            positions, meta = self.check_event_records(e)
            accounted |= positions
            rows.append(row_of(e, meta))
            if e.action in ("edited", "redacted"):
                self.check_diff(e)
            if e.action == "redacted" and before is not None:
                self.check_redaction(before, e)
            if e.action in ("captured", "edited", "redacted") and (e.sequence == 0 or e.action != "captured"):
                before = e
        return accounted, rows

    def check_early(self, doc: str, events: list[Event]) -> None:
        """``check_document`` while the WARC files are still being read, once the parts
        holding the document's records are in. Kept only if it finds nothing wrong and
        needs nothing not read yet (a record elsewhere, a manifest copy not where its
        event wrote it, a token tree waiting for its seed); else the document is checked
        again after the reading, as if this had not happened: problems keep the report's
        order. What it finds does not depend on the order parts are read in."""
        saved, self.problems = self.problems, []
        self.early_mode = True
        try:
            done = self.check_document(events)
        except _NotReady:
            return
        finally:
            clean = not self.problems
            self.problems = saved
            self.early_mode = False
        if clean:
            self.keep_checked(doc, done)

    def keep_checked(self, doc: str, done: tuple[set[Pos], list[Row]]) -> None:
        """What a document's check (``check_document``) found, kept for the steps after it."""
        positions, rows = done
        self.checked.add(doc)
        self.accounted |= positions
        if self.full:
            self.let_go(positions)
        self.rows_made(rows)
        self.tick(doc)
        if self.independent is not None:
            # Nothing after this reads the document's events: its chain (step 4), the log,
            # audit records and time stamps (``independent_checks``) have been checked, and
            # the index's step compares the rows kept above. A full verify's parsed
            # manifests were two fifths of its peak memory, held to the end for nothing.
            self.chains[doc] = []

    def tick(self, doc: str) -> None:
        if self.progress is not None and doc not in self.ticked:
            self.ticked.add(doc)
            self.progress(1)

    def run_independent(self, events: list[Event]) -> None:
        self.independent = self.independent_checks(events)
        rows = self.independent[3]
        self.index_read = True
        self.index_left = rows if isinstance(rows, dict) else None
        waiting, self.rows_waiting = self.rows_waiting, []
        for made in waiting:
            self.rows_made(made)

    def independent_checks(self, events: list[Event]) -> Independent:
        """The checks that need the manifests but not the WARC records: audit records,
        the log (step 8), time-stamp tokens, and the index's rows read for step 7. A
        full verify runs them while its worker reads WARC parts (``scan_all``); their
        problems are reported in the order of the steps all the same."""
        audit_found: list[Problem] = []
        if self.full:
            from .audit import check_audit_records

            audit_found = check_audit_records(
                self.store, self.archive.archive_id, self.trust, self.snap.records
            )
        log_found: list[Problem] = []
        if self.full or self.kept_checkpoint is not None:
            # step 8: the log (a documents-scope run checks only a kept checkpoint, via the whole log)
            found, _ = check_log(
                self.store,
                self.archive.log_view(),
                self.archive.archive_id,
                self.trust,
                self.kept_checkpoint,
                self.snap,
                absent_ok=self.left_out if self.partial is not None else None,
                known=self.leaves,
            )
            log_found = [p for p in found if self.full or p.file == "--checkpoint"]
        rows = self.index_rows()
        if isinstance(rows, dict):
            rows = self.index_actual(rows)
        return audit_found, log_found, self.check_timestamps(events), rows

    def load_export(self, chains: dict[str, list[Event]]) -> None:
        """An exported copy says so in ``manifests/export.json``: what it withheld, and its scope."""
        self.export = load_export_info(self.store)
        self.withheld: set[Pos] = set()
        self.may_withhold: set[Pos] = set(sealed_refs(chains.values())) if self.export is not None else set()
        self.partial: frozenset[str] | None = None
        if self.export is None:
            return
        from .schema import schema_errors

        if schema_errors("export", self.export) or self.export.get("archive_id") != self.archive.archive_id:
            self.add(
                ProblemCode.SCHEMA_INVALID,
                "export.json is unreadable or names another archive",
                file="manifests/export.json",
            )
            self.export = None
            return
        docs = self.export.get("documents")
        if isinstance(docs, list):
            self.partial = frozenset(str(d) for d in docs)

    def check_timestamps(self, events: list[Event]) -> list[Problem]:
        """RFC 3161 tokens: against the auditor's TSA certificates if given, else the archive's."""
        from .timestamps import check_tokens, trusted_certificates

        roots = self.tsa_roots
        if roots is None:
            roots = trusted_certificates(self.store, self.snap.records)
        by_path = {e.path: e for e in events}  # (times parsed only where a token is)
        found, self.counts.timestamps = check_tokens(
            self.store,
            self.snap.records,
            roots,
            lambda path: e.time if (e := by_path.get(path)) is not None else None,
            None if self.full else self.documents,
        )
        return found

    def left_out(self, rel: str) -> bool:
        """In an export of some documents: a record file of another document, left out."""
        m = EVENT_NAME.match(rel.rsplit("/", 1)[-1])
        return (
            self.partial is not None
            and rel.startswith("manifests/events/")
            and m is not None
            and m.group(1) not in self.partial
        )

    def check_orphans(self, accounted: set[Pos]) -> None:
        # only the records no event accounts for, and each file's first (its warcinfo), in
        # the files' order: a set difference in C instead of a sort and a loop over them all
        todo = (self.records.keys() - accounted) | {
            (name, 0) for name in self.snap.warc_sizes if (name, 0) in self.records
        }
        for name, offset in sorted(todo):
            info = self.record((name, offset))
            if info is None:
                continue  # (never: each is a record the scan read)
            where = f"store/{name}@{offset}"
            if offset == 0:
                if info.error is not None:
                    self.add(ProblemCode.WARC_INVALID, f"warcinfo unreadable: {info.error}", file=where)
                elif info.record_type != "warcinfo":
                    self.add(ProblemCode.WARC_INVALID, "WARC file does not start with warcinfo", file=where)
                continue
            if (name, offset) in accounted:
                continue
            if (
                self.partial is not None
                and info.record_type == "metadata"
                and info.content_type == WITHHELD_CONTENT_TYPE
            ):
                self.withheld.add((name, offset))  # another document's record, left out
                continue
            if info.error is not None:
                self.add(
                    ProblemCode.WARC_INVALID,
                    f"unreadable bytes no manifest accounts for: {info.error}",
                    file=where,
                )
            else:
                self.add(
                    ProblemCode.RECORD_ORPHAN,
                    f"{info.record_type} record {info.record_id} that no manifest accounts for",
                    file=where,
                )


@dataclass(frozen=True, slots=True)
class Examined:
    """What reading one manifest file established (``examine_manifests``)."""

    rel: str
    event: Event | None  # None: not accepted (the problems say why)
    problems: list[Problem]
    claimed: set[Pos]  # WARC positions a manifest too damaged to accept names: not orphans
    leaf: bytes | None  # its log leaf hash, for step 8 (None: unreadable)
    counted: bool  # a schema-valid event, counted in the report

    def __reduce__(self) -> tuple[Any, ...]:
        # see Event.__reduce__: sent back by the worker for half of the manifests
        return (Examined, (self.rel, self.event, self.problems, self.claimed, self.leaf, self.counted))


def examine_manifests(store: Store, archive_id: str, keys: frozenset[str], rels: list[str]) -> list[Examined]:
    """Steps 2 and 3 for each manifest file: read, strict JSON, schema, archive id, name,
    signatures. Self-contained (it loads the trusted keys itself, from ``keys``), so that
    a worker process can take half of a large archive's manifests."""
    trust = load_trust(store, archive_id, keys)
    out: list[Examined] = []
    for rel in rels:
        m = EVENT_NAME.match(rel.rsplit("/", 1)[-1])
        assert m is not None
        doc_hint, seq_hint = m.group(1), int(m.group(2))
        where: dict[str, Any] = {"document": doc_hint, "event": seq_hint, "file": rel}
        try:
            data = store.read(rel)
        except OSError as e:
            found = Problem(
                code=ProblemCode.RECORD_MISSING, message=f"manifest unreadable: {e.strerror}", **where
            )
            out.append(Examined(rel, None, [found], set(), None, False))
            continue
        leaf = leaf_hash(data)
        try:
            event = Event.parse(data, rel)
        except ManifestError as e:
            out.append(
                Examined(
                    rel,
                    None,
                    [Problem(code=e.code, message=str(e), **where)],
                    _claimed_positions(data),
                    leaf,
                    False,
                )
            )
            continue
        if event.raw["archive_id"] != archive_id:
            other = f"manifest belongs to archive {event.raw['archive_id']}"
            out.append(
                Examined(
                    rel,
                    None,
                    [Problem(code=ProblemCode.SCHEMA_INVALID, message=other, **where)],
                    set(),
                    leaf,
                    True,
                )
            )
            continue
        at: dict[str, Any] = {"document": event.document_id, "event": event.sequence, "file": rel}
        problems: list[Problem] = []
        if event.document_id != doc_hint or event.sequence != seq_hint:
            problems.append(
                Problem(
                    code=ProblemCode.CHAIN_BROKEN,
                    message=f"file name says {doc_hint}/{seq_hint} but the manifest says "
                    f"{event.document_id}/{event.sequence}",
                    **at,
                )
            )
        for code, msg in trust.check_signatures(
            event.raw, partial(parse_time, event.raw["time"]), ACTION_ROLES[event.action], plain=event.plain
        ):
            problems.append(Problem(code=code, message=msg, **at))
        if event.raw["actor"]["key_id"] not in {sig["key_id"] for sig in event.raw["signatures"]}:
            problems.append(
                Problem(code=ProblemCode.SIGNATURE_INVALID, message="the event's actor did not sign it", **at)
            )
        out.append(Examined(rel, event, problems, set(), leaf, True))
    return out


def examine_packed(store: Store, archive_id: str, keys: frozenset[str], rels: list[str]) -> bytes:
    """``examine_manifests`` for a worker: its result as bytes (``prehash.pack``), the
    cyclic garbage collector paused as in the parent (``gcpause.py``)."""
    from .prehash import pack

    with gc_paused():
        return pack(
            [
                (
                    x.rel,
                    None
                    if x.event is None
                    else (x.event.raw, x.event.digest, x.event.path, x.event.size, x.event.plain),
                    [(p.code.value, p.message, p.document, p.event, p.file) for p in x.problems],
                    x.claimed,
                    x.leaf,
                    x.counted,
                )
                for x in examine_manifests(store, archive_id, keys, rels)
            ]
        )


def unpack_examined(data: bytes) -> list[Examined]:
    """What ``examine_packed`` sent."""
    from .prehash import unpack

    return [
        Examined(
            rel,
            None if ev is None else Event(raw=ev[0], digest=ev[1], path=ev[2], size=ev[3], plain=ev[4]),
            [
                Problem(code=ProblemCode(p[0]), message=p[1], document=p[2], event=p[3], file=p[4])
                for p in problems
            ],
            claimed,
            leaf,
            counted,
        )
        for rel, ev, problems, claimed, leaf, counted in unpack(data)
    ]


def verify(
    archive: Archive,
    documents: list[str] | None = None,
    checkpoint: bytes | None = None,
    tsa_certs: list[Path] | None = None,
    progress: Callable[[int], None] | None = None,
    retain: list[object] | None = None,
) -> Report:
    """Verify the whole archive, or only the given documents (ids or unique prefixes).

    ``checkpoint``: an auditor's kept checkpoint the archive must extend (``log-rollback``).
    ``tsa_certs``: PEM files of the TSA certificates the auditor trusts; time-stamp
    tokens are then checked against these instead of the archive's own list.
    ``retain``: the verifier's working data (every record's digests, the index's rows; a
    full verify lets go of each document's manifests once it is checked) is put here
    instead of being freed on return: a process about to exit lets the exit drop it.

    Raises:
        DocumentNotFound: a document id matches nothing or is ambiguous.
        InvalidInput: ``checkpoint`` is not a checkpoint of this archive.
    """
    ids = None if documents is None else [resolve_by_files(archive.store, d) for d in documents]
    roots = None
    if tsa_certs:
        from .timestamps import load_certificates

        roots = load_certificates(tsa_certs)
    # (the worker starts while this process takes the snapshot: listing 55,000 manifests
    # takes about as long as a new interpreter's imports)
    with worker_ahead(archive, ids) as started, gc_paused():  # (gc: gcpause.py)
        v = _Verifier(archive, ids, checkpoint)
        v.progress = progress
        v.tsa_roots = roots
        report = v.run(started)
        if retain is not None:
            # kept to the end: no collection need ever walk these objects again
            gc.freeze()
            retain.append(v)
    return report


@contextlib.contextmanager
def worker_ahead(archive: Archive, documents: list[str] | None) -> Iterator[ProcessPoolExecutor | None]:
    """The worker of a full verify (``_Verifier.run``), started before the snapshot when a
    local archive's WARC files alone make it large; None otherwise (``run`` decides on the
    snapshot, and starts one then if the manifests make the archive large)."""
    store = archive.store
    if documents is not None or not isinstance(store, LocalStore):
        yield None
        return
    threshold = _bytes_threshold()
    if not any(e.size >= threshold and e.key.endswith(".warc.gz") for e in store.files(STORE)):
        yield None
        return
    with _worker_pool_warming() as pool:
        yield pool


@contextlib.contextmanager
def _worker_pool_warming() -> Iterator[ProcessPoolExecutor | None]:
    """``prehash.worker_pool(1)``, its worker importing the verifier at once (it starts
    while this process works on)."""
    from .prehash import warm, worker_pool

    with worker_pool(1) as pool:
        if pool is not None:
            pool.submit(warm, ("archiver.verify",))
        yield pool


def resolve_by_files(store: Store, prefix: str) -> str:
    """Resolve a document id prefix from the manifest file names (not the index).

    Raises:
        InvalidInput / DocumentNotFound: not hex, no match, or ambiguous.
    """
    p = prefix.strip().lower()
    if not p or len(p) > 32 or any(ch not in "0123456789abcdef" for ch in p):
        raise InvalidInput(f"{prefix[:40]!r} is not a document id (hex digits)")
    found: set[str] = set()
    prefix_key = f"{EVENTS}{p[:2]}/{p}" if len(p) >= 2 else f"{EVENTS}{p}"
    for entry in store.files(prefix_key):
        m = EVENT_NAME.match(entry.name)
        if m and m.group(1).startswith(p):
            found.add(m.group(1))
    if not found:
        raise DocumentNotFound(f"no document {prefix!r} in this archive; see `archiver list`")
    if len(found) > 1:
        shown = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
        raise DocumentNotFound(f"document prefix {prefix!r} is ambiguous: {shown}")
    return found.pop()


def _after_own_records(e: Event) -> Pos | None:
    """Where a capture, edit or redaction wrote its manifest copy: right after its own
    records (other events write theirs wherever the file then ends)."""
    if e.action not in ("captured", "edited", "redacted"):
        return None
    last = e.storage.get("seed") or e.storage
    return (str(last["warc_file"]), int(last["offset"]) + int(last["length"]))


def _claimed_positions(data: bytes) -> set[Pos]:
    """Best effort: the WARC positions an invalid manifest names."""
    try:
        raw = json.loads(data)
        s = raw.get("storage") if isinstance(raw, dict) else None
        if not isinstance(s, dict):
            return set()
        out: set[Pos] = set()
        for ref in (s, s.get("refers_to"), s.get("seed")):
            if isinstance(ref, dict):
                start = (str(ref["warc_file"]), int(ref["offset"]))
                # ... and the record right after it, where this event's manifest copy was written
                out |= {start, (start[0], start[1] + int(ref["length"]))}
        return out
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return set()


def _rows_agree(want: Row, have: Row) -> bool:
    """Index rows agree; the manifest-copy hint (last two columns) only where the copy was found."""
    return want[:-2] == have[:-2] and (want[-2:] == (None, None) or want[-2:] == have[-2:])
