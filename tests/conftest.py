"""Shared fixtures: isolated key directory, a CLI runner, archives, the corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from archiver.cli import cli

# CI is a gate: the same examples every run (CI=true). Locally, hypothesis keeps exploring
# and remembers what it found in .hypothesis/.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
WARCIO = [sys.executable, "-m", "warcio.cli"]
WARC_TYPES = {"warcinfo", "resource", "metadata", "revisit", "conversion", "request", "response"}
SHARED_CORPUS = REPO.parent / "shared" / "corpus"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    def json(self) -> object:
        return json.loads(self.stdout)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own private-key directory and no inherited archiver settings."""
    keydir = tmp_path / "keys"
    for var in ("ARCHIVER_ARCHIVE", "ARCHIVER_KEY", "ARCHIVER_PASSPHRASE", "ARCHIVER_TEST_NOW"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ARCHIVER_KEY_DIR", str(keydir))
    return keydir


def invoke(*args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the real click command in-process; stdout and stderr kept apart."""
    runner = CliRunner()
    res = runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=True)
    # Only a clean exit may pass: an escaped exception must fail the test, not look like exit 1.
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    assert "Traceback" not in res.stderr
    return Result(res.exit_code, res.stdout, res.stderr, res.stdout_bytes)


@dataclass
class ArchiveFixture:
    root: Path
    keydir: Path

    def run(self, *args: str, **kw: object) -> Result:
        return invoke("--archive", str(self.root), *args, **kw)  # type: ignore[arg-type]

    def ok(self, *args: str, **kw: object) -> Result:
        res = self.run(*args, **kw)
        assert res.exit_code == 0, (res.stdout, res.stderr)
        return res

    def ingest(self, *paths: Path | str, **opts: str) -> list[str]:
        flags: list[str] = []
        for k, v in opts.items():
            flags += [f"--{k.replace('_', '-')}", v]
        return self.ok("ingest", *map(str, paths), *flags).stdout.split()

    def verify_codes(self, *args: str) -> set[str]:
        res = self.run("verify", "--json", *args)
        report = res.json()
        assert isinstance(report, dict)
        codes = {p["code"] for p in report["problems"]}
        assert res.exit_code == (1 if codes else 0), (res.stdout, res.stderr)
        return codes


@pytest.fixture
def archive(tmp_path: Path, isolated_env: Path) -> ArchiveFixture:
    """An initialised archive with one archivist key, alice."""
    root = tmp_path / "archive"
    assert invoke("init", str(root)).exit_code == 0
    fx = ArchiveFixture(root, isolated_env)
    fx.ok("keys", "generate", "alice")
    return fx


@pytest.fixture
def corpus() -> Path:
    if not (SHARED_CORPUS / "corpus.json").is_file():
        pytest.skip(f"the shared corpus is not present at {SHARED_CORPUS}")
    return SHARED_CORPUS


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes under root (to assert that nothing changed)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != ".writer.lock":
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


@pytest.fixture
def arabic_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder of Arabic texts written by the test itself, with a sidecar."""
    d = tmp_path / "texts"
    d.mkdir()
    (d / "b.txt").write_text("صور قيصر: أدلة على التعذيب في السجون.\n", encoding="utf-8")
    (d / "a.txt").write_text("المعتقلون في سوريا\r\nسطر ثانٍ\r\n", encoding="utf-8")
    (d / "a.txt.meta.json").write_text(
        json.dumps({"title": "المعتقلون", "language": "ar", "published": "2020-03"}, ensure_ascii=False),
        encoding="utf-8",
    )
    (d / ".hidden.txt").write_text("hidden", encoding="utf-8")
    os.symlink(d / "b.txt", d / "link.txt")
    yield d


def warcio_check(store: Path) -> None:
    """warcio's own reader accepts every WARC file in ``store`` and every digest passes."""
    files = sorted(store.glob("*.warc.gz"))
    assert files
    for warc in files:
        res = subprocess.run([*WARCIO, "check", "-v", str(warc)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "digest pass" in res.stdout and "fail" not in res.stdout
        idx = subprocess.run([*WARCIO, "index", str(warc)], capture_output=True, text=True)
        assert idx.returncode == 0, idx.stderr
        types = [json.loads(line)["warc-type"] for line in idx.stdout.splitlines()]
        assert types[0] == "warcinfo"
        assert set(types) <= WARC_TYPES
