"""The parallel paths (digests in worker processes, WARC files read in parts, manifests
checked in two processes) give exactly the results of the inline ones, on sound and on
damaged archives."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backends import Surface
from conftest import ArchiveFixture, invoke
from tamper import dump, flip_payload_byte, load, manifest_keys, random_arabic, rewrite_member


def _texts(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:03d}.txt").write_text(random_arabic(i, 120) + "\n", encoding="utf-8")
    (folder / "big.bin").write_bytes(os.urandom(1_200_000))  # above the small-file limit: streamed
    return folder


def test_ingest_with_worker_processes_matches_inline(tmp_path, isolated_env, monkeypatch):
    src = _texts(tmp_path / "texts", 30)
    results = {}
    for workers in ("0", "1"):
        monkeypatch.setenv("ARCHIVER_WORKERS", workers)
        root = tmp_path / f"a{workers}"
        assert invoke("init", str(root)).exit_code == 0
        assert invoke("--archive", str(root), "keys", "generate", f"k{workers}").exit_code == 0
        res = invoke("--archive", str(root), "ingest", str(src), "--json")
        assert res.exit_code == 0, res.stderr
        results[workers] = [(i["source"], i["sha256"]) for i in json.loads(res.stdout)]
        report = invoke("--archive", str(root), "verify", "--json").json()
        assert report["ok"], report["problems"]
        contents = [json.loads((root / k).read_bytes())["content"] for k in manifest_keys(Surface(root))]
        assert all(c["redactable"]["tokens"] > 0 for c in contents if c["media_type"] == "text/plain")
    assert results["0"] == results["1"]


def test_bad_file_in_a_parallel_batch_writes_nothing(tmp_path, archive: ArchiveFixture, monkeypatch):
    """An error raised in a worker process (here: an unknown charset) reaches the user as one
    line, exit 2, and nothing is written."""
    from conftest import tree_snapshot

    src = _texts(tmp_path / "texts", 10)
    (src / "005.txt.meta.json").write_text(json.dumps({"charset": "no-such-charset"}))
    before = tree_snapshot(archive.root)
    monkeypatch.setenv("ARCHIVER_WORKERS", "1")
    res = archive.run("ingest", str(src))
    assert res.exit_code == 2 and "005.txt" in res.stderr and "charset" in res.stderr, res.stderr
    assert tree_snapshot(archive.root) == before


def _parts_report(
    archive: ArchiveFixture,
    monkeypatch: Any,
    workers: str,
    parallel_bytes: str,
    part_bytes: str = str(1 << 20),
) -> Any:
    """A full verify's problems and counts, inline (``workers`` "0") or with a worker
    reading the WARC files in parts of ``part_bytes`` and sharing the manifests."""
    monkeypatch.setenv("ARCHIVER_WORKERS", workers)
    monkeypatch.setenv("ARCHIVER_PARALLEL_BYTES", parallel_bytes)
    monkeypatch.setenv("ARCHIVER_PART_BYTES", part_bytes)
    monkeypatch.setenv("ARCHIVER_PARALLEL_MANIFESTS", "1" if workers == "1" else str(1 << 40))
    r = archive.run("verify", "--json").json()
    assert isinstance(r, dict)
    # in the report's own order: the worker and the checks run meanwhile change nothing in it
    problems = [(p["code"], p["document"], p["event"], p["file"], p["message"]) for p in r["problems"]]
    return problems, r["counts"]


def test_verify_reading_warc_files_in_parts_reports_the_same(archive: ArchiveFixture, tmp_path, monkeypatch):
    docs = archive.ingest(_texts(tmp_path / "texts", 40))
    manifests = {
        load(archive.files, k)["document_id"]: load(archive.files, k) for k in manifest_keys(archive.files)
    }
    # events whose records are far apart from their document's: an attestation and a new
    # version (600 KB: hundreds of parts), written after all captures
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    archive.ok("--key", "audrey", "attest", docs[6])
    (tmp_path / "v2.bin").write_bytes(os.urandom(600_000))
    archive.ok("edit", docs[4], str(tmp_path / "v2.bin"), "--reason", "a second version")
    # a second copy of the attestation's manifest record, at the end of the file: the first
    # copy is the one and the second an orphan, though the worker reads the end first (an
    # attestation writes its copy wherever the file ends: it is checked after all parts)
    from archiver.warcscan import scan_file

    warc = "store/" + manifests[docs[0]]["storage"]["warc_file"]
    [(at, length)] = [
        (offset, info.length)
        for offset, info in scan_file(archive.open().store, warc)
        if info.target_uri == f"urn:archiver:event:{docs[6]}/1"
    ]
    raw = archive.files.read(warc)
    archive.files.write(warc, raw + raw[at : at + length])
    # damage one record early in the file and one late: each part finds its own; and one
    # manifest in each half of the manifests (a worker process checks the second half)
    captures = [
        k
        for k in manifest_keys(archive.files)
        if load(archive.files, k)["document_id"] not in (docs[4], docs[6]) and k.endswith("-000000.json")
    ]
    edited = (captures[1], captures[-2])
    for key in edited:
        doc = load(archive.files, key)
        doc["source"]["metadata"]["title"] = "changed after signing"
        dump(archive.files, key, doc)
    for doc in (docs[2], docs[-3]):
        s = manifests[doc]["storage"]
        rewrite_member(
            archive.files,
            "store/" + s["warc_file"],
            s["offset"],
            lambda r: flip_payload_byte(r, -40, fix_digest=True),
        )

    def report(workers: str, parallel_bytes: str, part_bytes: str = str(1 << 20)) -> Any:
        return _parts_report(archive, monkeypatch, workers, parallel_bytes, part_bytes)

    inline = report("0", str(1 << 40))
    assert report("1", "1") == inline  # two parts, manifests shared in jobs of a few
    # parts of about 2 KB: texts and their seeds in different parts, work shared job by job
    assert report("1", "1", "2048") == inline
    found = {(c, d) for c, d, *_ in inline[0]}
    assert {("content-mismatch", docs[2]), ("content-mismatch", docs[-3])} <= found
    # (the edited manifests also differ from their log leaves, index rows and WARC copies)
    assert {("signature-invalid", load(archive.files, k)["document_id"]) for k in edited} <= found
    assert ("record-orphan", None) in found  # the second copy
    assert not {d for c, d in found if c != "record-orphan"} & {docs[4], docs[6]}


def test_a_stale_index_is_found_while_reading_in_parts_as_inline(
    archive: ArchiveFixture, tmp_path, monkeypatch
):
    """A full verify with a worker compares each document's index rows as soon as its
    check makes them, between WARC parts: an index row changed, one deleted and one too
    many are each reported as an inline verify reports them, and a sound index not at all."""
    docs = archive.ingest(_texts(tmp_path / "texts", 40))

    def both() -> Any:
        inline = _parts_report(archive, monkeypatch, "0", str(1 << 40))
        assert _parts_report(archive, monkeypatch, "1", "1", "2048") == inline
        return inline[0]

    assert both() == []
    index = archive.files.root / "store" / "index.sqlite"

    def extra_row(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TEMP TABLE t AS SELECT * FROM events WHERE document_id = ?", (docs[30],))
        conn.execute("UPDATE t SET sequence = sequence + 7")
        conn.execute("INSERT INTO events SELECT * FROM t")

    changes: list[Any] = [
        lambda conn: conn.execute("UPDATE events SET sha256 = ? WHERE document_id = ?", ("0" * 64, docs[5])),
        lambda conn: conn.execute("DELETE FROM events WHERE document_id = ?", (docs[20],)),
        extra_row,
    ]
    for change in changes:
        conn = sqlite3.connect(index)
        change(conn)
        conn.commit()
        conn.close()
        found = both()
        assert [(code, message) for code, _, _, _, message in found] == [
            ("index-stale", "index disagrees with the manifests on 1 event(s); run `archiver reindex`")
        ]
        archive.ok("reindex")
        assert both() == []


def test_token_trees_whose_seed_is_in_another_part_are_checked(
    archive: ArchiveFixture, tmp_path, monkeypatch
):
    """A text read in one part whose seed lies in a later one gets its token tree once the
    seed is read: a seed changed (its WARC digests made to match) gives every document a
    tree that differs from the signed one, reported by a verify reading 2 KB parts exactly
    as by an inline one (a tree left uncomputed would compare nothing and say nothing)."""
    docs = archive.ingest(_texts(tmp_path / "texts", 12))
    _change_every_seed(archive, docs)
    inline = _parts_report(archive, monkeypatch, "0", str(1 << 40))
    assert _parts_report(archive, monkeypatch, "1", "1", "2048") == inline
    assert _trees_differ(archive, docs, inline[0]) == 12


def _change_every_seed(archive: ArchiveFixture, docs: list[str]) -> None:
    """Flip a byte of every token-tree seed, the seed records' WARC digests made to match:
    only the trees can tell."""
    for doc in docs:
        for key in manifest_keys(archive.files, doc):
            seed = load(archive.files, key)["storage"].get("seed")
            if seed is not None:
                rewrite_member(
                    archive.files,
                    "store/" + seed["warc_file"],
                    seed["offset"],
                    lambda r: flip_payload_byte(r, -5, fix_digest=True),
                )


def _trees_differ(archive: ArchiveFixture, docs: list[str], problems: list[Any]) -> int:
    """How many documents have a token tree, after asserting each is reported as differing."""
    texts = {
        d
        for d in docs
        if any(load(archive.files, k)["content"].get("redactable") for k in manifest_keys(archive.files, d))
    }
    differ = {d for c, d, _, _, m in problems if c == "content-mismatch" and "token tree differs" in m}
    assert differ == texts
    return len(texts)


def test_a_tree_the_scan_left_out_is_computed_at_the_check(archive: ArchiveFixture, tmp_path, monkeypatch):
    """However a scan came to leave a text's token tree out (here: the batch step made to
    drop every tree), the document's check computes it from the record and its seed: a
    signed tree is never passed unchecked. A sound archive still verifies clean, and every
    changed seed is still reported."""
    import archiver.warcscan as warcscan

    def dropped(items: list[tuple[Any, bytes | None]]) -> None:
        for content, _ in items:
            content.text = None

    docs = archive.ingest(_texts(tmp_path / "texts", 6))
    monkeypatch.setattr(warcscan, "finish_trees", dropped)
    assert _parts_report(archive, monkeypatch, "0", str(1 << 40))[0] == []
    _change_every_seed(archive, docs)
    problems, _ = _parts_report(archive, monkeypatch, "0", str(1 << 40))
    assert _trees_differ(archive, docs, problems) == 6


def test_trees_computed_in_batches_are_each_texts_own(archive: ArchiveFixture, tmp_path, monkeypatch):
    """A WARC part's deferred token trees are computed together (``TreeBatch``), in batches
    of about ``TREE_BATCH_BYTES`` of text: with batches of one text, of a few and of the
    whole part, every text record gets exactly the tree it gets alone, seeds before and
    after the range included."""
    import archiver.warcscan as warcscan
    from archiver.warcscan import TextCheck, TreeBatch, scan_file, scan_range

    docs = archive.ingest(_texts(tmp_path / "texts", 30))
    store = archive.open().store
    plans: dict[str, dict[int, TextCheck]] = {}
    for doc in docs:
        for key in manifest_keys(archive.files, doc):
            storage = load(archive.files, key)["storage"]
            if "seed" in storage:
                plans.setdefault("store/" + storage["warc_file"], {})[int(storage["offset"])] = TextCheck(
                    "utf-8", None, int(storage["seed"]["offset"])
                )
    [(warc, texts)] = plans.items()
    # (a tree is set on its text's record once the seed's record is read: look after the scan)
    alone = {offset: info.redactable for offset, info in list(scan_file(store, warc, texts=texts))}
    assert sum(1 for tree in alone.values() if tree) == 30
    size = len(archive.files.read(warc))
    starts = sorted(texts)
    for limit in (1, 3000, 1 << 30):  # bytes of text held before a batch is computed
        monkeypatch.setattr(warcscan, "TREE_BATCH_BYTES", limit)
        whole = {offset: info.redactable for offset, info in scan_range(store, warc, [], texts, 0, size)}
        assert whole == alone, limit
        batch = TreeBatch()
        found = list(scan_file(store, warc, texts=texts, trees=batch))
        batch.finish()
        assert {offset: info.redactable for offset, info in found} == alone, limit
        # a range from the seventh text into the twentieth: the last one's seed lies beyond it
        end = starts[19] + 10
        assert texts[starts[19]].seed_at is not None and texts[starts[19]].seed_at > end
        part = scan_range(store, warc, [], texts, starts[6], end)
        assert {offset: info.redactable for offset, info in part} == {o: alone[o] for o, _ in part}
        assert sum(1 for _, info in part if info.redactable) == 14
        assert all(info.text is None for _, info in part)


def test_a_full_verify_starts_its_worker_before_the_snapshot(archive: ArchiveFixture, tmp_path, monkeypatch):
    """When a local archive's WARC files alone make it large, the worker is started before
    the snapshot (its imports overlap the listing of the manifests); never for a check of
    some documents, nor for WARC files below the threshold (``run`` decides then)."""
    from archiver.verify import worker_ahead

    archive.ingest(_texts(tmp_path / "texts", 3))
    opened = archive.open()
    monkeypatch.setenv("ARCHIVER_WORKERS", "1")
    monkeypatch.setenv("ARCHIVER_PARALLEL_BYTES", "1000")
    with worker_ahead(opened, None) as pool:
        assert pool is not None and pool.submit(os.getpid).result() != os.getpid()
    with worker_ahead(opened, ["some-document"]) as pool:
        assert pool is None
    big = max(p.stat().st_size for p in (archive.root / "store").glob("*.warc.gz"))
    monkeypatch.setenv("ARCHIVER_PARALLEL_BYTES", str(big + 1))
    with worker_ahead(opened, None) as pool:
        assert pool is None


def test_a_full_verify_lets_go_of_each_documents_events_once_checked(
    archive: ArchiveFixture, tmp_path, monkeypatch
):
    """A full verify needs a document's parsed manifests only until the document is checked
    (once the chains, the log, the audit records and the time stamps have been): they are
    let go then, with a worker sharing the work and without one, early or after the
    reading. The report is the same either way, and no document is left unchecked."""
    import importlib

    verify_module = importlib.import_module("archiver.verify")  # (``archiver.verify``: the function)
    docs = archive.ingest(_texts(tmp_path / "texts", 12))
    (tmp_path / "v2.txt").write_text(random_arabic(99, 80), encoding="utf-8")
    archive.ok("edit", docs[3], str(tmp_path / "v2.txt"), "--reason", "a second version")
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    archive.ok("--key", "audrey", "attest", docs[5])  # (its copy lies after all parts: checked last)
    # a damaged content record: its document's early check finds it, so it is checked again
    # after the reading, as if early checks did not exist
    s = next(
        m["storage"]
        for m in (load(archive.files, k) for k in manifest_keys(archive.files))
        if m["document_id"] == docs[8]
    )
    rewrite_member(
        archive.files,
        "store/" + s["warc_file"],
        s["offset"],
        lambda r: flip_payload_byte(r, -40, fix_digest=True),
    )
    reports = {}
    for workers in ("0", "1"):
        monkeypatch.setenv("ARCHIVER_WORKERS", workers)
        monkeypatch.setenv("ARCHIVER_PARALLEL_MANIFESTS", "2")
        monkeypatch.setenv("ARCHIVER_PARALLEL_BYTES", "1000" if workers == "1" else str(1 << 40))
        monkeypatch.setenv("ARCHIVER_PART_BYTES", "20000")
        kept: list[object] = []
        report = verify_module.verify(archive.open(), retain=kept)
        (v,) = kept
        assert isinstance(v, verify_module._Verifier)
        assert sorted(v.chains) == sorted(v.checked) and len(v.chains) == len(set(docs))
        assert all(events == [] for events in v.chains.values()), workers
        reports[workers] = report.to_json()
        del reports[workers]["time"]
    assert reports["0"] == reports["1"]
    assert {(p["code"], p["document"]) for p in reports["0"]["problems"]} == {("content-mismatch", docs[8])}


def test_a_full_verify_lets_go_of_each_record_once_its_document_is_checked(
    archive: ArchiveFixture, tmp_path, monkeypatch
):
    """A full verify lets go of the WARC records a document accounts for once it is
    checked; anything that asks for one again reads it again, uncounted. Made to: one
    document's manifest names another's content record, and an edit's diff names a third
    document's manifest copy, whose own manifest was changed, so that its check searches
    for its copy among records let go. The report is the same as with nothing let go, with
    a worker and without; the records left are those no document accounts for, the files'
    warcinfo records, and the content records revisits name."""
    import importlib

    from archiver import KeyStore

    from tamper import resign

    verify_module = importlib.import_module("archiver.verify")  # (``archiver.verify``: the function)
    archive.ingest(_texts(tmp_path / "texts", 12))
    texts = sorted(  # (not the binary file: an edit of a text has a diff record)
        m["document_id"]
        for m in (load(archive.files, k) for k in manifest_keys(archive.files))
        if m["content"]["media_type"].startswith("text/")
    )
    # the edited document is checked before the attested one (the chains' order), both
    # after the reading: what the edit's check lets go, the attestation's check looks for
    edited, attested = texts[0], texts[-1]
    (tmp_path / "v2.txt").write_text(random_arabic(99, 80), encoding="utf-8")
    archive.ok("edit", edited, str(tmp_path / "v2.txt"), "--reason", "a second version")
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    archive.ok("--key", "audrey", "attest", attested)
    # revisits: the same file again (its document's second capture), and a copy of another
    # under a new name (a new document whose content is the first one's record)
    archive.ingest(tmp_path / "texts" / "000.txt")
    (tmp_path / "copy.txt").write_bytes((tmp_path / "texts" / "001.txt").read_bytes())
    archive.ingest(tmp_path / "copy.txt")
    manifests = {
        (m["document_id"], m["sequence"]): (k, m)
        for k in manifest_keys(archive.files)
        if (m := load(archive.files, k))
    }
    revisited = {
        (m["storage"]["refers_to"]["warc_file"], m["storage"]["refers_to"]["offset"])
        for _, m in manifests.values()
        if m["storage"]["record_type"] == "revisit"
    }
    assert len(revisited) == 2
    alice, audrey = (KeyStore().load(name, lambda n: None) for name in ("alice", "audrey"))
    # one document's capture names another's content record
    borrower, owner = texts[1:3]
    key, m = manifests[(borrower, 0)]
    m["storage"]["offset"] = manifests[(owner, 0)][1]["storage"]["offset"]
    dump(archive.files, key, resign(m, alice.private))
    # the edit's diff names the attestation's manifest copy (written where the file then
    # ended: found only by its target URI), and the attestation's manifest is changed
    from archiver.warcscan import scan_file

    [copy_at] = [
        (warc.removeprefix("store/"), offset)
        for warc in archive.files.warcs()
        for offset, info in scan_file(archive.open().store, warc)
        if info.target_uri == f"urn:archiver:event:{attested}/1"
    ]
    key, m = manifests[(edited, 1)]
    m["diff"]["record"].update(warc_file=copy_at[0], offset=copy_at[1])
    dump(archive.files, key, resign(m, alice.private))
    key, m = manifests[(attested, 1)]
    m["reason"] = "changed after signing"
    dump(archive.files, key, resign(m, audrey.private, role="auditor"))

    reports = {}
    for let_go in (True, False):
        for workers in ("0", "1"):
            monkeypatch.setenv("ARCHIVER_WORKERS", workers)
            monkeypatch.setenv("ARCHIVER_PARALLEL_MANIFESTS", "2")
            monkeypatch.setenv("ARCHIVER_PARALLEL_BYTES", "1000" if workers == "1" else str(1 << 40))
            monkeypatch.setenv("ARCHIVER_PART_BYTES", "20000")
            with monkeypatch.context() as mp:
                if not let_go:
                    mp.setattr(verify_module._Verifier, "let_go", lambda self, positions: None)
                kept: list[object] = []
                report = verify_module.verify(archive.open(), retain=kept)
            (v,) = kept
            assert isinstance(v, verify_module._Verifier)
            left = {p for p, r in v.records.items() if not isinstance(r, verify_module._LetGo)}
            if let_go:
                warcinfos = {(name, 0) for name in v.snap.warc_sizes}
                assert left == (v.records.keys() - v.accounted) | warcinfos | v.kept_records, workers
                assert v.kept_records == revisited
            else:
                assert left == set(v.records)
            reports[(let_go, workers)] = report.to_json()
            del reports[(let_go, workers)]["time"]
    first = reports[(True, "0")]
    assert all(r == first for r in reports.values())
    found = {(p["code"], p["document"], p["message"]) for p in first["problems"]}
    assert (
        "content-mismatch",
        attested,
        "the manifest copy in the WARC differs from the manifest file",
    ) in found
    assert any(code == "record-missing" and doc == borrower and "found" in msg for code, doc, msg in found)
    assert any(code == "content-mismatch" and doc == edited and "diff" in msg for code, doc, msg in found)
    # the document whose record another names is sound: its token tree is checked with its
    # own seed, whichever event's seed the scan hashed the record with
    assert not any(doc == owner for _, doc, _ in found)


def test_a_workers_jobs_run_with_the_collector_paused(archive: ArchiveFixture, tmp_path, monkeypatch):
    """The worker's two kinds of job (manifests, WARC parts) run with the cyclic garbage
    collector paused, as the parent's verify does, and leave it as they found it."""
    import gc
    import importlib

    from archiver import warcscan

    verify_module = importlib.import_module("archiver.verify")  # (``archiver.verify``: the function)
    archive.ingest(_texts(tmp_path / "texts", 3))
    opened = archive.open()
    seen: list[bool] = []
    for module, name in ((warcscan, "scan_range"), (verify_module, "examine_manifests")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real: seen.append(gc.isenabled()) or real(*a))
    warc = archive.files.warcs()[0]
    size = (archive.root / warc).stat().st_size
    events = list(manifest_keys(archive.files))
    assert gc.isenabled()
    warcscan.scan_range_packed(opened.store, warc, [], {}, 0, size)
    verify_module.examine_packed(opened.store, opened.archive_id, frozenset(), events)
    assert seen == [False, False] and gc.isenabled()


