"""The archive's trusted keys and revocations, and the signature rule built on them.

Invariants (checked here, reported as problems by the verifier):

1. A key file ``keys/KEY_ID.json`` is schema-valid, belongs to this archive,
   its ``key_id`` is the SHA-256 of its public key and matches its file name,
   and it is signed by that very key (proof of possession).
2. A revocation ``keys/KEY_ID.revocation.json`` is signed by the revoked key
   or by another trusted key not itself revoked at that moment. From its
   ``revoked_at`` on, the key's signatures are refused (``key-revoked``);
   signatures dated before it stay valid.
3. A signature on a document counts only if its key is trusted, the role it
   claims is the key's role, that role may perform the action, and the
   Ed25519 signature verifies over the canonical bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .canonical import JSONFormatError, load_strict
from .layout import KEYS
from .problems import Problem, ProblemCode
from .schema import schema_errors
from .signing import key_id_of_raw, signature_valid, signed_payload
from .storage import Store, children, read_limited
from .timeutil import parse_time

MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key the archive trusts, with its role."""

    key_id: str
    name: str
    role: str
    # the public key's 32 bytes, as libsodium checks signatures with them (no cryptography
    # object: importing its bindings was a sixth of a one-document command's start-up)
    raw: bytes
    created_at: datetime
    file: str


@dataclass(frozen=True, slots=True)
class Revocation:
    """A valid revocation."""

    key_id: str
    revoked_at: datetime
    reason: str
    file: str


@dataclass(slots=True)
class TrustSet:
    """Trusted keys and valid revocations, with the problems found loading them."""

    keys: dict[str, TrustedKey] = field(default_factory=dict)
    revocations: dict[str, Revocation] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def revoked_at(self, key_id: str) -> datetime | None:
        """When the key was revoked, or None."""
        rev = self.revocations.get(key_id)
        return rev.revoked_at if rev else None

    def check_signatures(
        self,
        document: dict[str, Any],
        when: datetime | Callable[[], datetime],
        allowed_roles: frozenset[str],
        *,
        plain: bool = False,
    ) -> list[tuple[ProblemCode, str]]:
        """Every reason the document's signatures are not acceptable at time ``when``
        (``plain``: the document is known to be plain JSON, ``canonical.load_strict_plain``).
        ``when`` may be given as a function: a verify asks it only of a revoked key's
        signature, not for each of 55,000 manifests."""
        out: list[tuple[ProblemCode, str]] = []
        payload = signed_payload(document, plain=plain)
        for sig in document.get("signatures", []):
            kid = sig["key_id"]
            key = self.keys.get(kid)
            if key is None:
                out.append((ProblemCode.KEY_UNTRUSTED, f"signed by unknown key {kid[:16]}"))
                continue
            if not signature_valid(payload, sig["signature"], key.raw):
                out.append((ProblemCode.SIGNATURE_INVALID, f"signature by {key.name} does not verify"))
                continue
            if sig["role"] != key.role:
                out.append(
                    (
                        ProblemCode.KEY_UNTRUSTED,
                        f"signature claims role {sig['role']} but key {key.name} is {key.role}",
                    )
                )
            elif key.role not in allowed_roles:
                out.append(
                    (ProblemCode.KEY_UNTRUSTED, f"key {key.name} has role {key.role}, which may not do this")
                )
            revoked = self.revoked_at(kid)
            at = None if revoked is None else when if isinstance(when, datetime) else when()
            if revoked is not None and at is not None and at >= revoked:
                out.append(
                    (
                        ProblemCode.KEY_REVOKED,
                        f"signed by {key.name} at {at.isoformat()}, after its revocation "
                        f"at {revoked.isoformat()}",
                    )
                )
        return out


def _read_json(store: Store, key: str) -> tuple[Any, str | None]:
    raw, why = read_limited(store, key, MAX_KEY_FILE)
    if raw is None:
        return None, why
    try:
        return load_strict(raw), None
    except JSONFormatError as e:
        return None, str(e)


