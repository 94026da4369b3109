"""Locate, create and open an archive; its identity; its trusted keys.

An archive is found, in order, at ``--archive PATH``, at ``$ARCHIVER_ARCHIVE``,
or in the nearest folder upward from the working directory that holds
``manifests/archive.json``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .__version__ import TOOL_NAME, __version__
from .canonical import JSONFormatError, load_strict, pretty_bytes
from .errors import ArchiveExists, ArchiveNotFound, CorruptArchive, InvalidInput, KeyUnavailable
from .fsutil import atomic_write, fsync_dir
from .layout import KEYS, Layout
from .logview import LogView
from .schema import schema_errors
from .signing import make_signature, raw_public
from .storage import LocalStore, Store, check_key
from .timeutil import Clock, format_time, system_clock
from .trust import TrustSet, load_trust

if TYPE_CHECKING:
    from .commit import Transaction
    from .index import Index
    from .keystore import KeyStore, PassphraseSource, SigningKey
    from .recovery import WriteSession

DEFAULT_ROTATION = 1 << 30
ROLES = ("archivist", "auditor")


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """What ``manifests/archive.json`` says."""

    archive_id: str
    created_at: str
    rotation_bytes: int
    sealed: bool = False
    format_version: int = 1
    retention_days: int | None = None  # format 2: the COMPLIANCE retention of every object


def locate(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """Find the archive root.

    Raises:
        ArchiveNotFound: nothing found; the message says how to create one.
    """
    given = explicit if explicit is not None else os.environ.get("ARCHIVER_ARCHIVE")
    if given:
        root = _inside_bag(Path(given))
        if not Layout(root).archive_json.is_file():
            raise ArchiveNotFound(
                f"no archive at {root} (no manifests/archive.json): run `archiver init {root}`"
            )
        return root
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if Layout(folder).archive_json.is_file():
            return folder
        if _inside_bag(folder) != folder:
            return _inside_bag(folder)
    raise ArchiveNotFound(
        "no archive here or in any parent folder: run `archiver init PATH`, "
        "or pass --archive PATH or set ARCHIVER_ARCHIVE"
    )


def _inside_bag(root: Path) -> Path:
    """A BagIt export (``archiver export bagit``) holds its archive in ``data/archive``."""
    inner = root / "data" / "archive"
    if (root / "bagit.txt").is_file() and Layout(inner).archive_json.is_file():
        return inner
    return root


class RecordBatch:
    """Small signed records (keys, revocations, audit records, certificates, tokens) that one
    command writes once and logs, all or nothing (``Archive.recording``)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []
        self.signer: SigningKey | None = None

    def add(self, key: str, data: bytes) -> None:
        """Queue a record (key inside the archive, exact bytes)."""
        self.records.append((key, data))


def new_identity(rotation_bytes: int, clock: Clock, *, retention_days: int | None = None) -> dict[str, Any]:
    """What ``manifests/archive.json`` of a new archive says: format 1 (local files), or with
    ``retention_days`` format 2 (S3 objects under Object Lock, docs/format.md).

    Raises:
        InvalidInput: a rotation size below 1024 bytes.
    """
    if rotation_bytes < 1024:
        raise InvalidInput("WARC rotation size must be at least 1024 bytes")
    version = 1 if retention_days is None else 2
    info: dict[str, Any] = {
        "format": f"archiver/archive/{version}",
        "archive_id": f"urn:uuid:{uuid.uuid4()}",
        "created_at": format_time(clock()),
        "format_version": version,
        "digest_algorithms": ["sha256", "sha512"],
        "warc_rotation_bytes": rotation_bytes,
        "tool": {"name": TOOL_NAME, "version": __version__},
    }
    if retention_days is not None:
        info["object_lock"] = {"mode": "COMPLIANCE", "retention_days": retention_days}
    return info


