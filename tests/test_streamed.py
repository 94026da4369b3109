"""Large documents: one read for content that is not text, SHA-512 on a second core.

A large binary is hashed while it is written (``WarcWriter.write_streamed``): the WARC
header, which carries the digests, is rewritten in place at the end. These tests check
that the record is byte for byte what the two-pass writer (warcio) makes, that warcio
and our verifier read it, that a duplicate leaves no bytes behind, that a source which
changes is refused, and that the text and the parallel paths give the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator

from archiver import parhash
from archiver.layout import Layout
from archiver.warcstore import SourceChanged, WarcWriter, stored_blocks

from conftest import ArchiveFixture, tree_snapshot

pytestmark = pytest.mark.backends

MB = 1 << 20


def _random_file(path: Path, mb: int, head: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(head)
        block = os.urandom(MB)
        for i in range(mb):
            f.write(block[i:] + block[:i])
    return path


def _records(warc: bytes) -> list[tuple[str, list[tuple[str, str]], bytes]]:
    out = []
    for rec in ArchiveIterator(io.BytesIO(warc)):
        out.append((rec.rec_type, list(rec.rec_headers.headers), rec.content_stream().read()))
    return out


def test_large_binary_is_read_once_and_stored_like_any_record(archive: ArchiveFixture, tmp_path, backend):
    big = _random_file(tmp_path / "photo.jpg", 6, head=b"\xff\xd8\xff\xe0")  # a JPEG's magic
    [doc] = archive.ingest(big)
    shown = archive.ok("show", doc, "--json").json()
    assert isinstance(shown, dict)
    content = shown["content"]
    data = big.read_bytes()
    assert content["sha256"] == hashlib.sha256(data).hexdigest()
    assert content["sha512"] == hashlib.sha512(data).hexdigest()
    assert content["media_type"] == "image/jpeg" and content["text_sha256"] is None
    assert archive.ok("cat", doc).stdout_bytes == data
    assert archive.verify_codes() == set()
    archive.warcio_check(tmp_path)
    [warc] = archive.files.warcs()  # one command: one WARC file, on either backend
    raw = archive.files.read(warc)
    # incompressible bytes are stored, not deflated: the member is barely larger than the photo
    assert len(data) < len(raw) < len(data) * 1.01
    assert len(gzip.decompress(raw)) > len(data)  # every member's CRC-32 and length check out
    resources = [r for r in _records(raw) if r[0] == "resource"]
    assert len(resources) == 1 and resources[0][2] == data


def test_a_duplicate_large_binary_leaves_only_a_revisit(archive: ArchiveFixture, tmp_path, backend):
    big = _random_file(tmp_path / "video.bin", 3)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(big.read_bytes())
    [first] = archive.ingest(big)
    [second] = archive.ingest(copy)
    assert first != second  # another file name: another document, the same bytes
    types = [r[0] for warc in archive.files.warcs() for r in _records(archive.files.read(warc))]
    assert types.count("resource") == 1 and types.count("revisit") == 1
    assert archive.ok("cat", second).stdout_bytes == big.read_bytes()
    assert archive.verify_codes() == set()


def test_large_text_keeps_the_two_pass_path(archive: ArchiveFixture, tmp_path, backend):
    text = ("صور قيصر أدلة على التعذيب في السجون. " * 40 + "\n") * 1200  # about 2 MB
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    [doc] = archive.ingest(path)
    shown = archive.ok("show", doc, "--json").json()
    assert isinstance(shown, dict)
    assert shown["content"]["text_sha256"] is not None and shown["content"]["redactable"]["tokens"] > 1000
    assert archive.verify_codes() == set()
    archive.warcio_check(tmp_path)


@pytest.mark.local_only
def test_a_source_that_grows_is_refused_and_nothing_is_kept(archive: ArchiveFixture, tmp_path, monkeypatch):
    import importlib

    big = _random_file(tmp_path / "growing.bin", 3)
    before = tree_snapshot(archive.root)
    ingest = importlib.import_module("archiver.ingest")
    real = ingest._large_opener

    class Growing(io.RawIOBase):
        """The real file, which grows once its size was taken, while it is being read."""

        def __init__(self, f: io.RawIOBase) -> None:
            self.f, self.reads = f, 0

        def fileno(self) -> int:
            return self.f.fileno()

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes | None:
            self.reads += 1
            if self.reads == 2:
                with open(big, "ab") as out:
                    out.write(b"appended while being read")
            return self.f.read(n)

        def close(self) -> None:
            self.f.close()
            super().close()

    monkeypatch.setattr(ingest, "_large_opener", lambda src: lambda: Growing(real(src)()))
    res = archive.run("ingest", str(big))
    assert res.exit_code == 2 and "changed while it was being read" in res.stderr, res.stderr
    assert tree_snapshot(archive.root) == before


def _writer(root: Path) -> WarcWriter:
    (root / "store").mkdir(parents=True)
    return WarcWriter(Layout(root), "urn:uuid:00000000-0000-4000-8000-000000000000", 1 << 40)


@pytest.mark.local_only
@pytest.mark.parametrize("compressible", [False, True])
def test_one_pass_record_equals_the_two_pass_record(tmp_path, compressible):
    data = (b"\x00\x01tar-like " * 300_000) if compressible else os.urandom(5 * MB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    w = _writer(tmp_path / "a")
    date, uri, media = "2026-12-02T10:00:00Z", "urn:archiver:document:x", "application/octet-stream"
    with open(src, "rb") as f:
        first = f.read(MB)
        one, hashes = w.write_streamed(
            source=f, first=first, size=len(data), target_uri=uri, date=date, media_type=media
        )
    sha256, sha512 = hashes.finish()
    assert sha256 == hashlib.sha256(data).digest() and sha512 == hashlib.sha512(data).digest()
    with open(src, "rb") as f:
        two, copied = w.write_content(
            record_type="resource",
            source=f,
            size=len(data),
            sha256_raw=sha256,
            target_uri=uri,
            date=date,
            media_type=media,
        )
    w.sync()
    w.close()
    raw = (tmp_path / "a" / "store" / one.warc_file).read_bytes()
    members = {ref.offset: raw[ref.offset : ref.offset + ref.length] for ref in (one, two)}
    [(_, h1, b1)] = _records(members[one.offset])
    [(_, h2, b2)] = _records(members[two.offset])
    rid = ("WARC-Record-ID", one.record_id)
    assert [h if h[0] != "WARC-Record-ID" else rid for h in h2] == h1  # same headers, same order
    assert b1 == b2 == data and copied == sha256.hex()
    assert one.block_digest == two.block_digest
    # the decompressed member is exactly header + block + CRLF CRLF, and its gzip CRC is right
    assert gzip.decompress(members[one.offset]) == gzip.decompress(members[two.offset]).replace(
        two.record_id.encode(), one.record_id.encode()
    )
    if compressible:
        assert one.length < len(data) // 10


@pytest.mark.local_only
def test_a_source_longer_than_its_size_raises_source_changed(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2 * MB + 5))
    w = _writer(tmp_path / "a")
    with open(src, "rb") as f, pytest.raises(SourceChanged):
        w.write_streamed(
            source=f,
            first=f.read(MB),
            size=2 * MB,
            target_uri="urn:x",
            date="2026-12-02T10:00:00Z",
            media_type="x/y",
        )
    w.rollback()
    assert not list((tmp_path / "a" / "store").glob("*.warc.gz"))


@pytest.mark.local_only
@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=3 * MB), min_size=1, max_size=6))
def test_parallel_hashes_equal_hashlib(sizes):
    chunks = [os.urandom(n) for n in sizes]
    old = parhash.THRESHOLD
    parhash.THRESHOLD = MB  # start the helper thread within these few megabytes
    try:
        h = parhash.Hashes()
        for c in chunks:
            h.update(c)
        got = h.finish()
    finally:
        parhash.THRESHOLD = old
    whole = b"".join(chunks)
    assert got == (hashlib.sha256(whole).digest(), hashlib.sha512(whole).digest())
    assert h.size == len(whole)


@pytest.mark.local_only
@given(data=st.binary(max_size=200_000), final=st.booleans())
def test_stored_blocks_are_raw_deflate(data, final):
    import zlib

    framed = stored_blocks(data, final=final)
    d = zlib.decompressobj(-15)
    assert d.decompress(framed) == data
    assert d.eof is final


@pytest.mark.local_only
def test_small_records_are_the_bytes_warcio_s_writer_makes(tmp_path, monkeypatch):
    """Records whose block is in memory skip warcio's writer (``_write_small``); the file must
    be byte for byte what warcio's writer makes of the same records."""
    from archiver import warcstore

    def write_all(root: Path) -> bytes:
        ids = iter(range(100))
        monkeypatch.setattr(
            warcstore, "new_record_id", lambda: f"<urn:uuid:00000000-0000-4000-8000-{next(ids):012d}>"
        )
        monkeypatch.setattr(warcstore, "_warc_now", lambda: "2026-12-02T10:00:00.000000Z")
        w = _writer(root)
        text = "صور قيصر: أدلة.\n".encode()
        date = "2026-12-02T10:00:00Z"
        kw = {"target_uri": "urn:archiver:document:d", "date": date}
        content, _ = w.write_content(
            record_type="resource",
            source=io.BytesIO(text),
            size=len(text),
            sha256_raw=hashlib.sha256(text).digest(),
            media_type="text/plain; charset=utf-8",
            **kw,
        )
        w.write_metadata(block=b"s" * 32, content_type="x/seed", refers_to=content.record_id, **kw)
        w.write_metadata(
            block=b'{\n  "a": 1\n}\n', content_type="x/manifest", concurrent_to=content.record_id, **kw
        )
        w.write_metadata(
            block=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            content_type="application/http",
            record_type="request",
            **kw,
        )
        w.write_content(
            record_type="conversion",
            source=io.BytesIO(text[:-1]),
            size=len(text) - 1,
            sha256_raw=hashlib.sha256(text[:-1]).digest(),
            media_type="text/plain; charset=utf-8",
            refers_to=content.record_id,
            **kw,
        )
        w.write_metadata(block=b"", content_type="x/empty", **kw)
        w.sync()
        w.close()
        return (root / "store" / "000000.warc.gz").read_bytes()

    fast = write_all(tmp_path / "fast")
    # the same records through warcio's writer
    monkeypatch.setattr(
        WarcWriter,
        "_write_small",
        lambda self, headers, content_type, block: self._write(
            headers, content_type, io.BytesIO(block), len(block)
        ),
    )
    assert write_all(tmp_path / "warcio") == fast
    types = [r[0] for r in _records(fast)]
    assert types == ["warcinfo", "resource", "metadata", "metadata", "request", "conversion", "metadata"]
