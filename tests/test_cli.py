"""Command-line behaviour: archive discovery, help, exit codes, the writer lock."""

from __future__ import annotations

import json
import os

import pytest

from archiver.cli import cli
from archiver.fsutil import ArchiveLock

from conftest import invoke


def test_archive_found_by_env_and_by_searching_upward(archive, tmp_path, monkeypatch, arabic_dir):
    sub = archive.root / "store"
    monkeypatch.chdir(sub)
    [doc] = invoke("ingest", str(arabic_dir / "a.txt")).stdout.split()
    monkeypatch.chdir(tmp_path)
    res = invoke("list", env={"ARCHIVER_ARCHIVE": str(archive.root)})
    assert doc in res.stdout


@pytest.mark.parametrize(
    "path",
    [
        ["init"],
        ["keys"],
        ["keys", "generate"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["ingest"],
        ["list"],
        ["show"],
        ["cat"],
        ["verify"],
        ["reindex"],
        ["edit"],
        ["redact"],
        ["transfer"],
        ["accept"],
        ["attest"],
        ["history"],
        ["import"],
        ["audit"],
        ["report"],
        ["log"],
        ["log", "checkpoint"],
        ["log", "prove"],
        ["log", "consistency"],
    ],
)
def test_every_command_has_an_example_in_help(path):
    res = invoke(*path, "--help")
    assert res.exit_code == 0
    assert "Example:" in res.stdout and "archiver " in res.stdout.split("Example:")[1]


def test_usage_error_is_exit_2():
    assert invoke("ingest").exit_code == 2
    assert invoke("no-such-command").exit_code == 2


def test_locked_archive_says_who_holds_it(archive, arabic_dir):
    with ArchiveLock(archive.root / "store" / ".writer.lock"):
        res = archive.run("ingest", str(arabic_dir / "a.txt"))
    assert res.exit_code == 2
    assert f"locked by PID {os.getpid()} since" in res.stderr and "--wait" in res.stderr
    archive.ok("ingest", str(arabic_dir / "a.txt"), "--wait", "1")


def test_ingest_json_output(archive, arabic_dir):
    out = archive.ok("ingest", str(arabic_dir / "a.txt"), str(arabic_dir / "b.txt"), "--json").json()
    assert [o["sequence"] for o in out] == [0, 0]  # type: ignore[index]
    assert all(len(o["document"]) == 32 and o["revisit"] is False for o in out)  # type: ignore[index]


def test_verify_human_output(archive, arabic_dir):
    archive.ingest(arabic_dir / "a.txt")
    res = archive.ok("verify")
    assert "OK: no problems found" in res.stdout and "1 documents" in res.stdout


def test_reindex_rebuilds_identical_rows(archive, arabic_dir):
    import sqlite3

    archive.ingest(arabic_dir / "a.txt", arabic_dir / "b.txt")
    idx = archive.root / "store" / "index.sqlite"
    before = sorted(sqlite3.connect(idx).execute("SELECT * FROM events").fetchall())
    archive.ok("reindex")
    after = sorted(sqlite3.connect(idx).execute("SELECT * FROM events").fetchall())
    assert before == after and len(after) == 2


def test_list_human_and_show_human(archive, arabic_dir):
    [doc] = archive.ingest(arabic_dir / "a.txt")
    assert "المعتقلون" in archive.ok("list").stdout
    shown = archive.ok("show", doc).stdout
    assert "sha256:" in shown and "captured" in shown


def test_main_entry_point_and_version():
    assert invoke("--version").stdout.startswith("archiver, version")
    assert cli.name == "cli"


def test_ingest_json_is_valid_json_even_for_arabic_names(archive, tmp_path):
    p = tmp_path / "شهادة.txt"
    p.write_text("نص", encoding="utf-8")
    out = json.loads(archive.ok("ingest", str(p), "--json").stdout)
    doc = out[0]["document"]
    assert archive.ok("show", doc, "--json").json()["source"]["filename"] == "شهادة.txt"  # type: ignore[index]


def test_readers_never_write_to_the_archive(archive, arabic_dir, tmp_path):
    from conftest import tree_snapshot

    [doc] = archive.ingest(arabic_dir / "a.txt")
    checkpoint = tmp_path / "cp.txt"
    checkpoint.write_text(archive.ok("log", "checkpoint").stdout)
    lock = archive.root / "store" / ".writer.lock"
    lock.unlink()  # as on a copy handed to an auditor
    before = tree_snapshot(archive.root)
    names_before = sorted(p.relative_to(archive.root) for p in archive.root.rglob("*"))
    for cmd in (
        ["verify"],
        ["verify", doc],
        ["verify", "--checkpoint", str(checkpoint)],
        ["list"],
        ["show", doc],
        ["cat", doc],
        ["history", doc],
        ["log", "prove", doc],
        ["keys", "list"],
    ):
        archive.ok(*cmd)
    assert tree_snapshot(archive.root) == before
    assert sorted(p.relative_to(archive.root) for p in archive.root.rglob("*")) == names_before


def test_the_console_verify_exits_without_freeing_and_loses_no_output(archive, arabic_dir):
    """``archiver verify`` (the real entry point, in its own process) hands the verifier's
    data to the exit instead of freeing it: its report must still come out whole, on a pipe,
    with the exit code of its verdict, clean and with a problem."""
    import subprocess
    import sys

    from tamper import flip_byte, load, manifest_keys

    docs = archive.ingest(arabic_dir)
    cmd = [sys.executable, "-m", "archiver", "--archive", str(archive.root), "verify"]
    for as_json in (True, False):
        res = subprocess.run([*cmd, *(["--json"] if as_json else [])], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        if as_json:
            assert json.loads(res.stdout)["counts"]["documents"] == len(docs)
        else:
            assert res.stdout.rstrip().endswith("OK: no problems found")
    s = load(archive.files, manifest_keys(archive.files)[0])["storage"]
    flip_byte(archive.files, "store/" + s["warc_file"], s["offset"] + s["length"] // 2)  # a bad disk
    res = subprocess.run([*cmd, "--json"], capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] is False and {p["code"] for p in report["problems"]} >= {"warc-invalid"}
    assert res.stderr == ""
