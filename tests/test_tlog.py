"""The log: RFC 9162 / RFC 6962 reference vectors, proofs checked against a naive
recomputation, properties, counted append cost, checkpoints, and rollback attacks on disk."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.merkle import leaf_hash, root_of_leaf_hashes
from archiver.signing import raw_public
from archiver.tlog import (
    Log,
    MemoryTree,
    checkpoint_body,
    checkpoint_signers,
    consistency_proof,
    inclusion_proof,
    note_key_id,
    parse_checkpoint,
    sign_checkpoint,
    verify_consistency,
    verify_inclusion,
)

from conftest import ArchiveFixture
from tamper import load, log_text, manifest_keys, relog, write_log_text

pytestmark = pytest.mark.backends

# The 8-leaf test tree of the Certificate Transparency implementations
# (transparency-dev/merkle testonly: LeafInputs, RootHashes, reference proofs).
LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {
    (0, 1): [],
    (0, 2): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    (1, 2): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


@pytest.fixture
def stored(tmp_path: Path) -> Log:
    log = Log(tmp_path / "log")
    for i, leaf in enumerate(LEAVES):
        assert log.append([(f"manifests/events/t{i}", leaf)]) == i + 1
        assert log.root().hex() == ROOTS[i + 1]  # the stored tree, after every append
    return log


def test_reference_roots(stored):
    assert stored.root(0).hex() == ROOTS[0]
    for n in range(9):
        assert root_of_leaf_hashes([leaf_hash(x) for x in LEAVES[:n]]).hex() == ROOTS[n]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_reference_inclusion_proofs(stored, index, size):
    proof = inclusion_proof(stored.node, index, size)
    assert [h.hex() for h in proof] == INCLUSION[(index, size)]
    assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_reference_consistency_proofs(stored, old, new):
    proof = consistency_proof(stored.node, old, new)
    assert [h.hex() for h in proof] == CONSISTENCY[(old, new)]
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), proof)


# A deliberately naive, recursive transcription of RFC 9162 2.1.3.1 and 2.1.4.1 over leaf lists.
def naive_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*naive_path(m, d[:k]), root_of_leaf_hashes(d[k:])]
    return [*naive_path(m - k, d[k:]), root_of_leaf_hashes(d[:k])]


def naive_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [root_of_leaf_hashes(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*naive_subproof(m, d[:k], b), root_of_leaf_hashes(d[k:])]
    return [*naive_subproof(m - k, d[k:], False), root_of_leaf_hashes(d[:k])]


def test_every_proof_up_to_64_matches_the_naive_definition(tmp_path):
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(64)]
    log = Log(tmp_path / "log")
    log.append((f"manifests/events/x{i}", i.to_bytes(2, "big")) for i in range(64))
    for n in range(1, 65):
        root = root_of_leaf_hashes(leaves[:n])
        assert log.root(n) == root
        for i in range(n):
            proof = inclusion_proof(log.node, i, n)
            assert proof == naive_path(i, leaves[:n])
            assert verify_inclusion(leaves[i], i, n, proof, root)
            assert not verify_inclusion(leaves[(i + 1) % 64], i, n, proof, root) or (n == 1 and i == 0)
        for m in range(1, n + 1):
            proof = consistency_proof(log.node, m, n)
            assert proof == naive_subproof(m, leaves[:n], True)
            old_root = root_of_leaf_hashes(leaves[:m])
            assert verify_consistency(m, n, old_root, root, proof)
            if m < n:
                assert not verify_consistency(m, n, leaf_hash(b"x"), root, proof)


@given(st.integers(1, 300), st.data())
@settings(max_examples=150, deadline=None)
def test_proofs_hold_for_random_trees(n, data):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = MemoryTree(leaves)
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    assert verify_inclusion(leaves[i], i, n, inclusion_proof(tree.node, i, n), tree.root())
    assert verify_consistency(m, n, tree.root(m), tree.root(), consistency_proof(tree.node, m, n))
    bad = [*consistency_proof(tree.node, m, n), b"\x00" * 32]
    assert m == n or not verify_consistency(m, n, tree.root(m), tree.root(), bad)


def test_append_reads_at_most_log_n_nodes(tmp_path, monkeypatch):
    log = Log(tmp_path / "log")
    log.append((f"manifests/events/a{i}", b"%d" % i) for i in range(1000))
    reads = []
    real = Log.node

    def counting(self, level, index):
        reads.append((level, index))
        return real(self, level, index)

    monkeypatch.setattr(Log, "node", counting)
    for n in range(1000, 1100):
        reads.clear()
        log.append([(f"manifests/events/b{n}", b"%d" % n)])
        assert len(reads) <= n.bit_length(), (n, len(reads))
        # writes: one leaf plus one node per completed subtree
    assert log.root() == root_of_leaf_hashes(
        [leaf_hash(b"%d" % i) for i in range(1000)] + [leaf_hash(b"%d" % n) for n in range(1000, 1100)]
    )
    sizes = sorted(p.stat().st_size for p in log.dir.glob("level-*"))
    assert sum(sizes) < 2 * 1100 * 32  # linear storage


def test_checkpoint_is_a_c2sp_signed_note():
    key = Ed25519PrivateKey.generate()
    body = checkpoint_body("urn:uuid:00000000-0000-4000-8000-000000000000", 8, bytes.fromhex(ROOTS[8]))
    note = sign_checkpoint(body, "alice/0123456789abcdef", key)
    lines = note.split("\n")
    assert lines[:3] == [
        "archiver/00000000-0000-4000-8000-000000000000",
        "8",
        base64.b64encode(bytes.fromhex(ROOTS[8])).decode(),
    ]
    assert lines[3] == "" and lines[4].startswith("\u2014 alice/0123456789abcdef ")
    sig = base64.b64decode(lines[4].split(" ")[2])
    expected_id = hashlib.sha256(b"alice/0123456789abcdef\n\x01" + raw_public(key.public_key())).digest()[:4]
    assert sig[:4] == expected_id == note_key_id("alice/0123456789abcdef", raw_public(key.public_key()))
    key.public_key().verify(sig[4:], body.encode())
    cp = parse_checkpoint(note.encode())
    assert cp.size == 8 and cp.root.hex() == ROOTS[8]
    altered = parse_checkpoint(note.replace("\n8\n", "\n9\n").encode())
    trusted = [("alice", "0123456789abcdef" + "0" * 48, raw_public(key.public_key()))]
    good, bad = checkpoint_signers(cp, trusted)
    assert good and not bad
    good, bad = checkpoint_signers(altered, trusted)
    assert not good and bad  # parses, but its signature no longer verifies
    for broken in (note.replace("\u2014", "-"), body):
        with pytest.raises(ValueError):
            parse_checkpoint(broken.encode())


# -- on disk -------------------------------------------------------------------------------------------
@pytest.fixture
def logged(archive: ArchiveFixture, tmp_path: Path) -> ArchiveFixture:
    for i in range(3):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(f"وثيقة رقم {i}\n" * 20, encoding="utf-8")
        archive.ingest(p)
    assert archive.verify_codes() == set()
    return archive


def _checkpoint(archive: ArchiveFixture, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(archive.ok("log", "checkpoint").stdout)
    return path


def _remove_last_document(archive: ArchiveFixture) -> None:
    """Delete the newest document's events and its WARC records (it was written last)."""
    newest = max(manifest_keys(archive.files), key=lambda k: load(archive.files, k)["time"])
    storage = load(archive.files, newest)["storage"]
    warc = "store/" + storage["warc_file"]
    archive.files.write(warc, archive.files.read(warc)[: storage["offset"]])
    archive.files.delete(newest)


