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

from backends import BACKENDS, S3Place, S3Surface, Servers, Surface, new_place, start_servers

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
    root: Path  # a local archive's folder (S3 archives: a folder that does not exist)
    keydir: Path
    location: str = ""  # what --archive names: the folder, or s3://BUCKET/PREFIX
    surface: Surface | None = None
    backend: str = "local"

    def __post_init__(self) -> None:
        self.location = self.location or str(self.root)
        if self.surface is None:
            self.surface = Surface(self.root)

    @property
    def files(self) -> Surface:
        """The archive's bytes by key, bypassing archiver (to damage them)."""
        assert self.surface is not None
        return self.surface

    def expect(self, *codes: str) -> set[str]:
        """The codes a tampering should produce here: these, plus what the backend adds."""
        return set(codes) | self.files.extra_codes()

    def warcio_check(self, tmp: Path) -> None:
        """warcio accepts every WARC file of the archive (copied out of S3 first)."""
        if self.backend == "local":
            warcio_check(self.root / "store")
            return
        out = tmp / "warcs"
        out.mkdir(exist_ok=True)
        for key in self.files.warcs():
            (out / key.rsplit("/", 1)[-1]).write_bytes(self.files.read(key))
        warcio_check(out)

    def open(self):  # type: ignore[no-untyped-def]
        """The archive, opened through the library (as the CLI opens it)."""
        from archiver import Archive

        if self.backend == "s3":
            from archiver.s3archive import open_location

            return open_location(self.location)
        return Archive.open(self.root)

    def run(self, *args: str, **kw: object) -> Result:
        return invoke("--archive", self.location, *args, **kw)  # type: ignore[arg-type]

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests in modules marked ``backends`` run once per storage backend (``local_only`` ones
    once, locally): the same tests, not a second copy of them."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends"):
        local_only = metafunc.definition.get_closest_marker("local_only") is not None
        metafunc.parametrize("backend", ["local"] if local_only else list(BACKENDS))


@pytest.fixture
def backend() -> str:
    """The storage backend of this test (parametrized in ``backends`` modules)."""
    return "local"


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """Ceph (S3) and PostgreSQL on 127.0.0.1, for the whole session."""
    s = start_servers()
    yield s
    s.stop()


@pytest.fixture
def s3_place(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Place]:
    """A fresh bucket and catalog database, with the client environment set."""
    yield from new_place(servers, monkeypatch)


@pytest.fixture
def extra_catalog(servers: Servers) -> Iterator[str]:
    """One more empty catalog database (a second archive's, a rebuilt one)."""
    import uuid

    import psycopg

    name = f"x_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(servers.pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield servers.pg_admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(servers.pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_archive(request: pytest.FixtureRequest, tmp_path: Path, isolated_env: Path, backend: str):  # type: ignore[no-untyped-def]
    """Make an archive on this test's backend: ``new_archive(name, *init options)``."""

    def make(name: str = "archive", *options: str) -> ArchiveFixture:
        root = tmp_path / name
        if backend == "s3":
            place: S3Place = request.getfixturevalue("s3_place")
            url = f"s3://{place.bucket}/{name}"
            res = invoke("init", "--store", url, "--retention-days", "1", *options)
            assert res.exit_code == 0, res.stderr
            surface = S3Surface(S3Place(place.servers, place.bucket, name, place.catalog, place.database))
            return ArchiveFixture(root, isolated_env, url, surface, "s3")
        res = invoke("init", str(root), *options)
        assert res.exit_code == 0, res.stderr
        return ArchiveFixture(root, isolated_env)

    return make


@pytest.fixture
def archive(new_archive) -> ArchiveFixture:  # type: ignore[no-untyped-def]
    """An initialised archive with one archivist key, alice (on this test's backend)."""
    fx: ArchiveFixture = new_archive()
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
