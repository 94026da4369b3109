"""The verifier: trusts nothing but ``manifests/keys/`` and re-reads every byte.

Steps (numbered as in docs/format.md, "Verifying an archive"):

1. Load the trusted keys and revocations (``trust.load_trust``).
2. Read every file under ``manifests/events/``: strict JSON, schema, archive
   id, file name agreeing with document and sequence.
3. Check each event's signatures: trusted key, right role for the action,
   valid Ed25519 over the canonical form, not after the key's revocation;
   the actor must be among the signers.
4. Check each document's chain: sequences 0..n-1, ``previous`` naming the
   digest of the prior manifest file, no two events with one predecessor.
5. Read the WARC records each event names (its own record, the record holding
   its bytes, and the ``metadata`` record right after its own): present,
   well-formed, WARC digest right, headers agreeing with the manifest, bytes
   agreeing with the manifest's size and digests (SHA-256, SHA-512, text).
6. Full verification also reads every WARC file from end to end: every record
   must be accounted for by a manifest (``record-orphan``), every byte must
   parse (``warc-invalid``: a torn tail is reported at its offset).
7. Compare the derived index with what the manifests imply (``index-stale``).

It never stops at the first problem; each problem carries its code, the
document, the event and the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .__version__ import __version__
from .archive import Archive
from .errors import CorruptArchive, DocumentNotFound, InvalidInput
from .index import Index, row_of
from .layout import EVENT_NAME, Layout
from .manifest import ACTION_ROLES, Event, ManifestError
from .problems import Counts, Problem, ProblemCode, Report
from .textdigest import TextDigester
from .timeutil import format_time
from .warcread import RecordReader, WarcFormatError, next_member_offset
from .warcstore import warc_digest

Pos = tuple[str, int]  # (warc file name, offset)


@dataclass(slots=True)
class RecordInfo:
    """What was found at one WARC position."""

    error: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    date: str | None = None
    length: int = 0
    header_block_digest: str | None = None
    header_payload_digest: str | None = None
    refers_to: str | None = None
    concurrent_to: str | None = None
    size: int = 0
    sha256: bytes = b""
    sha512: bytes = b""
    text_sha256: str | None = None


class _Verifier:
    def __init__(self, archive: Archive, documents: list[str] | None) -> None:
        self.archive = archive
        self.layout: Layout = archive.layout
        self.documents = documents
        self.problems: list[Problem] = []
        self.counts = Counts()
        self.records: dict[Pos, RecordInfo] = {}
        # positions whose content must also get a text digest, with the charset
        self.want_text: dict[Pos, str] = {}
        # positions named by manifests that are themselves invalid (already reported):
        # not reported again as orphans
        self.claimed: set[Pos] = set()

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

    # -- steps 1-4 ---------------------------------------------------------------
    def load_events(self) -> dict[str, list[Event]]:
        by_doc: dict[str, list[Event]] = defaultdict(list)
        for path in self.layout.event_files():
            rel = self.layout.relative(path)
            m = EVENT_NAME.match(path.name)
            doc_hint = m.group(1) if m else None
            seq_hint = int(m.group(2)) if m else None
            if self.documents is not None and doc_hint not in self.documents:
                continue
            if m is None or path.parent.name != path.name[:2] or path.parent.parent != self.layout.events:
                if path.name.startswith("."):
                    continue  # an interrupted atomic write's temporary file
                self.add(ProblemCode.SCHEMA_INVALID, "unexpected file in manifests/events/", file=rel)
                continue
            if path.is_symlink():
                self.add(
                    ProblemCode.SCHEMA_INVALID,
                    "manifest is a symbolic link",
                    document=doc_hint,
                    event=seq_hint,
                    file=rel,
                )
                continue
            try:
                data = path.read_bytes()
                event = Event.parse(data, rel)
            except OSError as e:
                self.add(
                    ProblemCode.RECORD_MISSING,
                    f"manifest unreadable: {e.strerror}",
                    document=doc_hint,
                    event=seq_hint,
                    file=rel,
                )
                continue
            except ManifestError as e:
                self.add(e.code, str(e), document=doc_hint, event=seq_hint, file=rel)
                self.claimed |= _claimed_positions(data)
                continue
            self.counts.events += 1
            if event.raw["archive_id"] != self.archive.archive_id:
                self.add(
                    ProblemCode.SCHEMA_INVALID,
                    f"manifest belongs to archive {event.raw['archive_id']}",
                    document=doc_hint,
                    event=seq_hint,
                    file=rel,
                )
                continue
            assert doc_hint is not None and seq_hint is not None  # the name matched EVENT_NAME
            if event.document_id != doc_hint or event.sequence != seq_hint:
                self.add(
                    ProblemCode.CHAIN_BROKEN,
                    f"file name says {doc_hint[:12]}/{seq_hint} but the manifest says "
                    f"{event.document_id[:12]}/{event.sequence}",
                    document=event.document_id,
                    event=event.sequence,
                    file=rel,
                )
            self.check_signatures(event)
            by_doc[event.document_id].append(event)
        return by_doc

    def check_signatures(self, event: Event) -> None:
        trust = self.trust
        for code, msg in trust.check_signatures(event.raw, event.time, ACTION_ROLES[event.action]):
            self.add(code, msg, document=event.document_id, event=event.sequence, file=event.path)
        signers = {s["key_id"] for s in event.raw["signatures"]}
        if event.raw["actor"]["key_id"] not in signers:
            self.add(
                ProblemCode.SIGNATURE_INVALID,
                "the event's actor did not sign it",
                document=event.document_id,
                event=event.sequence,
                file=event.path,
            )

    def check_chain(self, doc: str, events: list[Event]) -> list[Event]:
        events.sort(key=lambda e: (e.sequence, e.path))
        by_prev: dict[str | None, list[Event]] = defaultdict(list)
        for e in events:
            by_prev[e.previous].append(e)
        for prev, claimants in by_prev.items():
            if len(claimants) > 1:
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
                break
            expected = None if i == 0 else events[i - 1].digest
            if e.previous != expected:
                self.add(
                    ProblemCode.CHAIN_BROKEN,
                    f"previous is {e.previous}, expected {expected}",
                    document=doc,
                    event=e.sequence,
                    file=e.path,
                )
        return events

    # -- steps 5-6: WARC records ---------------------------------------------------
    def _open_warc(self, name: str) -> BinaryIO | None:
        path = self.layout.store / name
        if path.is_symlink() or not path.is_file():
            return None
        return open(path, "rb")

    def read_at(
        self, f: BinaryIO, name: str, offset: int, pending: bytes | None = None
    ) -> tuple[RecordInfo, RecordReader | None]:
        info = RecordInfo()
        reader: RecordReader | None = None
        try:
            reader = RecordReader(f, offset, pending)
            h = reader.headers
            info.record_type = h.get("warc-type")
            info.record_id = h.get("warc-record-id")
            info.date = h.get("warc-date")
            info.header_block_digest = h.get("warc-block-digest")
            info.header_payload_digest = h.get("warc-payload-digest")
            info.refers_to = h.get("warc-refers-to")
            info.concurrent_to = h.get("warc-concurrent-to")
            h256 = hashlib.sha256()
            h512 = hashlib.sha512()
            charset = self.want_text.get((name, offset))
            text = TextDigester(charset) if charset else None
            for chunk in reader.block():
                info.size += len(chunk)
                h256.update(chunk)
                h512.update(chunk)
                if text is not None:
                    text.update(chunk)
            info.sha256 = h256.digest()
            info.sha512 = h512.digest()
            info.text_sha256 = text.result() if text is not None else None
            info.length = reader.compressed_length
            self.counts.records += 1
            self.counts.bytes += info.size
        except WarcFormatError as e:
            info.error = str(e)
        except (OSError, LookupError) as e:
            info.error = f"unreadable: {e}"
        return info, reader

    def scan_file(self, name: str, expected: list[int]) -> None:
        """Read a whole WARC file, member after member (step 6)."""
        f = self._open_warc(name)
        if f is None:
            return
        with f:
            size = f.seek(0, 2)
            offset = 0
            pending: bytes | None = None
            resync = sorted(expected)
            while offset < size:
                info, reader = self.read_at(f, name, offset, pending)
                self.records[(name, offset)] = info
                if info.error is None and reader is not None:
                    pending = reader.leftover
                    offset += reader.compressed_length
                    continue
                pending = None
                later = [o for o in resync if o > offset]
                nxt = later[0] if later else next_member_offset(f, offset + 1, size)
                if nxt is None:
                    break
                offset = nxt

    def record(self, name: str, offset: int) -> RecordInfo | None:
        """The record at a position: from the full scan, or read now."""
        pos = (name, offset)
        if pos not in self.records:
            f = self._open_warc(name)
            if f is None:
                return None
            with f:
                if offset >= f.seek(0, 2):
                    return None
                self.records[pos] = self.read_at(f, name, offset)[0]
        return self.records[pos]

    def check_event_records(self, e: Event) -> set[Pos]:
        """Step 5 for one event; returns the positions it accounts for."""
        s = e.storage
        ref = e.content_ref
        own: Pos = (s["warc_file"], s["offset"])
        content_pos: Pos = (ref["warc_file"], ref["offset"])
        meta_pos: Pos = (s["warc_file"], s["offset"] + s["length"])
        where = {"document": e.document_id, "event": e.sequence}

        def problem(code: ProblemCode, msg: str, pos: Pos) -> None:
            self.add(code, msg, file=f"store/{pos[0]}@{pos[1]}", **where)  # type: ignore[arg-type]

        def fetch(pos: Pos, what: str, record_id: str) -> RecordInfo | None:
            if not (self.layout.store / pos[0]).is_file():
                problem(ProblemCode.RECORD_MISSING, f"WARC file {pos[0]} is missing", pos)
                return None
            info = self.record(*pos)
            if info is None:
                problem(ProblemCode.RECORD_MISSING, f"no {what} record at offset {pos[1]}", pos)
                return None
            if info.error is not None:
                problem(ProblemCode.WARC_INVALID, f"{what} record unreadable: {info.error}", pos)
                return None
            if info.record_id != record_id:
                problem(
                    ProblemCode.RECORD_MISSING,
                    f"expected {what} record {record_id}, found {info.record_id}",
                    pos,
                )
                return None
            if info.header_block_digest != warc_digest(info.sha256):
                problem(
                    ProblemCode.WARC_INVALID,
                    f"{what} record's WARC-Block-Digest {info.header_block_digest} does not "
                    f"match its block ({warc_digest(info.sha256)})",
                    pos,
                )
            return info

        own_info = fetch(own, s["record_type"], s["record_id"])
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
            if own_info.date != e.raw["time"]:
                problem(
                    ProblemCode.WARC_INVALID,
                    f"WARC-Date {own_info.date} differs from the event time {e.raw['time']}",
                    own,
                )
            if own_info.header_block_digest != s["block_digest"]:
                problem(
                    ProblemCode.CONTENT_MISMATCH,
                    f"record's block digest {own_info.header_block_digest} differs from the "
                    f"manifest's {s['block_digest']}",
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
        content = own_info if content_pos == own else fetch(content_pos, "content", ref["record_id"])
        if content is not None:
            self.check_content(e, content, content_pos)
        meta = self.record(*meta_pos) if (self.layout.store / meta_pos[0]).is_file() else None
        manifest_bytes = (self.layout.root / e.path).read_bytes()
        if meta is None:
            problem(ProblemCode.RECORD_MISSING, "no metadata record carrying this manifest", meta_pos)
        elif meta.error is not None:
            problem(ProblemCode.WARC_INVALID, f"metadata record unreadable: {meta.error}", meta_pos)
        elif meta.record_type != "metadata" or meta.concurrent_to != s["record_id"]:
            problem(ProblemCode.RECORD_MISSING, "no metadata record carrying this manifest", meta_pos)
        elif meta.sha256 != hashlib.sha256(manifest_bytes).digest():
            problem(
                ProblemCode.CONTENT_MISMATCH,
                "the manifest copy in the WARC differs from the manifest file",
                meta_pos,
            )
        return {own, content_pos, meta_pos}

    def check_content(self, e: Event, info: RecordInfo, pos: Pos) -> None:
        c = e.content
        diffs = []
        if info.size != c["size"]:
            diffs.append(f"size {info.size}, manifest says {c['size']}")
        if info.sha256.hex() != c["sha256"]:
            diffs.append(f"SHA-256 {info.sha256.hex()[:16]}..., manifest says {c['sha256'][:16]}...")
        if info.sha512.hex() != c["sha512"]:
            diffs.append("SHA-512 differs")
        if c["text_sha256"] is not None and info.text_sha256 != c["text_sha256"]:
            diffs.append("normalised-text digest differs")
        if diffs:
            self.add(
                ProblemCode.CONTENT_MISMATCH,
                "stored bytes do not match the manifest: " + "; ".join(diffs),
                document=e.document_id,
                event=e.sequence,
                file=f"store/{pos[0]}@{pos[1]}",
            )

    # -- step 7 ----------------------------------------------------------------------
    def check_index(self, events: Iterable[Event]) -> None:
        expected = {row_of(e) for e in events}
        try:
            idx = Index.open(self.layout.index)
        except CorruptArchive as e:
            self.add(ProblemCode.INDEX_STALE, str(e), file="store/index.sqlite")
            return
        try:
            actual = idx.all_rows()
        finally:
            idx.close()
        if self.documents is not None:
            actual = {r for r in actual if r[0] in self.documents}
        missing = expected - actual
        extra = actual - expected
        if missing or extra:
            self.add(
                ProblemCode.INDEX_STALE,
                f"index disagrees with the manifests: {len(missing)} event(s) missing or "
                f"different, {len(extra)} not in the manifests; run `archiver reindex`",
                file="store/index.sqlite",
            )

    # -- all ---------------------------------------------------------------------------
    def run(self) -> Report:
        self.trust = self.archive.trust()
        self.problems.extend(self.trust.problems)
        self.counts.keys = len(self.trust.keys)
        by_doc = self.load_events()
        self.counts.documents = len(by_doc)
        all_events: list[Event] = []
        for doc in sorted(by_doc):
            all_events.extend(self.check_chain(doc, by_doc[doc]))
        for e in all_events:
            if e.content["text_sha256"] is not None:
                self.want_text[(e.content_ref["warc_file"], e.content_ref["offset"])] = (
                    e.content["charset"] or "utf-8"
                )
        accounted: set[Pos] = set()
        full = self.documents is None
        if full:
            expected: dict[str, list[int]] = defaultdict(list)
            for e in all_events:
                s = e.storage
                expected[s["warc_file"]].extend([s["offset"], s["offset"] + s["length"]])
            for path in self.layout.warc_files():
                self.scan_file(path.name, expected[path.name])
                accounted.add((path.name, 0))
        for e in all_events:
            accounted |= self.check_event_records(e)
        if full:
            self.check_orphans(accounted | self.claimed)
        self.check_index(all_events)
        return Report(
            archive_id=self.archive.archive_id,
            tool_version=__version__,
            time=format_time(self.archive.clock()),
            scope="archive" if full else "documents",
            counts=self.counts,
            problems=tuple(self.problems),
        )

    def check_orphans(self, accounted: set[Pos]) -> None:
        for (name, offset), info in sorted(self.records.items()):
            where = f"store/{name}@{offset}"
            if offset == 0:
                if info.error is None and info.record_type != "warcinfo":
                    self.add(ProblemCode.WARC_INVALID, "WARC file does not start with warcinfo", file=where)
                elif info.error is not None:
                    self.add(ProblemCode.WARC_INVALID, f"warcinfo unreadable: {info.error}", file=where)
                continue
            if (name, offset) in accounted:
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


def verify(archive: Archive, documents: list[str] | None = None) -> Report:
    """Verify the whole archive, or only the given documents (ids or unique prefixes).

    Raises:
        DocumentNotFound: a document id matches nothing or is ambiguous.
    """
    ids = None if documents is None else [resolve_by_files(archive.layout, d) for d in documents]
    return _Verifier(archive, ids).run()


def resolve_by_files(layout: Layout, prefix: str) -> str:
    """Resolve a document id prefix from the manifest file names (not the index).

    Raises:
        InvalidInput / DocumentNotFound: not hex, no match, or ambiguous.
    """
    p = prefix.strip().lower()
    if not p or len(p) > 32 or any(ch not in "0123456789abcdef" for ch in p):
        raise InvalidInput(f"{prefix[:40]!r} is not a document id (hex digits)")
    found: set[str] = set()
    shards = [layout.events / p[:2]] if len(p) >= 2 else sorted(layout.events.glob(f"{p}*"))
    for shard in shards:
        with contextlib.suppress(OSError):
            for path in Path(shard).iterdir():
                m = EVENT_NAME.match(path.name)
                if m and m.group(1).startswith(p):
                    found.add(m.group(1))
    if not found:
        raise DocumentNotFound(f"no document {prefix!r} in this archive; see `archiver list`")
    if len(found) > 1:
        shown = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
        raise DocumentNotFound(f"document prefix {prefix!r} is ambiguous: {shown}")
    return found.pop()


def _claimed_positions(data: bytes) -> set[Pos]:
    """Best effort: the WARC positions an invalid manifest names (its own record, the
    content record and the metadata record after its own)."""
    try:
        raw = json.loads(data)
        s = raw["storage"]
        out: set[Pos] = {
            (str(s["warc_file"]), int(s["offset"])),
            (str(s["warc_file"]), int(s["offset"]) + int(s["length"])),
        }
        ref = s.get("refers_to")
        if isinstance(ref, dict):
            out.add((str(ref["warc_file"]), int(ref["offset"])))
        return out
    except (ValueError, KeyError, TypeError, RecursionError):
        return set()
