"""One tamper test per problem code: alter the archive on disk, assert the exact codes.

Each case names the attack. "Naive" attackers change one file; "thorough"
ones also repair everything they can without the keys (WARC digests, the
manifest copy in the WARC, the derived index), which isolates the single
check that still catches them.
"""

from __future__ import annotations

import json
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tamper import (
    dump,
    flip_byte,
    flip_payload_byte,
    last_record_offset,
    load,
    manifest_keys,
    read_member,
    relog,
    replace_last_metadata_record,
    resign,
    rewrite_member,
    set_header,
)

pytestmark = pytest.mark.backends


@pytest.fixture
def sealed(archive, tmp_path):
    """An archive with two article-sized documents, verified clean."""
    rng = random.Random(7)
    words = "صور قيصر شهادة المعتقلين سوريا السجون الضحايا التعذيب أدلة الأمم المتحدة محكمة".split()
    for name in ("a.txt", "b.txt"):
        text = " ".join(rng.choice(words) + str(rng.randint(0, 999)) for _ in range(600))
        (tmp_path / name).write_text(text, encoding="utf-8")
        archive.ingest(tmp_path / name, language="ar")
    assert archive.verify_codes() == set()
    return archive


def _last_manifest(fx) -> str:
    return max(manifest_keys(fx.files), key=lambda k: load(fx.files, k)["time"])


def _first_manifest(fx) -> str:
    return min(manifest_keys(fx.files), key=lambda k: load(fx.files, k)["time"])


def _storage(fx, key: str) -> tuple[str, int, int]:
    s = load(fx.files, key)["storage"]
    return "store/" + s["warc_file"], s["offset"], s["length"]


def test_content_mismatch_payload_changed_and_warc_digest_fixed(sealed):
    warc, offset, _ = _storage(sealed, _first_manifest(sealed))
    rewrite_member(sealed.files, warc, offset, lambda r: flip_payload_byte(r, 3, fix_digest=True))
    assert sealed.verify_codes() == sealed.expect("content-mismatch")


def test_a_warc_file_not_starting_with_warcinfo_is_warc_invalid(sealed):
    """The first record's type changed (its block, and so its digest, untouched): the file's
    own first record is checked, although no manifest names it. (Its WARC-Filename line goes
    too, so that the member, recompressed, always fits in its old length.)"""
    warc, _, _ = _storage(sealed, _first_manifest(sealed))

    def not_warcinfo(record: bytes) -> bytes:
        head, sep, block = record.partition(b"\r\n\r\n")
        lines = [ln for ln in head.split(b"\r\n") if not ln.startswith(b"WARC-Filename:")]
        return b"\r\n".join(lines).replace(b"WARC-Type: warcinfo", b"WARC-Type: metadata", 1) + sep + block

    rewrite_member(sealed.files, warc, 0, not_warcinfo)
    res = sealed.run("verify", "--json")
    found = [p for p in res.json()["problems"] if p["code"] == "warc-invalid"]  # type: ignore[index]
    assert [p["message"] for p in found] == ["WARC file does not start with warcinfo"]
    assert found[0]["file"] == warc + "@0"
    assert sealed.verify_codes() == sealed.expect("warc-invalid")


def test_payload_changed_naively_is_warc_invalid_and_content_mismatch(sealed):
    warc, offset, _ = _storage(sealed, _first_manifest(sealed))
    rewrite_member(sealed.files, warc, offset, lambda r: flip_payload_byte(r, 3, fix_digest=False))
    assert sealed.verify_codes() == sealed.expect("warc-invalid", "content-mismatch")


