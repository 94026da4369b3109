"""What the verifier finds: problem records with stable codes, and the report.

Codes are those of SPEC.md's verifier table, plus two for S3 archives
(``object-overwritten``, ``object-unlocked``; docs/format.md, section 14); they are
a public contract (``schemas/report.schema.json`` lists them) and never change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ProblemCode(StrEnum):
    """Stable problem codes (SPEC.md, "The verifier")."""

    SCHEMA_INVALID = "schema-invalid"
    SIGNATURE_INVALID = "signature-invalid"
    KEY_UNTRUSTED = "key-untrusted"
    KEY_REVOKED = "key-revoked"
    CONTENT_MISMATCH = "content-mismatch"
    WARC_INVALID = "warc-invalid"
    RECORD_MISSING = "record-missing"
    RECORD_ORPHAN = "record-orphan"
    CHAIN_BROKEN = "chain-broken"
    CHAIN_FORK = "chain-fork"
    CUSTODY_INVALID = "custody-invalid"
    TIME_INVALID = "time-invalid"
    LOG_MISMATCH = "log-mismatch"
    LOG_ROLLBACK = "log-rollback"
    INDEX_STALE = "index-stale"
    # S3 archives (docs/scale-out.md): what Object Lock leaves visible of a change made through S3
    OBJECT_OVERWRITTEN = "object-overwritten"
    OBJECT_UNLOCKED = "object-unlocked"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One finding: what is wrong (observed vs expected), and where."""

    code: ProblemCode
    message: str
    document: str | None = None
    event: int | None = None
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The report-schema form of this problem."""
        return {
            "code": self.code.value,
            "message": self.message,
            "document": self.document,
            "event": self.event,
            "file": self.file,
        }

    def __str__(self) -> str:
        where = []
        if self.document is not None:
            where.append(f"document {self.document}")
        if self.event is not None:
            where.append(f"event {self.event}")
        if self.file is not None:
            where.append(self.file)
        loc = f" ({', '.join(where)})" if where else ""
        return f"{self.code.value}: {self.message}{loc}"


@dataclass(slots=True)
class Counts:
    """What was actually read, so that "nothing checked" never reads as "nothing wrong"."""

    documents: int = 0
    events: int = 0
    keys: int = 0
    records: int = 0
    bytes: int = 0
    withheld: int = 0  # records an export left out on purpose (sealed, or other documents')
    timestamps: int = 0  # RFC 3161 time-stamp tokens checked

    def to_json(self) -> dict[str, int]:
        """The report-schema form of the counts."""
        out = {
            "documents": self.documents,
            "events": self.events,
            "keys": self.keys,
            "records": self.records,
            "bytes": self.bytes,
        }
        if self.withheld:
            out["withheld"] = self.withheld
        if self.timestamps:
            out["timestamps"] = self.timestamps
        return out


@dataclass(frozen=True, slots=True)
class Report:
    """The verifier's result. Deliberately has no ``__bool__``: write ``report.ok``."""

    archive_id: str
    tool_version: str
    time: str
    scope: str
    counts: Counts
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when verification found no problem."""
        return not self.problems

    def codes(self) -> set[ProblemCode]:
        """The set of problem codes found."""
        return {p.code for p in self.problems}

    def to_json(self) -> dict[str, Any]:
        """The report as ``schemas/report.schema.json`` describes it."""
        return {
            "format": "archiver/report/1",
            "archive_id": self.archive_id,
            "tool": {"name": "archiver", "version": self.tool_version},
            "time": self.time,
            "scope": self.scope,
            "ok": self.ok,
            "counts": self.counts.to_json(),
            "problems": [p.to_json() for p in self.problems],
        }