def test_results_packed_for_the_trip_back_come_out_equal():
    """A worker's results travel as bytes (``prehash.pack``): marshal, or pickle when
    marshal cannot take the value; either way they come back equal."""
    from archiver.prehash import pack, unpack

    value = [("a", None, [(1, "x", None, 3, "f")], {("w.warc.gz", 5)}, b"\x00" * 32, True), {"k": [1, 2**80]}]
    assert pack(value)[:1] == b"m" and unpack(pack(value)) == value
    deep: list[Any] = []
    for _ in range(5000):  # deeper than marshal goes
        deep = [deep]
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        packed = pack(deep)
        assert packed[:1] == b"p" and unpack(packed) == deep
    finally:
        sys.setrecursionlimit(limit)


def test_what_travels_to_and_from_a_worker_pickles_whole():
    """The classes that cross to a worker pickle by their own ``__reduce__`` (the
    dataclass defaults are Python loops): every field comes back, none left at its
    default. A field added later and forgotten there fails this test."""
    import dataclasses
    import pickle

    from archiver.manifest import Event
    from archiver.warcscan import RecordInfo, TextCheck

    def filled(cls: Any) -> Any:  # every field set, to a value of its (first) type
        kinds = {"int": 7, "bool": True, "bytes": b"\x01\x02", "dict": {"n": 1}, "str": "v"}
        return cls(
            **{f.name: kinds[str(f.type).split("[")[0].split(" ")[0]] for f in dataclasses.fields(cls)}
        )

    for cls in (TextCheck, RecordInfo, Event):
        original = filled(cls)
        back = pickle.loads(pickle.dumps(original))  # noqa: S301 (its own bytes)
        assert back == original and type(back) is cls
        defaults = {f.name for f in dataclasses.fields(cls) if getattr(original, f.name) == f.default}
        assert not defaults, (cls, defaults)


