"""The documentation's examples run against real archives, so they cannot drift."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from tamper import manifest_keys


def _python_block(doc: Path, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text("utf-8"), flags=re.S)
    [block] = [b for b in blocks if b.startswith(marker)]
    return block


def test_format_md_worked_example_checks_a_real_signature(archive, arabic_dir, tmp_path):
    archive.ingest(arabic_dir / "a.txt")
    archive.ingest(arabic_dir / "a.txt")  # a second event, to check the "previous" link
    script = tmp_path / "check_signature.py"
    script.write_text(_python_block(REPO / "docs" / "format.md", "# check_signature.py"))
    first, second = (archive.root / k for k in manifest_keys(archive.files))
    res = subprocess.run(
        [sys.executable, str(script), str(archive.root), str(first)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "signature OK: alice (archivist) signed captured" in res.stdout
    manifest_id = res.stdout.strip().splitlines()[-1].removeprefix("manifest id: ")
    assert json.loads(second.read_text())["previous"] == manifest_id
    # and it fails on a forged manifest
    doc = json.loads(first.read_text())
    doc["time"] = "2001-01-01T00:00:00.000000Z"
    first.write_text(json.dumps(doc))
    bad = subprocess.run(
        [sys.executable, str(script), str(archive.root), str(first)], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "InvalidSignature" in bad.stderr


def test_quickstart_script_runs(tmp_path):
    exe = shutil.which("archiver")
    assert exe, "the archiver console script is not installed (pip install -e .)"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    for var in ("ARCHIVER_ARCHIVE", "ARCHIVER_KEY_DIR", "ARCHIVER_KEY"):
        env.pop(var, None)
    res = subprocess.run(
        ["bash", str(REPO / "examples" / "quickstart.sh")], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK: no problems found" in res.stdout
    assert "شهادة" in res.stdout


def test_readme_starts_with_the_two_quickstart_commands():
    readme = (REPO / "README.md").read_text("utf-8")
    head = readme[: readme.index("## ", readme.index("Quickstart") + 1)]
    commands = re.findall(r"```sh\n(.*?)\n```", head, flags=re.S)
    assert commands[0] == "pip install . && bash examples/quickstart.sh"
    assert commands[1] == "pip install -e '.[test]' && python -m pytest"
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_docs_index_lists_every_doc():
    index = (REPO / "docs" / "README.md").read_text("utf-8")
    for doc in sorted((REPO / "docs").rglob("*.md")):
        if doc.name != "README.md":
            assert doc.relative_to(REPO / "docs").as_posix() in index, doc


def _sh_blocks(doc: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", doc.read_text("utf-8"), flags=re.S)


def test_verifying_md_export_checks_run_as_written(archive, arabic_dir, tmp_path):
    """docs/verifying.md sections 4 and 6: sha256sum on a bag, the WACZ signature script, the rebuild."""
    docs = archive.ingest(arabic_dir)
    bag = tmp_path / "DEST"
    archive.ok("export", "bagit", str(bag))
    import bagit

    bagit.Bag(str(bag)).validate()
    sha_block = next(b for b in _sh_blocks(REPO / "docs" / "verifying.md") if "sha256sum --check" in b)
    sha_block = sha_block.replace("cd DEST\n", f"cd {bag}\n")
    res = subprocess.run(["bash", "-euc", sha_block], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    people = next((bag / "data/documents").rglob("*.txt"))
    people.write_bytes(people.read_bytes() + b"x")  # sha256sum must now fail
    res = subprocess.run(["bash", "-euc", sha_block], capture_output=True, text=True)
    assert res.returncode != 0

    wacz = tmp_path / "DEST.wacz"
    archive.ok("export", "wacz", str(wacz))
    key_id = json.loads(next((archive.root / "manifests/keys").glob("*.json")).read_text())["key_id"]
    script = tmp_path / "check_wacz.py"
    script.write_text(_python_block(REPO / "docs" / "verifying.md", "# check_wacz.py"))
    res = subprocess.run([sys.executable, str(script), str(wacz), key_id], capture_output=True, text=True)
    assert res.returncode == 0 and "WACZ signature OK" in res.stdout, res.stderr
    res = subprocess.run([sys.executable, str(script), str(wacz), "0" * 64], capture_output=True, text=True)
    assert res.returncode != 0

    rebuild = next(b for b in _sh_blocks(REPO / "docs" / "verifying.md") if "mkdir copy" in b)
    rebuild = rebuild.replace("tools/verify_standalone.py", str(REPO / "tools" / "verify_standalone.py"))
    res = subprocess.run(["bash", "-euc", rebuild], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK: no problems found" in res.stdout and f"checked {len(docs)} documents" in res.stdout
