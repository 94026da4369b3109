"""The fast schema check (jsonschema-rs) must give jsonschema's verdict on every record.

Real records of every kind are taken from an archive built here, then mutated at
random (members removed, added, retyped, strings replaced by tricky ones) and
both validators are asked. A disagreement would let an invalid record through
(or reject a good one), so it fails the test.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.schema import is_valid, validator

STRINGS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:00:00.123456Z",
            "2026-02-30T10:00:00Z",
            "2026-11-24T25:00:00Z",
            "2026-11-24 10:00:00",
            "2026",
            "2026-13",
            "sha256:" + "a" * 64,
            "sha256:" + "A" * 64,
            "a" * 64,
            "a" * 128,
            "urn:uuid:12345678-1234-4234-8234-123456789abc",
            "archivist",
            "auditor",
            "ar",
            "x/y",
            "nul\x00byte",
            "http://example.org/a b",
            "sha256:" + "A" * 52 + "====",
        ]
    ),
)
LEAVES = st.one_of(
    STRINGS, st.integers(-(2**60), 2**60), st.booleans(), st.none(), st.floats(allow_nan=False)
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        how = data.draw(st.sampled_from(["delete", "replace", "add", "wrap"]))
        key = path[-1]
        if how == "delete" and isinstance(parent, dict):
            del parent[key]
        elif how == "add" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "x", "signatures", "withheld"]))] = data.draw(LEAVES)
        elif how == "wrap":
            parent[key] = [parent[key]] if data.draw(st.booleans()) else {"v": parent[key]}
        else:
            parent[key] = data.draw(LEAVES)
    return doc


def _samples(root: Path) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    m = root / "manifests"
    out += [("manifest", json.loads(p.read_text())) for p in sorted((m / "events").rglob("*.json"))]
    out += [("key", json.loads(p.read_text())) for p in (m / "keys").glob("*[0-9a-f].json")]
    out += [("revocation", json.loads(p.read_text())) for p in (m / "keys").glob("*.revocation.json")]
    out += [("audit", json.loads(p.read_text())) for p in (m / "audits").glob("*.json")]
    out.append(("archive", json.loads((m / "archive.json").read_text())))
    out.append(
        ("metadata", {"title": "صور قيصر", "language": "ar", "published": "2015-03", "meta": {"k": "v"}})
    )
    return out


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, Any]]]:
    base = tmp_path_factory.mktemp("agree")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHIVER_KEY_DIR", str(base / "keys"))
        yield _build(base)


def _build(base: Path) -> list[tuple[str, Any]]:
    from conftest import invoke

    root = base / "a"
    assert invoke("init", str(root)).exit_code == 0
    for args in (
        ["keys", "generate", "alice"],
        ["keys", "generate", "bob"],
        ["keys", "generate", "aud", "--role", "auditor"],
    ):
        assert invoke("--archive", str(root), *args).exit_code == 0
    src = base / "t.txt"
    src.write_text("الشاهد سامي يروي القصة.\n", encoding="utf-8")
    res = invoke(
        "--archive", str(root), "--key", "alice", "ingest", str(src), "--url", "https://example.org/a"
    )
    doc = res.stdout.split()[0]
    red = base / "r.txt"
    red.write_text("الشاهد [محجوب] يروي القصة.\n", encoding="utf-8")
    assert (
        invoke("--archive", str(root), "--key", "alice", "redact", doc, str(red), "--reason", "r").exit_code
        == 0
    )
    assert invoke("--archive", str(root), "--key", "aud", "attest", doc).exit_code == 0
    assert invoke("--archive", str(root), "--key", "aud", "audit").exit_code in (0, 1)
    report = invoke("--archive", str(root), "verify", "--json").json()
    export = base / "bag"
    assert invoke("--archive", str(root), "export", "bagit", str(export)).exit_code == 0
    out = _samples(root)
    out.append(("report", report))
    out.append(("export", json.loads((export / "data/archive/manifests/export.json").read_text())))
    assert {n for n, _ in out} >= {"manifest", "key", "archive", "audit", "report", "export", "metadata"}
    return out


def test_real_records_are_valid_for_both(samples):
    for name, doc in samples:
        assert validator(name).is_valid(doc), name
        assert is_valid(name, doc), name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_and_reference_validators_agree_on_mutations(samples, data):
    name, doc = data.draw(st.sampled_from(samples))
    mutated = _mutate(doc, data)
    assert is_valid(name, mutated) == validator(name).is_valid(mutated), (name, mutated)
