"""The sealed reference archive at the repository root must verify, forever, with these counts.

It was built once by scripts/build_reference_archive.py and committed; it is never
regenerated. A format change that breaks it fails here (and in .ci/run).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, invoke, tree_snapshot

# What the committed archive holds (see the build script's docstring for the story).
EXPECTED = {
    "documents": 5,
    # 5 captures, 001 captured again, 000 edited, 003 transferred and accepted and attested,
    # 002 redacted
    "events": 11,
    "keys": 3,
}
LOG_SIZE = 15  # 3 key records + 11 manifests + 1 audit record


def _report(root: Path) -> tuple[int, dict]:
    res = invoke("--archive", str(root), "verify", "--json")
    return res.exit_code, json.loads(res.stdout)


def test_reference_archive_verifies_with_the_expected_counts():
    assert (REPO / "manifests" / "archive.json").is_file(), "the reference archive is missing"
    before = tree_snapshot(REPO / "store") | tree_snapshot(REPO / "manifests")
    code, report = _report(REPO)
    assert code == 0 and report["ok"], report["problems"]
    for k, v in EXPECTED.items():
        assert report["counts"][k] == v, (k, report["counts"])
    entries = (REPO / "manifests/log/entries").read_text().splitlines()
    assert len(entries) == LOG_SIZE
    latest = sorted((REPO / "manifests/log/checkpoints").iterdir())[-1]
    assert int(latest.name) == LOG_SIZE
    # verifying wrote nothing into it (no lock file, no index, no journal)
    assert tree_snapshot(REPO / "store") | tree_snapshot(REPO / "manifests") == before


def test_reference_archive_tells_its_story():
    """The custody history the build script played out is there, in order."""
    chains: dict[str, list[tuple[int, str]]] = {}
    for path in sorted((REPO / "manifests/events").rglob("*.json")):
        m = json.loads(path.read_text("utf-8"))
        chains.setdefault(m["document_id"], []).append((m["sequence"], m["action"]))
    stories = sorted(tuple(a for _, a in sorted(v)) for v in chains.values())
    assert stories == sorted(
        [
            ("captured", "edited"),  # 000: boilerplate dropped
            ("captured", "captured"),  # 001: captured again unchanged (a revisit)
            ("captured", "redacted"),  # 002: a private name redacted
            ("captured", "transferred", "accepted", "attested"),  # 003
            ("captured",),  # 004
        ]
    )
    assert json.loads((REPO / "manifests/archive.json").read_text())["sealed"] is True
    assert list((REPO / "manifests/audits").glob("*.json"))


def test_reference_archive_refuses_writes(tmp_path):
    src = tmp_path / "x.txt"
    src.write_text("نص\n", encoding="utf-8")
    before = tree_snapshot(REPO / "store") | tree_snapshot(REPO / "manifests")
    res = invoke("--archive", str(REPO), "ingest", str(src))
    assert res.exit_code == 2 and "sealed reference archive" in res.stderr
    res = invoke("--archive", str(REPO), "reindex")
    assert res.exit_code == 2 and "sealed reference archive" in res.stderr
    assert tree_snapshot(REPO / "store") | tree_snapshot(REPO / "manifests") == before


@pytest.mark.parametrize("where", ["warc", "manifest", "log"])
def test_a_copy_with_one_byte_flipped_does_not_verify(tmp_path, where):
    copy = tmp_path / "ref"
    for sub in ("manifests", "store"):
        shutil.copytree(REPO / sub, copy / sub)
    if where == "warc":
        warc = sorted((copy / "store").glob("*.warc.gz"))[0]
        target, offset = warc, warc.stat().st_size // 2
    elif where == "manifest":
        target = sorted((copy / "manifests/events").rglob("*.json"))[0]
        raw = target.read_bytes()
        offset = raw.index(b'"sha256": "') + 12
    else:
        target, offset = copy / "manifests/log/level-00", 5
    raw = bytearray(target.read_bytes())
    raw[offset] ^= 0x01
    target.write_bytes(bytes(raw))
    code, report = _report(copy)
    assert code == 1 and not report["ok"]
    codes = {p["code"] for p in report["problems"]}
    expected = {
        "warc": {"warc-invalid", "content-mismatch"},
        "manifest": {"signature-invalid", "schema-invalid"},
        "log": {"log-mismatch"},
    }[where]
    assert codes & expected, codes