def archive_info(raw: bytes, where: str) -> tuple[dict[str, Any], ArchiveInfo]:
    """Parse and check ``manifests/archive.json``.

    Raises:
        CorruptArchive: unreadable or invalid.
    """
    try:
        doc = load_strict(raw[: 1 << 16])
    except JSONFormatError as e:
        raise CorruptArchive(f"{where} is damaged: {e}") from e
    errors = schema_errors("archive", doc)
    if errors:
        raise CorruptArchive(f"{where} is invalid: {errors[0]}")
    return doc, ArchiveInfo(
        archive_id=doc["archive_id"],
        created_at=doc["created_at"],
        rotation_bytes=doc["warc_rotation_bytes"],
        sealed=bool(doc.get("sealed", False)),
        format_version=int(doc["format_version"]),
        retention_days=(doc.get("object_lock") or {}).get("retention_days"),
    )


class Archive:
    """An open archive. Reading needs nothing more; writing takes ``writer_lock()``."""

    #: what verify names in an index-stale finding
    index_name = "store/index.sqlite"

    def __init__(
        self, layout: Layout, info: ArchiveInfo, clock: Clock = system_clock, store: Store | None = None
    ) -> None:
        self._layout = layout
        self.info = info
        self.clock = clock
        #: what readers read through (``storage.py``)
        self.store: Store = store or LocalStore(layout.root)

    @property
    def layout(self) -> Layout:
        """Where a local archive's files are."""
        return self._layout

    @property
    def archive_id(self) -> str:
        return self.info.archive_id

    # -- creation and opening -------------------------------------------------
    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        rotation_bytes: int = DEFAULT_ROTATION,
        clock: Clock = system_clock,
    ) -> Archive:
        """Create a new, empty archive at ``path``.

        Raises:
            ArchiveExists: there is an archive (or a manifests/ or store/ folder) there already.
        """
        layout = Layout(Path(path))
        if layout.archive_json.exists() or layout.manifests.exists() or layout.store.exists():
            raise ArchiveExists(f"{layout.root} already holds an archive; refusing to overwrite it")
        info = new_identity(rotation_bytes, clock)
        layout.root.mkdir(parents=True, exist_ok=True)
        for d in (layout.manifests, layout.keys, layout.events, layout.log, layout.store):
            d.mkdir()
        for d in (layout.manifests, layout.store, layout.root):
            fsync_dir(d)
        from .index import Index

        Index.open(layout.index, create=True).close()
        fsync_dir(layout.store)
        # archive.json last: until it exists, this is not an archive.
        atomic_write(layout.archive_json, pretty_bytes(info))
        return cls.open(layout.root, clock=clock)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Clock = system_clock) -> Archive:
        """Open the archive rooted at ``path``.

        Raises:
            ArchiveNotFound: no archive.json there.
            CorruptArchive: archive.json is unreadable or invalid.
        """
        layout = Layout(Path(path))
        try:
            raw = layout.archive_json.read_bytes()
        except FileNotFoundError:
            raise ArchiveNotFound(f"no archive at {layout.root}: run `archiver init {layout.root}`") from None
        except OSError as e:
            raise CorruptArchive(f"cannot read {layout.archive_json}: {e.strerror}") from e
        _, info = archive_info(raw, str(layout.archive_json))
        return cls(layout, info, clock)

    def writer_lock(self, wait_seconds: float = 0.0) -> WriteSession:
        """The session every writing command runs in: exclusive lock, crash recovery, intent,
        and rollback on failure (``recovery.py``)."""
        from .recovery import WriteSession

        self.refuse_if_sealed()
        if self.info.format_version != 1:
            # a local copy of an S3 archive (format 2): its log is segments, which only the
            # S3 writer appends to
            raise InvalidInput(
                f"{self.layout.root} is a copy of an S3 archive (format {self.info.format_version}): "
                "verify it here; write to the S3 archive itself"
            )
        return WriteSession(self, wait_seconds)

    @contextlib.contextmanager
    def recording(self, wait_seconds: float = 0.0) -> Iterator[RecordBatch]:
        """Write the records added to the batch, and log them with a checkpoint signed by
        ``batch.signer``, when the block ends without error; nothing on error. The block runs
        under the writer lock: checks made in it hold when the records land."""
        with self.writer_lock(wait_seconds):
            batch = RecordBatch()
            yield batch
            if not batch.records:
                return
            assert batch.signer is not None, "a record batch needs a signer for its checkpoint"
            paths = []
            for key, data in batch.records:
                path = self.layout.root / check_key(key)
                if not path.parent.is_dir():
                    path.parent.mkdir(parents=True)
                    fsync_dir(path.parent.parent)
                atomic_write(path, data)
                paths.append(path)
            self.append_to_log(paths, batch.signer)

    # -- reading ------------------------------------------------------------------------------
    def local_path(self, key: str) -> Path | None:
        """The file of a key in a local archive (None for other backends)."""
        return self.layout.root / check_key(key)

    def reading(self, wait_seconds: float) -> contextlib.AbstractContextManager[frozenset[str]]:
        """The readers' lock, held while a reader notes its snapshot (``snapshot.py``)."""
        from .snapshot import local_reading

        return local_reading(self, wait_seconds)

    def log_view(self) -> LogView:
        """The log, for reading."""
        return LogView.of(self.store, self.info.format_version)

    def proof_log(self) -> LogView:
        """The log, for inclusion and consistency proofs (its nodes, fast)."""
        return self.log_view()

    def reading_index(self) -> Index | None:
        """The derived index, opened for reading; None when there is none (a copy, an export).

        Raises:
            CorruptArchive: it is damaged.
        """
        from .index import Index

        if not self.layout.index.is_file():
            return None
        return Index.open(self.layout.index)

    def transaction(
        self, signer: SigningKey, wait_seconds: float = 0.0, tsa: str | None = None
    ) -> Transaction:
        """The all-or-nothing write of a command's events (``commit.py``)."""
        from .commit import WriteTransaction

        return WriteTransaction(self, signer, wait_seconds, tsa)

    def rebuild_index(self, wait_seconds: float = 0.0) -> tuple[int, int]:
        """Rebuild the derived index from the authoritative files. Returns (rows, skipped files)."""
        from .reindex import reindex_locked

        with self.writer_lock(wait_seconds):
            return reindex_locked(self)

    def refuse_if_sealed(self) -> None:
        """A sealed reference archive is never written to.

        Raises:
            InvalidInput: it is sealed.
        """
        if self.info.sealed:
            raise InvalidInput(
                f"{self.layout.root} is a sealed reference archive: it is never written to "
                '(verify it, or copy it elsewhere and remove "sealed" from the copy\'s archive.json)'
            )

    # -- keys -------------------------------------------------------------------
    def trust(self) -> TrustSet:
        """The trusted keys and revocations (with any problems found loading them)."""
        return load_trust(self.store, self.archive_id)

    def generate_key(
        self, name: str, role: str, *, passphrase: bytes | None, keystore: KeyStore | None = None
    ) -> str:
        """Make a key pair, keep the private key in the key store, trust the public key here.

        Returns the key id.

        Raises:
            InvalidInput: bad name or role, or the name is taken.
            StoreError: writing failed.
        """
        from .keystore import KeyStore, check_key_name

        check_key_name(name)
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}: use archivist or auditor")
        store = keystore or KeyStore()
        with self.recording() as batch:
            trust = self.trust()
            if any(k.name == name for k in trust.keys.values()):
                raise InvalidInput(f"this archive already trusts a key named {name!r}")
            key = store.generate(name, passphrase)
            batch.add(*self._key_record(key, role))
            batch.signer = key
        return key.key_id

    def append_to_log(self, paths: list[Path], signer: SigningKey) -> None:
        """Append records written outside a WriteTransaction to the log, with a checkpoint.
        Called inside a write session, which rolls back on failure."""
        from .logwrite import log_records

        log_records(
            self.layout, self.archive_id, [(self.layout.relative(p), p.read_bytes()) for p in paths], signer
        )

    def _key_record(self, key: SigningKey, role: str) -> tuple[str, bytes]:
        doc: dict[str, Any] = {
            "format": "archiver/key/1",
            "archive_id": self.archive_id,
            "key_id": key.key_id,
            "name": key.name,
            "role": role,
            "algorithm": "ed25519",
            "public_key": base64.b64encode(raw_public(key.private.public_key())).decode("ascii"),
            "created_at": format_time(self.clock()),
        }
        doc["signatures"] = [make_signature(doc, key.private, role)]
        return f"{KEYS}{key.key_id}.json", pretty_bytes(doc)

    def revoke_key(
        self, key_id_prefix: str, reason: str, signer: SigningKey, effective: datetime | None = None
    ) -> str:
        """Revoke a trusted key from ``effective`` (default: now) on. Returns the key id.

        ``effective`` may be in the past: a key known to be compromised since
        a date is revoked from that date, and every signature after it fails.

        Raises:
            InvalidInput: unknown or ambiguous key, already revoked, empty reason.
            KeyUnavailable: the signer is not trusted here or is revoked.
        """
        if not reason.strip():
            raise InvalidInput("a revocation needs a --reason")
        with self.recording() as batch:
            trust = self.trust()
            matches = [k for k in trust.keys if k.startswith(key_id_prefix.lower())]
            if len(matches) != 1:
                what = "no trusted key" if not matches else "several keys"
                raise InvalidInput(f"{what} matches {key_id_prefix!r}; see `archiver keys list`")
            target = matches[0]
            if target in trust.revocations:
                raise InvalidInput(f"key {target[:16]} is already revoked")
            signer_key = trust.keys.get(signer.key_id)
            if signer_key is None:
                raise KeyUnavailable(f"key {signer.name!r} is not trusted by this archive")
            now = self.clock()
            if signer.key_id != target and trust.revoked_at(signer.key_id) is not None:
                raise KeyUnavailable(f"key {signer.name!r} is revoked and cannot revoke others")
            doc: dict[str, Any] = {
                "format": "archiver/key-revocation/1",
                "archive_id": self.archive_id,
                "key_id": target,
                "revoked_at": format_time(effective or now),
                "reason": reason,
            }
            doc["signatures"] = [make_signature(doc, signer.private, signer_key.role)]
            batch.add(f"{KEYS}{target}.revocation.json", pretty_bytes(doc))
            batch.signer = signer
        return target

    def signing_key(
        self, name: str | None, passphrase: PassphraseSource, *, role: str, keystore: KeyStore | None = None
    ) -> SigningKey:
        """Load the private key to sign with, checking the archive trusts it for ``role``.

        With no name: ``$ARCHIVER_KEY``, else the only local key this archive
        trusts with that role.

        Raises:
            KeyUnavailable: none, several, untrusted, wrong role, revoked, or unloadable.
        """
        from .keystore import KeyStore

        self.refuse_if_sealed()  # signing is for writing: say so before looking for a key
        store = keystore or KeyStore()
        trust = self.trust()
        name = name or os.environ.get("ARCHIVER_KEY") or None
        if name is None:
            local = {store.public_info(n).key_id: n for n in store.names()}
            usable = [
                local[k.key_id]
                for k in trust.keys.values()
                if k.key_id in local and k.role == role and k.key_id not in trust.revocations
            ]
            revoked = [local[k] for k in trust.revocations if k in local]
            if not usable and revoked:
                raise KeyUnavailable(
                    f"your key {', '.join(sorted(revoked))} was revoked: "
                    f"run `archiver keys generate NAME --role {role}` for a new one"
                )
            if not usable:
                raise KeyUnavailable(
                    f"no {role} key for this archive: run `archiver keys generate NAME --role {role}`"
                )
            if len(usable) > 1:
                raise KeyUnavailable(
                    f"several {role} keys ({', '.join(sorted(usable))}): choose one with --key NAME"
                )
            name = usable[0]
        info = store.public_info(name)
        trusted = trust.keys.get(info.key_id)
        if trusted is None:
            raise KeyUnavailable(f"key {name!r} is not trusted by this archive ({self.layout.root})")
        if trusted.role != role:
            raise KeyUnavailable(
                f"key {name!r} has role {trusted.role}; this needs an {role} key "
                f"(`archiver keys generate NAME --role {role}`)"
            )
        if info.key_id in trust.revocations:
            raise KeyUnavailable(f"key {name!r} was revoked; use another key")
        key = store.load(name, passphrase)
        if key.key_id != info.key_id:
            raise KeyUnavailable(f"private and public files of key {name!r} do not match")
        return key
