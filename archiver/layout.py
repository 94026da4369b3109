"""Where things are inside an archive (SPEC.md, "Archive layout").

::

    ARCHIVE/manifests/archive.json
    ARCHIVE/manifests/keys/KEY_ID.json              trusted public key
    ARCHIVE/manifests/keys/KEY_ID.revocation.json   its revocation
    ARCHIVE/manifests/events/DD/DOCID-SEQ.json      one signed manifest per event
    ARCHIVE/manifests/log/                          (the tamper-evident log)
    ARCHIVE/store/NNNNNN.warc.gz                    WARC files, rotated
    ARCHIVE/store/index.sqlite                      derived index
    ARCHIVE/store/.writer.lock                      writer lock

Events are sharded by the first two hex digits of the document id so that
no directory holds more than a few hundred files at Caesar scale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

EVENT_NAME = re.compile(r"^([0-9a-f]{32})-([0-9]{6,9})\.json$")
#: Six digits in format 1; format 2 (S3) numbers files from a shared sequence and may go beyond.
WARC_NAME = re.compile(r"^([0-9]{6,12})\.warc\.gz$")

# The same places as keys (relative POSIX paths), as every ``Store`` names them.
MANIFESTS = "manifests/"
#: WARC records of the archive's own making that are never a document's content
MANIFEST_CONTENT_TYPE = "application/vnd.archiver.manifest+json"
SEED_CONTENT_TYPE = "application/vnd.archiver.sealed-seed"
ARCHIVE_JSON = "manifests/archive.json"
KEYS = "manifests/keys/"
EVENTS = "manifests/events/"
LOG = "manifests/log/"
CHECKPOINTS = "manifests/log/checkpoints/"
AUDITS = "manifests/audits/"
TSA = "manifests/tsa/"
TIMESTAMPS = "manifests/timestamps/"
STORE = "store/"


def event_key(document_id: str, sequence: int) -> str:
    """The key of a document event's manifest."""
    return f"{EVENTS}{document_id[:2]}/{document_id}-{sequence:06d}.json"


def events_prefix(document_id: str) -> str:
    """The prefix of every manifest key of one document."""
    return f"{EVENTS}{document_id[:2]}/{document_id}-"


def warc_key(name: str) -> str:
    """The key of a WARC file (its name comes from data: ``Store`` refuses unsafe keys)."""
    return STORE + name


def warc_number(name: str) -> int:
    """The rotation number of a WARC file name (``NNNNNN.warc.gz``)."""
    return int(name.split(".", 1)[0])


def warc_names(names: list[str]) -> list[str]:
    """The WARC file names among ``names``, in rotation order (numeric: numbers may grow past 6 digits)."""
    return sorted((n for n in names if WARC_NAME.match(n)), key=warc_number)


@dataclass(frozen=True, slots=True)
class Layout:
    """Paths of one archive."""

    root: Path

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def archive_json(self) -> Path:
        return self.manifests / "archive.json"

    @property
    def keys(self) -> Path:
        return self.manifests / "keys"

    @property
    def events(self) -> Path:
        return self.manifests / "events"

    @property
    def log(self) -> Path:
        return self.manifests / "log"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def index(self) -> Path:
        return self.store / "index.sqlite"

    @property
    def lock(self) -> Path:
        return self.store / ".writer.lock"

    def key_file(self, key_id: str) -> Path:
        return self.keys / f"{key_id}.json"

    def revocation_file(self, key_id: str) -> Path:
        return self.keys / f"{key_id}.revocation.json"

    def event_file(self, document_id: str, sequence: int) -> Path:
        return self.events / document_id[:2] / f"{document_id}-{sequence:06d}.json"

    def relative(self, path: Path) -> str:
        """A path inside the archive as shown in reports: relative, with ``/``."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def warc_files(self) -> list[Path]:
        """The WARC files in rotation order."""
        if not self.store.is_dir():
            return []
        return [self.store / n for n in warc_names([p.name for p in self.store.iterdir()])]

    def event_files(self) -> list[Path]:
        """Every file under ``events/`` (including misnamed ones), sorted."""
        if not self.events.is_dir():
            return []
        return sorted(p for p in self.events.rglob("*") if p.is_file() or p.is_symlink())
