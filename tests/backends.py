"""The two storage backends the backend suite runs on, and a way to damage either.

- ``local``: an archive folder (SQLite index).
- ``s3``: a bucket on a real single-node Ceph cluster (radosgw, Object Lock) with its
  catalog in a real PostgreSQL database, both started on 127.0.0.1 by
  ``scripts/ceph-s3.sh`` and ``scripts/pg.sh`` once per test session and removed at the
  end. Each test gets a fresh bucket and a fresh database.

Missing server binaries skip the S3 variants, unless ``ARCHIVER_REQUIRE_BACKENDS=1`` (set
by ``.ci/run``): then they fail, so that a broken install cannot pass unseen.

``Surface`` is what an attacker (or a failing disk) can touch: the files of a local
archive, or the objects of an S3 one through the S3 API (bypassing archiver). On S3 a
rewrite is a new version and a delete a delete marker (Object Lock keeps the original),
which the verifier reports as ``object-overwritten`` on top of what the change did:
``Surface.extra_codes()`` says so.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("local", "s3")
CEPH = REPO / "scripts" / "ceph-s3.sh"
PG = REPO / "scripts" / "pg.sh"
# one cluster per test run, away from a developer's own (other ports and folders)
CEPH_ENV = {
    "CEPH_S3_DIR": os.environ.get("CEPH_S3_DIR", "/tmp/archiver-test-ceph"),
    "CEPH_S3_PORT": os.environ.get("CEPH_S3_PORT", "17481"),
    "CEPH_MON_PORT": os.environ.get("CEPH_MON_PORT", "13301"),
    "CEPH_OSD_PORTS": os.environ.get("CEPH_OSD_PORTS", "16900-16999"),
}
PG_ENV = {
    "PG_DIR": os.environ.get("PG_DIR", "/tmp/archiver-test-pg"),
    "PG_PORT": os.environ.get("PG_PORT", "15433"),
}
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "archiver-test-access",
    "AWS_SECRET_ACCESS_KEY": "archiver-test-secret-not-for-production",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def required() -> bool:
    return os.environ.get("ARCHIVER_REQUIRE_BACKENDS") == "1"


def unavailable(why: str) -> None:
    if required():
        pytest.fail(f"{why} (ARCHIVER_REQUIRE_BACKENDS=1: a missing server is a failure)")
    pytest.skip(why)


@dataclass
class Servers:
    """The S3 endpoint and the PostgreSQL admin URL of this test session."""

    endpoint: str
    pg_admin: str
    started: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        for script in reversed(self.started):
            env = {**os.environ, **(CEPH_ENV if script == CEPH else PG_ENV)}
            subprocess.run([str(script), "clean"], env=env, capture_output=True, check=False, timeout=120)


def start_servers() -> Servers:
    """Start (or find running) Ceph and PostgreSQL; skip or fail if they cannot run here."""
    for binary in ("radosgw", "ceph-mon", "ceph-osd"):
        if shutil.which(binary) is None:
            unavailable(f"{binary} is not installed (Debian packages radosgw ceph-mon ceph-osd)")
    if shutil.which("initdb") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        unavailable("PostgreSQL is not installed (Debian package postgresql)")
    servers = Servers(
        endpoint=f"http://127.0.0.1:{CEPH_ENV['CEPH_S3_PORT']}",
        pg_admin=f"postgresql://archiver@127.0.0.1:{PG_ENV['PG_PORT']}/archiver",
    )
    for script, env in ((CEPH, CEPH_ENV), (PG, PG_ENV)):
        # clean first: daemons left by a killed run are ended through their pid files
        subprocess.run([str(script), "clean"], env={**os.environ, **env}, capture_output=True, timeout=120)
        res = subprocess.run(
            [str(script), "start"], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
        )
        servers.started.append(script)
        if res.returncode != 0:
            servers.stop()
            unavailable(f"{script.name} start failed: {res.stderr.strip().splitlines()[-1:]}")
    return servers


@dataclass
class S3Place:
    """One test's bucket, prefix and catalog database."""

    servers: Servers
    bucket: str
    prefix: str
    catalog: str
    database: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.servers.endpoint,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