def _tagged(i: int, folder: str) -> bytes:
    from archiver.prehash import pack

    (Path(folder) / str(i)).touch()  # the parent waits for the worker's first job
    return pack(("worker", i))


def test_share_splits_jobs_into_a_front_for_this_process_and_a_back_for_the_worker(tmp_path):
    """``prehash.share`` gives the pool every job, last first, and takes back from the
    front what the pool has not started: whatever the timing, this process did a prefix
    of the jobs and the worker the rest, each exactly once, results in job order."""
    import time

    from archiver.prehash import share, unpack, worker_pool

    calls: list[str] = []

    def here(i: int, folder: str) -> tuple[str, int]:
        return ("here", i)

    def meanwhile() -> None:
        calls.append("meanwhile")
        # the worker starts on the back meanwhile: wait until it has (no race on timing)
        deadline = time.monotonic() + 120
        while not (tmp_path / "299").exists():
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.01)

    jobs = [(i, str(tmp_path)) for i in range(300)]
    with worker_pool(1) as pool:
        assert pool is not None
        got = share(pool, here, jobs, packed=(_tagged, unpack), meanwhile=meanwhile)
    assert calls == ["meanwhile"]
    assert [i for _, i in got] == list(range(300))
    sides = [side for side, _ in got]
    k = sides.count("here")
    assert sides == ["here"] * k + ["worker"] * (300 - k)
    assert sides[-1] == "worker"  # the last job is the pool's first

    # without a pool: the other work first, as with one, then every job here
    order: list[object] = []
    got = share(None, lambda i, _: order.append(i) or i, jobs[:3], meanwhile=lambda: order.append("m"))
    assert got == [0, 1, 2]
    assert order == ["m", 0, 1, 2]


