"""Scheduled audits: rotation within a budget, detection, records in the log, alerting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ArchiveFixture
from tamper import log_text, random_arabic, rewrite_member

pytestmark = pytest.mark.backends


@pytest.fixture
def audited(archive: ArchiveFixture, tmp_path: Path) -> ArchiveFixture:
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    for i in range(6):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(random_arabic(i, 400), encoding="utf-8")  # ~ same size each
        archive.ok("--key", "alice", "ingest", str(p))
    return archive


def _run(archive: ArchiveFixture, *args: str) -> tuple[int, dict]:
    res = archive.run("--key", "audrey", "audit", "--json", *args)
    assert res.exit_code in (0, 1), res.stderr
    return res.exit_code, json.loads(res.stdout)


def test_rotation_covers_everything_once_before_repeating(audited):
    docs = {d["document"]: d["size"] for d in audited.ok("list", "--json").json()}  # type: ignore[union-attr,index]
    budget = max(docs.values()) * 2 - 1  # each run stops once two documents' bytes are read
    slices = []
    for _ in range(4):
        code, out = _run(audited, "--max-bytes", str(budget))
        assert code == 0 and out["outcome"] == "pass"
        slices.append([c["document"] for c in out["checked"]])
    assert [len(s) for s in slices] == [2, 2, 2, 2]
    first_round = slices[0] + slices[1] + slices[2]
    assert sorted(first_round) == sorted(docs)  # all six, each exactly once
    assert slices[3] == slices[0]  # then the rotation starts again, oldest first
    assert audited.verify_codes() == set()  # audit records are signed and logged


def test_a_flipped_byte_is_reported_by_the_first_run_whose_slice_contains_it(audited):
    docs = {d["document"]: d for d in audited.ok("list", "--json").json()}  # type: ignore[union-attr,index]
    budget = max(d["size"] for d in docs.values()) * 2 - 1
    _, first = _run(audited, "--max-bytes", str(budget))
    done = {c["document"] for c in first["checked"]}
    target = sorted(set(docs) - done)[0]
    m = audited.ok("show", target, "--json").json()
    warc = "store/" + m["storage"]["warc_file"]  # type: ignore[index]

    def flip(record: bytes) -> bytes:
        head, _, rest = record.partition(b"\r\n\r\n")
        block = bytearray(rest[:-4])
        block[10] ^= 1
        return head + b"\r\n\r\n" + bytes(block) + b"\r\n\r\n"

    rewrite_member(audited.files, warc, m["storage"]["offset"], flip)  # type: ignore[index]
    results = []
    while True:
        code, out = _run(audited, "--max-bytes", str(budget))
        results.append((code, out))
        if target in {c["document"] for c in out["checked"]}:
            break
        assert code == 0
    code, out = results[-1]
    assert code == 1 and out["outcome"] == "fail"
    assert {p["document"] for p in out["problems"]} == {target}
    assert {p["code"] for p in out["problems"]} >= {"warc-invalid"}
    failed = [c for c in out["checked"] if c["outcome"] == "fail"]
    assert [c["document"] for c in failed] == [target]


def test_overdue_report_and_alert_hook(audited, tmp_path):
    marker = tmp_path / "alerted"
    report = tmp_path / "report.json"
    code, out = _run(audited, "--max-bytes", "1", "--max-age", "1")
    assert code == 0 and len(out["checked"]) == 1 and out["not_reached"] == 5
    assert len(out["overdue"]) == 5  # never verified yet
    # break one document, then audit everything with an alert hook
    victim = audited.ok("list", "--json").json()[0]  # type: ignore[index]
    m = audited.ok("show", victim["document"], "--json").json()  # type: ignore[index]
    audited.files.delete("store/" + m["storage"]["warc_file"])  # type: ignore[index]
    res = audited.run(
        "--key",
        "audrey",
        "audit",
        "--report",
        str(report),
        "--on-failure",
        f'cp "$ARCHIVER_AUDIT_REPORT" {marker}',
    )
    assert res.exit_code == 1 and "PROBLEM record-missing" in res.stdout
    assert json.loads(marker.read_text()) == json.loads(report.read_text())
    assert json.loads(report.read_text())["outcome"] == "fail"


def test_audit_needs_an_auditor_and_records_in_the_log(audited):
    res = audited.run("--key", "alice", "audit")
    assert res.exit_code == 2 and "auditor" in res.stderr
    _run(audited, "--max-seconds", "0")
    audits = audited.files.keys("manifests/audits/")
    assert len(audits) == 1
    assert audits[0] in log_text(audited.files).decode()
    rec = json.loads(audited.files.read(audits[0]))
    assert rec["agent"]["name"] == "audrey" and rec["event_type"] == "fixity check"
    # a forged audit record is caught by verify
    rec["outcome"] = "pass"
    rec["checked"] = []
    audited.files.write(audits[0], json.dumps(rec).encode())
    assert audited.verify_codes() == audited.expect("signature-invalid", "log-mismatch")


def test_time_budget_stops_after_the_current_document(audited):
    ticks = iter(range(100))
    from archiver import KeyStore
    from archiver.audit import run_audit

    arch = audited.open()
    key = KeyStore().load("audrey", lambda n: None)
    # a fake clock advancing 1 s per reading: with 2.5 s, three documents start
    result = run_audit(arch, key, max_seconds=2.5, monotonic=lambda: float(next(ticks)))
    assert len(result.record["checked"]) == 3  # readings 0 (start), 1, 2: go; 3: stop


def test_time_budget_covers_the_whole_command_and_keeps_time_to_record(audited):
    from archiver import KeyStore
    from archiver.audit import run_audit

    arch = audited.open()
    key = KeyStore().load("audrey", lambda n: None)

    def checked(max_seconds: float, since: float | None) -> int:
        ticks = iter(range(100))
        result = run_audit(
            arch, key, max_seconds=max_seconds, monotonic=lambda: float(next(ticks)), since=since
        )
        return len(result.record["checked"])

    # S = 3.05 s keeps 0.305 s to record the run: verifying stops at 2.745 s, so the reading
    # at 3 s stops it (without the reserve a fourth document would start)
    assert checked(3.05, None) == 3
    # the command started 2 s before the run: that time counts against the budget too
    assert checked(3.05, -2.0) == 2
