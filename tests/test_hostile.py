"""Hostile input: every file the tool reads, mutated at random and by hand, gives a clean
result (a report with problems) or a clean error (ArchiverError, exit 2): never a
traceback, a hang, or unbounded memory. The number of cases tried is printed."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver import Archive, ArchiverError, collect, verify

from conftest import ArchiveFixture, invoke
from tamper import random_arabic

CASES: Counter[str] = Counter()
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

hostile_text = st.one_of(
    st.text(max_size=50),
    st.sampled_from(
        [
            "../../etc/passwd",
            "/etc/passwd",
            "a\x00b",
            "\u202e",
            "x" * 70000,
            "..",
            "",
            "000000.warc.gz/../../x",
            "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        ]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=15,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hostile")
    os.environ["ARCHIVER_KEY_DIR"] = str(tmp / "keys")
    root = tmp / "archive"
    assert invoke("init", str(root)).exit_code == 0
    fx = ArchiveFixture(root, tmp / "keys")
    fx.ok("keys", "generate", "alice")
    fx.ok("keys", "generate", "audrey", "--role", "auditor")
    for i in range(2):
        p = tmp / f"d{i}.txt"
        p.write_text(random_arabic(i, 120), encoding="utf-8")
        fx.ok("--key", "alice", "ingest", str(p))
    fx.ok("--key", "audrey", "audit")
    return root


def _check(root: Path, kind: str) -> None:
    """The property: verify returns a report or raises an ArchiverError; nothing else."""
    CASES[kind] += 1
    try:
        report = verify(Archive.open(root))
    except ArchiverError:
        return
    assert report.counts is not None


def _targets(root: Path) -> dict[str, Path]:
    events = sorted((root / "manifests" / "events").rglob("*.json"))
    return {
        "manifest": events[0],
        "key": sorted((root / "manifests" / "keys").glob("*.json"))[0],
        "checkpoint": sorted((root / "manifests" / "log" / "checkpoints").iterdir())[-1],
        "log entries": root / "manifests" / "log" / "entries",
        "audit record": sorted((root / "manifests" / "audits").glob("*.json"))[0],
        "warc": root / "store" / "000000.warc.gz",
        "archive.json": root / "manifests" / "archive.json",
        "index": root / "store" / "index.sqlite",
    }


@pytest.mark.parametrize(
    "kind", ["manifest", "key", "checkpoint", "log entries", "audit record", "warc", "archive.json", "index"]
)
def test_random_bytes_mutations(base: Path, kind: str) -> None:
    target = _targets(base)[kind]
    original = target.read_bytes()

    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        op = data.draw(st.sampled_from(["flip", "truncate", "splice", "garbage"]))
        blob = bytearray(original)
        if op == "flip" and blob:
            for _ in range(data.draw(st.integers(1, 8))):
                i = data.draw(st.integers(0, len(blob) - 1))
                blob[i] ^= data.draw(st.integers(1, 255))
        elif op == "truncate":
            blob = blob[: data.draw(st.integers(0, len(blob)))]
        elif op == "splice":
            i = data.draw(st.integers(0, len(blob)))
            blob[i:i] = data.draw(st.binary(max_size=200))
        else:
            blob = bytearray(data.draw(st.binary(max_size=2000)))
        try:
            target.write_bytes(bytes(blob))
            _check(base, kind)
        finally:
            target.write_bytes(original)

    run()


@pytest.mark.parametrize("kind", ["manifest", "key", "audit record"])
def test_structured_json_mutations(base: Path, kind: str) -> None:
    """Replace any member with hostile JSON: huge numbers, traversal paths, NUL, nesting."""
    target = _targets(base)[kind]
    original = target.read_bytes()
    doc = json.loads(original)

    def paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        out = [prefix]
        if isinstance(value, dict):
            for k, v in value.items():
                out += paths(v, (*prefix, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                out += paths(v, (*prefix, i))
        return out

    members = [p for p in paths(doc) if p]

    @SETTINGS
    @given(st.sampled_from(members), json_values)
    def run(member: tuple[object, ...], value: object) -> None:
        mutated = json.loads(original)
        node = mutated
        for k in member[:-1]:
            node = node[k]  # type: ignore[index]
        node[member[-1]] = value  # type: ignore[index]
        try:
            target.write_bytes(json.dumps(mutated, ensure_ascii=False).encode("utf-8", "surrogatepass"))
            _check(base, kind + " (structured)")
        finally:
            target.write_bytes(original)

    run()


def test_hand_made_hostile_cases(base: Path, tmp_path: Path) -> None:
    t = _targets(base)
    manifest = json.loads(t["manifest"].read_bytes())
    warc = t["warc"]
    cases = {
        "manifest: traversal in warc_file": ("storage", "warc_file", "../../../etc/passwd"),
        "manifest: absolute warc_file": ("storage", "warc_file", "/etc/passwd"),
        "manifest: negative offset": ("storage", "offset", -5),
        "manifest: huge length": ("storage", "length", 2**62),
        "manifest: huge offset": ("storage", "offset", 2**53 - 1),
        "manifest: NUL in title": ("source", "metadata", {"title": "a\x00b"}),
        "manifest: 10 MB value": ("source", "metadata", {"title": "x" * (10 << 20)}),
    }
    for name, (a, b, value) in cases.items():
        mutated = json.loads(json.dumps(manifest))
        mutated[a][b] = value
        original = t["manifest"].read_bytes()
        try:
            t["manifest"].write_text(json.dumps(mutated))
            _check(base, name)
        finally:
            t["manifest"].write_bytes(original)
    deep = "[" * 100_000 + "]" * 100_000
    for kind in ("manifest", "key", "audit record"):
        original = t[kind].read_bytes()
        try:
            t[kind].write_text(deep)
            _check(base, f"{kind}: 100,000-deep nesting")
        finally:
            t[kind].write_bytes(original)
    original = warc.read_bytes()
    bad_members = {
        "warc: huge Content-Length": gzip.compress(
            b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 99999999999999\r\n\r\nabc"
        ),
        "warc: negative Content-Length": gzip.compress(b"WARC/1.1\r\nContent-Length: -1\r\n\r\n"),
        "warc: gzip bomb": gzip.compress(b"WARC/1.1\r\nX: " + b"A" * (64 << 20)),
        "warc: not gzip": b"\x00" * 1000,
        "warc: header not UTF-8": gzip.compress(
            b"WARC/1.1\r\nX: \xff\xfe\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
        ),
    }
    for name, member in bad_members.items():
        try:
            warc.write_bytes(original + member)
            _check(base, name)
        finally:
            warc.write_bytes(original)
    entries = t["log entries"]
    original = entries.read_bytes()
    try:
        entries.write_bytes(original + b"0" * 64 + b" manifests/events/../../../../etc/passwd\n")
        _check(base, "log: traversal path")
    finally:
        entries.write_bytes(original)
    # symbolic links where files are expected, and a symlink loop in a folder to ingest
    event = t["manifest"]
    saved = event.read_bytes()
    try:
        event.unlink()
        event.symlink_to("/etc/passwd")
        _check(base, "manifest: symbolic link")
    finally:
        event.unlink()
        event.write_bytes(saved)
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "a.txt").write_text("نص")
    (loop / "self").symlink_to(loop)
    (
        loop / "bad-name-\udcff.txt".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    ).write_text("x")
    sources = collect([str(loop)], {}, follow_symlinks=True)
    CASES["ingest: symlink loop and undecodable name"] += 1
    assert sorted(Path(s.display).name for s in sources)[:1] == ["a.txt"]
    assert any("\\xff" in (s.filename or "") for s in sources)


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("manifest", {"record-missing"}),
        ("key", {"schema-invalid"}),
        ("warc", {"warc-invalid"}),
        ("checkpoint", None),
        ("log entries", None),
        ("audit record", None),
    ],
)
def test_a_fifo_where_a_file_is_expected(base: Path, tmp_path: Path, kind: str, codes: set[str] | None):
    """A named pipe planted in the archive: opening it to read waits for a writer forever.
    Verify must finish all the same (a process of its own, so that a hang fails the test
    instead of stalling the run) and say what it found, never with a traceback."""
    import shutil
    import subprocess
    import sys

    root = tmp_path / "archive"
    shutil.copytree(base, root, symlinks=True)
    target = _targets(root)[kind]
    target.unlink()
    os.mkfifo(target)
    CASES[f"{kind}: a FIFO"] += 1
    res = subprocess.run(
        [sys.executable, "-m", "archiver", "--archive", str(root), "verify", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    assert res.returncode in (1, 2), (res.returncode, res.stderr)
    if codes is not None:
        assert res.returncode == 1, res.stderr
        found = {p["code"] for p in json.loads(res.stdout)["problems"]}
        assert codes <= found, found


@SETTINGS
@given(st.one_of(st.binary(max_size=3000), json_values.map(lambda v: json.dumps(v).encode())))
def test_metadata_sidecars(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    d = tmp_path_factory.mktemp("meta")
    (d / "doc.txt").write_text("نص", encoding="utf-8")
    (d / "doc.txt.meta.json").write_bytes(raw)
    CASES["metadata sidecar"] += 1
    try:
        collect([str(d / "doc.txt")], {})
    except ArchiverError as e:
        assert "\n" not in str(e)


def test_zz_report_counts() -> None:
    total = sum(CASES.values())
    print(
        f"\nhostile inputs: {total} generated and tried, no crash: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(CASES.items()))
    )
    assert total >= 1000