def new_place(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Place]:
    """A fresh bucket name and database, with the environment a client needs."""
    import psycopg

    tag = uuid.uuid4().hex[:12]
    database = f"t_{tag}"
    with psycopg.connect(servers.pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    catalog = servers.pg_admin.rsplit("/", 1)[0] + "/" + database
    for k, v in S3_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", servers.endpoint)
    monkeypatch.setenv("ARCHIVER_CATALOG", catalog)
    try:
        yield S3Place(servers, f"t-{tag}", "archive", catalog, database)
    finally:
        with psycopg.connect(servers.pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


class Surface:
    """Raw access to an archive's bytes by key, bypassing archiver."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.overwrote = False

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        (self.root / key).unlink()

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def keys(self, prefix: str = "") -> list[str]:
        base = self.root
        return sorted(
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and p.relative_to(base).as_posix().startswith(prefix)
        )

    def snapshot(self) -> dict[str, bytes]:
        """Every file's bytes (to assert that a failed command left nothing)."""
        return {k: self.read(k) for k in self.keys() if not k.endswith(".writer.lock")}

    def warcs(self) -> list[str]:
        """The WARC files' keys."""
        return [k for k in self.keys("store/") if k.endswith(".warc.gz")]

    def sql(self, statement: str, *params: object) -> None:
        """Change the derived index directly (``?`` placeholders)."""
        conn = sqlite3.connect(self.root / "store" / "index.sqlite")
        conn.execute(statement, params)
        conn.commit()
        conn.close()

    def extra_codes(self) -> set[str]:
        """Codes the backend adds to a tampering's findings (none for local files)."""
        return set()


class S3Surface(Surface):
    """The objects of an S3 archive through the S3 API: rewrites are new versions."""

    backend = "s3"

    #: what the verifier checks the lock of in a full run (objectcheck.py)
    LOCK_CHECKED = ("store/", "manifests/log/", "manifests/keys/", "manifests/archive.json")

    def __init__(self, place: S3Place) -> None:
        self.place = place
        self.overwrote = False
        self.unlocked = False
        self._client = place.client()

    def _key(self, key: str) -> str:
        return f"{self.place.prefix}/{key}"

    def read(self, key: str) -> bytes:
        data: bytes = self._client.get_object(Bucket=self.place.bucket, Key=self._key(key))["Body"].read()
        return data

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.place.bucket, Key=self._key(key))
            return True
        except Exception:
            return False

    def write(self, key: str, data: bytes) -> None:
        """PUT without a lock, as an attacker with S3 credentials would: the new version
        is unlocked (and the old one remains)."""
        if self.exists(key):
            self.overwrote = True
        if key.startswith(self.LOCK_CHECKED):
            self.unlocked = True
        self._client.put_object(Bucket=self.place.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        self.overwrote = True
        self._client.delete_object(Bucket=self.place.bucket, Key=self._key(key))

    def keys(self, prefix: str = "") -> list[str]:
        out = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.place.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            out += [o["Key"][len(self.place.prefix) + 1 :] for o in page.get("Contents", [])]
        return sorted(out)

    def snapshot(self) -> dict[str, bytes]:
        """Every object's bytes, and every version (nothing may be left, locked or not)."""
        out = {k: self.read(k) for k in self.keys()}
        res = self._client.list_object_versions(Bucket=self.place.bucket, Prefix=self.place.prefix + "/")
        out["(versions)"] = repr(sorted(v["VersionId"] for v in res.get("Versions", []))).encode()
        return out

    def sql(self, statement: str, *params: object) -> None:
        import psycopg

        with psycopg.connect(self.place.catalog, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s").replace("offset", '"offset"'), params)

    def versions(self, key: str) -> list[dict[str, Any]]:
        """Every version of one object, newest first."""
        res = self._client.list_object_versions(Bucket=self.place.bucket, Prefix=self._key(key))
        return [v for v in res.get("Versions", []) if v["Key"] == self._key(key)]

    def extra_codes(self) -> set[str]:
        return ({"object-overwritten"} if self.overwrote else set()) | (
            {"object-unlocked"} if self.unlocked else set()
        )
