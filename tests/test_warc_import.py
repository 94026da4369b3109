"""archiver ingest --warc: WARCs made by wget --warc-file and by warcio, against a real local server."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ArchiveFixture
from webserver import HTML, serve

pytestmark = pytest.mark.backends

WGET = shutil.which("wget")
REQUIRE = bool(__import__("os").environ.get("ARCHIVER_REQUIRE_WGET"))


def _manifest(archive: ArchiveFixture, doc: str, seq: int = 0) -> dict:
    return json.loads(archive.files.read(f"manifests/events/{doc[:2]}/{doc}-{seq:06d}.json"))


@pytest.fixture
def wget_warc(tmp_path: Path, corpus: Path) -> tuple[Path, str]:
    if WGET is None:
        if REQUIRE:
            pytest.fail("wget is required (Debian package wget) but missing")
        pytest.skip("wget is not installed")
    with serve(corpus) as base:
        out = tmp_path / "crawl"
        urls = [f"{base}/page.html", f"{base}/corpus/000_c665e72f07d88505.txt", f"{base}/redirect"]
        res = subprocess.run(
            [WGET, "-q", f"--warc-file={out}", "-O", "/dev/null", *urls], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
    return Path(f"{out}.warc.gz"), base


def test_wget_warc_imported_with_provenance(archive: ArchiveFixture, wget_warc, corpus: Path, tmp_path):
    warc, base = wget_warc
    out = archive.ok("ingest", "--warc", str(warc), "--language", "ar", "--json").json()
    assert out["bad"] == [] and out["skipped"]["request"] == 5
    by_url = {}
    for item in out["imported"]:
        m = _manifest(archive, item["document"], item["sequence"])
        src = m["source"]["warc"]
        assert src["file"] == warc.name
        assert src["sha256"] == hashlib.sha256(warc.read_bytes()).hexdigest()
        assert src["record_id"].startswith("<urn:uuid:") and src["date"].endswith("Z")
        by_url.setdefault(src["target_uri"], []).append(item)
    page = by_url[f"{base}/page.html"]
    # wget fetched page.html twice (directly and after the redirects): one document, two captures
    assert [i["sequence"] for i in page] == [0, 1] and page[1]["revisit"]
    assert page[0]["document"] == page[1]["document"]
    assert archive.ok("cat", page[0]["document"]).stdout_bytes == HTML
    text = by_url[f"{base}/corpus/000_c665e72f07d88505.txt"][0]
    assert (
        archive.ok("cat", text["document"]).stdout_bytes == (corpus / "000_c665e72f07d88505.txt").read_bytes()
    )
    m = _manifest(archive, text["document"])
    assert m["storage"]["record_type"] == "response"
    assert m["content"]["media_type"] == "text/plain" and m["content"]["text_sha256"]
    assert m["source"]["metadata"]["language"] == "ar"
    archive.warcio_check(tmp_path)
    assert archive.verify_codes() == set()


def _warcio_file(tmp_path: Path, *, corrupt: bool = False) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "made-by-warcio.warc"
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=False)
        body = "شهادة معتقل سابق في صيدنايا\n".encode()
        http = StatusAndHeaders(
            "200 OK", [("Content-Type", "text/plain; charset=utf-8")], protocol="HTTP/1.0"
        )
        w.write_record(
            w.create_warc_record(
                "http://example.org/a", "response", payload=io.BytesIO(body), http_headers=http
            )
        )
        w.write_record(
            w.create_warc_record(
                "urn:x-photo:1",
                "resource",
                payload=io.BytesIO(b"\x89PNG\r\n\x1a\nfake"),
                warc_content_type="image/png",
            )
        )
    if corrupt:
        raw = bytearray(path.read_bytes())
        i = raw.index("صيدنايا".encode())
        raw[i] ^= 1  # one bit of the payload: Content-Length unchanged, digests now wrong
        path.write_bytes(bytes(raw))
    return path


def test_warcio_warc_imported(archive: ArchiveFixture, tmp_path: Path):
    path = _warcio_file(tmp_path)
    out = archive.ok("ingest", "--warc", str(path), "--json").json()
    assert len(out["imported"]) == 2
    resp, res = (_manifest(archive, i["document"]) for i in out["imported"])
    assert resp["source"]["warc"]["record_type"] == "response"
    assert resp["source"]["metadata"]["url"] == "http://example.org/a"
    assert res["storage"]["record_type"] == "resource" and res["content"]["media_type"] == "image/png"
    assert res["source"]["warc"]["target_uri"] == "urn:x-photo:1"
    assert archive.verify_codes() == set()


def test_uncompressed_and_whole_file_gzip_warcs(archive: ArchiveFixture, tmp_path: Path):
    plain = _warcio_file(tmp_path)
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(plain.read_bytes()))  # one gzip stream, not one per record
    a = archive.ok("ingest", "--warc", str(plain), "--json").json()["imported"]
    b = archive.ok("ingest", "--warc", str(whole), "--json").json()["imported"]
    assert [i["sha256"] for i in a] == [i["sha256"] for i in b]
    assert archive.verify_codes() == set()


def test_bad_record_digest_refused_or_reported(archive: ArchiveFixture, tmp_path: Path):
    path = _warcio_file(tmp_path, corrupt=True)
    before = archive.files.snapshot()
    res = archive.run("ingest", "--warc", str(path))
    assert res.exit_code == 2
    assert "Digest does not match" in res.stderr and "nothing was imported" in res.stderr
    assert archive.files.snapshot() == before
    # asked to skip: the sound record is imported, the bad one named on stderr and in --json
    res = archive.run("ingest", "--warc", str(path), "--skip-bad-records", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["imported"]) == 1 and len(out["bad"]) == 1
    assert "not imported" in res.stderr
    assert archive.verify_codes() == set()


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a WARC file\n",
        gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 99999\r\n\r\nshort"),
        b"",
    ],
)
def test_malformed_warc_is_one_line_exit_2(archive: ArchiveFixture, tmp_path: Path, content: bytes):
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(content)
    before = archive.files.snapshot()
    res = archive.run("ingest", "--warc", str(path))
    assert res.exit_code == 2, res.stdout
    assert res.stderr.startswith("archiver: error:") and res.stderr.count("\n") == 1
    assert archive.files.snapshot() == before


def test_warc_and_files_are_exclusive(archive: ArchiveFixture, tmp_path: Path):
    path = _warcio_file(tmp_path)
    res = archive.run("ingest", str(path), "--warc", str(path))
    assert res.exit_code == 2
    res = archive.run("ingest", "--warc", str(tmp_path / "missing.warc"))
    assert res.exit_code == 2 and "missing.warc" in res.stderr
