"""Signed manifests: one per custody event, parsed once at the boundary.

A manifest's identity is ``sha256:`` + the hex SHA-256 of its stored file
bytes; the next event's ``previous`` names it. ``Event.parse`` returns only
schema-valid events; the raw JSON is kept, because signatures cover the raw
JSON (canonicalised), not this model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .canonical import JSONFormatError, load_strict_plain
from .problems import ProblemCode
from .schema import schema_errors
from .timeutil import parse_time

MAX_MANIFEST = 1 << 20  # no manifest of ours comes near 1 MiB; a larger one is hostile

#: Which key role may sign which action.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "captured": frozenset({"archivist"}),
    "edited": frozenset({"archivist"}),
    "redacted": frozenset({"archivist"}),
    "transferred": frozenset({"archivist"}),
    "accepted": frozenset({"archivist"}),
    "attested": frozenset({"auditor"}),
}


class ManifestError(Exception):
    """A manifest file that cannot be accepted, with the problem code to report."""

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(message)
        self.code = code


#: members whose string values repeat across an archive's manifests (the same few actions,
#: keys, roles, formats, WARC files): parsed, each value is interned, so that a verify, which
#: holds every manifest, holds one copy of each (a quarter of a parsed manifest's memory).
#: An interned string is freed with its last reference, except on early CPython 3.12
#: releases, which kept every one (gh-113993): then a process keeps the distinct values it
#: read, which an archive's own manifests bound.
SHARED_VALUES = frozenset(
    {
        "action",
        "algorithm",
        "archive_id",
        "charset",
        "content_type",
        "format",
        "key_id",
        "language",
        "media_type",
        "name",
        "operator",
        "publisher",
        "record_type",
        "role",
        "scheme",
        "version",
        "warc_file",
    }
)


def _event(raw: dict[str, Any], digest: str, path: str, size: int, plain: bool) -> Event:
    return Event(raw=raw, digest=digest, path=path, size=size, plain=plain)


def manifest_digest(data: bytes) -> str:
    """The identity of a stored manifest: ``sha256:<hex>`` of its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One schema-valid custody event."""

    raw: dict[str, Any]
    digest: str
    path: str
    size: int
    plain: bool = False  # ``raw`` is plain JSON (``canonical.load_strict_plain``)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled by the verifier's worker for every other manifest: the state methods
        # dataclasses give slotted classes are Python loops, a fifth of the transfer
        return (_event, (self.raw, self.digest, self.path, self.size, self.plain))

    @classmethod
    def parse(cls, data: bytes, path: str) -> Event:
        """Parse and schema-check a manifest file's bytes.

        Raises:
            ManifestError: too large, not strict JSON, or not schema-valid.
        """
        if len(data) > MAX_MANIFEST:
            raise ManifestError(ProblemCode.SCHEMA_INVALID, "manifest larger than 1 MiB")
        try:
            raw, plain = load_strict_plain(data, SHARED_VALUES)
        except JSONFormatError as e:
            raise ManifestError(ProblemCode.SCHEMA_INVALID, str(e)) from e
        errors = schema_errors("manifest", raw)
        if errors:
            raise ManifestError(ProblemCode.SCHEMA_INVALID, "; ".join(errors))
        return cls(raw=raw, digest=manifest_digest(data), path=path, size=len(data), plain=plain)

    @classmethod
    def of(cls, raw: dict[str, Any], data: bytes, path: str) -> Event:
        """The event of a manifest this process just built (``raw``) and serialised
        (``data``): schema-checked as a dict, without parsing its own output back.

        Raises:
            ManifestError: not schema-valid (a bug: it must never be signed and stored).
        """
        errors = schema_errors("manifest", raw)
        if errors:
            raise ManifestError(ProblemCode.SCHEMA_INVALID, "; ".join(errors))
        return cls(raw=raw, digest=manifest_digest(data), path=path, size=len(data))

    @property
    def document_id(self) -> str:
        return str(self.raw["document_id"])

    @property
    def sequence(self) -> int:
        return int(self.raw["sequence"])

    @property
    def action(self) -> str:
        return str(self.raw["action"])

    @property
    def time(self) -> datetime:
        return parse_time(self.raw["time"])

    @property
    def previous(self) -> str | None:
        prev = self.raw["previous"]
        return None if prev is None else str(prev)

    # Views of ``raw``, typed read-only rather than copied: the verifier asks for them
    # several times per event, and copies were a tenth of its serial time. Typed by an
    # annotated local, not ``typing.cast``: a call each time, for hundreds of thousands.
    @property
    def content(self) -> Mapping[str, Any]:
        view: Mapping[str, Any] = self.raw["content"]
        return view

    @property
    def storage(self) -> Mapping[str, Any]:
        view: Mapping[str, Any] = self.raw["storage"]
        return view

    @property
    def content_ref(self) -> Mapping[str, Any]:
        """The record that holds this version's bytes (the revisited one, for a revisit)."""
        storage = self.raw["storage"]
        view: Mapping[str, Any] = storage.get("refers_to") or storage
        return view

    @property
    def metadata(self) -> Mapping[str, Any]:
        source = self.raw.get("source") or {}
        view: Mapping[str, Any] = source.get("metadata") or {}
        return view

    @property
    def filename(self) -> str | None:
        source = self.raw.get("source") or {}
        name = source.get("filename")
        return None if name is None else str(name)