def test_deleted_document_with_log_rebuilt_but_old_checkpoints_kept(logged, tmp_path):
    from archiver.logview import format_entries, parse_entries

    _remove_last_document(logged)
    logged.ok("reindex")
    # the attacker rebuilds entries and nodes, but cannot re-sign: old checkpoints stay
    present = set(logged.files.keys("manifests/"))
    keep = [(h, k) for h, k in parse_entries(log_text(logged.files)) if k in present]
    write_log_text(logged.files, format_entries(keep))
    assert logged.verify_codes() == logged.expect("log-mismatch")


def test_deleted_document_with_everything_re_signed_needs_a_kept_checkpoint(logged, tmp_path):
    kept = _checkpoint(logged, tmp_path, "kept.txt")
    _remove_last_document(logged)
    logged.ok("reindex")
    relog(logged.files)  # an insider with a key re-signs every checkpoint
    assert logged.verify_codes() == logged.expect()
    assert logged.verify_codes("--checkpoint", str(kept)) == logged.expect("log-rollback")


@pytest.mark.local_only  # restores a backup of the archive's folder
def test_older_copy_restored_under_a_newer_checkpoint(logged, tmp_path, arabic_dir):
    backup = tmp_path / "backup"
    shutil.copytree(logged.root, backup)
    logged.ingest(arabic_dir / "a.txt")
    newer = _checkpoint(logged, tmp_path, "newer.txt")
    older = _checkpoint(ArchiveFixture(backup, logged.keydir), tmp_path, "older.txt")
    assert logged.verify_codes("--checkpoint", str(older)) == set()  # it only grew
    shutil.rmtree(logged.root)
    shutil.copytree(backup, logged.root)  # restored from the older backup
    assert logged.verify_codes() == set()  # consistent in itself ...
    assert logged.verify_codes("--checkpoint", str(newer)) == {"log-rollback"}  # ... but rolled back
    res = logged.run("log", "consistency", str(newer))
    assert res.exit_code == 2 and "rolled back" in res.stderr