def test_share_each_consumes_the_pools_results_between_its_own_jobs():
    """``share_each`` hands this process each of the pool's finished results as soon as it is
    between two of its own jobs, so what ``consume`` does is shared too. Made deterministic
    with a thread pool: its worker finishes job k before it starts job k - 1, and the
    pool's third job waits until this process has consumed the first two."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from archiver.prehash import share_each

    n = 40
    log: list[str] = []
    third_started, go = threading.Event(), threading.Event()

    def job(i: int) -> int:
        if threading.current_thread() is threading.main_thread():
            log.append(f"here {i}")
            if i == 0:
                assert third_started.wait(120), "the pool never reached its third job"
        elif i <= n - 3:
            third_started.set()
            assert go.wait(120)
        return i * i

    got: dict[int, int] = {}

    def consume(i: int, result: int) -> None:
        assert i not in got
        got[i] = result
        log.append(f"consume {i}")
        if i == n - 2:
            go.set()

    with ThreadPoolExecutor(1) as pool:
        share_each(pool, job, [(i,) for i in range(n)], consume)  # type: ignore[arg-type]
    assert got == {i: i * i for i in range(n)}
    assert log[:4] == ["here 0", "consume 0", f"consume {n - 1}", f"consume {n - 2}"]
    mine = [int(x.split()[1]) for x in log if x.startswith("here")]
    assert mine == list(range(len(mine)))  # a prefix, in order, each consumed right after
    assert all(log[log.index(f"here {i}") + 1] == f"consume {i}" for i in mine)


def test_a_pool_shares_work_with_the_interpreter_lock_handed_over_promptly():
    """While a pool shares the work, the main thread lets the pool's threads (which read
    each result from the pipe, 64 KiB at a time) have the interpreter lock within
    ``HANDOFF_INTERVAL``, not the default 5 ms; the setting is restored afterwards, also
    when a job fails, and an inline share leaves it alone."""
    import operator
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import pytest

    from archiver.prehash import HANDOFF_INTERVAL, share, share_each, worker_pool

    default = sys.getswitchinterval()
    assert default > HANDOFF_INTERVAL
    seen: list[float] = []

    def consume(i: int, result: int) -> None:
        seen.append(sys.getswitchinterval())

    def meanwhile() -> None:
        seen.append(sys.getswitchinterval())

    jobs = [(i,) for i in range(30)]
    with worker_pool(1) as pool:
        share_each(pool, abs, jobs, consume, meanwhile=meanwhile)
    assert len(seen) == 31 and max(seen) <= HANDOFF_INTERVAL
    assert sys.getswitchinterval() == default

    seen.clear()
    share_each(None, abs, jobs, consume, meanwhile=meanwhile)  # no pool: no other thread to serve
    assert seen == [default] * 31

    with ThreadPoolExecutor(1) as threads, pytest.raises(ZeroDivisionError):
        share(threads, operator.truediv, [(1, 1)] * 20 + [(1, 0)])
    assert sys.getswitchinterval() == default


def test_share_raises_what_a_worker_job_raised():
    import operator

    import pytest

    from archiver.prehash import share, worker_pool

    with worker_pool(1) as pool, pytest.raises(ZeroDivisionError):
        share(pool, operator.truediv, [(1, 1)] * 50 + [(1, 0)])  # the pool's first job fails


def _dies_at_250(i: int, folder: str) -> bytes:
    from archiver.prehash import pack

    if i == 250:
        import time

        (Path(folder) / "dying").touch()
        time.sleep(0.5)  # the parent takes jobs back meanwhile: futures it cancelled are pending
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    return pack(("worker", i))


def test_share_does_the_work_of_a_worker_that_was_killed(tmp_path):
    """A worker process killed mid-way (out of memory, a signal) loses nothing: this
    process does every job the worker did not send back, each exactly once, results in
    job order, with one warning and no traceback (Python 3.11's pool thread stops with
    one when a killed worker leaves futures this process had cancelled)."""
    import threading
    import time

    from archiver.prehash import share, unpack, worker_pool

    def here(i: int, folder: str) -> tuple[str, int]:
        return ("here", i)

    def meanwhile() -> None:  # until the worker is at its fatal job
        deadline = time.monotonic() + 120
        while not (tmp_path / "dying").exists():
            assert time.monotonic() < deadline, "the worker never reached job 250"
            time.sleep(0.01)

    import logging

    warned: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = warned.append  # type: ignore[method-assign]
    logging.getLogger("archiver").addHandler(handler)
    thread_faults: list[object] = []
    previous = threading.excepthook
    threading.excepthook = thread_faults.append
    try:
        jobs = [(i, str(tmp_path)) for i in range(300)]
        with worker_pool(1) as pool:
            assert pool is not None
            got = share(pool, here, jobs, packed=(_dies_at_250, unpack), meanwhile=meanwhile)
            again = share(pool, here, jobs[:20], packed=(_tagged, unpack))  # a later step: all here
    finally:
        threading.excepthook = previous
        logging.getLogger("archiver").removeHandler(handler)
    assert [i for _, i in got] == list(range(300))
    assert got[250] == ("here", 250)
    assert {side for side, _ in got} <= {"here", "worker"}
    assert again == [("here", i) for i in range(20)]
    lost = [r for r in warned if "worker process ended abruptly" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelname == "WARNING"
    assert thread_faults == []


def _kill_its_worker(run: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the worker process of a running command as soon as it exists (found in
    /proc: a child of ``run`` running multiprocessing's spawn_main); whether it was."""
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (entry / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == run.pid and b"spawn_main" in cmd:
                os.kill(int(entry.name), signal.SIGKILL)
                return True
        time.sleep(0.002)
    return False


def _losing_its_worker(env: dict[str, str], *args: str) -> bytes:
    """Run ``archiver ARGS``, its worker killed as soon as it exists; its stdout, once it
    has exited 0 with the one warning line on stderr."""
    run = subprocess.Popen(
        [sys.executable, "-m", "archiver", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert _kill_its_worker(run), "the command finished before its worker could be found"
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "worker process ended abruptly" in lines[0], lines
    return out


def test_a_verify_whose_worker_is_killed_reports_what_it_would_have(tmp_path, archive: ArchiveFixture):
    """The real command, its worker killed with SIGKILL as soon as it exists: the same
    report as a verify without a worker, exit 0, one warning line, no traceback."""
    archive.ingest(_texts(tmp_path / "texts", 60))
    env = {**os.environ, "ARCHIVER_KEY_DIR": str(archive.keydir)}
    alone = subprocess.run(
        [sys.executable, "-m", "archiver", "--archive", str(archive.root), "verify", "--json"],
        env={**env, "ARCHIVER_WORKERS": "0"},
        capture_output=True,
        check=True,
    )
    parallel = {
        **env,
        "ARCHIVER_PARALLEL_MANIFESTS": "2",
        "ARCHIVER_PARALLEL_BYTES": "1",
        "ARCHIVER_PART_BYTES": "4000",
    }
    out = _losing_its_worker(parallel, "--archive", str(archive.root), "verify", "--json")

    def comparable(raw: bytes) -> dict[str, Any]:
        report = json.loads(raw)
        report.pop("time", None)
        return report

    assert comparable(out) == comparable(alone.stdout)
    assert comparable(out)["ok"] is True


def test_an_ingest_whose_worker_is_killed_ingests_everything(tmp_path, archive: ArchiveFixture):
    """Ingest's worker (digests and token trees computed ahead) killed as soon as it
    exists: every file is still ingested, here, with one warning line; the archive verifies."""
    src = _texts(tmp_path / "texts", 40)
    env = {**os.environ, "ARCHIVER_KEY_DIR": str(archive.keydir), "ARCHIVER_WORKERS": "1"}
    out = _losing_its_worker(env, "--archive", str(archive.root), "ingest", str(src), "--json")
    done = json.loads(out)
    assert sorted(Path(i["source"]).name for i in done) == sorted(p.name for p in src.iterdir())
    report = archive.run("verify", "--json").json()
    assert report["ok"] and report["counts"]["documents"] == 41, report
