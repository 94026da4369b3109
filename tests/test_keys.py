"""Keys: 0600 private files, passphrases, refusal of unsafe keys, no secret ever printed."""

from __future__ import annotations

import base64
import os
import stat

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from archiver import KeyStore

from conftest import invoke


def test_private_key_is_0600_and_public_key_is_trusted(archive):
    key = archive.keydir / "alice.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()
    listed = archive.ok("keys", "list", "--json").json()
    assert listed[0]["name"] == "alice" and listed[0]["role"] == "archivist"
    assert listed[0]["private_key_here"] is True
    # only public material in the archive
    for f in (archive.root / "manifests").rglob("*"):
        if f.is_file():
            assert b"PRIVATE" not in f.read_bytes()


def test_refuses_private_key_readable_by_others(archive, arabic_dir):
    os.chmod(archive.keydir / "alice.key", 0o644)
    res = archive.run("ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2 and "chmod 600" in res.stderr
    assert not list((archive.root / "manifests" / "events").rglob("*.json"))


def test_passphrase_encryption_and_wrong_passphrase(archive, arabic_dir):
    env = {"ARCHIVER_PASSPHRASE": "correct horse battery staple"}
    archive.ok("keys", "generate", "bob", "--passphrase", env=env)
    pem = (archive.keydir / "bob.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    res = archive.run(
        "--key", "bob", "ingest", str(arabic_dir / "a.txt"), env={"ARCHIVER_PASSPHRASE": "wrong"}
    )
    assert res.exit_code == 2 and "wrong passphrase" in res.stderr
    res = archive.run("--key", "bob", "ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2 and "encrypted" in res.stderr
    res = archive.ok("--key", "bob", "ingest", str(arabic_dir / "a.txt"), env=env)
    assert archive.verify_codes() == set()


def test_no_secret_in_any_output(archive, arabic_dir):
    env = {"ARCHIVER_PASSPHRASE": "s3cret-passphrase-value"}
    outputs = [archive.ok("keys", "generate", "carol", "--passphrase", env=env)]
    outputs.append(archive.ok("--key", "carol", "ingest", str(arabic_dir / "a.txt"), env=env))
    outputs.append(
        archive.run(
            "--key", "carol", "ingest", str(arabic_dir / "b.txt"), env={"ARCHIVER_PASSPHRASE": "nope"}
        )
    )
    outputs.append(archive.ok("keys", "list"))
    outputs.append(archive.ok("verify"))
    alice = KeyStore().load("alice", lambda n: None)
    raw = alice.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secrets = [raw.hex(), base64.b64encode(raw).decode(), "s3cret-passphrase-value"]
    pem = (archive.keydir / "alice.key").read_text()
    secrets += [line for line in pem.splitlines() if "-----" not in line]
    assert "alice" in repr(alice) and raw.hex() not in repr(alice)
    for res in outputs:
        for s in secrets:
            assert s not in res.stdout and s not in res.stderr
    # ... nor in any file of the archive (records, WARC, log, index, recovery log),
    # nor in the public half kept beside the private key
    (archive.root / "store" / ".pending").write_text('{"log_size": 0, "warc": {}}')  # force a recovery
    outputs.append(archive.ok("--key", "alice", "ingest", str(arabic_dir / "b.txt")))
    assert "recovered an interrupted write" in outputs[-1].stderr
    files = [p for p in archive.root.rglob("*") if p.is_file()] + list(archive.keydir.glob("*.pub.json"))
    for f in files:
        data = f.read_bytes()
        if f.suffix == ".gz":
            import gzip

            data += gzip.decompress(data)
        for s in secrets:
            assert s.encode() not in data and raw not in data, f


def test_key_selection_messages(archive, arabic_dir):
    archive.ok("keys", "generate", "bob")
    res = archive.run("ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2 and "--key" in res.stderr
    archive.ok("--key", "bob", "ingest", str(arabic_dir / "a.txt"))
    res = archive.run("--key", "nobody", "ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2 and "archiver keys generate nobody" in res.stderr


def test_wrong_role_is_refused(archive, arabic_dir):
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    res = archive.run("--key", "audrey", "ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2 and "role auditor" in res.stderr


def test_duplicate_and_invalid_names(archive):
    assert archive.run("keys", "generate", "alice").exit_code == 2
    assert archive.run("keys", "generate", "../evil").exit_code == 2
    assert not (archive.keydir.parent / "evil.key").exists()


def test_key_unknown_to_this_archive(archive, tmp_path, arabic_dir):
    other = tmp_path / "other"
    assert invoke("init", str(other)).exit_code == 0
    res = invoke("--archive", str(other), "--key", "alice", "ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2 and "not trusted by this archive" in res.stderr


def test_revoke_needs_reason_and_known_key(archive):
    assert archive.run("keys", "revoke", "ffff", "--reason", "x").exit_code == 2
    kid = archive.ok("keys", "list", "--json").json()[0]["key_id"]
    assert archive.run("keys", "revoke", kid, "--reason", " ").exit_code == 2
    archive.ok("keys", "revoke", kid[:10], "--reason", "retired")
    listed = archive.ok("keys", "list", "--json").json()
    assert listed[0]["revoked_at"] is not None and listed[0]["revocation_reason"] == "retired"
    assert archive.run("keys", "revoke", kid, "--reason", "again").exit_code == 2
