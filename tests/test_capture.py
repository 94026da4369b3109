"""archiver capture against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ArchiveFixture
from webserver import HTML, serve

pytestmark = pytest.mark.backends


@pytest.fixture
def site(corpus: Path) -> Iterator[str]:
    with serve(corpus) as base:
        yield base


def _manifest(archive: ArchiveFixture, doc: str, seq: int = 0) -> dict:
    return json.loads(archive.files.read(f"manifests/events/{doc[:2]}/{doc}-{seq:06d}.json"))


def test_capture_records_request_response_and_redirects(archive: ArchiveFixture, site: str, tmp_path):
    [doc] = archive.ok("capture", f"{site}/redirect", "--language", "ar").stdout.split()
    m = _manifest(archive, doc)
    http = m["source"]["http"]
    assert http["requested_url"] == f"{site}/redirect"
    assert http["final_url"] == f"{site}/page.html"
    assert http["status"] == 200 and http["content_type"] == "text/html; charset=utf-8"
    assert [(h["status"], h["location"]) for h in http["redirects"]] == [(302, "/hop"), (301, "/page.html")]
    assert m["storage"]["record_type"] == "response" and "request" in m["storage"]
    assert m["content"]["media_type"] == "text/html" and m["content"]["charset"] == "utf-8"
    assert m["content"]["size"] == len(HTML)
    assert m["source"]["metadata"]["url"] == f"{site}/redirect"
    # cat gives the payload exactly; the WARC holds request and response records warcio accepts
    assert archive.ok("cat", doc).stdout_bytes == HTML
    archive.warcio_check(tmp_path)
    plain = b"".join(gzip.decompress(archive.files.read(k)) for k in archive.files.warcs())
    assert plain.count(b"WARC-Type: request") == 3 and plain.count(b"WARC-Type: response") == 3
    assert (b"GET /redirect HTTP/1.1" in plain and b"HTTP/1.0 302 Found" in plain) or b"HTTP/1.1 302" in plain
    assert archive.verify_codes() == set()


def test_corpus_texts_captured_and_recaptured_as_revisits(
    archive: ArchiveFixture, site: str, corpus: Path, tmp_path
):
    names = sorted(p.name for p in corpus.glob("*.txt"))[:3]
    urls = [f"{site}/corpus/{n}" for n in names]
    docs = archive.ok("capture", *urls).stdout.split()
    assert len(set(docs)) == 3
    for doc, name in zip(docs, names, strict=True):
        assert archive.ok("cat", doc).stdout_bytes == (corpus / name).read_bytes()
        assert _manifest(archive, doc)["content"]["text_sha256"] is not None
    # the same URL again, unchanged: a new captured event on the same document, as a revisit
    again = archive.ok("capture", urls[0], "--json").json()
    assert again[0]["document"] == docs[0] and again[0]["sequence"] == 1 and again[0]["revisit"]
    m = _manifest(archive, docs[0], 1)
    assert m["storage"]["record_type"] == "revisit" and m["action"] == "captured"
    assert archive.ok("cat", docs[0]).stdout_bytes == (corpus / names[0]).read_bytes()
    archive.warcio_check(tmp_path)
    assert archive.verify_codes() == set()


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("/missing", [], "answered 404"),
        ("/slow", ["--timeout", "1"], "timed out"),
        ("/trickle", ["--timeout", "1.5"], "timed out"),
        ("/big", ["--max-bytes", "1000000"], "exceeds the limit"),
        ("/big-undeclared", ["--max-bytes", "100000"], "exceeds the limit"),
        ("/loop", ["--max-redirects", "3"], "more than 3 redirects"),
        ("/ftp-redirect", [], "only absolute http"),
    ],
)
def test_capture_failures_write_nothing(archive: ArchiveFixture, site: str, path, args, message):
    before = archive.files.snapshot()
    # one good URL first: all or nothing
    res = archive.run("capture", f"{site}/page.html", f"{site}{path}", *args)
    assert res.exit_code == 2, res.stdout
    assert message in res.stderr and res.stderr.count("\n") == 1
    assert archive.files.snapshot() == before


def test_error_page_kept_on_request(archive: ArchiveFixture, site: str):
    [doc] = archive.ok("capture", f"{site}/missing", "--accept-any-status").stdout.split()
    m = _manifest(archive, doc)
    assert m["source"]["http"]["status"] == 404
    assert archive.ok("cat", doc).stdout_bytes == "لا توجد صفحة\n".encode()
    assert archive.verify_codes() == set()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "http://", "not a url", "http://a b/"])
def test_capture_refuses_non_http_urls(archive: ArchiveFixture, url: str):
    res = archive.run("capture", url)
    assert res.exit_code == 2 and res.stderr.startswith("archiver: error:")


def test_tampered_response_payload_is_reported(archive: ArchiveFixture, site: str):
    from tamper import flip_payload_byte, rewrite_member

    [doc] = archive.ok("capture", f"{site}/page.html").stdout.split()
    s = _manifest(archive, doc)["storage"]
    # flip a payload byte and fix the record's own digests: only the manifest can tell
    rewrite_member(
        archive.files,
        "store/" + s["warc_file"],
        s["offset"],
        lambda rec: flip_payload_byte(rec, -10, fix_digest=True),
    )
    assert "content-mismatch" in archive.verify_codes()
