"""Chain of custody: the full story on a corpus text, custody rules, import, and tampering."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from archiver import KeyStore
from archiver.events import _new_version, _open
from archiver.sealing import seal_and_queue

from conftest import ArchiveFixture, invoke
from tamper import load, manifest_keys, random_arabic, rewrite_member

pytestmark = pytest.mark.backends

BOILERPLATE_START = "\n0 التعليقات Blogger"


def _key_id(archive: ArchiveFixture, name: str) -> str:
    return next(k["key_id"] for k in archive.ok("keys", "list", "--json").json() if k["name"] == name)  # type: ignore[union-attr,index]


@pytest.fixture
def team(archive: ArchiveFixture) -> ArchiveFixture:
    """alice (archivist), bob (archivist), audrey (auditor)."""
    archive.ok("keys", "generate", "bob")
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    return archive


def _events(fx: ArchiveFixture, doc: str) -> list[dict]:
    return [load(fx.files, k) for k in manifest_keys(fx.files, doc)]


def test_full_story_on_a_corpus_text(team, corpus, tmp_path):
    src = corpus / "000_c665e72f07d88505.txt"
    text = src.read_text("utf-8")
    [doc] = team.ok("--key", "alice", "ingest", str(src)).stdout.split()
    assert team.verify_codes() == set()

    clean = tmp_path / "clean.txt"
    clean.write_text(text[: text.index(BOILERPLATE_START)] + "\n", encoding="utf-8")
    team.ok("--key", "alice", "edit", doc, str(clean), "--reason", "drop the blog boilerplate")
    assert team.verify_codes() == set()

    bob = _key_id(team, "bob")
    team.ok("--key", "alice", "transfer", doc, "--to", bob[:8], "--reason", "handover to the legal team")
    assert team.verify_codes() == set()
    team.ok("--key", "bob", "accept", doc)
    assert team.verify_codes() == set()
    team.ok("--key", "audrey", "attest", doc, "--note", "checked against the published article")
    assert team.verify_codes() == set()

    redacted = tmp_path / "redacted.txt"
    current = clean.read_text("utf-8")
    assert "غارانس لو كاين" in current
    redacted.write_text(current.replace("غارانس لو كاين", "[اسم محجوب]"), encoding="utf-8")
    team.ok("--key", "bob", "redact", doc, str(redacted), "--reason", "protect a journalist's name")
    assert team.verify_codes() == set()

    hist = team.ok("history", doc, "--json").json()
    assert [h["action"] for h in hist] == [
        "captured",
        "edited",
        "transferred",
        "accepted",
        "attested",
        "redacted",
    ]  # type: ignore[index]
    assert [h["actor"]["name"] for h in hist] == ["alice", "alice", "alice", "bob", "audrey", "bob"]  # type: ignore[index]
    assert [h["custodian"]["name"] for h in hist] == ["alice", "alice", "alice", "bob", "bob", "bob"]  # type: ignore[index]
    assert hist[2]["pending_transfer_to"] == bob and hist[3]["pending_transfer_to"] is None  # type: ignore[index]
    removed = text[text.index(BOILERPLATE_START) + 1 :].splitlines()
    assert hist[1]["diff"]["lines_removed"] == len(removed) and hist[1]["diff"]["lines_added"] == 0  # type: ignore[index]
    assert hist[5]["diff"]["record"] is None  # a redaction's diff would reveal the name  # type: ignore[index]
    human = team.ok("history", doc, "--diff").stdout
    assert "-0 التعليقات Blogger 0 Facebook" in human and "custodian bob" in human
    assert "غارانس" not in team.ok("history", doc, "--diff").stdout.split("redacted")[-1]
    # the current version is the redacted one; the original and the edit are sealed
    assert team.ok("cat", doc).stdout_bytes == redacted.read_bytes()
    res = team.run("cat", doc, "--version", "1")
    assert res.exit_code == 2 and "sealed" in res.stderr
    assert team.ok("cat", doc, "--version", "0", "--sealed").stdout_bytes == src.read_bytes()
    assert team.ok("show", doc, "--version", "3", "--json").json()["action"] == "accepted"  # type: ignore[index]


def test_custody_rules_refuse_clearly(team, arabic_dir, tmp_path):
    [doc] = team.ok("--key", "alice", "ingest", str(arabic_dir / "a.txt")).stdout.split()
    same = team.run("--key", "alice", "edit", doc, str(arabic_dir / "a.txt"), "--reason", "x")
    assert same.exit_code == 2 and "identical" in same.stderr
    other = tmp_path / "v2.txt"
    other.write_text("نص جديد", encoding="utf-8")
    res = team.run("--key", "bob", "edit", doc, str(other), "--reason", "x")
    assert res.exit_code == 2 and "held by alice" in res.stderr
    res = team.run("--key", "bob", "accept", doc)
    assert res.exit_code == 2 and "no transfer is pending" in res.stderr
    res = team.run("--key", "alice", "transfer", doc, "--to", _key_id(team, "audrey"), "--reason", "x")
    assert res.exit_code == 2 and "cannot receive custody" in res.stderr
    res = team.run("--key", "alice", "attest", doc)
    assert res.exit_code == 2 and "auditor" in res.stderr
    team.ok("--key", "alice", "transfer", doc, "--to", _key_id(team, "bob"), "--reason", "handover")
    # until bob accepts, alice still holds it and bob may not act as custodian
    res = team.run("--key", "bob", "edit", doc, str(other), "--reason", "x")
    assert res.exit_code == 2 and "accept the pending transfer first" in res.stderr
    team.ok("--key", "alice", "edit", doc, str(other), "--reason", "still mine")
    team.ok("--key", "bob", "accept", doc)
    res = team.run("--key", "alice", "edit", doc, str(arabic_dir / "b.txt"), "--reason", "x")
    assert res.exit_code == 2 and "held by bob" in res.stderr
    binary = tmp_path / "img.bin"
    binary.write_bytes(os.urandom(100))
    [bin_doc] = team.ok("--key", "alice", "ingest", str(binary)).stdout.split()
    binary.write_bytes(os.urandom(100))
    res = team.run("--key", "alice", "redact", bin_doc, str(binary), "--reason", "x")
    assert res.exit_code == 2 and "token tree" in res.stderr
    assert team.verify_codes() == set()


@pytest.mark.local_only  # the other copy is a copy of the archive's folder
def test_accept_made_on_another_copy_is_imported(team, arabic_dir, tmp_path):
    [doc] = team.ok("--key", "alice", "ingest", str(arabic_dir / "a.txt")).stdout.split()
    team.ok(
        "--key", "alice", "transfer", doc, "--to", _key_id(team, "bob"), "--reason", "to the field office"
    )
    copy = tmp_path / "bobs-copy"
    shutil.copytree(team.root, copy)
    bobs = ArchiveFixture(copy, team.keydir)
    event_path = bobs.ok("--key", "bob", "accept", doc).stdout.strip()
    assert bobs.verify_codes() == set()
    # meanwhile the main copy moved on with an unrelated document
    team.ok("--key", "alice", "ingest", str(arabic_dir / "b.txt"))
    res = team.ok("--key", "alice", "import", str(copy / event_path))
    assert "imported" in res.stdout
    assert team.verify_codes() == set()
    hist = team.ok("history", doc, "--json").json()
    assert hist[-1]["custodian"]["name"] == "bob"  # type: ignore[index]
    assert (team.root / event_path).read_bytes() == (copy / event_path).read_bytes()
    assert "already present" in team.ok("--key", "alice", "import", str(copy / event_path)).stdout


@pytest.mark.local_only  # the other copy is a copy of the archive's folder
def test_import_refuses_what_would_not_verify(team, arabic_dir, tmp_path):
    [doc] = team.ok("--key", "alice", "ingest", str(arabic_dir / "a.txt")).stdout.split()
    team.ok("--key", "alice", "transfer", doc, "--to", _key_id(team, "bob"), "--reason", "x")
    copy = tmp_path / "copy"
    shutil.copytree(team.root, copy)
    event_path = ArchiveFixture(copy, team.keydir).ok("--key", "bob", "accept", doc).stdout.strip()
    forged = tmp_path / "forged.json"
    doc_json = json.loads((copy / event_path).read_text())
    doc_json["reason"] = "changed after signing"
    forged.write_text(json.dumps(doc_json))
    res = team.run("--key", "alice", "import", str(forged))
    assert res.exit_code == 2 and "signature" in res.stderr
    res = team.run("--key", "alice", "import", str(arabic_dir / "a.txt.meta.json"))
    assert res.exit_code == 2
    # an edit made elsewhere cannot be imported: its bytes are in the other copy's WARC
    other = tmp_path / "v2.txt"
    other.write_text("نسخة", encoding="utf-8")
    [doc2] = team.ok("--key", "alice", "ingest", str(arabic_dir / "b.txt")).stdout.split()
    copy2 = tmp_path / "copy2"
    shutil.copytree(team.root, copy2)
    edit_path = (
        ArchiveFixture(copy2, team.keydir)
        .ok("--key", "alice", "edit", doc2, str(other), "--reason", "x")
        .stdout.strip()
    )
    res = team.run("--key", "alice", "import", str(copy2 / edit_path))
    assert res.exit_code == 2 and "only transfers, accepts and attestations" in res.stderr
    assert team.verify_codes() == set()


@pytest.mark.local_only  # the other copy is a copy of the archive's folder
def test_key_made_on_another_copy_is_imported(archive, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(archive.root, copy)
    carol = invoke(
        "--archive",
        str(copy),
        "keys",
        "generate",
        "carol",
        env={"ARCHIVER_KEY_DIR": str(tmp_path / "carols-keys")},
    ).stdout.strip()
    res = archive.ok("--key", "alice", "import", str(copy / "manifests" / "keys" / f"{carol}.json"))
    assert "imported" in res.stdout
    assert any(k["name"] == "carol" for k in archive.ok("keys", "list", "--json").json())  # type: ignore[union-attr,index]
    assert archive.verify_codes() == set()


# -- tampering: each asserts the exact codes ---------------------------------------------------------
@pytest.fixture
def story(team, arabic_dir, tmp_path):
    """A document with capture, edit, transfer, accept: four events."""
    [doc] = team.ok("--key", "alice", "ingest", str(arabic_dir / "a.txt")).stdout.split()
    v2 = tmp_path / "v2.txt"
    v2.write_text("\n".join(random_arabic(i, 12) for i in range(40)) + "\nسطر ثانٍ معدّل\n", encoding="utf-8")
    team.ok("--key", "alice", "edit", doc, str(v2), "--reason", "correct the transcription")
    team.ok("--key", "alice", "transfer", doc, "--to", _key_id(team, "bob"), "--reason", "handover")
    team.ok("--key", "bob", "accept", doc)
    assert team.verify_codes() == set()
    team.doc = doc  # type: ignore[attr-defined]
    return team


def _forge(archive: ArchiveFixture, doc: str, build, key_name: str, role: str = "archivist") -> None:
    """Write an event through the real write path, but skipping every custody check:
    what an insider with the code and a key could do."""
    arch = archive.open()
    key = KeyStore().load(key_name, lambda n: None)
    with arch.transaction(key) as tx:
        chain, state = _open(tx, doc)
        manifest = build(arch, chain, state, key)
        seal_and_queue(tx, manifest, key, role, state.storage["record_id"], concurrent=False)


def _base(arch, chain, state, key, action):
    from archiver.events import _base as base

    return base(arch, chain, state, action, key, "archivist", "forged")


def test_chain_broken_middle_event_deleted(story):
    story.files.delete(manifest_keys(story.files, story.doc)[1])
    story.ok("reindex")
    # its content record and manifest copy are now unaccounted for, and the log misses it
    assert story.verify_codes() == story.expect("chain-broken", "record-orphan", "log-mismatch")


def test_chain_broken_two_events_swapped(story):
    a, b = manifest_keys(story.files, story.doc)[1:3]
    da, db = story.files.read(a), story.files.read(b)
    story.files.write(a, db)
    story.files.write(b, da)
    # the index and the log still name the files where the events were
    assert story.verify_codes() == story.expect("chain-broken", "index-stale", "log-mismatch")


def test_custody_invalid_previous_custodian_signs_after_transfer(story, tmp_path):
    arch = story.open()
    alice = KeyStore().load("alice", lambda n: None)
    forged = tmp_path / "v3.txt"
    forged.write_text("نص مزور", encoding="utf-8")
    with arch.transaction(alice) as tx:
        chain, state = _open(tx, story.doc)
        _new_version(tx, chain, state, forged, "forged by the former custodian", alice, "edited")
    assert story.verify_codes() == {"custody-invalid"}


def test_custody_invalid_receiver_acts_before_accepting(team, arabic_dir):
    [doc] = team.ok("--key", "alice", "ingest", str(arabic_dir / "a.txt")).stdout.split()
    team.ok("--key", "alice", "transfer", doc, "--to", _key_id(team, "bob"), "--reason", "x")

    def build(arch, chain, state, key):
        m = _base(arch, chain, state, key, "transferred")
        m["transfer"] = {"to": {"key_id": _key_id(team, "alice"), "name": "alice"}}
        return m

    _forge(team, doc, build, "bob")
    assert team.verify_codes() == {"custody-invalid"}


FORGED_TRANSFERS = {
    # name: (what the forger changes in a transfer signed by the custodian bob, expected codes)
    "fork: two events share a predecessor": ({"previous": -2}, {"chain-fork"}),
    "back-dated before its predecessor": ({"time": "2001-09-01T00:00:00.000000Z"}, {"time-invalid"}),
    "dated in the future": ({"time": "2999-01-01T00:00:00.000000Z"}, {"time-invalid"}),
}


@pytest.mark.parametrize("case", sorted(FORGED_TRANSFERS))
def test_forged_transfer(story, case):
    change, expected = FORGED_TRANSFERS[case]

    def build(arch, chain, state, key):
        m = _base(arch, chain, state, key, "transferred")
        m["transfer"] = {"to": {"key_id": _key_id(story, "alice"), "name": "alice"}}
        for member, value in change.items():
            m[member] = chain[value].digest if member == "previous" else value
        return m

    _forge(story, story.doc, build, "bob")
    assert story.verify_codes() == expected


def test_content_mismatch_stored_diff_edited(story):
    edit = next(e for e in _events(story, story.doc) if e["action"] == "edited")
    ref = edit["diff"]["record"]

    def change(record: bytes) -> bytes:
        # make the diff claim one line more was removed, and fix the WARC digest
        from tamper import set_header, warc_b32

        head, _, rest = record.partition(b"\r\n\r\n")
        block = rest[:-4].replace("سطر ثانٍ".encode(), "سطر ثانى".encode(), 1)
        return set_header(head + b"\r\n\r\n" + block + b"\r\n\r\n", "WARC-Block-Digest", warc_b32(block))

    rewrite_member(story.files, "store/" + ref["warc_file"], ref["offset"], change)
    assert story.verify_codes() == story.expect("content-mismatch")


def test_redaction_checked_with_and_without_the_original(team, tmp_path):
    from archiver.redaction import check_proof, make_proof, tree_of

    text = "شهد أحمد الخطيب أمام المحكمة في كوبلنز\nثم غادر.\n"
    seed = os.urandom(32)
    tree = tree_of(text, seed)
    redacted = text.replace("أحمد الخطيب", "[…]")
    proof = make_proof(text, redacted, seed).proof
    assert check_proof(proof, redacted, tree) == []  # auditor without the original
    assert check_proof(proof, redacted, tree, text, seed) == []  # auditor with it
    # one unredacted character changed: caught without the original
    tampered = redacted.replace("كوبلنز", "كوبلنس")
    assert check_proof(proof, tampered, tree)
    # a hidden leaf swapped for another: invisible without the original, caught with it
    import base64

    from archiver.redaction import token_leaf

    fake = json.loads(json.dumps(proof))
    seg = next(s for s in fake["segments"] if "redact" in s)
    leaves = bytearray(base64.b64decode(seg["leaves"]))
    leaves[:32] = token_leaf(b"\x00" * 16, "محمد ")
    seg["leaves"] = base64.b64encode(bytes(leaves)).decode()
    assert check_proof(fake, redacted, tree)  # root no longer matches either
    # the proof reveals neither the name nor its salts
    assert "أحمد" not in json.dumps(proof, ensure_ascii=False)


def test_redaction_tampered_in_the_archive(team, tmp_path):
    src = tmp_path / "t.txt"
    src.write_text(
        random_arabic(1, 300) + " الشاهد سامي يروي القصة. " + random_arabic(2, 300), encoding="utf-8"
    )
    [doc] = team.ok("--key", "alice", "ingest", str(src)).stdout.split()
    red = tmp_path / "r.txt"
    red.write_text(src.read_text("utf-8").replace("سامي", "[محجوب]"), encoding="utf-8")
    team.ok("--key", "alice", "redact", doc, str(red), "--reason", "protect a witness")
    assert team.verify_codes() == set()
    # alter an unredacted word of the published version, fixing every WARC digest
    e = next(e for e in _events(team, doc) if e["action"] == "redacted")
    from tamper import set_header, warc_b32

    def change(record: bytes) -> bytes:
        head, _, rest = record.partition(b"\r\n\r\n")
        block = rest[:-4].replace("يروي".encode(), "يخفي".encode(), 1)
        out = set_header(head + b"\r\n\r\n" + block + b"\r\n\r\n", "WARC-Block-Digest", warc_b32(block))
        return set_header(out, "WARC-Payload-Digest", warc_b32(block))

    rewrite_member(team.files, "store/" + e["storage"]["warc_file"], e["storage"]["offset"], change)
    codes = team.verify_codes()
    # the bytes no longer match the signed digests, and the proof no longer holds
    assert codes == team.expect("content-mismatch")
    report = team.run("verify", "--json").json()
    messages = " ".join(p["message"] for p in report["problems"])  # type: ignore[index]
    assert "does not derive from the signed original" in messages
