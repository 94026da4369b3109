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
from pathlib import Path
from typing import Any

from .__version__ import TOOL_NAME, __version__
from .archive import Archive
from .canonical import JSONFormatError, load_strict, pretty_bytes
from .fsutil import atomic_write
from .keystore import SigningKey
from .layout import EVENT_NAME, Layout
from .problems import Problem, ProblemCode
from .schema import schema_errors
from .signing import make_signature
from .timeutil import format_time, parse_time
from .trust import TrustSet

Monotonic = Callable[[], float]


@dataclass(slots=True)
class AuditResult:
    """One audit run."""

    record: dict[str, Any]
    path: Path
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


def audit_files(layout: Layout) -> list[Path]:
    """Audit records, oldest first."""
    d = layout.manifests / "audits"
    return sorted(p for p in d.glob("*.json") if not p.name.startswith(".")) if d.is_dir() else []


def last_checked(layout: Layout) -> dict[str, datetime]:
    """When each document last passed an audit (from the records; bad records are ignored here
    and reported by ``verify``)."""
    out: dict[str, datetime] = {}
    for path in audit_files(layout):
        try:
            rec = load_strict(path.read_bytes()[: 64 << 20])
            when = parse_time(rec["time"])
            for item in rec["checked"]:
                if item["outcome"] == "pass":
                    out[item["document"]] = max(out.get(item["document"], when), when)
        except (OSError, JSONFormatError, KeyError, TypeError, ValueError):
            continue
    return out


def documents(layout: Layout) -> list[str]:
    """Every document id, from the manifest file names."""
    found = set()
    if layout.events.is_dir():
        for shard in layout.events.iterdir():
            if shard.is_dir():
                for p in shard.iterdir():
                    m = EVENT_NAME.match(p.name)
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

    layout = archive.layout
    started = archive.clock()
    t0 = monotonic()
    seen = last_checked(layout)
    epoch = datetime.min.replace(tzinfo=started.tzinfo)
    order = sorted(documents(layout), key=lambda d: (seen.get(d, epoch), d))
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
        latest = _latest_manifest_id(layout, doc)
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
    with archive.writer_lock(wait_seconds):
        (layout.manifests / "audits").mkdir(exist_ok=True)
        path = layout.manifests / "audits" / (format_time(now).replace(":", "").replace("-", "") + ".json")
        atomic_write(path, pretty_bytes(record))
        archive.append_to_log([path], key)
    return AuditResult(
        record=record, path=path, problems=problems, overdue=overdue, not_reached=len(order) - len(checked)
    )


def _latest_manifest_id(layout: Layout, doc: str) -> str | None:
    from .manifest import manifest_digest

    files = sorted((layout.events / doc[:2]).glob(f"{doc}-*.json"))
    try:
        return manifest_digest(files[-1].read_bytes()) if files else None
    except OSError:
        return None


def check_audit_records(
    layout: Layout, archive_id: str, trust: TrustSet, only: frozenset[str] | None = None
) -> list[Problem]:
    """Verifier step for audit records: schema, archive, and an auditor's valid signature."""
    out: list[Problem] = []
    for path in audit_files(layout):
        rel = layout.relative(path)
        if only is not None and rel not in only:
            continue
        try:
            rec = load_strict(path.read_bytes()[: 64 << 20])
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