def load_trust(store: Store, archive_id: str, only: frozenset[str] | None = None) -> TrustSet:
    """Load ``keys/`` (invariants 1 and 2 in the module docstring); ``only``: a reader's snapshot."""
    ts = TrustSet()
    key_files = [e for e in children(store, KEYS, ".json") if only is None or e.key in only]
    rev_docs: list[tuple[dict[str, Any], str]] = []
    for entry in key_files:
        rel = entry.key
        ts.files.append(rel)
        doc, err = _read_json(store, rel)
        is_rev = entry.name.endswith(".revocation.json")
        if err is None:
            errors = schema_errors("revocation" if is_rev else "key", doc)
            if errors:
                err = "; ".join(errors)
        if err is not None:
            ts.problems.append(Problem(code=ProblemCode.SCHEMA_INVALID, message=err, file=rel))
            continue
        if doc["archive_id"] != archive_id:
            ts.problems.append(
                Problem(
                    code=ProblemCode.SCHEMA_INVALID,
                    message=f"belongs to archive {doc['archive_id']}",
                    file=rel,
                )
            )
            continue
        expected_name = f"{doc['key_id']}.revocation.json" if is_rev else f"{doc['key_id']}.json"
        if entry.name != expected_name:
            ts.problems.append(
                Problem(
                    code=ProblemCode.SCHEMA_INVALID,
                    message=f"file name does not match key id {doc['key_id'][:16]}",
                    file=rel,
                )
            )
            continue
        if is_rev:
            rev_docs.append((doc, rel))
            continue
        raw = base64.b64decode(doc["public_key"])  # (32 bytes: the schema's pattern)
        if key_id_of_raw(raw) != doc["key_id"]:
            ts.problems.append(
                Problem(
                    code=ProblemCode.SCHEMA_INVALID,
                    message="key_id is not the SHA-256 of public_key",
                    file=rel,
                )
            )
            continue
        payload = signed_payload(doc)
        self_sigs = [s for s in doc["signatures"] if s["key_id"] == doc["key_id"]]
        if not self_sigs or not all(signature_valid(payload, s["signature"], raw) for s in self_sigs):
            ts.problems.append(
                Problem(
                    code=ProblemCode.SIGNATURE_INVALID,
                    message=f"key {doc['name']} is not validly self-signed",
                    file=rel,
                )
            )
            continue
        ts.keys[doc["key_id"]] = TrustedKey(
            key_id=doc["key_id"],
            name=doc["name"],
            role=doc["role"],
            raw=raw,
            created_at=parse_time(doc["created_at"]),
            file=rel,
        )
    rev_docs.sort(key=lambda item: item[0]["revoked_at"])
    for doc, rel in rev_docs:
        when = parse_time(doc["revoked_at"])
        if doc["key_id"] not in ts.keys:
            ts.problems.append(
                Problem(
                    code=ProblemCode.KEY_UNTRUSTED,
                    message="revokes a key the archive does not have",
                    file=rel,
                )
            )
            continue
        payload = signed_payload(doc)
        accepted = False
        for sig in doc["signatures"]:
            signer = ts.keys.get(sig["key_id"])
            if signer is None or not signature_valid(payload, sig["signature"], signer.raw):
                continue
            signer_revoked = ts.revoked_at(signer.key_id)
            if signer.key_id == doc["key_id"] or signer_revoked is None or signer_revoked > when:
                accepted = True
        if not accepted:
            ts.problems.append(
                Problem(
                    code=ProblemCode.SIGNATURE_INVALID,
                    message="revocation not signed by a key allowed to revoke",
                    file=rel,
                )
            )
            continue
        ts.revocations[doc["key_id"]] = Revocation(
            key_id=doc["key_id"], revoked_at=when, reason=doc["reason"], file=rel
        )
    return ts
