"""Scheduled integrity checks: verify a slice of the archive, least recently verified first.

Each run verifies whole documents (every byte of every event's records) until
its budget (seconds, bytes) is spent, then writes a signed audit record to
``manifests/audits/`` and appends it to the log, so that the archive itself
shows when each document was last proven intact. Runs from cron therefore
cover the whole archive in rotation: documents never checked come first,
then those checked longest ago. A document's check is never cut short, so a
run ends at most one document after its time budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .__version__ import TOOL_NAME, __version__
from .archive import Archive
from .canonical import JSONFormatError, load_strict, pretty_bytes
from .keystore import SigningKey
from .layout import AUDITS, EVENT_NAME, EVENTS, events_prefix
from .problems import Problem, ProblemCode
from .schema import schema_errors
from .signing import make_signature
from .storage import Store, children
from .timeutil import format_time, parse_time
from .trust import TrustSet

Monotonic = Callable[[], float]


@dataclass(slots=True)
class AuditResult:
    """One audit run."""

    record: dict[str, Any]
    path: str  # the audit record's key
    problems: list[Problem]
    overdue: list[str] = field(default_factory=list)
    not_reached: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """What ``audit --json`` prints and ``--report`` writes."""
        return {
            **self.record,
            "record": str(self.path),
            "overdue": self.overdue,
            "not_reached": self.not_reached,
        }


def audit_keys(store: Store) -> list[str]:
    """Audit records, oldest first."""
    return [e.key for e in children(store, AUDITS, ".json") if not e.name.startswith(".")]


def last_checked(store: Store) -> dict[str, datetime]:
    """When each document last passed an audit (from the records; bad records are ignored here
    and reported by ``verify``)."""
    out: dict[str, datetime] = {}
    for key in audit_keys(store):
        try:
            rec = load_strict(store.read(key))
            when = parse_time(rec["time"])
            for item in rec["checked"]:
                if item["outcome"] == "pass":
                    out[item["document"]] = max(out.get(item["document"], when), when)
        except (OSError, JSONFormatError, KeyError, TypeError, ValueError):
            continue
    return out


def documents(store: Store) -> list[str]:
    """Every document id, from the manifest file names."""
    found = set()
    for e in store.files(EVENTS):
        m = EVENT_NAME.match(e.name)
        if m:
            found.add(m.group(1))
    return sorted(found)


class _Run:
    """One audit run: its budget, what it checked, and its record."""

    def __init__(
        self,
        archive: Archive,
        max_seconds: float | None,
        max_bytes: int | None,
        monotonic: Monotonic,
        progress: Callable[[int], None] | None,
        since: float | None = None,
    ) -> None:
        self.archive = archive
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self.monotonic = monotonic
        self.progress = progress
        self.started = archive.clock()
        self.t0 = monotonic() if since is None else since
        # the budget covers the whole run: stop verifying early enough to sign and record it
        self.stop_at = None if max_seconds is None else max_seconds - min(1.0, max_seconds / 10)
        self.spent = 0
        self.checked: list[dict[str, Any]] = []
        self.problems: list[Problem] = []

    def spent_all(self) -> bool:
        """The budget is used up (a run always checks at least one document)."""
        if not self.checked:
            return False
        if self.stop_at is not None and self.monotonic() - self.t0 >= self.stop_at:
            return True
        return self.max_bytes is not None and self.spent >= self.max_bytes

    def check(self, doc: str) -> bool:
        """Verify one whole document; True when it passed."""
        from .verify import verify

        report = verify(self.archive, [doc])
        self.spent += report.counts.bytes
        self.problems.extend(report.problems)
        self.checked.append(
            {
                "document": doc,
                "events": report.counts.events,
                "latest": _latest_manifest_id(self.archive.store, doc),
                "bytes": report.counts.bytes,
                "outcome": "pass" if report.ok else "fail",
            }
        )
        if self.progress is not None:
            self.progress(1)
        return report.ok

    def record(self, key: SigningKey, wait_seconds: float) -> tuple[dict[str, Any], str]:
        """Sign the audit record and write it into the archive (logged). Returns it and its key."""
        now = self.archive.clock()
        record: dict[str, Any] = {
            "format": "archiver/audit/1",
            "archive_id": self.archive.archive_id,
            "event_type": "fixity check",
            "started": format_time(self.started),
            "time": format_time(now),
            "agent": {"key_id": key.key_id, "name": key.name, "role": "auditor"},
            "tool": {"name": TOOL_NAME, "version": __version__},
            "budget": {
                "max_seconds": None if self.max_seconds is None else int(self.max_seconds),
                "max_bytes": self.max_bytes,
            },
            "checked": self.checked,
            "outcome": "fail" if self.problems else "pass",
            "problems": [p.to_json() for p in self.problems],
        }
        record["signatures"] = [make_signature(record, key.private, "auditor")]
        key_name = AUDITS + format_time(now).replace(":", "").replace("-", "") + ".json"
        with self.archive.recording(wait_seconds) as batch:
            batch.add(key_name, pretty_bytes(record))
            batch.signer = key
        return record, key_name


def run_audit(
    archive: Archive,
    key: SigningKey,
    *,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
    max_age_days: float | None = None,
    wait_seconds: float = 0.0,
    monotonic: Monotonic = time.monotonic,
    progress: Callable[[int], None] | None = None,
    since: float | None = None,
) -> AuditResult:
    """Verify documents least recently verified first, within the budget; record the run.

    ``max_seconds`` bounds the whole run, counted from ``since`` (a ``monotonic()``
    reading: the command's start; default now): verifying stops a tenth of it (at most
    1 s) early, to leave time to sign and record the run.

    Raises:
        StoreError: the audit record could not be written.
    """
    run = _Run(archive, max_seconds, max_bytes, monotonic, progress, since)
    seen = last_checked(archive.store)
    epoch = datetime.min.replace(tzinfo=run.started.tzinfo)
    order = sorted(documents(archive.store), key=lambda d: (seen.get(d, epoch), d))
    for doc in order:
        if run.spent_all():
            break
        if run.check(doc):
            seen[doc] = run.started
    overdue = []
    if max_age_days is not None:
        limit = archive.clock() - timedelta(days=max_age_days)
        overdue = [d for d in order if seen.get(d, epoch) < limit]
    record, key_name = run.record(key, wait_seconds)
    note_verified(archive, [c["document"] for c in run.checked if c["outcome"] == "pass"], run.started)
    return AuditResult(
        record=record,
        path=key_name,
        problems=run.problems,
        overdue=overdue,
        not_reached=len(order) - len(run.checked),
    )


def note_verified(archive: Archive, docs: list[str], when: datetime) -> None:
    """An S3 archive's catalog keeps when each document last passed (``audit --worker``
    shares out documents by it); the audit records stay the authority (``reindex``)."""
    from .s3archive import S3Archive

    if not isinstance(archive, S3Archive) or not docs:
        return
    cat = archive.catalog()
    try:
        cat.run(
            "UPDATE documents SET last_verified = GREATEST(last_verified, %s) WHERE document_id = ANY(%s)",
            (when, docs),
        )
        cat.run(
            "UPDATE documents SET last_verified = %s WHERE last_verified IS NULL AND document_id = ANY(%s)",
            (when, docs),
        )
    finally:
        cat.close()


#: documents a worker claims at a time
SLICE = 10


def run_worker_audit(
    archive: Archive,
    key: SigningKey,
    *,
    max_seconds: float | None = None,
    max_bytes: int | None = None,
    max_age_days: float | None = None,
    slice_size: int = SLICE,
    wait_seconds: float = 0.0,
    monotonic: Monotonic = time.monotonic,
    progress: Callable[[int], None] | None = None,
    since: float | None = None,
) -> AuditResult:
    """One of several machines auditing an S3 archive together (``audit --worker``): slices of
    documents *due* (not verified within ``max_age_days``; without it, not verified since this
    run started), least recently verified first, are claimed from the catalog (``FOR UPDATE
    SKIP LOCKED``: a slice another worker holds is skipped, so no document is checked by two
    workers at once), each slice verified and its dates updated in the same database
    transaction, until the budget is spent or nothing is due. A document another worker
    verified meanwhile is no longer due, so workers started together cover the archive once
    between them. The run is recorded like any audit.

    Raises:
        InvalidInput: the archive is not an S3 archive.
    """
    from .errors import InvalidInput
    from .s3archive import S3Archive

    if not isinstance(archive, S3Archive):
        raise InvalidInput(
            "audit --worker shares the work out through the catalog of an S3 archive; "
            "on a local archive run `archiver audit`"
        )
    run = _Run(archive, max_seconds, max_bytes, monotonic, progress, since)
    due = run.started if max_age_days is None else run.started - timedelta(days=max_age_days)
    cat = archive.catalog()
    visited: list[str] = []  # failed documents stay due: not twice in one run
    try:
        while not run.spent_all():
            with cat.transaction():
                rows = cat.fetch(
                    "SELECT document_id FROM documents WHERE (last_verified IS NULL OR last_verified < %s) "
                    "AND NOT (document_id = ANY(%s)) "
                    "ORDER BY last_verified NULLS FIRST, document_id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (due, visited, slice_size),
                )
                if not rows:
                    break
                passed = []
                for (doc,) in rows:
                    if run.spent_all():
                        break  # the rest of the slice goes back, unchecked, when this commits
                    visited.append(doc)
                    if run.check(doc):
                        passed.append(doc)
                # the time of the check, not of the run's start: due is judged against it
                cat.run(
                    "UPDATE documents SET last_verified = %s WHERE document_id = ANY(%s)",
                    (archive.clock(), passed),
                )
        total = int(cat.fetch("SELECT count(*) FROM documents")[0][0])
        overdue: list[str] = []
        if max_age_days is not None:
            limit = archive.clock() - timedelta(days=max_age_days)
            overdue = [
                d
                for (d,) in cat.fetch(
                    "SELECT document_id FROM documents WHERE last_verified IS NULL OR last_verified < %s "
                    "ORDER BY document_id",
                    (limit,),
                )
            ]
    finally:
        cat.close()
    record, key_name = run.record(key, wait_seconds)
    return AuditResult(
        record=record,
        path=key_name,
        problems=run.problems,
        overdue=overdue,
        not_reached=total - len(run.checked),
    )


def _latest_manifest_id(store: Store, doc: str) -> str | None:
    from .manifest import manifest_digest

    files = [e.key for e in store.files(events_prefix(doc)) if e.key.endswith(".json")]
    try:
        return manifest_digest(store.read(files[-1])) if files else None
    except OSError:
        return None


def check_audit_records(
    store: Store, archive_id: str, trust: TrustSet, only: frozenset[str] | None = None
) -> list[Problem]:
    """Verifier step for audit records: schema, archive, and an auditor's valid signature."""
    out: list[Problem] = []
    for rel in audit_keys(store):
        if only is not None and rel not in only:
            continue
        try:
            rec = load_strict(store.read(rel))
        except (OSError, JSONFormatError) as e:
            out.append(Problem(code=ProblemCode.SCHEMA_INVALID, message=str(e), file=rel))
            continue
        errors = schema_errors("audit", rec)
        if errors or rec.get("archive_id") != archive_id:
            msg = "; ".join(errors) or "audit record of another archive"
            out.append(Problem(code=ProblemCode.SCHEMA_INVALID, message=msg, file=rel))
            continue
        for code, msg in trust.check_signatures(rec, parse_time(rec["time"]), frozenset({"auditor"})):
            out.append(Problem(code=code, message=f"audit record: {msg}", file=rel))
        if rec["agent"]["key_id"] not in {s["key_id"] for s in rec["signatures"]}:
            out.append(
                Problem(
                    code=ProblemCode.SIGNATURE_INVALID, message="the audit's agent did not sign it", file=rel
                )
            )
    return out