def test_warc_invalid_byte_flipped_in_compressed_payload(sealed):
    warc, offset, length = _storage(sealed, _first_manifest(sealed))
    flip_byte(sealed.files, warc, offset + length // 2)
    assert sealed.verify_codes() == sealed.expect("warc-invalid")


def test_warc_invalid_header_changed(sealed):
    warc, offset, _ = _storage(sealed, _first_manifest(sealed))

    def backdate(record: bytes) -> bytes:
        head = record.split(b"\r\n\r\n")[0].decode()
        date = next(line for line in head.split("\r\n") if line.startswith("WARC-Date:"))
        old = date.split(": ")[1]
        return set_header(record, "WARC-Date", "2001" + old[4:])

    rewrite_member(sealed.files, warc, offset, backdate)
    assert sealed.verify_codes() == sealed.expect("warc-invalid")


def test_signature_invalid_manifest_field_edited_naively(sealed):
    key = _first_manifest(sealed)
    doc = load(sealed.files, key)
    doc["content"]["language"] = "en"
    dump(sealed.files, key, doc)
    # The WARC copy of the manifest no longer matches the file, the index remembers
    # the manifest's old digest, and the log committed to its old bytes: four witnesses.
    assert sealed.verify_codes() == sealed.expect(
        "signature-invalid", "content-mismatch", "index-stale", "log-mismatch"
    )


def test_signature_invalid_manifest_field_edited_thoroughly(sealed):
    key = _last_manifest(sealed)
    doc = load(sealed.files, key)
    doc["source"]["metadata"]["published"] = "1999"
    dump(sealed.files, key, doc)
    replace_last_metadata_record(sealed.files, key)
    sealed.ok("reindex")
    relog(sealed.files)
    assert sealed.verify_codes() == sealed.expect("signature-invalid")


def test_record_missing_warc_file_deleted(sealed):
    warc, _, _ = _storage(sealed, _first_manifest(sealed))
    sealed.files.delete(warc)
    assert sealed.verify_codes() == sealed.expect("record-missing")


def test_warc_invalid_file_truncated(sealed):
    warc, _, _ = _storage(sealed, _last_manifest(sealed))
    blob = sealed.files.read(warc)
    meta_start = last_record_offset(blob)  # the last event's manifest copy
    sealed.files.write(warc, blob[: meta_start + (len(blob) - meta_start) // 2])
    assert sealed.verify_codes() == sealed.expect("warc-invalid")


def test_record_orphan_extra_record_appended(sealed, tmp_path):
    import io

    from warcio.warcwriter import WARCWriter

    warc, _, _ = _storage(sealed, _last_manifest(sealed))
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True, warc_version="1.1")
    w.write_record(w.create_warc_record("urn:x", "resource", payload=io.BytesIO(b"planted"), length=7))
    sealed.files.write(warc, sealed.files.read(warc) + buf.getvalue())
    assert sealed.verify_codes() == sealed.expect("record-orphan")


def test_key_untrusted_event_signed_by_unknown_key(sealed):
    key = _last_manifest(sealed)
    forger = Ed25519PrivateKey.generate()
    doc = load(sealed.files, key)
    from archiver.signing import key_id_of

    doc["actor"]["key_id"] = key_id_of(forger.public_key())
    dump(sealed.files, key, resign(doc, forger))
    replace_last_metadata_record(sealed.files, key)
    sealed.ok("reindex")  # the forger rebuilds the derived index too
    relog(sealed.files)  # ... and, holding alice's key too, the log
    assert sealed.verify_codes() == sealed.expect("key-untrusted")


def test_key_untrusted_auditor_key_cannot_capture(sealed, tmp_path):
    sealed.ok("keys", "generate", "audrey", "--role", "auditor")
    from archiver import KeyStore

    audrey = KeyStore().load("audrey", lambda n: None)
    key = _last_manifest(sealed)
    doc = load(sealed.files, key)
    doc["actor"] = {"key_id": audrey.key_id, "name": "audrey", "role": "auditor"}
    doc["capture"]["operator"] = "audrey"
    dump(sealed.files, key, resign(doc, audrey.private, role="auditor"))
    replace_last_metadata_record(sealed.files, key)
    sealed.ok("reindex")
    relog(sealed.files)
    assert sealed.verify_codes() == sealed.expect("key-untrusted")


def test_key_revoked_signature_after_revocation(archive, arabic_dir):
    env = {"ARCHIVER_TEST_NOW": "2026-01-02T00:00:00.000000Z"}
    archive.ok("ingest", str(arabic_dir / "a.txt"), env=env)
    assert archive.verify_codes() == set()
    key_id = archive.ok("keys", "list", "--json").json()[0]["key_id"]  # type: ignore[index]
    # Compromised since 1 January: everything it signed from then on is suspect.
    archive.ok("keys", "revoke", key_id, "--reason", "laptop stolen", "--effective", "2026-01-01T00:00:00Z")
    assert archive.verify_codes() == {"key-revoked"}


def test_revocation_does_not_touch_earlier_signatures(archive, arabic_dir):
    env = {"ARCHIVER_TEST_NOW": "2026-01-02T00:00:00.000000Z"}
    archive.ok("ingest", str(arabic_dir / "a.txt"), env=env)
    key_id = archive.ok("keys", "list", "--json").json()[0]["key_id"]  # type: ignore[index]
    archive.ok("keys", "revoke", key_id, "--reason", "retired", "--effective", "2026-02-01T00:00:00Z")
    assert archive.verify_codes() == set()
    # ... and the revoked key can no longer sign.
    res = archive.run("ingest", str(arabic_dir / "b.txt"))
    assert res.exit_code == 2 and "revoked" in res.stderr


def test_index_stale_row_altered(sealed):
    sealed.files.sql("UPDATE events SET sha256 = ? WHERE sequence = 0", "0" * 64)
    assert sealed.verify_codes() == {"index-stale"}
    sealed.ok("reindex")
    assert sealed.verify_codes() == set()


def test_index_stale_counts_each_event_that_differs_once(sealed):
    """Step 7 compares each document's rows with the index's as the document is checked;
    every (document, sequence) that differs counts once: a row altered, one missing, one
    no event implies, a manifest copy's hint moved. A verify of some documents counts
    only theirs (it reads the index after checking them)."""
    a, b = (d["document"] for d in sealed.ok("list", "--json").json())  # type: ignore[union-attr]

    def stale(*args: str) -> list[str]:
        res = sealed.run("verify", "--json", *args)
        found = [(p["code"], p["message"]) for p in res.json()["problems"]]  # type: ignore[index]
        assert all(code == "index-stale" for code, _ in found), found
        return [message.split(" on ")[1].split(" ")[0] for _, message in found]

    sealed.files.sql("UPDATE events SET sha256 = ? WHERE document_id = ?", "0" * 64, a)
    assert stale() == ["1"]
    # b's row moved: its event's row is missing, and a row no event implies is there
    sealed.files.sql("UPDATE events SET sequence = 4 WHERE document_id = ?", b)
    assert stale() == ["3"]
    assert stale(a) == ["1"] and stale(b) == ["2"]
    sealed.ok("reindex")
    assert stale() == [] and stale(a) == []
    sealed.files.sql("DELETE FROM events WHERE document_id = ?", a)
    assert stale() == ["1"] and stale(b) == []
    sealed.files.sql("UPDATE events SET meta_warc_file = meta_warc_file || 'x' WHERE document_id = ?", b)
    assert stale() == ["2"] and stale(b) == ["1"]


@pytest.mark.local_only  # an S3 archive's catalog is a database, not a file a copy may lack
def test_missing_index_is_not_a_problem_and_is_rebuilt(sealed, tmp_path):
    """The index is derived, never authoritative: a copy may come without one."""
    (sealed.root / "store" / "index.sqlite").unlink()
    assert sealed.verify_codes() == set()
    src = tmp_path / "more.txt"
    src.write_text("نص آخر\n", encoding="utf-8")
    sealed.ingest(src)  # the next writer rebuilds it
    assert (sealed.root / "store" / "index.sqlite").is_file()
    assert sealed.verify_codes() == set()


def test_schema_invalid_unknown_member_even_if_signed(sealed):
    key = _last_manifest(sealed)
    doc = load(sealed.files, key)
    doc["injected"] = "x"
    from archiver import KeyStore

    alice = KeyStore().load("alice", lambda n: None)
    dump(sealed.files, key, resign(doc, alice.private))
    replace_last_metadata_record(sealed.files, key)
    sealed.ok("reindex")
    relog(sealed.files)
    assert sealed.verify_codes() == sealed.expect("schema-invalid")


def test_schema_invalid_manifest_not_json(sealed):
    sealed.files.write(_first_manifest(sealed), b"{ not json")
    sealed.ok("reindex")
    # Not parseable at all: its records can no longer be attributed to it, and the
    # log committed to other bytes.
    assert sealed.verify_codes() == sealed.expect("schema-invalid", "record-orphan", "log-mismatch")


def test_schema_invalid_duplicate_member_names(sealed):
    key = _first_manifest(sealed)
    text = sealed.files.read(key).decode("utf-8")
    sealed.files.write(
        key, text.replace('"action": "captured",', '"action": "captured", "action": "edited",').encode()
    )
    assert "schema-invalid" in sealed.verify_codes()


def test_schema_invalid_integer_too_long_to_read(sealed):
    """An integer of more digits than Python converts (4,300) is refused as not JSON, in
    the report: it was once a ValueError that no caller expected, a traceback."""
    key = _first_manifest(sealed)
    text = sealed.files.read(key).decode("utf-8")
    sealed.files.write(key, text.replace('"sequence": 0,', '"sequence": ' + "1" * 5000 + ",").encode())
    res = sealed.run("verify", "--json")
    assert res.exit_code == 1, (res.stdout, res.stderr)
    refused = [p for p in res.json()["problems"] if p["code"] == "schema-invalid"]
    assert [(p["file"], p["message"]) for p in refused] == [(key, "not JSON: an integer too long to read")]


def test_signature_invalid_key_file_edited(sealed):
    key_file = sealed.files.keys("manifests/keys/")[0]
    doc = load(sealed.files, key_file)
    doc["role"] = "auditor"
    dump(sealed.files, key_file, doc)
    # The key is no longer trusted, so everything it signed (checkpoints too) is
    # untrusted; and the log committed to the key file's old bytes.
    assert sealed.verify_codes() == sealed.expect("signature-invalid", "key-untrusted", "log-mismatch")


def test_record_missing_manifest_points_nowhere(sealed):
    key = _last_manifest(sealed)
    doc = load(sealed.files, key)
    doc["storage"]["offset"] += 10_000_000
    from archiver import KeyStore

    alice = KeyStore().load("alice", lambda n: None)
    dump(sealed.files, key, resign(doc, alice.private))
    sealed.ok("reindex")
    relog(sealed.files)
    codes = sealed.verify_codes()
    # The named record is absent, the real one unaccounted for, and the WARC copy
    # of the manifest (the original) no longer matches the re-signed file.
    assert codes == sealed.expect("record-missing", "record-orphan", "content-mismatch")


def test_chain_broken_revisit_event_deleted(archive, arabic_dir):
    a = arabic_dir / "a.txt"
    archive.ingest(a)
    archive.ingest(a)
    archive.ingest(a)
    keys = manifest_keys(archive.files)
    assert [load(archive.files, k)["sequence"] for k in keys] == [0, 1, 2]
    middle = keys[1]
    s = load(archive.files, middle)["storage"]
    archive.files.delete(middle)
    archive.ok("reindex")
    codes = archive.verify_codes()
    # Its revisit and metadata records are orphaned, and the log misses it: all reported.
    assert codes == archive.expect("chain-broken", "record-orphan", "log-mismatch"), codes
    assert s["record_type"] == "revisit"


def test_verify_json_report_is_schema_valid_with_problems(sealed):
    from archiver.schema import validator

    sealed.files.sql("UPDATE events SET sha256 = ? WHERE sequence = 0", "0" * 64)
    res = sealed.run("verify", "--json")
    report = json.loads(res.stdout)
    validator("report").validate(report)
    assert report["problems"][0]["code"] == "index-stale"
    assert res.exit_code == 1


def test_read_member_helper_roundtrip(sealed):
    warc, offset, length = _storage(sealed, _first_manifest(sealed))
    data, n = read_member(sealed.files.read(warc), offset)
    assert n == length and data.startswith(b"WARC/1.1\r\n")