def test_checkpoint_root_edited(logged):
    cp = logged.files.keys("manifests/log/checkpoints/")[-1]
    lines = logged.files.read(cp).decode().split("\n")
    root = bytearray(base64.b64decode(lines[2]))
    root[0] ^= 1
    lines[2] = base64.b64encode(bytes(root)).decode()
    logged.files.write(cp, "\n".join(lines).encode())
    assert logged.verify_codes() == logged.expect("signature-invalid", "log-mismatch")


def test_appended_record_without_checkpoint(logged, tmp_path):
    cps = logged.files.keys("manifests/log/checkpoints/")
    logged.files.delete(cps[-1])  # as after a crash between the log append and the checkpoint
    assert logged.verify_codes() == logged.expect("log-mismatch")


def test_record_not_in_the_log(logged):
    lines = log_text(logged.files).splitlines(keepends=True)
    write_log_text(logged.files, b"".join(lines[:-1]))
    assert "log-mismatch" in logged.verify_codes()


def test_prove_output_verifies_independently(logged):
    import json

    doc = logged.ok("list", "--json").json()[1]["document"]  # type: ignore[index]
    proof = logged.ok("log", "prove", doc, "--version", "0").json()
    manifest = logged.files.read(proof["manifest"])  # type: ignore[index]
    leaf = hashlib.sha256(b"\x00" + manifest).digest()
    assert base64.b64decode(proof["leaf_hash"]) == leaf  # type: ignore[index]
    path = [base64.b64decode(h) for h in proof["audit_path"]]  # type: ignore[index]
    root = base64.b64decode(proof["root_hash"])  # type: ignore[index]
    assert verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], path, root)  # type: ignore[index]
    assert json.loads(manifest)["document_id"] == doc


def test_consistency_output_verifies_independently(logged, tmp_path, arabic_dir):
    old = _checkpoint(logged, tmp_path, "old.txt")
    logged.ingest(arabic_dir / "a.txt", arabic_dir / "b.txt")
    out = logged.ok("log", "consistency", str(old)).json()
    ok = verify_consistency(
        out["old_size"],
        out["new_size"],
        base64.b64decode(out["old_root_hash"]),  # type: ignore[index]
        base64.b64decode(out["new_root_hash"]),  # type: ignore[index]
        [base64.b64decode(h) for h in out["consistency_path"]],
    )  # type: ignore[index]
    assert ok and out["extends"]  # type: ignore[index]


