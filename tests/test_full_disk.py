"""A full disk: ingest fails with exit 2 and one clear line, and the archive is as it was.

Runs on a real size-limited tmpfs that the test mounts (root only).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import ArchiveFixture, invoke, tree_snapshot


@pytest.fixture
def small_fs(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_enospc_leaves_the_archive_as_it_was(small_fs: Path, tmp_path: Path, isolated_env: Path) -> None:
    root = small_fs / "archive"
    assert invoke("init", str(root)).exit_code == 0
    fx = ArchiveFixture(root, isolated_env)
    fx.ok("keys", "generate", "alice")
    ok = tmp_path / "small.txt"
    ok.write_text("نص صغير يتسع للقرص", encoding="utf-8")
    fx.ok("ingest", str(ok))
    before = tree_snapshot(root)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(4 << 20))  # larger than the whole filesystem
    for batch in ([big], [ok.with_name("small2.txt"), big]):
        if len(batch) == 2:
            batch[0].write_text("نص آخر يسبق الملف الكبير", encoding="utf-8")
        res = fx.run("ingest", *map(str, batch))
        assert res.exit_code == 2, res.stdout
        assert len(res.stderr.strip().splitlines()) == 1 and "ENOSPC" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
        assert tree_snapshot(root) == before  # byte for byte, nothing half written
    assert fx.verify_codes() == set()
    fx.ok("ingest", str(ok.with_name("small2.txt")))  # and it still works once there is room
    assert fx.verify_codes() == set()
