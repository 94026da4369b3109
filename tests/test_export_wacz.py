"""WACZ export: accepted by the wacz package's validator, pages resolvable through the CDXJ index,
the datapackage digest signed, and the archive inside it verifiable."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.waczexport import surt

from conftest import ArchiveFixture, invoke
from tsaserver import LocalTSA, serve_tsa
from webserver import HTML, serve

pytestmark = pytest.mark.backends


@pytest.fixture
def web_archive(
    archive: ArchiveFixture, corpus: Path, tmp_path: Path
) -> tuple[ArchiveFixture, dict[str, str]]:
    with serve(corpus) as site:
        urls = [f"{site}/redirect", f"{site}/corpus/001_a21ae1eda4454349.txt"]
        urls = [u for u in urls if "corpus" not in u or (corpus / u.rsplit("/", 1)[1]).is_file()]
        docs = archive.ok("capture", *urls, "--language", "ar").stdout.split()
    src = tmp_path / "witness.txt"
    src.write_text("الشاهد سامي يروي القصة.\n", encoding="utf-8")
    [doc] = archive.ingest(src, url="https://example.org/witness", title="شهادة")
    red = tmp_path / "red.txt"
    red.write_text("الشاهد [محجوب] يروي القصة.\n", encoding="utf-8")
    archive.ok("redact", doc, str(red), "--reason", "protect a witness")
    return archive, {"page": docs[0], "witness": doc, **({"text": docs[1]} if len(docs) > 1 else {})}


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wacz", "validate", "-f", str(path)], capture_output=True, text=True
    )


def test_wacz_validates_resolves_and_is_signed(web_archive, tmp_path):
    archive, docs = web_archive
    dest = tmp_path / "evidence.wacz"
    out = archive.ok("export", "wacz", str(dest), "--json").json()
    assert out["documents"] == len(docs) and out["withheld"] >= 2
    res = _validate(dest)
    assert res.returncode == 0 and "Validation succeeded" in res.stdout, res.stdout + res.stderr

    z = zipfile.ZipFile(dest)
    names = z.namelist()
    assert {"datapackage.json", "datapackage-digest.json", "indexes/index.cdx", "pages/pages.jsonl"} <= set(
        names
    )
    for info in z.infolist():
        if info.filename.startswith("archive/"):
            assert info.compress_type == zipfile.ZIP_STORED
    # every page resolves through the CDXJ index to a record whose payload is the archived document
    pages = [json.loads(line) for line in z.read("pages/pages.jsonl").decode().splitlines()]
    assert pages[0]["format"] == "json-pages-1.0"
    cdx = [line.split(" ", 2) for line in z.read("indexes/index.cdx").decode().splitlines()]
    assert cdx == sorted(cdx, key=lambda c: (c[0], c[1]))  # sorted, as replay tools binary-search it
    for page in pages[1:]:
        key = surt(page["url"])
        hits = [json.loads(c[2]) for c in cdx if c[0] == key and json.loads(c[2])["mime"] != "warc/revisit"]
        assert hits, page
        hit = hits[-1]  # the latest version (a redacted one, for a redacted document)
        with z.open(f"archive/{hit['filename']}") as f:
            data = f.read()[hit["offset"] : hit["offset"] + hit["length"]]
        payloads = [(r.rec_type, r.content_stream().read()) for r in ArchiveIterator(io.BytesIO(data))]
        assert len(payloads) == 1 and payloads[0][0] in ("response", "resource", "conversion")
        payload = payloads[0][1]
        assert payload == archive.ok("cat", page["id"]).stdout_bytes
        if page["id"] == docs["page"]:
            assert payload == HTML and page["url"].endswith("/page.html")

    # the datapackage digest: hash of datapackage.json, Ed25519 signature by a key of the archive
    digest = json.loads(z.read("datapackage-digest.json"))
    package = z.read("datapackage.json")
    assert digest["hash"] == "sha256:" + hashlib.sha256(package).hexdigest()
    signed = digest["signedData"]
    assert signed["hash"] == digest["hash"] and signed["created"] == json.loads(package)["created"]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    pub = base64.b64decode(signed["publicKey"])
    Ed25519PublicKey.from_public_bytes(pub).verify(
        base64.b64decode(signed["signature"]), signed["hash"].encode()
    )
    assert signed["keyId"] == hashlib.sha256(pub).hexdigest()

    # the archive inside: manifests.tar beside the WARC files verifies clean, sealed material withheld
    rebuilt = tmp_path / "rebuilt"
    with tarfile.open(fileobj=io.BytesIO(z.read("archiver/manifests.tar"))) as t:
        t.extractall(rebuilt, filter="data")
    (rebuilt / "store").mkdir()
    for n in names:
        if n.startswith("archive/"):
            (rebuilt / "store" / n.split("/")[1]).write_bytes(z.read(n))
    assert (rebuilt / "manifests/keys" / f"{signed['keyId']}.json").is_file()
    report = invoke("--archive", str(rebuilt), "verify", "--json").json()
    assert report["ok"], report["problems"]
    assert report["counts"]["withheld"] == out["withheld"]
    all_plain = b"".join(z.read(n) for n in names if n.startswith("archive/"))
    import gzip

    assert "سامي".encode() not in gzip.decompress(all_plain)


def test_tampered_wacz_fails_validation(web_archive, tmp_path):
    archive, _ = web_archive
    dest = tmp_path / "e.wacz"
    archive.ok("export", "wacz", str(dest))
    # an attacker who rewrites the zip properly (valid zip and gzip CRCs) with one byte of
    # the archived page changed
    import gzip

    bad = tmp_path / "bad.wacz"
    flipped = 0
    with zipfile.ZipFile(dest) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("archive/") and HTML in gzip.decompress(data):
                plain = bytearray(gzip.decompress(data))
                plain[plain.index(HTML) + len(HTML) // 2] ^= 1
                data = gzip.compress(bytes(plain))
                flipped += 1
            dst.writestr(info, data)
    assert flipped == 1
    res = _validate(bad)
    # (py-wacz's validate exits 0 even when validation fails: its verdict is in its output)
    assert "Validation failed" in res.stdout and "Validation succeeded" not in res.stdout, res.stdout


def test_wacz_time_signature_and_failures(web_archive, tmp_path):
    archive, _ = web_archive
    tsa = LocalTSA.create()
    archive.ok("tsa", "trust", str(tsa.root_pem(tmp_path / "root.pem")))
    with serve_tsa(tsa) as url:
        archive.ok("export", "wacz", str(tmp_path / "t.wacz"), "--tsa", url)
    signed = json.loads(zipfile.ZipFile(tmp_path / "t.wacz").read("datapackage-digest.json"))["signedData"]
    from rfc3161_client import VerifierBuilder, decode_timestamp_response

    token = decode_timestamp_response(base64.b64decode(signed["timeSignature"]))
    VerifierBuilder().add_root_certificate(tsa.root_cert).build().verify_message(
        token, base64.b64decode(signed["signature"])
    )
    assert "BEGIN CERTIFICATE" in signed["timestampCert"]
    # an existing destination, an unreachable TSA: exit 2, nothing left behind
    res = archive.run("export", "wacz", str(tmp_path / "t.wacz"))
    assert res.exit_code == 2 and "already exists" in res.stderr
    res = archive.run("export", "wacz", str(tmp_path / "u.wacz"), "--tsa", "http://127.0.0.1:9/")
    assert res.exit_code == 2 and "unreachable" in res.stderr
    assert not (tmp_path / "u.wacz").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