def test_every_write_command_appends_and_checkpoints(archive, arabic_dir, tmp_path):
    sizes = []

    def size() -> int:
        return len(log_text(archive.files).splitlines())

    sizes.append(size())  # the first key
    [doc] = archive.ingest(arabic_dir / "a.txt")
    sizes.append(size())
    archive.ok("keys", "generate", "bob")
    sizes.append(size())
    v2 = tmp_path / "v2.txt"
    v2.write_text("نسخة ثانية", encoding="utf-8")
    archive.ok("--key", "alice", "edit", doc, str(v2), "--reason", "x")
    sizes.append(size())
    assert sizes == [1, 2, 3, 4]
    cps = [int(k.rsplit("/", 1)[-1]) for k in archive.files.keys("manifests/log/checkpoints/")]
    assert cps == [1, 2, 3, 4]  # older checkpoints are kept
    assert archive.verify_codes() == set()


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 1300),
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=20),
    peek=st.booleans(),
)
def test_streaming_root_equals_reference_for_any_chunking(n, cuts, peek):
    """The block-reduced streaming root (token trees) is the RFC 9162 root, however leaves arrive."""
    import hashlib

    from archiver.merkle import StreamingRoot, root_of_leaf_hashes

    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    tree = StreamingRoot()
    i = k = 0
    while i < n:
        step = cuts[k % len(cuts)]
        tree.extend(leaves[i : i + step])
        i = min(n, i + step)
        k += 1
        if peek:  # a root taken mid-stream must not disturb what follows
            assert tree.root() == root_of_leaf_hashes(leaves[:i])
    assert tree.root() == root_of_leaf_hashes(leaves) and tree.size == n


@given(seed=st.binary(min_size=32, max_size=32), start=st.integers(0, 5000), n=st.integers(0, 2500))
def test_salt_runs_equal_single_salts(seed, start, n):
    from archiver.redaction import Salts

    one, many = Salts(seed), Salts(seed)
    assert many.span(start, n) == b"".join(one[i] for i in range(start, start + n))


@given(
    seed=st.binary(min_size=32, max_size=32), order=st.lists(st.integers(0, 2100), min_size=1, max_size=40)
)
def test_salts_are_the_shake256_blocks_of_the_format(seed, order):
    """Whatever order salts are asked in (a prefix of a block is derived first, the rest on
    demand), each is bytes 16*(i mod 1024).. of SHAKE-256("archiver/token-salt/1" || seed || BE64(i div 1024))."""
    import hashlib

    from archiver.redaction import Salts

    salts = Salts(seed)
    for i in order:
        block = hashlib.shake_256(b"archiver/token-salt/1" + seed + (i // 1024).to_bytes(8, "big")).digest(
            16 * 1024
        )
        assert salts[i] == block[16 * (i % 1024) : 16 * (i % 1024) + 16]
        assert salts.span(i, 3) == b"".join(
            hashlib.shake_256(b"archiver/token-salt/1" + seed + (k // 1024).to_bytes(8, "big")).digest(
                16 * 1024
            )[16 * (k % 1024) : 16 * (k % 1024) + 16]
            for k in range(i, i + 3)
        )


def test_find_leaf_agrees_with_parsing_every_line():
    """``log prove`` finds its line with bytes.find: the same index and hash as parsing the
    whole entries file, for keys that end or start like others, a key given twice (the first
    wins) and a key that is absent; a malformed line elsewhere is not its business, a
    malformed line holding the key is refused."""
    from archiver.logview import find_leaf, format_entries, parse_entries

    keys = [
        "manifests/events/ab/x.json",
        "manifests/events/ab/yx.json",
        "manifests/events/ab/x.json.bak",
        "manifests/keys/x.json",
        "manifests/events/ab/x.json",
        "manifests/audits/000001.json",
    ]
    entries = [(hashlib.sha256(str(i).encode()).digest(), k) for i, k in enumerate(keys)]
    text = format_entries(entries)
    parsed = parse_entries(text)
    for key in set(keys) | {"manifests/events/ab/z.json", "manifests/events/ab/x"}:
        want = next(((i, h) for i, (h, k) in enumerate(parsed) if k == key), None)
        assert find_leaf(text, key) == want, key
    broken_elsewhere = text.replace(b" manifests/keys/x.json", b"  manifests/keys/x.json")
    assert find_leaf(broken_elsewhere, "manifests/audits/000001.json") == (5, entries[5][0])
    broken_here = text.replace(entries[5][0].hex().encode(), b"zz" + entries[5][0].hex().encode()[2:])
    with pytest.raises(ValueError, match="line 6 of the log is malformed"):
        find_leaf(broken_here, "manifests/audits/000001.json")
