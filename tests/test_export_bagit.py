"""BagIt export: validated by the Library of Congress bagit package, verified by archiver and by
the standalone verifier, with sealed originals and seeds withheld."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bagit
import pytest

from conftest import REPO, ArchiveFixture, invoke, tree_snapshot, warcio_check
from tamper import random_arabic, read_member

NAME = "سامي"


@pytest.fixture
def redacted_archive(archive: ArchiveFixture, tmp_path: Path) -> tuple[ArchiveFixture, str, str]:
    """Two documents; the first edited, then redacted (the name NAME sealed away)."""
    src = tmp_path / "witness.txt"
    src.write_text(random_arabic(1, 200) + f" الشاهد {NAME} يروي القصة.\n", encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text(random_arabic(2, 200) + "\n", encoding="utf-8")
    doc, doc2 = archive.ingest(src, other)
    edited = tmp_path / "edited.txt"
    edited.write_text(src.read_text("utf-8") + "سطر جديد.\n", encoding="utf-8")
    archive.ok("edit", doc, str(edited), "--reason", "add a line")
    red = tmp_path / "red.txt"
    red.write_text(edited.read_text("utf-8").replace(NAME, "[محجوب]"), encoding="utf-8")
    archive.ok("redact", doc, str(red), "--reason", "protect a witness")
    return archive, doc, doc2


def _bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _verify(path: Path, *args: str) -> dict:
    res = invoke("--archive", str(path), "verify", "--json", *args)
    report = res.json()
    assert isinstance(report, dict)
    assert res.exit_code == (0 if report["ok"] else 1), res.stderr
    return report


def test_bag_validates_verifies_and_withholds_the_sealed(redacted_archive, tmp_path):
    archive, doc, _ = redacted_archive
    before = tree_snapshot(archive.root)
    bag_path = tmp_path / "bag"
    out = archive.ok("export", "bagit", str(bag_path), "--json").json()
    assert tree_snapshot(archive.root) == before  # export never writes into the archive
    assert out["documents"] == 2
    bag = bagit.Bag(str(bag_path))
    bag.validate()  # every payload and tag file against sha256 and sha512 manifests
    assert set(bag.algorithms) == {"sha256", "sha512"}
    assert bag.info["External-Identifier"].startswith("urn:uuid:")
    assert bag.info["Bag-Software-Agent"].startswith("archiver ")
    cp_file = bag_path / bag.info["Archiver-Checkpoint-File"]
    assert cp_file.is_file() and int(cp_file.name) == int(bag.info["Archiver-Checkpoint-Size"])

    # the secret is nowhere in the bag: not in the WARC files, not in the documents for people
    gz = [p for p in (bag_path / "data/archive/store").iterdir()]
    import gzip

    plain = b"".join(gzip.decompress(p.read_bytes()) for p in gz)
    assert NAME.encode() not in plain
    assert NAME.encode() not in _bytes_under(bag_path / "data/documents")
    # ...but it is in the archive itself (the test would prove nothing otherwise)
    arch_plain = b"".join(gzip.decompress(p.read_bytes()) for p in (archive.root / "store").glob("*.warc.gz"))
    assert NAME.encode() in arch_plain

    # 3 text versions of doc (captured, edited, redacted) + 1 of doc2: 4 seeds withheld,
    # plus the 2 sealed versions and the edit's diff (which quotes the sealed text)
    export = json.loads((bag_path / "data/archive/manifests/export.json").read_text())
    reasons = sorted(w["reason"] for w in export["withheld"])
    assert reasons == ["sealed-diff"] + ["sealed-seed"] * 4 + ["sealed-version"] * 2

    # the bag's archive verifies clean, whole and per document, and says what it withheld
    report = _verify(bag_path)
    assert report["ok"], report["problems"]
    assert report["counts"]["withheld"] == 7
    assert report["counts"]["documents"] == 2
    assert _verify(bag_path, doc)["ok"]
    # the people's copy of the redacted document is its current (redacted) version
    [people] = list((bag_path / "data/documents" / doc).iterdir())
    assert "[محجوب]" in people.read_text("utf-8")
    assert invoke("--archive", str(archive.root), "cat", doc).stdout_bytes == people.read_bytes()

    # warcio accepts every exported WARC file, placeholders included
    warcio_check(bag_path / "data/archive/store")

    # the standalone verifier (no archiver) accepts it too
    res = subprocess.run(
        [sys.executable, "-I", str(REPO / "tools" / "verify_standalone.py"), str(bag_path / "data/archive")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_partial_bag_holds_only_the_chosen_documents(redacted_archive, tmp_path):
    archive, _, doc2 = redacted_archive
    bag_path = tmp_path / "one"
    archive.ok("export", "bagit", str(bag_path), doc2[:10])
    bagit.Bag(str(bag_path)).validate()
    events = list((bag_path / "data/archive/manifests/events").rglob("*.json"))
    assert {p.name[:32] for p in events} == {doc2}
    assert [p.name for p in (bag_path / "data/documents").iterdir()] == [doc2]
    report = _verify(bag_path)
    assert report["ok"], report["problems"]
    assert report["counts"]["documents"] == 1
    assert report["counts"]["withheld"] > 5  # every record of the other document
    res = subprocess.run(
        [sys.executable, "-I", str(REPO / "tools" / "verify_standalone.py"), str(bag_path / "data/archive")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and "other manifest(s) left out" in res.stdout, res.stdout + res.stderr


def test_placeholder_where_nothing_may_be_withheld_is_reported(redacted_archive, tmp_path):
    """An attacker cannot hide a changed record behind a placeholder: only sealed material may go."""
    archive, _, doc2 = redacted_archive
    bag_path = tmp_path / "bag"
    archive.ok("export", "bagit", str(bag_path))
    from archiver.withhold import Withheld, write_placeholder

    e = json.loads(
        next((bag_path / "data/archive/manifests/events").rglob(f"{doc2}-000000.json")).read_text()
    )
    s = e["storage"]
    warc = bag_path / "data/archive/store" / s["warc_file"]
    data = bytearray(warc.read_bytes())
    import io

    buf = io.BytesIO()
    write_placeholder(
        buf, Withheld(s["warc_file"], s["offset"], s["length"], s["record_id"], "sealed-version"), e["time"]
    )
    assert len(buf.getvalue()) == s["length"]
    _, length = read_member(bytes(data), s["offset"])
    data[s["offset"] : s["offset"] + length] = buf.getvalue()
    warc.write_bytes(bytes(data))
    report = _verify(bag_path)
    codes = {(p["code"], p["document"]) for p in report["problems"]}
    assert ("content-mismatch", doc2) in codes


def test_a_bag_with_a_flipped_byte_fails_both_checks(redacted_archive, tmp_path):
    archive, doc, _ = redacted_archive
    bag_path = tmp_path / "bag"
    archive.ok("export", "bagit", str(bag_path))
    people = next((bag_path / "data/archive/manifests/events").rglob(f"{doc}-000002.json"))
    raw = bytearray(people.read_bytes())
    raw[raw.index(b'"reason"') + 12] ^= 1
    people.write_bytes(bytes(raw))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag_path)).validate()
    report = _verify(bag_path)
    assert not report["ok"]
    assert "signature-invalid" in {p["code"] for p in report["problems"]} or "schema-invalid" in {
        p["code"] for p in report["problems"]
    }


def test_bag_destination_must_be_new_and_failure_leaves_nothing(archive, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("نص\n", encoding="utf-8")
    archive.ingest(src)
    taken = tmp_path / "taken"
    taken.mkdir()
    res = archive.run("export", "bagit", str(taken))
    assert res.exit_code == 2 and "already exists" in res.stderr
    res = archive.run("export", "bagit", str(tmp_path / "new"), "ffffffffffff")
    assert res.exit_code == 2 and "no document" in res.stderr
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new.partial")]


def test_export_json_removed_makes_placeholders_findings(redacted_archive, tmp_path):
    """export.json is unsigned: without it (or with a forged one) placeholders are not excused."""
    archive, doc, _ = redacted_archive
    bag_path = tmp_path / "bag"
    archive.ok("export", "bagit", str(bag_path))
    info = bag_path / "data/archive/manifests/export.json"
    saved = info.read_bytes()
    info.unlink()
    report = _verify(bag_path)
    assert not report["ok"]
    assert {(p["code"], p["document"]) for p in report["problems"]} >= {("content-mismatch", doc)}
    forged = json.loads(saved)
    forged["archive_id"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    info.write_text(json.dumps(forged))
    report = _verify(bag_path)
    assert "schema-invalid" in {p["code"] for p in report["problems"]}
