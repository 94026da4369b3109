"""Concurrency: four writers and a verifying reader on one archive, all real processes."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

from archiver import Archive, collect, ingest, list_documents, verify

from conftest import ArchiveFixture
from tamper import random_arabic

WRITERS = 4
DOCS_EACH = 100


def _writer(root: str, keydir: str, texts: list[str], out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.environ["ARCHIVER_KEY_DIR"] = keydir
    archive = Archive.open(root)
    key = archive.signing_key("alice", lambda n: None, role="archivist")
    ok = 0
    for path in texts:
        ingest(archive, collect([path], {}), key, wait_seconds=120)
        ok += 1
    out.put(("writer", ok, []))


def _reader(root: str, keydir: str, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.environ["ARCHIVER_KEY_DIR"] = keydir
    archive = Archive.open(root)
    runs = 0
    false_alarms: list[str] = []
    while not stop.is_set() or runs == 0:
        report = verify(archive)
        runs += 1
        false_alarms += [str(p) for p in report.problems]
        # between full runs, single documents, newest first (the ones being written)
        for row in list_documents(archive)[-5:]:
            report = verify(archive, [row.document_id])
            runs += 1
            false_alarms += [str(p) for p in report.problems]
    out.put(("reader", runs, false_alarms))


def test_four_writers_and_a_verifying_reader(archive: ArchiveFixture, tmp_path: Path) -> None:
    texts = []
    for w in range(WRITERS):
        mine = []
        for i in range(DOCS_EACH):
            p = tmp_path / f"w{w}-{i:03d}.txt"
            p.write_text(random_arabic(w * 1000 + i, 150), encoding="utf-8")
            mine.append(str(p))
        texts.append(mine)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    stop = ctx.Event()
    keydir = str(archive.keydir)
    reader = ctx.Process(target=_reader, args=(str(archive.root), keydir, stop, out), daemon=True)
    writers = [ctx.Process(target=_writer, args=(str(archive.root), keydir, t, out)) for t in texts]
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=600)
        assert w.exitcode == 0
    stop.set()
    reader.join(timeout=600)
    assert reader.exitcode == 0
    results = [out.get(timeout=10) for _ in range(WRITERS + 1)]
    written = sum(n for kind, n, _ in results if kind == "writer")
    [(_, reads, alarms)] = [r for r in results if r[0] == "reader"]
    assert written == WRITERS * DOCS_EACH
    assert alarms == [], alarms[:5]  # no reader ever reported a false problem
    assert reads >= 3  # how many depends on the machine: the writers take a few seconds
    final = verify(Archive.open(archive.root))
    assert final.ok and final.counts.documents == WRITERS * DOCS_EACH
    entries = (archive.root / "manifests" / "log" / "entries").read_text().splitlines()
    assert len(entries) == WRITERS * DOCS_EACH + 1  # every event and the key, one consistent log
    print(
        f"\nconcurrency: {WRITERS} writers x {DOCS_EACH} documents, nothing lost; "
        f"{reads} verifications ran alongside, no false problem"
    )


def test_a_verify_checks_the_manifest_listing_of_its_snapshot(
    archive: ArchiveFixture, tmp_path: Path
) -> None:
    """What appears in ``manifests/events/`` after a verify noted the archive is not its
    business; what was there when it noted it is. (The listing is taken once, with the
    snapshot, and step 2 reads it instead of listing again.)"""
    import importlib

    verify_module = importlib.import_module("archiver.verify")
    src = tmp_path / "texts"
    src.mkdir()
    (src / "a.txt").write_text(random_arabic(1, 40), encoding="utf-8")
    [doc] = archive.ingest(src)
    stray = archive.root / "manifests" / "events" / doc[:2] / "stray.txt"

    noted = verify_module._Verifier(Archive.open(archive.root), None)
    stray.write_text("not a manifest")  # after the snapshot: unseen
    assert noted.run().problems == ()

    noted = verify_module._Verifier(Archive.open(archive.root), None)
    stray.unlink()  # there when noted, gone when step 2 comes: reported as found
    found = noted.run().problems
    assert [(p.code.value, p.file) for p in found] == [
        ("schema-invalid", f"manifests/events/{doc[:2]}/stray.txt")
    ], found
    assert verify(Archive.open(archive.root)).problems == ()  # a new snapshot: nothing there
