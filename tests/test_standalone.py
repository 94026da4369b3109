"""tools/verify_standalone.py checks a real archive with no archiver code, and catches tampering."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.backends
SCRIPT = REPO / "tools" / "verify_standalone.py"


def _run(root):
    # -I: isolated mode, so nothing of archiver's source tree can be imported by accident
    return subprocess.run([sys.executable, "-I", str(SCRIPT), str(root)], capture_output=True, text=True)


def test_standalone_verifier(archive, arabic_dir, tmp_path):
    archive.ok("keys", "generate", "bob")
    [doc] = archive.ok("--key", "alice", "ingest", str(arabic_dir / "a.txt")).stdout.split()
    v2 = tmp_path / "v2.txt"
    v2.write_text("نسخة ثانية", encoding="utf-8")
    archive.ok("--key", "alice", "edit", doc, str(v2), "--reason", "x")
    if archive.backend == "local":
        root = archive.root
    else:  # an auditor's copy of an S3 archive (format 2: its log is segments)
        archive.ok("export", "bagit", str(tmp_path / "bag"))
        root = tmp_path / "bag" / "data" / "archive"
        assert (root / "manifests/log/segments").is_dir()
    res = _run(root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 trusted keys" in res.stdout and "1 documents, 2 events" in res.stdout and "OK" in res.stdout
    assert "import archiver" not in SCRIPT.read_text() and "from archiver" not in SCRIPT.read_text()
    # an edited manifest fails its signature and the log
    m = sorted((root / "manifests" / "events").rglob("*.json"))[0]
    d = json.loads(m.read_text())
    d["reason"] = "changed"
    m.write_text(json.dumps(d))
    res = _run(root)
    assert res.returncode == 1
    assert "does not verify" in res.stdout and "not the record the log committed to" in res.stdout
