"""RFC 3161 trusted time against a real time-stamp authority on 127.0.0.1 with its own test CA."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ArchiveFixture
from tamper import log_text
from tsaserver import LocalTSA, serve_tsa
from webserver import serve

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.backends


@pytest.fixture(scope="module")
def tsa_ca() -> LocalTSA:
    return LocalTSA.create()


@pytest.fixture
def tsa(tsa_ca: LocalTSA) -> Iterator[tuple[LocalTSA, str]]:
    tsa_ca.shift = dt.timedelta(0)
    with serve_tsa(tsa_ca) as url:
        yield tsa_ca, url


@pytest.fixture
def trusted(archive: ArchiveFixture, tsa, tmp_path: Path) -> tuple[ArchiveFixture, LocalTSA, str, Path]:
    ca, url = tsa
    root = ca.root_pem(tmp_path / "tsa-root.pem")
    out = archive.ok("tsa", "trust", str(root)).stdout.split()
    assert out[0].startswith("manifests/tsa/") and out[0].endswith(".pem")
    return archive, ca, url, root


def _text(tmp_path: Path, name: str = "a.txt") -> Path:
    p = tmp_path / name
    p.write_text("شهادة عن صور قيصر\n", encoding="utf-8")
    return p


def _token(doc: str, seq: int = 0) -> str:
    return f"manifests/timestamps/{doc[:2]}/{doc}-{seq:06d}.tsr"


def test_ingest_with_tsa_keeps_a_checked_token_per_manifest(trusted, tmp_path):
    archive, ca, url, root = trusted
    docs = archive.ingest(_text(tmp_path), _text(tmp_path, "b.txt"), tsa=url)
    assert len(ca.requests) >= 2
    for doc in docs:
        assert archive.files.exists(_token(doc))
    report = archive.run("verify", "--json").json()
    assert report["ok"], report["problems"]
    assert report["counts"]["timestamps"] == 2
    # tokens are in the log like every record
    entries = log_text(archive.files).decode()
    assert f"manifests/timestamps/{docs[0][:2]}/{docs[0]}-000000.tsr" in entries
    if OPENSSL:  # the auditor's check with OpenSSL alone (docs/verifying.md)

        def openssl_verify(manifest_of: str) -> subprocess.CompletedProcess[str]:
            manifest = tmp_path / "manifest.json"
            manifest.write_bytes(
                archive.files.read(f"manifests/events/{manifest_of[:2]}/{manifest_of}-000000.json")
            )
            token = tmp_path / "token.tsr"
            token.write_bytes(archive.files.read(_token(docs[0])))
            cmd = [OPENSSL, "ts", "-verify", "-data", str(manifest), "-in", token, "-CAfile", str(root)]
            return subprocess.run(cmd, capture_output=True, text=True)

        res = openssl_verify(docs[0])
        assert res.returncode == 0 and "Verification: OK" in res.stdout, res.stdout + res.stderr
        assert openssl_verify(docs[1]).returncode != 0  # the token does not cover another manifest
    elif __import__("os").environ.get("ARCHIVER_REQUIRE_OPENSSL"):
        pytest.fail("openssl is required but missing")


def test_capture_and_checkpoint_tokens(trusted, tmp_path, corpus):
    archive, _ca, url, _ = trusted
    with serve(corpus) as site:
        [doc] = archive.ok("capture", f"{site}/page.html", "--tsa", url).stdout.split()
    assert archive.files.exists(_token(doc))
    res = archive.ok("log", "checkpoint", "--tsa", url)
    assert "time-stamp token: manifests/timestamps/checkpoints/" in res.stderr
    cps = archive.files.keys("manifests/timestamps/checkpoints/")
    assert len(cps) == 1
    # the printed checkpoint is the one after the token's log entry
    size = int(res.stdout.splitlines()[1])
    assert int(cps[0].rsplit("/", 1)[-1][:-4]) == size - 1
    report = archive.run("verify", "--json").json()
    assert report["ok"] and report["counts"]["timestamps"] == 2, report["problems"]


def test_tampered_or_foreign_tokens_are_time_invalid(trusted, tmp_path):
    archive, _ca, url, _ = trusted
    a, b = archive.ingest(_text(tmp_path), _text(tmp_path, "b.txt"), tsa=url)
    ta, tb = _token(a), _token(b)
    files = archive.files
    # a token swapped onto another manifest: the imprint does not match
    good_a = files.read(ta)
    files.write(ta, files.read(tb))
    codes = {(p["code"], p["document"]) for p in archive.run("verify", "--json").json()["problems"]}
    assert ("time-invalid", a) in codes
    files.write(ta, good_a)
    # one byte of the token's signature flipped
    raw = bytearray(good_a)
    raw[-20] ^= 1
    files.write(ta, bytes(raw))
    codes = {(p["code"], p["document"]) for p in archive.run("verify", "--json").json()["problems"]}
    assert ("time-invalid", a) in codes
    assert "time-invalid" in archive.verify_codes(a)  # a single-document run checks its tokens too
    assert archive.verify_codes(b) == set()
    files.write(ta, good_a)
    assert archive.verify_codes() == archive.expect()  # (on S3: the rewritten versions remain)
    # an auditor who trusts another TSA only: every token is time-invalid
    other = LocalTSA.create("Another TSA").root_pem(tmp_path / "other.pem")
    res = archive.run("verify", "--json", "--tsa-cert", str(other))
    assert {p["code"] for p in res.json()["problems"]} == archive.expect("time-invalid")
    # a token deleted: the log misses it
    files.delete(tb)
    assert "log-mismatch" in archive.verify_codes()


def test_manifest_later_than_its_token_is_time_invalid(trusted, tmp_path, monkeypatch):
    """A TSA that says the manifest existed an hour before the time the manifest claims."""
    archive, ca, url, _ = trusted
    ca.shift = dt.timedelta(hours=-1)
    [doc] = archive.ingest(_text(tmp_path), tsa=url)
    problems = archive.run("verify", "--json").json()["problems"]
    assert [(p["code"], p["document"]) for p in problems] == [("time-invalid", doc)]
    assert "time-stamped at" in problems[0]["message"]


def test_tsa_failures_write_nothing(archive: ArchiveFixture, tsa, tmp_path):
    _ca, url = tsa
    before = archive.files.snapshot()
    res = archive.run("ingest", str(_text(tmp_path)), "--tsa", url)
    assert res.exit_code == 2 and "tsa trust" in res.stderr  # no TSA trusted yet
    assert archive.files.snapshot() == before
    other = LocalTSA.create("Untrusted TSA")
    archive.ok("tsa", "trust", str(other.root_pem(tmp_path / "other.pem")))
    before = archive.files.snapshot()
    res = archive.run("ingest", str(_text(tmp_path)), "--tsa", url)  # signed by a CA not trusted
    assert res.exit_code == 2 and "does not verify" in res.stderr
    assert archive.files.snapshot() == before
    res = archive.run("ingest", str(_text(tmp_path)), "--tsa", "http://127.0.0.1:9/tsa")
    assert res.exit_code == 2 and "unreachable" in res.stderr
    assert archive.files.snapshot() == before
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    res = archive.run("tsa", "trust", str(bad))
    assert res.exit_code == 2 and "not a PEM certificate" in res.stderr
    listed = archive.ok("tsa", "list", "--json").json()
    assert [r["subject"] for r in listed] == ["CN=Untrusted TSA Root CA"]
    assert json.dumps(listed)
