"""Ingest, verify, cat: the round trip on real texts, odd files, and through warcio's own tools."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.backends


def _corpus_metadata(entry: dict[str, object]) -> dict[str, object]:
    """corpus.json's descriptive fields mapped onto our metadata schema."""
    md: dict[str, object] = {"language": entry["language"]}
    for ours, theirs in (
        ("title", "title"),
        ("publisher", "publisher"),
        ("published", "published"),
        ("url", "source_url"),
        ("published_note", "published_note"),
        ("notes", "notes"),
    ):
        if entry.get(theirs) is not None:
            md[ours] = entry[theirs]
    return md


def test_corpus_round_trip(archive, corpus, tmp_path):
    meta = json.loads((corpus / "corpus.json").read_text("utf-8"))
    ids = {}
    for entry in meta["documents"]:
        src = corpus / entry["file"]
        mdfile = tmp_path / (entry["file"] + ".json")
        mdfile.write_text(json.dumps(_corpus_metadata(entry), ensure_ascii=False), encoding="utf-8")
        [doc] = archive.ingest(src, metadata=str(mdfile))
        ids[entry["file"]] = (doc, entry)
    assert archive.verify_codes() == set()
    for name, (doc, entry) in ids.items():
        out = archive.ok("cat", doc).stdout_bytes
        assert out == (corpus / name).read_bytes()
        assert hashlib.sha256(out).hexdigest() == entry["sha256"]
        shown = archive.ok("show", doc, "--json").json()
        assert shown["content"]["sha256"] == entry["sha256"]  # type: ignore[index]
        assert shown["content"]["language"] == "ar"  # type: ignore[index]
        assert shown["source"]["metadata"].get("title") == entry["title"]  # type: ignore[index]
        assert shown["content"]["media_type"] == "text/plain"  # type: ignore[index]
        assert shown["content"]["charset"] == "utf-8"  # type: ignore[index]
    listed = archive.ok("list", "--json").json()
    assert {d["document"] for d in listed} == {d for d, _ in ids.values()}  # type: ignore[union-attr,index]
    archive.warcio_check(tmp_path)


def test_text_digest_ignores_line_endings_and_composition(archive, tmp_path):
    a, b = tmp_path / "lf.txt", tmp_path / "crlf.txt"
    a.write_bytes("caf\u00e9 \u0642\u064e\nline\n".encode())
    b.write_bytes("cafe\u0301 \u0642\u064e\r\nline\r\n".encode())
    [da] = archive.ingest(a)
    [db] = archive.ingest(b)
    ca = archive.ok("show", da, "--json").json()["content"]  # type: ignore[index]
    cb = archive.ok("show", db, "--json").json()["content"]  # type: ignore[index]
    assert ca["sha256"] != cb["sha256"]
    assert ca["text_sha256"] == cb["text_sha256"] is not None


def test_folder_walk_sorted_sidecars_hidden_and_links(archive, arabic_dir):
    res = archive.ok("ingest", str(arabic_dir), "--json").json()
    # sorted; .hidden.txt, link.txt (a symlink) and the sidecar itself are not documents
    assert [Path(r["source"]).name for r in res] == ["a.txt", "b.txt"]  # type: ignore[index]
    a = archive.ok("show", res[0]["document"], "--json").json()  # type: ignore[index]
    assert a["source"]["metadata"] == {"title": "المعتقلون", "language": "ar", "published": "2020-03"}  # type: ignore[index]
    assert a["content"]["language"] == "ar"  # type: ignore[index]
    everything = archive.ok(
        "ingest", str(arabic_dir), "--include-hidden", "--follow-symlinks", "--json"
    ).json()
    names = [Path(r["source"]).name for r in everything]  # type: ignore[index]
    assert names == [".hidden.txt", "a.txt", "b.txt", "link.txt"]
    assert archive.verify_codes() == set()


def test_options_override_sidecar_and_meta_pairs(archive, arabic_dir):
    [doc] = archive.ingest(arabic_dir / "a.txt", title="override", meta="case=caesar-1")
    md = archive.ok("show", doc, "--json").json()["source"]["metadata"]  # type: ignore[index]
    assert md["title"] == "override" and md["published"] == "2020-03"
    assert md["meta"] == {"case": "caesar-1"}


