"""Scale-out: S3 archives on a real Ceph cluster with a PostgreSQL catalog (docs/scale-out.md).

What only an S3 archive has: several processes writing at once, Object Lock refusing
deletions, crashes of writers on other machines, audits shared out by workers, a catalog
rebuilt from the objects, and migration of a local archive. The behaviour both backends
share is tested by the backend suite (modules marked ``backends``), on both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ArchiveFixture, invoke
from tamper import load, manifest_keys, random_arabic

pytestmark = pytest.mark.parametrize("backend", ["s3"])


def _texts(folder: Path, n: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{i:03d}.txt").write_text(random_arabic(seed * 1000 + i, 60), encoding="utf-8")
    return folder


def _cli(archive: ArchiveFixture, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A real archiver process (another machine, as far as the archive can tell)."""
    return subprocess.Popen(
        [sys.executable, "-m", "archiver", "--archive", archive.location, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _sizes(archive: ArchiveFixture) -> list[int]:
    return [int(k.rsplit("/", 1)[-1]) for k in archive.files.keys("manifests/log/checkpoints/")]


def test_two_processes_ingest_into_one_archive_at_once(archive: ArchiveFixture, tmp_path: Path):
    a = _texts(tmp_path / "a", 40, seed=1)
    b = _texts(tmp_path / "b", 40, seed=2)
    # groups of 10: WARC uploads, claims and staging interleave with the other process
    env = {"ARCHIVER_TEST_GROUP": "10"}
    procs = [_cli(archive, "ingest", str(a), env=env), _cli(archive, "ingest", str(b), env=env)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert len(out.split()) == 40
    listed = archive.ok("list", "--json").json()
    assert len(listed) == 80  # type: ignore[arg-type]
    assert archive.verify_codes() == set()
    # one log: checkpoints strictly growing, each segment its own commit, every record once
    sizes = _sizes(archive)
    assert sizes == sorted(set(sizes)) and sizes[-1] == 1 + 80
    segments = [int(k.rsplit("/", 1)[-1]) for k in archive.files.keys("manifests/log/segments/")]
    assert segments == sizes


def test_two_writers_cannot_both_add_the_next_event(archive: ArchiveFixture, tmp_path: Path):
    from archiver import KeyStore
    from archiver.errors import InvalidInput
    from archiver.events import _new_version, _open

    src = tmp_path / "a.txt"
    src.write_text(random_arabic(1, 80), encoding="utf-8")
    [doc] = archive.ingest(src)
    mine, theirs = tmp_path / "mine.txt", tmp_path / "theirs.txt"
    mine.write_text(random_arabic(2, 80), encoding="utf-8")
    theirs.write_text(random_arabic(3, 80), encoding="utf-8")
    alice = KeyStore().load("alice", lambda n: None)
    with pytest.raises(InvalidInput, match="another writer"), archive.open().transaction(alice) as tx:
        chain, state = _open(tx, doc)
        _new_version(tx, chain, state, mine, "my edit", alice, "edited")
        # meanwhile another machine edits the same document and commits first
        archive.ok("edit", doc, str(theirs), "--reason", "their edit")
    events = [load(archive.files, k) for k in manifest_keys(archive.files, doc)]
    assert [e["reason"] for e in events] == [None, "their edit"]  # no fork, nothing of mine
    assert archive.verify_codes() == set()  # my WARC upload was removed (never locked)


def test_changes_through_s3_are_reported_and_locked_versions_cannot_be_deleted(archive, tmp_path):
    from botocore.exceptions import ClientError

    src = tmp_path / "a.txt"
    src.write_text(random_arabic(4, 200), encoding="utf-8")
    [doc] = archive.ingest(src)
    manifest = manifest_keys(archive.files, doc)[0]
    warc = "store/" + load(archive.files, manifest)["storage"]["warc_file"]
    s3 = archive.files
    # Object Lock refuses, through the S3 API, to delete the version archiver wrote ...
    [original] = s3.versions(warc)
    with pytest.raises(ClientError) as refused:
        s3._client.delete_object(Bucket=s3.place.bucket, Key=s3._key(warc), VersionId=original["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # ... or to shorten its retention, or to weaken it to GOVERNANCE
    from datetime import UTC, datetime, timedelta

    for mode in ("COMPLIANCE", "GOVERNANCE"):
        with pytest.raises(ClientError) as refused:
            s3._client.put_object_retention(
                Bucket=s3.place.bucket,
                Key=s3._key(warc),
                VersionId=original["VersionId"],
                Retention={"Mode": mode, "RetainUntilDate": datetime.now(UTC) + timedelta(hours=1)},
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied", mode
    # what S3 does accept: a delete marker, which hides the object ...
    s3.delete(warc)
    assert archive.verify_codes() == {"record-missing", "object-overwritten"}
    report = archive.run("verify", "--json").json()
    hidden = [p for p in report["problems"] if p["code"] == "object-overwritten"]  # type: ignore[index]
    assert hidden[0]["file"] == warc and "delete marker" in hidden[0]["message"]
    # ... and a second version of a manifest, served from then on
    doc_json = load(archive.files, manifest)
    doc_json["reason"] = "rewritten"
    s3.write(manifest, json.dumps(doc_json).encode())
    codes = archive.verify_codes()
    assert {"object-overwritten", "signature-invalid", "log-mismatch"} <= codes
    # the originals are still there under their version ids
    assert len(s3.versions(manifest)) == 2 and s3.versions(warc)


def test_verify_without_the_catalog_needs_only_the_objects(archive, tmp_path, monkeypatch):
    archive.ingest(_texts(tmp_path / "t", 3))
    monkeypatch.delenv("ARCHIVER_CATALOG")
    assert archive.verify_codes() == set()  # an auditor with read access to the bucket only
    res = archive.run("ingest", str(tmp_path / "t" / "000.txt"))
    assert res.exit_code == 2 and "--catalog" in res.stderr and res.stderr.count("\n") == 1


def test_catalog_rebuilt_from_the_objects(archive, tmp_path, monkeypatch, extra_catalog):
    docs = archive.ingest(_texts(tmp_path / "t", 5))
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    archive.ok("--key", "audrey", "audit", "--max-bytes", "1")
    before = archive.ok("list", "--json").json()
    proof = archive.ok("log", "prove", docs[2]).json()
    warcs = archive.files.warcs()
    # the catalog is lost: only a new, empty database
    monkeypatch.setenv("ARCHIVER_CATALOG", extra_catalog)
    res = archive.run("list")
    assert res.exit_code == 2 and "reindex" in res.stderr and res.stderr.count("\n") == 1
    assert archive.ok("reindex").stdout.startswith("index rebuilt: 5 events")
    assert archive.ok("list", "--json").json() == before
    assert archive.ok("log", "prove", docs[2]).json() == proof
    assert archive.verify_codes() == set()
    archive.ingest(_texts(tmp_path / "more", 2, seed=5))
    assert archive.verify_codes() == set()
    new = sorted(set(archive.files.warcs()) - set(warcs))
    assert new and all(k > max(warcs) for k in new)  # WARC numbering resumed after the last file


@pytest.mark.parametrize(
    ("point", "committed"),
    [
        ("s3-warc-uploaded", False),  # WARC object up, not yet recorded in the catalog
        ("s3-staged", False),  # claims and manifests staged, not committed
        ("s3-committed", True),  # committed, nothing published
        ("s3-record-published#3", True),  # some manifests published
        ("s3-segment-published", True),  # everything but the checkpoint
    ],
)
def test_a_killed_writer_is_recovered_by_the_next(archive, tmp_path, point, committed):
    first = archive.ingest(_texts(tmp_path / "first", 3, seed=6))
    # (its spool folder, which a killed process cannot remove, goes with the test's files)
    crash = {"ARCHIVER_TEST_CRASH_AT": point, "TMPDIR": str(tmp_path)}
    killed = _cli(archive, "ingest", str(_texts(tmp_path / "killed", 4, seed=7)), env=crash)
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    # until a writer recovers, verify reports precisely what is there (or nothing)
    codes = archive.verify_codes()
    assert codes <= {"record-orphan", "log-mismatch", "index-stale"}, codes
    # the next writer (on any machine) finds the dead transaction and finishes or undoes it
    res = archive.run("ingest", str(_texts(tmp_path / "next", 2, seed=8)))
    assert res.exit_code == 0, res.stderr
    assert "recovered an interrupted write" in res.stderr
    assert archive.verify_codes() == set()
    present = {d["document"] for d in archive.ok("list", "--json").json()}  # type: ignore[union-attr,index]
    assert set(first) <= present
    assert len(present) == 3 + 2 + (4 if committed else 0)
    # nothing uncommitted is left behind, locked or not
    warcs = archive.files.warcs()
    named = {load(archive.files, k)["storage"]["warc_file"] for k in manifest_keys(archive.files)}
    assert {w.rsplit("/", 1)[-1] for w in warcs} == named


def test_audit_workers_share_the_work(archive, tmp_path):
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    docs = archive.ingest(_texts(tmp_path / "t", 24))
    # three machines from cron: what is due (not verified within a day) is shared out
    procs = [
        _cli(archive, "--key", "audrey", "audit", "--worker", "--max-age", "1", "--json") for _ in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    checked = [c["document"] for r in results for c in r["checked"]]
    assert sorted(checked) == sorted(docs)  # every document once, none twice
    assert sum(1 for r in results if r["checked"]) >= 2  # the work was shared
    assert archive.verify_codes() == set()  # three signed audit records, all in the log
    assert len(archive.files.keys("manifests/audits/")) == 3
    # a damaged document is caught by whichever worker's slice holds it
    from tamper import flip_payload_byte, rewrite_member

    victim = manifest_keys(archive.files, docs[5])[0]
    s = load(archive.files, victim)["storage"]
    rewrite_member(
        archive.files, "store/" + s["warc_file"], s["offset"], lambda r: flip_payload_byte(r, 5, True)
    )
    res = archive.run("--key", "audrey", "audit", "--worker", "--json")  # without --max-age: all again
    out = json.loads(res.stdout)
    assert res.exit_code == 1 and docs[5] in {p["document"] for p in out["problems"]}
    assert len(out["checked"]) == 24
    local = tmp_path / "local"
    assert invoke("init", str(local)).exit_code == 0
    assert invoke("--archive", str(local), "keys", "generate", "aud", "--role", "auditor").exit_code == 0
    res = invoke("--archive", str(local), "audit", "--worker")
    assert res.exit_code == 2 and "S3 archive" in res.stderr


def _s3_fixture(archive: ArchiveFixture, tmp_path: Path, prefix: str) -> ArchiveFixture:
    """Another archive in the same bucket (a migrated copy), as a fixture."""
    from backends import S3Place, S3Surface

    p = archive.files.place
    surface = S3Surface(S3Place(p.servers, p.bucket, prefix, p.catalog, p.database))
    return ArchiveFixture(tmp_path / prefix, archive.keydir, f"s3://{p.bucket}/{prefix}", surface, "s3")


def test_migration_round_trip_keeps_the_log_and_its_checkpoints(
    archive, tmp_path, monkeypatch, extra_catalog
):
    monkeypatch.setenv("ARCHIVER_CATALOG", extra_catalog)
    # a local archive with a custody story
    local_root = tmp_path / "local"
    assert invoke("init", str(local_root)).exit_code == 0
    local = ArchiveFixture(local_root, archive.keydir)
    local.ok("keys", "generate", "rima")
    local.ok("keys", "generate", "omar")
    [doc, *_] = local.ok("--key", "rima", "ingest", str(_texts(tmp_path / "t", 4))).stdout.split()
    v2 = tmp_path / "v2.txt"
    v2.write_text(random_arabic(9, 50), encoding="utf-8")
    local.ok("--key", "rima", "edit", doc, str(v2), "--reason", "correction")
    omar = next(k["key_id"] for k in local.ok("keys", "list", "--json").json() if k["name"] == "omar")  # type: ignore[union-attr,index]
    local.ok("--key", "rima", "transfer", doc, "--to", omar, "--reason", "handover")
    local.ok("--key", "omar", "accept", doc)
    kept = tmp_path / "kept.txt"
    kept.write_text(local.ok("log", "checkpoint").stdout)
    copy = _s3_fixture(archive, tmp_path, "migrated")
    out = local.ok("migrate", "--to", copy.location, "--retention-days", "1", "--json").json()
    assert out["verified"] and out["log_size"] == 2 + 4 + 3  # type: ignore[index]
    # the same checkpoints, byte for byte, and the same WARC files
    for name in sorted((local_root / "manifests/log/checkpoints").iterdir()):
        assert copy.files.read(f"manifests/log/checkpoints/{name.name}") == name.read_bytes()
    for warc in sorted((local_root / "store").glob("*.warc.gz")):
        assert copy.files.read(f"store/{warc.name}") == warc.read_bytes()
    # an auditor's checkpoint kept from the local archive is extended by the copy
    assert copy.verify_codes("--checkpoint", str(kept)) == set()
    assert copy.ok("cat", doc).stdout_bytes == v2.read_bytes()
    # ... and stays extended as the copy grows
    copy.ok("--key", "omar", "ingest", str(_texts(tmp_path / "later", 2, seed=3)))
    assert copy.verify_codes("--checkpoint", str(kept)) == set()
    again = local.run("migrate", "--to", copy.location)
    assert again.exit_code == 2 and "already holds an archive" in again.stderr


def test_an_interrupted_migration_runs_again(archive, tmp_path, monkeypatch, extra_catalog):
    from archiver import Archive
    from archiver.errors import StoreError
    from archiver.migrate import migrate
    from archiver.s3store import S3Store, parse_s3_url

    local_root = tmp_path / "local"
    assert invoke("init", str(local_root)).exit_code == 0
    local = ArchiveFixture(local_root, archive.keydir)
    local.ok("keys", "generate", "rima")
    local.ingest(_texts(tmp_path / "t", 6))
    copy = _s3_fixture(archive, tmp_path, "again")
    where = parse_s3_url(copy.location)
    catalog = extra_catalog
    real_put = S3Store.put
    calls = {"n": 0}

    def failing_put(self, key, data, until):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise StoreError("the network went away")
        return real_put(self, key, data, until)

    monkeypatch.setattr(S3Store, "put", failing_put)
    with pytest.raises(StoreError):
        migrate(Archive.open(local_root), where, catalog, retention_days=1)
    monkeypatch.setattr(S3Store, "put", real_put)
    done = migrate(Archive.open(local_root), where, catalog, retention_days=1)
    assert done.skipped > 0  # what the first run wrote (locked, so it stays) is reused
    monkeypatch.setenv("ARCHIVER_CATALOG", catalog)
    assert copy.verify_codes() == set()


def test_s3_first_run_messages(tmp_path, s3_place, monkeypatch, backend):
    # no archive there
    res = invoke("--archive", s3_place.url, "list")
    assert res.exit_code == 2 and "archiver init --store" in res.stderr
    # init without a catalog
    monkeypatch.delenv("ARCHIVER_CATALOG")
    res = invoke("init", "--store", s3_place.url)
    assert res.exit_code == 2 and "catalog" in res.stderr
    # a bucket made without Object Lock cannot hold an archive
    s3 = s3_place.client()
    s3.create_bucket(Bucket=s3_place.bucket + "-nolock")
    res = invoke("init", "--store", f"s3://{s3_place.bucket}-nolock/x", "--catalog", s3_place.catalog)
    assert res.exit_code == 2 and "Object Lock" in res.stderr
    # a prefix with objects in it, and a catalog that belongs to another archive
    assert invoke("init", "--store", s3_place.url, "--catalog", s3_place.catalog).exit_code == 0
    res = invoke("init", "--store", s3_place.url, "--catalog", s3_place.catalog)
    assert res.exit_code == 2 and "already holds" in res.stderr
    res = invoke("init", "--store", f"s3://{s3_place.bucket}/other", "--catalog", s3_place.catalog)
    assert res.exit_code == 2 and "belongs to archive" in res.stderr
    # unreachable servers: one line each, never a traceback
    res = invoke("--archive", s3_place.url, "--endpoint", "http://127.0.0.1:9", "list")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    res = invoke("--archive", s3_place.url, "--catalog", "postgresql://x:s3cret@127.0.0.1:9/db", "list")
    assert res.exit_code == 2 and "catalog" in res.stderr and res.stderr.count("\n") == 1
    assert "s3cret" not in res.stderr  # a password in the URL is never shown
    # the catalog is for S3 archives only
    res = invoke("init", str(tmp_path / "local"), "--catalog", s3_place.catalog)
    assert res.exit_code == 2 and "for S3 archives" in res.stderr
    for bad in ("s3://UPPER/x", "s3://ok-bucket/../etc"):
        assert invoke("--archive", bad, "list").exit_code == 2


def test_export_of_an_s3_archive_verifies_as_a_local_copy(archive, tmp_path):
    archive.ingest(_texts(tmp_path / "t", 3))
    bag = tmp_path / "bag"
    archive.ok("export", "bagit", str(bag))
    res = invoke("--archive", str(bag), "verify", "--json")
    assert res.exit_code == 0, res.stdout
    report = res.json()
    assert report["counts"]["documents"] == 3  # type: ignore[index]
    # a copy of an S3 archive reads, and refuses writes with a clear message
    res = invoke("--archive", str(bag), "ingest", str(tmp_path / "t" / "000.txt"))
    assert res.exit_code == 2 and "copy of an S3 archive" in res.stderr
