#!/usr/bin/env python3
"""Check an archiver archive without archiver: only Python's standard library,
`cryptography` and `rfc8785` (pip install cryptography rfc8785).

    python verify_standalone.py ARCHIVE

Checks, independently of archiver's own code (docs/format.md is the contract):
1. every key record: its key id is the SHA-256 of its public key, and it is self-signed;
2. every manifest: Ed25519 signatures over the RFC 8785 form without "signatures",
   by trusted keys of the signing role, the actor among the signers;
3. every document's chain: sequences 0..n-1, each "previous" the SHA-256 of the
   prior manifest file;
4. the log: each leaf is SHA-256(0x00 || the named file's bytes), the RFC 9162
   root of all leaves, and the latest checkpoint's signed note (C2SP) and root.
   The log's lines are in manifests/log/entries (format 1) or, for an archive kept in
   S3 (format 2, or a copy of one), in manifests/log/segments/, one file per command,
   named by the log size it reaches: read in name order they are the same lines.
   In an export of some documents, the other documents' manifests are absent:
   their leaves are taken as the log states them.
It does not read WARC records (use `warcio check`, or `archiver verify`).
Exit 0: all checks passed; 1: something failed (each failure printed).
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

failures = []


def fail(message):
    failures.append(message)
    print("FAIL", message)


def signed_bytes(doc):
    return rfc8785.dumps({k: v for k, v in doc.items() if k != "signatures"})


def check_sig(doc, sig, public):
    try:
        public.verify(base64.b64decode(sig["signature"]), signed_bytes(doc))
        return True
    except (InvalidSignature, ValueError):
        return False


def mth(leaves):
    """RFC 9162 Merkle tree hash of a list of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def main(root):
    keys = {}
    for path in sorted((root / "manifests" / "keys").glob("*.json")):
        doc = json.loads(path.read_bytes())
        if path.name.endswith(".revocation.json"):
            continue  # revocations: see docs/format.md section 4 (archiver verify checks them)
        raw = base64.b64decode(doc["public_key"])
        public = Ed25519PublicKey.from_public_bytes(raw)
        if hashlib.sha256(raw).hexdigest() != doc["key_id"] or path.stem != doc["key_id"]:
            fail(f"{path.name}: key id does not match the public key")
            continue
        if not any(s["key_id"] == doc["key_id"] and check_sig(doc, s, public) for s in doc["signatures"]):
            fail(f"{path.name}: not validly self-signed")
            continue
        keys[doc["key_id"]] = (doc["name"], doc["role"], public)
    print(f"{len(keys)} trusted keys")
    roles = {"attested": "auditor"}
    chains = {}
    for path in sorted((root / "manifests" / "events").glob("*/*.json")):
        data = path.read_bytes()
        doc = json.loads(data)
        where = path.relative_to(root)
        signers = set()
        for sig in doc["signatures"]:
            key = keys.get(sig["key_id"])
            if key is None:
                fail(f"{where}: signed by an unknown key")
            elif key[1] != roles.get(doc["action"], "archivist") or sig["role"] != key[1]:
                fail(f"{where}: key {key[0]} may not sign a {doc['action']} event")
            elif not check_sig(doc, sig, key[2]):
                fail(f"{where}: signature by {key[0]} does not verify")
            else:
                signers.add(sig["key_id"])
        if doc["actor"]["key_id"] not in signers:
            fail(f"{where}: the actor did not sign")
        chains.setdefault(doc["document_id"], []).append((doc["sequence"], doc["previous"], data, where))
    events = 0
    for doc_id, chain in chains.items():
        chain.sort(key=lambda e: e[0])
        for i, (seq, previous, _data, where) in enumerate(chain):
            events += 1
            expected = None if i == 0 else "sha256:" + hashlib.sha256(chain[i - 1][2]).hexdigest()
            if seq != i or previous != expected:
                fail(f"{where}: chain of {doc_id} broken at event {seq}")
    print(f"{len(chains)} documents, {events} events")
    log = root / "manifests" / "log"
    # An export of some documents (manifests/export.json, "documents": [...]) leaves the other
    # documents' manifests out; their leaves still count, as the log states them.
    export = root / "manifests" / "export.json"
    exported = json.loads(export.read_bytes()).get("documents") if export.is_file() else None
    leaves = []
    left_out = 0
    lines = []
    if json.loads((root / "manifests" / "archive.json").read_bytes())["format_version"] >= 2:
        for segment in sorted((log / "segments").iterdir()):
            lines += segment.read_text("utf-8").splitlines()
            if len(lines) != int(segment.name):
                fail(f"log segment {segment.name} brings the log to {len(lines)} records")
    else:
        lines = (log / "entries").read_text("utf-8").splitlines()
    for n, line in enumerate(lines):
        leaf_hex, rel = line.split(" ", 1)
        if ".." in rel or not rel.startswith("manifests/"):
            fail(f"log entry {n}: unsafe path")
            continue
        name = rel.rsplit("/", 1)[-1]
        outside = exported is not None and rel.startswith("manifests/events/") and name[:32] not in exported
        if outside and not (root / rel).exists():
            leaves.append(bytes.fromhex(leaf_hex))
            left_out += 1
            continue
        actual = hashlib.sha256(b"\x00" + (root / rel).read_bytes()).hexdigest()
        if actual != leaf_hex:
            fail(f"log entry {n}: {rel} is not the record the log committed to")
        leaves.append(bytes.fromhex(actual))
    checkpoints = sorted((log / "checkpoints").iterdir())
    note = checkpoints[-1].read_text("utf-8")
    body, _, sig_lines = note.partition("\n\n")
    body += "\n"
    _origin, size, root_b64 = body.splitlines()[:3]
    size = int(size)
    if size > len(leaves) or mth(leaves[:size]) != base64.b64decode(root_b64):
        fail(f"checkpoint {checkpoints[-1].name}: its root is not the root of the log's first {size} records")
    good = False
    for line in sig_lines.splitlines():
        if not line.startswith("\u2014 "):
            continue
        name, b64 = line[2:].rsplit(" ", 1)
        sig = base64.b64decode(b64)
        for key_id, (key_name, _role, public) in keys.items():
            note_name = f"{key_name}/{key_id[:16]}"
            raw = public.public_bytes_raw()
            key_hash = hashlib.sha256(note_name.encode() + b"\n\x01" + raw).digest()[:4]
            if name == note_name and sig[:4] == key_hash:
                try:
                    public.verify(sig[4:], body.encode())
                    good = True
                except InvalidSignature:
                    fail(f"checkpoint {checkpoints[-1].name}: signature by {key_name} does not verify")
    if not good:
        fail(f"checkpoint {checkpoints[-1].name}: no valid signature by a trusted key")
    print(f"log: {len(leaves)} records, latest checkpoint covers {size}")
    if left_out:
        print(f"(an export of {len(exported)} document(s): {left_out} other manifest(s) left out)")
    print("OK" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
