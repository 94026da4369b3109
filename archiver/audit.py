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
) -> AuditResult:
    """Verify documents least recently verified first, within the budget; record the run.

    Raises:
        StoreError: the audit record could not be written.
    """
    from .verify import verify

    store = archive.store
    started = archive.clock()
    t0 = monotonic()
    seen = last_checked(store)
    epoch = datetime.min.replace(tzinfo=started.tzinfo)
    order = sorted(documents(store), key=lambda d: (seen.get(d, epoch), d))
    checked: list[dict[str, Any]] = []
    problems: list[Problem] = []
    spent = 0
    for doc in order:
        if checked and max_seconds is not None and monotonic() - t0 >= max_seconds:
            break
        if checked and max_bytes is not None and spent >= max_bytes:
            break
        report = verify(archive, [doc])
        spent += report.counts.bytes
        problems.extend(report.problems)
        latest = _latest_manifest_id(store, doc)
        checked.append(
            {
                "document": doc,
                "events": report.counts.events,
                "latest": latest,
                "bytes": report.counts.bytes,
                "outcome": "pass" if report.ok else "fail",
            }
        )
        if report.ok:
            seen[doc] = started
        if progress is not None:
            progress(1)
    now = archive.clock()
    overdue = []
    if max_age_days is not None:
        limit = now - timedelta(days=max_age_days)
        overdue = [d for d in order if seen.get(d, epoch) < limit]
    record: dict[str, Any] = {
        "format": "archiver/audit/1",
        "archive_id": archive.archive_id,
        "event_type": "fixity check",
        "started": format_time(started),
        "time": format_time(now),
        "agent": {"key_id": key.key_id, "name": key.name, "role": "auditor"},
        "tool": {"name": TOOL_NAME, "version": __version__},
        "budget": {"max_seconds": None if max_seconds is None else int(max_seconds), "max_bytes": max_bytes},
        "checked": checked,
        "outcome": "fail" if problems else "pass",
        "problems": [p.to_json() for p in problems],
    }
    record["signatures"] = [make_signature(record, key.private, "auditor")]
    key_name = AUDITS + format_time(now).replace(":", "").replace("-", "") + ".json"
    with archive.recording(wait_seconds) as batch:
        batch.add(key_name, pretty_bytes(record))
        batch.signer = key
    return AuditResult(
        record=record,
        path=key_name,
        problems=problems,
        overdue=overdue,
        not_reached=len(order) - len(checked),
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