def test_empty_binary_and_stdin(archive, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    blob = tmp_path / "photo.jpg"
    blob.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(50_000))
    [de] = archive.ingest(empty)
    [db] = archive.ingest(blob)
    res = archive.ok("ingest", "-", "--title", "from a pipe", input="نص من الأنبوب".encode())
    [ds] = res.stdout.split()
    assert archive.ok("cat", de).stdout_bytes == b""
    assert archive.ok("cat", db).stdout_bytes == blob.read_bytes()
    assert archive.ok("cat", ds).stdout_bytes == "نص من الأنبوب".encode()
    shown = archive.ok("show", db, "--json").json()
    assert shown["content"]["media_type"] == "image/jpeg"  # type: ignore[index]
    assert shown["content"]["text_sha256"] is None  # type: ignore[index]
    stdin_doc = archive.ok("show", ds, "--json").json()
    assert stdin_doc["source"]["filename"] is None  # type: ignore[index]
    assert archive.verify_codes() == set()
    archive.warcio_check(tmp_path)


def test_identical_bytes_elsewhere_become_a_revisit_record(archive, tmp_path):
    a = tmp_path / "one.txt"
    b = tmp_path / "two.txt"
    a.write_text("نفس النص", encoding="utf-8")
    b.write_text("نفس النص", encoding="utf-8")
    [da, db] = archive.ingest(a, b)
    assert da != db  # different sources: two documents ...
    sb = archive.ok("show", db, "--json").json()["storage"]  # type: ignore[index]
    assert sb["record_type"] == "revisit"  # ... but one stored copy
    assert archive.ok("cat", db).stdout_bytes == a.read_bytes()
    # the same source again: a new dated capture event of the same document
    [again] = archive.ingest(a)
    assert again == da
    assert archive.ok("show", da, "--json").json()["sequence"] == 1  # type: ignore[index]
    assert archive.ok("show", da, "--version", "0", "--json").json()["sequence"] == 0  # type: ignore[index]
    assert archive.verify_codes() == set()
    archive.warcio_check(tmp_path)


def test_rotation_starts_new_files_each_with_warcinfo(new_archive, tmp_path):
    small = new_archive("small", "--warc-size", "4096")
    small.ok("keys", "generate", "alice")
    files = []
    for i in range(6):
        p = tmp_path / f"doc{i}.bin"
        p.write_bytes(os.urandom(3000))
        files.append(p)
    small.ingest(*files[:3])  # one command across several files
    for p in files[3:]:
        small.ingest(p)
    assert len(small.files.warcs()) >= 3
    small.warcio_check(tmp_path)
    assert small.verify_codes() == set()


def test_verify_single_document(archive, arabic_dir):
    [da] = archive.ingest(arabic_dir / "a.txt")
    [db] = archive.ingest(arabic_dir / "b.txt")
    report = archive.ok("verify", da[:6], "--json").json()
    assert report["scope"] == "documents" and report["counts"]["documents"] == 1  # type: ignore[index]
    # damage the other document only: verifying da stays clean, db does not
    archive.files.write(f"manifests/events/{db[:2]}/{db}-000000.json", b"{}")
    assert archive.verify_codes(da) == set()
    assert "schema-invalid" in archive.verify_codes(db)


@pytest.mark.parametrize("prefix_len", [1, 4])
def test_ambiguous_and_unique_prefixes(archive, tmp_path, prefix_len):
    docs = []
    for i in range(40):
        p = tmp_path / f"{i}.txt"
        p.write_text(f"document {i}")
        docs += archive.ingest(p)
    first = docs[0]
    clash = [d for d in docs if d[:prefix_len] == first[:prefix_len]]
    res = archive.run("show", first[:prefix_len])
    if len(clash) > 1:
        assert res.exit_code == 2 and "ambiguous" in res.stderr
    unique = next(first[:n] for n in range(1, 33) if sum(d.startswith(first[:n]) for d in docs) == 1)
    assert archive.ok("show", unique, "--json").json()["document_id"] == first  # type: ignore[index]


def test_large_batches_are_written_in_groups(archive, tmp_path, monkeypatch):
    """A batch bigger than a group: manifests are flushed group by group (bounded memory),
    re-captures within the batch still chain, and the whole command is one commit."""
    import archiver.commit

    monkeypatch.setattr(archiver.commit, "GROUP", 2)
    a, b, c = (tmp_path / n for n in ("a.txt", "b.txt", "c.txt"))
    for p, text in ((a, "نص أ"), (b, "نص ب"), (c, "نص ج")):
        p.write_text(text, encoding="utf-8")
    out = archive.ok("ingest", str(a), str(b), str(a), str(c), str(a), "--json").json()
    assert [o["sequence"] for o in out] == [0, 0, 1, 0, 2]  # type: ignore[index]
    assert len({o["document"] for o in out}) == 3  # type: ignore[index]
    assert archive.verify_codes() == set()
    checkpoints = archive.files.keys("manifests/log/checkpoints/")
    assert [int(k.rsplit("/", 1)[-1]) for k in checkpoints] == [1, 6]  # the key, then one commit for all five
