"""Bad input: exit 2, one line on stderr, no traceback, and the archive byte-for-byte unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import invoke, tree_snapshot


def _one_line_error(res) -> None:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("archiver: error: ") or lines[0].startswith("Error: ")
    assert "Traceback" not in res.stderr


@pytest.fixture
def populated(archive, arabic_dir):
    archive.ingest(arabic_dir / "a.txt")
    return archive


def _unchanged(archive, action) -> object:
    before = tree_snapshot(archive.root)
    res = action()
    _one_line_error(res)
    assert tree_snapshot(archive.root) == before
    return res


def test_missing_file(populated, tmp_path):
    res = _unchanged(populated, lambda: populated.run("ingest", str(tmp_path / "nope.txt")))
    assert "no such file" in res.stderr  # type: ignore[attr-defined]


def test_one_bad_file_in_a_batch_writes_nothing(populated, tmp_path, arabic_dir):
    _unchanged(populated, lambda: populated.run("ingest", str(arabic_dir / "b.txt"), str(tmp_path / "x")))


@pytest.mark.parametrize(
    ("sidecar", "needle"),
    [
        ("{ not json", "invalid metadata JSON"),
        ('{"published": "2024-13-01"}', "/published"),
        ('{"title": "a", "title": "b"}', "duplicate member"),
        ('{"colour": "red"}', "Additional properties"),
        ('{"language": "arabic language"}', "/language"),
        ('{"meta": {"../x": "y"}}', "/meta"),
        ('{"title": "' + "x" * 70000 + '"}', "/title"),
        ("[" * 5000 + "]" * 5000, "nested"),
        ('{"published": 2020.5}', "non-integer"),
    ],
    ids=[
        "not-json",
        "month-13",
        "duplicate-key",
        "unknown-field",
        "bad-language",
        "bad-meta-key",
        "huge-value",
        "deep-nesting",
        "float",
    ],
)
def test_invalid_metadata(populated, arabic_dir, sidecar, needle):
    (arabic_dir / "b.txt.meta.json").write_text(sidecar, encoding="utf-8")
    res = _unchanged(populated, lambda: populated.run("ingest", str(arabic_dir / "b.txt")))
    assert needle in res.stderr  # type: ignore[attr-defined]


def test_invalid_metadata_option(populated, arabic_dir):
    res = _unchanged(
        populated, lambda: populated.run("ingest", str(arabic_dir / "b.txt"), "--published", "yesterday")
    )
    assert "/published" in res.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize("charset", ["no-such-charset", "base64", "hex"])
def test_a_charset_that_is_not_a_text_encoding(populated, arabic_dir, charset):
    """``base64`` and ``hex`` are codecs, but of bytes to bytes: refused like an unknown
    charset, not a traceback."""
    res = _unchanged(
        populated, lambda: populated.run("ingest", str(arabic_dir / "b.txt"), "--charset", charset)
    )
    assert "unknown charset" in res.stderr  # type: ignore[attr-defined]


def test_not_a_regular_file(populated, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    res = _unchanged(populated, lambda: populated.run("ingest", str(fifo)))
    assert "not a regular file" in res.stderr  # type: ignore[attr-defined]


def test_unknown_document(populated):
    for cmd in (["show", "abcdef"], ["cat", "abcdef"], ["verify", "abcdef"], ["show", "zz-not-hex"]):
        _unchanged(populated, lambda cmd=cmd: populated.run(*cmd))


def test_unknown_version(populated):
    doc = populated.ok("list", "--json").json()[0]["document"]
    res = _unchanged(populated, lambda: populated.run("cat", doc, "--version", "7"))
    assert "no version 7" in res.stderr  # type: ignore[attr-defined]


def test_no_archive_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("list")
    _one_line_error(res)
    assert "archiver init" in res.stderr
    res = invoke("--archive", str(tmp_path / "missing"), "verify")
    _one_line_error(res)


def test_init_refuses_to_overwrite(populated):
    res = _unchanged(populated, lambda: invoke("init", str(populated.root)))
    assert "refusing" in res.stderr  # type: ignore[attr-defined]


def test_malformed_archive_json(populated):
    (populated.root / "manifests" / "archive.json").write_text("{}")
    _one_line_error(populated.run("list"))


def test_damaged_record_makes_cat_fail_not_lie(populated):
    doc = populated.ok("list", "--json").json()[0]["document"]
    m = populated.ok("show", doc, "--json").json()
    warc = populated.root / "store" / m["storage"]["warc_file"]
    blob = bytearray(warc.read_bytes())
    blob[m["storage"]["offset"] + m["storage"]["length"] // 2] ^= 0xFF
    warc.write_bytes(bytes(blob))
    res = populated.run("cat", doc)
    _one_line_error(res)
    assert "verify" in res.stderr


def test_folder_without_permission(populated, tmp_path):
    """A real process; as root, with the capabilities that bypass file modes dropped."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("x")
    os.chmod(locked, 0o000)
    cmd = [sys.executable, "-m", "archiver", "--archive", str(populated.root), "ingest", str(locked)]
    if os.getuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    before = tree_snapshot(populated.root)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.chmod(locked, 0o755)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "permission denied" in res.stderr.lower()
    assert "Traceback" not in res.stderr
    assert tree_snapshot(populated.root) == before


def test_metadata_file_option(populated, arabic_dir, tmp_path):
    md = tmp_path / "md.json"
    md.write_text(json.dumps({"publisher": "بروكار برس"}, ensure_ascii=False), encoding="utf-8")
    [doc] = populated.ingest(arabic_dir / "b.txt", metadata=str(md))
    assert populated.ok("show", doc, "--json").json()["source"]["metadata"]["publisher"] == "بروكار برس"
    md.write_text('{"publisher": 5}')
    _unchanged(populated, lambda: populated.run("ingest", str(arabic_dir / "b.txt"), "--metadata", str(md)))
