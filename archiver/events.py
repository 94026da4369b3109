"""Custody events after capture: edit, redact, transfer, accept, attest, and import.

Each command loads the document's chain, replays the custody rules
(``custody.py``) to know who holds it, refuses what those rules forbid with
a clear message, and writes through a ``Transaction``, so that a refused or
failed command leaves the archive as it was.

Events made on another copy of the archive (typically ``accept`` on the
receiver's machine) are brought back with ``import_records``: the signed
manifest file is validated exactly as ``verify`` would (schema, signatures,
chain link, custody) and then stored unchanged, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .__version__ import TOOL_NAME, __version__
from .archive import Archive, RecordBatch
from .canonical import JSONFormatError, load_strict, pretty_bytes
from .commit import Transaction
from .custody import CustodyState, replay
from .diffs import MAX_DIFF_TEXT, diff_counts, unified_diff
from .errors import CorruptArchive, InvalidInput
from .keystore import SigningKey
from .layout import KEYS, event_key, events_prefix, warc_key
from .manifest import ACTION_ROLES, Event, ManifestError
from .redaction import MAX_REDACT_TEXT, decode, make_proof
from .schema import schema_errors
from .sealing import seal_and_queue
from .storage import OverlayStore, Store
from .storing import digest_version, ref_json, store_version
from .timeutil import format_time
from .trust import load_trust
from .warcscan import read_block, read_payload
from .warcstore import DIFF_CONTENT_TYPE, PROOF_CONTENT_TYPE

MAX_IMPORT_FILE = 1 << 20


# -- loading a document's state -------------------------------------------------------------------
def load_chain(store: Store, document_id: str) -> list[Event]:
    """Every event of a document, parsed, in sequence order.

    Raises:
        CorruptArchive: a manifest is unreadable or invalid (``verify`` says more).
    """
    events = []
    for entry in store.files(events_prefix(document_id)):
        if not entry.key.endswith(".json"):
            continue
        try:
            events.append(Event.parse(store.read(entry.key), entry.key))
        except (OSError, ManifestError) as e:
            raise CorruptArchive(f"{entry.key} is damaged ({e}); run `archiver verify`") from e
    events.sort(key=lambda e: e.sequence)
    if not events or [e.sequence for e in events] != list(range(len(events))):
        raise CorruptArchive(f"document {document_id} has missing events; run `archiver verify`")
    return events


def document_state(archive: Archive, events: list[Event]) -> CustodyState:
    """Replay the custody rules over a chain.

    Raises:
        CorruptArchive: the chain breaks the rules (``verify`` says more).
    """
    trust = archive.trust()
    archivists = frozenset(k for k, v in trust.keys.items() if v.role == "archivist")
    state, found = replay([e.raw for e in events], [e.digest for e in events], archivists, archive.clock())
    for i in range(1, len(events)):
        if events[i].previous != events[i - 1].digest:
            raise CorruptArchive(
                f"document {events[0].document_id} has a broken chain; run `archiver verify`"
            )
    if found:
        seq, (code, msg) = found[0]
        raise CorruptArchive(
            f"document {events[0].document_id} event {seq}: {code.value}: {msg}; run `archiver verify`"
        )
    return state


def _open(tx: Transaction, document: str) -> tuple[list[Event], CustodyState]:
    doc_id = tx.index.resolve(document)
    chain = load_chain(tx.archive.store, doc_id)
    latest_queued = tx.latest(doc_id)
    if latest_queued is not None:
        chain.append(latest_queued)
    return chain, document_state(tx.archive, chain)


def _require_custodian(state: CustodyState, key: SigningKey, what: str, archive: Archive) -> None:
    if state.custodian == key.key_id:
        return
    trust = archive.trust()
    holder = trust.keys.get(state.custodian or "")
    name = holder.name if holder else (state.custodian or "?")[:16]
    hint = ""
    if state.pending_to == key.key_id:
        hint = "; accept the pending transfer first (`archiver accept DOC`)"
    raise InvalidInput(
        f"only the custodian may {what} this document: it is held by {name}, not by {key.name}{hint}"
    )


def _base(
    archive: Archive,
    chain: list[Event],
    state: CustodyState,
    action: str,
    key: SigningKey,
    role: str,
    reason: str | None,
) -> dict[str, Any]:
    last = chain[-1]
    assert state.content is not None and state.storage is not None
    return {
        "format": "archiver/manifest/1",
        "archive_id": archive.archive_id,
        "document_id": last.document_id,
        "sequence": last.sequence + 1,
        "action": action,
        "time": format_time(archive.clock()),
        "actor": {"key_id": key.key_id, "name": key.name, "role": role},
        "reason": reason,
        "previous": last.digest,
        "content": dict(state.content),
        "storage": dict(state.storage),
    }


def _seal_without_content(
    tx: Transaction, state: CustodyState, manifest: dict[str, Any], key: SigningKey, role: str
) -> Event:
    """Seal an event that writes no bytes: its WARC copy refers to the current content record."""
    assert state.storage is not None
    return seal_and_queue(tx, manifest, key, role, state.storage["record_id"], concurrent=False)


def _need_reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInput("--reason is required and may not be empty")
    return reason


def _check_file(path: Path) -> None:
    from .ingest import check_readable

    check_readable(path)


def _opener(path: Path) -> Any:
    def open_source() -> Any:
        return open(path, "rb", buffering=0)

    return open_source


def _target_uri(chain: list[Event]) -> str:
    url = chain[0].metadata.get("url")
    return str(url) if url else f"urn:archiver:document:{chain[0].document_id}"


# -- edit and redact ----------------------------------------------------------------------------------
def edit(
    archive: Archive, document: str, path: Path, reason: str, key: SigningKey, wait_seconds: float = 0.0
) -> Event:
    """Record a new version of a document, made by its custodian.

    Raises:
        InvalidInput: empty reason, unreadable file, identical bytes, not the custodian.
    """
    _need_reason(reason)
    _check_file(path)
    with archive.transaction(key, wait_seconds) as tx:
        chain, state = _open(tx, document)
        _require_custodian(state, key, "edit", archive)
        return _new_version(tx, chain, state, path, reason, key, "edited")


def redact(
    archive: Archive, document: str, path: Path, reason: str, key: SigningKey, wait_seconds: float = 0.0
) -> Event:
    """Publish a redacted version; the current version is sealed, and the new one carries a
    proof of how it derives from it (``redaction.py``).

    Raises:
        InvalidInput: not text, no token tree, too large, identical, not the custodian.
    """
    _need_reason(reason)
    _check_file(path)
    with archive.transaction(key, wait_seconds) as tx:
        chain, state = _open(tx, document)
        _require_custodian(state, key, "redact", archive)
        return _new_version(tx, chain, state, path, reason, key, "redacted")


def _new_version(
    tx: Transaction,
    chain: list[Event],
    state: CustodyState,
    path: Path,
    reason: str,
    key: SigningKey,
    action: str,
) -> Event:
    archive = tx.archive
    assert state.content is not None and state.storage is not None
    old_c, old_s = state.content, state.storage
    manifest = _base(archive, chain, state, action, key, "archivist", reason)
    d, seed = digest_version(
        _opener(path),
        display=str(path),
        filename=path.name,
        media_type=old_c["media_type"],
        charset=old_c["charset"],
    )
    if d.sha256 == old_c["sha256"]:
        raise InvalidInput(f"{path} is identical to the current version: nothing to {action[:-2]}")
    old_ref = old_s.get("refers_to") or old_s
    old_bytes = new_bytes = None
    textual = old_c["text_sha256"] is not None and d.text_sha256 is not None
    limit = MAX_REDACT_TEXT if action == "redacted" else MAX_DIFF_TEXT
    if textual and max(old_c["size"], d.size) <= limit:
        old_bytes = read_payload(tx.archive.store, warc_key(old_ref["warc_file"]), old_ref["offset"], limit)
        if old_bytes is None or hashlib.sha256(old_bytes).hexdigest() != old_c["sha256"]:
            raise CorruptArchive("the current version's stored bytes are damaged; run `archiver verify`")
        new_bytes = path.read_bytes()
    proof = None
    if action == "redacted":
        proof = _redaction_proof(tx, old_c, old_s, old_bytes, new_bytes, path)
    target = _target_uri(chain)
    stored = store_version(
        tx,
        _opener(path),
        d,
        seed,
        display=str(path),
        language=old_c["language"],
        record_type="conversion",
        refers_to=old_ref["record_id"],
        target_uri=target,
        date=manifest["time"],
        batch={},
    )
    manifest["content"], manifest["storage"] = stored.content, stored.storage
    manifest["diff"] = None
    if old_bytes is not None and new_bytes is not None:
        label = f"{manifest['document_id']}@{manifest['sequence'] - 1}"
        text = unified_diff(
            decode(old_bytes, old_c["charset"]),
            decode(new_bytes, d.charset),
            label,
            f"{manifest['document_id']}@{manifest['sequence']}",
        )
        manifest["diff"] = {**diff_counts(text), "record": None}
        if action == "edited":
            # A redaction's diff would show what was redacted: only its counts are kept.
            block = text.encode("utf-8")
            ref = tx.warc.write_metadata(
                block=block,
                content_type=DIFF_CONTENT_TYPE,
                target_uri=target,
                date=manifest["time"],
                refers_to=stored.record_id,
            )
            manifest["diff"]["record"] = ref_json(ref, hashlib.sha256(block).hexdigest())
    if proof is not None:
        block = pretty_bytes(proof.proof)
        ref = tx.warc.write_metadata(
            block=block,
            content_type=PROOF_CONTENT_TYPE,
            target_uri=target,
            date=manifest["time"],
            refers_to=stored.record_id,
        )
        manifest["redaction"] = {
            "proof": ref_json(ref, hashlib.sha256(block).hexdigest()),
            "tokens_redacted": proof.tokens_redacted,
            "replacements": proof.replacements,
        }
    return seal_and_queue(tx, manifest, key, "archivist", stored.record_id, concurrent=True)


def _redaction_proof(
    tx: Transaction,
    old_c: dict[str, Any],
    old_s: dict[str, Any],
    old_bytes: bytes | None,
    new_bytes: bytes | None,
    path: Path,
) -> Any:
    if not old_c.get("redactable") or "seed" not in old_s:
        raise InvalidInput(
            "this version has no redaction token tree (not text, or captured by an older "
            "version of archiver): it cannot be redacted verifiably"
        )
    if old_bytes is None or new_bytes is None:
        raise InvalidInput(
            f"{path}: redaction needs both versions as text of at most {MAX_REDACT_TEXT >> 20} MiB"
        )
    seed_ref = old_s["seed"]
    seed = read_block(tx.archive.store, warc_key(seed_ref["warc_file"]), seed_ref["offset"], 64)
    if seed is None or hashlib.sha256(seed).hexdigest() != seed_ref["sha256"]:
        raise CorruptArchive("the sealed seed of the current version is damaged; run `archiver verify`")
    try:
        return make_proof(decode(old_bytes, old_c["charset"]), decode(new_bytes, old_c["charset"]), seed)
    except ValueError as e:
        raise InvalidInput(f"{path}: {e}") from e


# -- transfer, accept, attest ---------------------------------------------------------------------------
def transfer(
    archive: Archive, document: str, to: str, reason: str, key: SigningKey, wait_seconds: float = 0.0
) -> Event:
    """Start handing a document over to another archivist key (``to``: key id or prefix).

    Raises:
        InvalidInput: not the custodian, unknown or unsuitable receiver, empty reason.
    """
    _need_reason(reason)
    trust = archive.trust()
    matches = [k for k in trust.keys.values() if k.key_id.startswith(to.lower()) and to]
    if len(matches) != 1:
        raise InvalidInput(
            f"{'no' if not matches else 'more than one'} trusted key matches {to!r}; "
            "see `archiver keys list` (a key made elsewhere: `archiver import KEYFILE`)"
        )
    receiver = matches[0]
    if receiver.role != "archivist" or receiver.key_id in trust.revocations:
        raise InvalidInput(
            f"key {receiver.name} cannot receive custody (role {receiver.role}"
            f"{', revoked' if receiver.key_id in trust.revocations else ''})"
        )
    if receiver.key_id == key.key_id:
        raise InvalidInput("a document cannot be transferred to its own custodian")
    with archive.transaction(key, wait_seconds) as tx:
        chain, state = _open(tx, document)
        _require_custodian(state, key, "transfer", archive)
        manifest = _base(archive, chain, state, "transferred", key, "archivist", reason)
        manifest["transfer"] = {"to": {"key_id": receiver.key_id, "name": receiver.name}}
        return _seal_without_content(tx, state, manifest, key, "archivist")


def accept(
    archive: Archive, document: str, key: SigningKey, reason: str | None = None, wait_seconds: float = 0.0
) -> Event:
    """Complete a pending transfer to ``key``.

    Raises:
        InvalidInput: no transfer pending to this key.
    """
    with archive.transaction(key, wait_seconds) as tx:
        chain, state = _open(tx, document)
        if state.pending_to != key.key_id:
            what = (
                "no transfer is pending"
                if state.pending_to is None
                else "the pending transfer is to another key"
            )
            raise InvalidInput(f"{what} for {key.name} on this document")
        manifest = _base(archive, chain, state, "accepted", key, "archivist", reason)
        manifest["accept"] = {"transfer": state.pending_transfer}
        return _seal_without_content(tx, state, manifest, key, "archivist")


def attest(
    archive: Archive, document: str, key: SigningKey, note: str | None = None, wait_seconds: float = 0.0
) -> Event:
    """An auditor countersigns a document's current state after verifying it.

    Raises:
        InvalidInput: the document does not verify clean.
    """
    from .verify import resolve_by_files, verify

    # Verify first, as a reader (it must not hold the writer lock, which readers wait for);
    # then attest only if nothing was added to the document in between.
    doc_id = resolve_by_files(archive.store, document)
    verified_latest = load_chain(archive.store, doc_id)[-1].digest
    report = verify(archive, [doc_id])
    if not report.ok:
        raise InvalidInput(
            f"document {doc_id} has {len(report.problems)} problem(s) "
            f"({report.problems[0]}); an auditor attests only a document that verifies"
        )
    with archive.transaction(key, wait_seconds) as tx:
        chain, state = _open(tx, doc_id)
        if chain[-1].digest != verified_latest:
            raise InvalidInput(f"document {doc_id} changed while it was being verified; attest again")
        manifest = _base(archive, chain, state, "attested", key, "auditor", None)
        manifest["attestation"] = {
            "note": note,
            "verified": {
                "events": report.counts.events,
                "problems": 0,
                "tool": {"name": TOOL_NAME, "version": __version__},
            },
        }
        return _seal_without_content(tx, state, manifest, key, "auditor")


# -- import ------------------------------------------------------------------------------------------------
def import_records(
    archive: Archive, paths: list[Path], key: SigningKey, wait_seconds: float = 0.0
) -> list[str]:
    """Bring in signed records made on another copy: keys, revocations, custody events.

    Content-changing events cannot be imported (their bytes live in the other
    copy's WARC files); transfers, accepts and attestations can. Importing a
    record that is already present does nothing.

    Raises:
        InvalidInput: a file that is not such a record, or that would not verify here.
    """
    docs: list[tuple[Path, bytes, dict[str, Any]]] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                raw = f.read(MAX_IMPORT_FILE + 1)
        except OSError as e:
            raise InvalidInput(f"{path}: cannot read ({e.strerror})") from e
        if len(raw) > MAX_IMPORT_FILE:
            raise InvalidInput(f"{path}: larger than any archiver record")
        try:
            doc = load_strict(raw)
        except JSONFormatError as e:
            raise InvalidInput(f"{path}: {e}") from e
        if not isinstance(doc, dict) or doc.get("archive_id") != archive.archive_id:
            raise InvalidInput(f"{path}: not a record of this archive ({archive.archive_id})")
        docs.append((path, raw, doc))
    done: list[str] = []
    with archive.recording(wait_seconds) as batch:
        for path, raw, doc in docs:
            if doc.get("format") in ("archiver/key/1", "archiver/key-revocation/1"):
                done.append(_import_key_record(archive, batch, path, raw, doc))
        batch.signer = key
    events = [(p, r, d) for p, r, d in docs if d.get("format") == "archiver/manifest/1"]
    unknown = [
        p
        for p, _, d in docs
        if d.get("format") not in ("archiver/key/1", "archiver/key-revocation/1", "archiver/manifest/1")
    ]
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not an archiver key, revocation or manifest")
    if events:
        with archive.transaction(key, wait_seconds) as tx:
            for path, raw, _ in events:
                done.append(_import_event(tx, path, raw))
    return done


def _import_key_record(
    archive: Archive, batch: RecordBatch, path: Path, raw: bytes, doc: dict[str, Any]
) -> str:
    is_rev = doc["format"] == "archiver/key-revocation/1"
    errors = schema_errors("revocation" if is_rev else "key", doc)
    if errors:
        raise InvalidInput(f"{path}: {errors[0]}")
    rel = f"{KEYS}{doc['key_id']}{'.revocation' if is_rev else ''}.json"
    pending = dict(batch.records)
    if archive.store.size(rel) is not None or rel in pending:
        if pending.get(rel) == raw or (rel not in pending and archive.store.read(rel) == raw):
            return f"already present: {rel}"
        raise InvalidInput(f"{path}: a different record for key {doc['key_id'][:16]} exists already")
    # Validate exactly as verify will, on the key set this record would produce.
    trust = load_trust(OverlayStore(archive.store, {**pending, rel: raw}), archive.archive_id)
    bad = [p for p in trust.problems if p.file == rel]
    if bad:
        raise InvalidInput(f"{path}: {bad[0].message}")
    batch.add(rel, raw)
    return f"imported {rel}"


def _import_event(tx: Transaction, path: Path, raw: bytes) -> str:
    store = tx.archive.store
    try:
        probe = Event.parse(raw, "")
    except ManifestError as e:
        raise InvalidInput(f"{path}: {e}") from e
    rel = event_key(probe.document_id, probe.sequence)
    event = Event.parse(raw, rel)
    if store.size(rel) is not None:
        if store.read(rel) == raw:
            return f"already present: {rel}"
        raise InvalidInput(
            f"{path}: event {event.sequence} of document {event.document_id} exists already "
            "with other content (a fork)"
        )
    if event.action not in ("transferred", "accepted", "attested"):
        raise InvalidInput(
            f"{path}: a {event.action} event carries content stored in another copy; "
            "only transfers, accepts and attestations can be imported"
        )
    chain, state = _open(tx, event.document_id)
    if event.previous != chain[-1].digest or event.sequence != chain[-1].sequence + 1:
        raise InvalidInput(
            f"{path}: does not follow the document's latest event "
            f"(expected event {chain[-1].sequence + 1} after {chain[-1].digest})"
        )
    trust = tx.archive.trust()
    findings = trust.check_signatures(event.raw, event.time, ACTION_ROLES[event.action])
    if event.raw["actor"]["key_id"] not in {s["key_id"] for s in event.raw["signatures"]}:
        raise InvalidInput(f"{path}: the event's actor did not sign it")
    if findings:
        raise InvalidInput(f"{path}: {findings[0][0].value}: {findings[0][1]}")
    archivists = frozenset(k for k, v in trust.keys.items() if v.role == "archivist")
    _, found = replay(
        [*[e.raw for e in chain], event.raw],
        [*[e.digest for e in chain], event.digest],
        archivists,
        tx.archive.clock(),
    )
    if found:
        raise InvalidInput(f"{path}: {found[0][1][0].value}: {found[0][1][1]}")
    assert state.storage is not None
    meta = tx.write_manifest_record(raw, event, state.storage["record_id"], concurrent=False)
    tx.add(event, raw, meta)
    return f"imported {rel}"
