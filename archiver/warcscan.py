"""Reading whole records and whole WARC files for verification and reindexing."""

from __future__ import annotations

import bisect
import hashlib
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from .fasthash import WARC_FIELDS, WholeRecord
from .fasthash import warc_member as _member
from .gcpause import gc_paused
from .httpblock import MAX_HEAD, HeadTooLarge, PayloadSplitter, is_http_record, payload_chunks
from .layout import MANIFEST_CONTENT_TYPE, SEED_CONTENT_TYPE, warc_key
from .parhash import Hashes
from .redaction import TokenTreeBuilder, whole_tree, whole_trees
from .storage import Store
from .textdigest import WHOLE_BYTES, TextDigester, digest_whole, normal_utf8, text_codec
from .warcread import MAX_HEADER, READ_SIZE, RecordReader, WarcFormatError, next_member_offset


@dataclass(slots=True)
class RecordInfo:
    """What was found at one WARC position (``error`` set if it is not a sound record)."""

    error: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    date: str | None = None
    content_type: str | None = None
    target_uri: str | None = None
    length: int = 0
    header_block_digest: str | None = None
    header_payload_digest: str | None = None
    refers_to: str | None = None
    concurrent_to: str | None = None
    size: int = 0
    sha256: bytes = b""  # of the whole block (WARC-Block-Digest)
    sha512: bytes = b""  # (empty for a manifest copy or a seed: never a document's content)
    # of the payload: the block after the HTTP head of a response, else the whole block
    payload_size: int = 0
    payload_sha256: bytes = b""
    payload_sha512: bytes = b""  # (empty as ``sha512``)
    text_sha256: str | None = None
    redactable: dict[str, object] | None = None
    # a text whose token tree waits for its seed, read later in the same file (``seed_at``)
    # (a UTF-8 text is held as its bytes: the tree hashes them, without encoding it again)
    text: str | bytes | None = None
    block: bytes | None = None  # the whole block, for records of at most SMALL_BLOCK bytes (seeds)

    def __reduce__(self) -> tuple[Any, ...]:
        # a worker sends back every record of its parts: the state methods dataclasses give
        # slotted classes are Python loops over the fields
        return (RecordInfo, _record_fields(self))


_record_fields = operator.attrgetter(*RecordInfo.__slots__)  # every field, in order

#: blocks this small are kept whole by ``read_record`` (token-tree seeds are 32 bytes)
SMALL_BLOCK = 64


@dataclass(frozen=True, slots=True)
class TextCheck:
    """For a content record holding text: its charset, and its token-tree seed if known, or
    where its seed record is, later in the same file (a scan reads it there: no read ahead)."""

    charset: str
    seed: bytes | None = None
    seed_at: int | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # a verify sends every text's check to the worker with its part: the state methods
        # dataclasses give slotted classes are Python loops (five microseconds each)
        return (TextCheck, (self.charset, self.seed, self.seed_at))


class Consumed(Protocol):
    """Where a record read in a sequential scan ended (``RecordReader`` is one)."""

    @property
    def leftover(self) -> bytes | memoryview: ...

    @property
    def compressed_length(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Whole:
    leftover: bytes | memoryview
    compressed_length: int


#: records of the archive's own making that are never a document's content: their SHA-512
#: is not computed (the verifier compares a SHA-512 for content records only)
_NOT_CONTENT = frozenset({MANIFEST_CONTENT_TYPE, SEED_CONTENT_TYPE})
#: the fast path takes a record whole when it decompresses to at most this (a text block
#: up to WHOLE_BYTES with its header and trailer), from at most this much of the file
_WHOLE_CAP = WHOLE_BYTES + MAX_HEADER + 8
_WHOLE_INPUT = 4 * READ_SIZE


def _wants_sha512(info: RecordInfo) -> bool:
    """(after ``_fill``)"""
    return not (info.record_type == "metadata" and info.content_type in _NOT_CONTENT)


def read_record(
    f: BinaryIO, offset: int, pending: bytes | memoryview | None = None, text: TextCheck | None = None
) -> tuple[RecordInfo, Consumed | None]:
    """Read and hash the whole record at ``offset``; never raises for bad data.

    With ``text``, the block is also decoded for its normalised-text digest
    and, given a seed, its redaction token tree. ``pending``: bytes from
    ``offset`` on already read, ``f`` positioned just after them (None: read
    from ``offset``). The second value says where the record ended (None if
    it is not a sound record).
    """
    info = RecordInfo()
    try:
        whole = None
        if _member is not None:
            whole, pending = _read_whole(f, offset, pending)
        if whole is not None:
            consumed, values, block, sha256 = whole
            _set_fields(info, values)
            # (``_member`` took the block as exactly its Content-Length)
            if text is None or len(block) <= WHOLE_BYTES:
                _whole_record(info, block, sha256, text)
                assert pending is not None
                info.length = consumed
                return info, _Whole(memoryview(pending)[consumed:], consumed)
        # anything else is read as a stream: large records, and all that is not plainly sound
        reader = RecordReader(f, offset, pending)
        _streamed_record(info, reader, text)
        info.length = reader.compressed_length
        return info, reader
    except WarcFormatError as e:
        info.error = str(e)
    except HeadTooLarge as e:
        info.error = f"response block: {e}"
    except (OSError, LookupError) as e:
        info.error = f"unreadable: {e}"
    return info, None


def _read_whole(
    f: BinaryIO, offset: int, pending: bytes | memoryview | None
) -> tuple[WholeRecord | None, bytes | memoryview]:
    """The record at ``offset`` by the C fast path, if it takes it, and the bytes read from
    ``offset`` on (for the streaming reader if it does not)."""
    assert _member is not None
    if pending is None:
        f.seek(offset)
        pending = f.read(READ_SIZE)
    while True:
        got = _member(pending, _WHOLE_CAP, MAX_HEADER)
        if not isinstance(got, int):
            return got, pending
        if got < 0 or len(pending) >= _WHOLE_INPUT:
            return None, pending
        more = f.read(READ_SIZE)
        if not more:
            return None, pending
        pending = bytes(pending) + more


def _fill(info: RecordInfo, first: dict[str, str]) -> None:
    """Copy the header fields into ``info`` (``first``: ``WarcHeaders.first``)."""
    # names are lower-cased when parsed: the index itself, not a ``WarcHeaders.get`` per
    # field, which was a tenth of reading a record
    _set_fields(info, tuple(map(first.get, WARC_FIELDS)))


def _set_fields(info: RecordInfo, values: tuple[str | None, ...]) -> None:
    """``info``'s header fields from the values of ``WARC_FIELDS``, in order (as
    ``_fasthash.warc_member`` returns them)."""
    (
        info.record_type,
        info.record_id,
        info.date,
        info.content_type,
        info.target_uri,
        info.header_block_digest,
        info.header_payload_digest,
        info.refers_to,
        info.concurrent_to,
    ) = values


def _whole_record(info: RecordInfo, block: bytes, sha256: bytes, text: TextCheck | None) -> None:
    """The checks of ``_streamed_record`` on a block read whole (its SHA-256 given)."""
    payload = block
    if is_http_record(info.record_type, info.content_type):
        split = PayloadSplitter()
        payload = split.feed(block)
        split.finish()
    info.size = len(block)
    info.sha256 = sha256
    info.payload_size = len(payload)
    info.payload_sha256 = sha256 if payload is block else hashlib.sha256(payload).digest()
    if _wants_sha512(info):
        info.payload_sha512 = hashlib.sha512(payload).digest()
        info.sha512 = info.payload_sha512 if payload is block else hashlib.sha512(block).digest()
    if text is not None:
        _whole_text(info, payload, text)
    if len(block) <= SMALL_BLOCK:
        info.block = block


def _whole_text(info: RecordInfo, data: bytes, text: TextCheck) -> None:
    utf8 = text_codec(text.charset).name == "utf-8"  # (LookupError: as a digester's)
    held: str | bytes | None  # the text, for its token tree (UTF-8 as its bytes)
    if utf8 and normal_utf8(data):  # (an article as archived: no decoding)
        info.text_sha256, held = info.payload_sha256.hex(), data
    else:
        info.text_sha256, decoded = digest_whole(data, text.charset, info.payload_sha256)
        held = None if decoded is None else data if utf8 else decoded
    if held is not None and text.seed is not None:
        info.redactable = whole_tree(held, text.seed)
    elif held is not None and text.seed_at is not None:
        info.text = held


def _streamed_record(info: RecordInfo, reader: RecordReader, text: TextCheck | None) -> None:
    """Read, hash and (for a text) digest the block chunk by chunk."""
    h = reader.headers
    _fill(info, h.first)
    whole_text = text is None or h.content_length <= WHOLE_BYTES  # (a text taken whole)
    want512 = _wants_sha512(info)
    block_hashes = Hashes(sha512=want512)
    tree: TokenTreeBuilder | None = None
    pieces: list[str] | None = None
    digester = None
    whole: list[bytes] | None = None  # a text block small enough to take whole
    if text is not None and whole_text:
        whole = []
        text_codec(text.charset)  # (LookupError: as a digester's)
    elif text is not None:
        tree = TokenTreeBuilder(text.seed) if text.seed is not None else None
        pieces = [] if tree is None and text.seed_at is not None else None
        on_text = tree.feed if tree is not None else (pieces.append if pieces is not None else None)
        digester = TextDigester(text.charset, on_text)
    small: list[bytes] | None = []
    split = PayloadSplitter() if is_http_record(info.record_type, info.content_type) else None
    payload_hashes = Hashes(sha512=want512) if split is not None else block_hashes
    try:
        for chunk in reader.block():
            if small is not None and block_hashes.size + len(chunk) <= SMALL_BLOCK:
                small.append(chunk)
            else:
                small = None
            block_hashes.update(chunk)
            if split is not None:
                chunk = split.feed(chunk)
                payload_hashes.update(chunk)
            if whole is not None:
                whole.append(chunk)
            elif digester is not None:
                digester.update(chunk)
        if split is not None:
            split.finish()
        info.size = block_hashes.size
        info.payload_size = payload_hashes.size
        info.sha256, sha512 = block_hashes.finish()
        info.payload_sha256, payload_sha512 = payload_hashes.finish()
    finally:
        block_hashes.close()
        payload_hashes.close()
    info.sha512, info.payload_sha512 = sha512 or b"", payload_sha512 or b""
    info.text_sha256 = digester.result() if digester is not None else None
    if whole is not None and text is not None:
        _whole_text(info, b"".join(whole), text)
    if tree is not None and info.text_sha256 is not None:
        info.redactable = tree.finish()
    if pieces is not None and info.text_sha256 is not None:
        info.text = "".join(pieces)
    if small is not None:
        info.block = b"".join(small)


def scan_file(
    store: Store,
    key: str,
    resync: list[int] | None = None,
    texts: dict[int, TextCheck] | None = None,
    limit: int | None = None,
    start: int = 0,
    trees: TreeBatch | None = None,
) -> Iterator[tuple[int, RecordInfo]]:
    """Every record of a WARC file (from the record at ``start``, up to ``limit``), in
    order, reading each byte once.

    After a damaged member, reading resumes at the next offset in ``resync``
    (positions manifests name), else at the next gzip magic number.

    A text whose token tree waits for its seed gets it when the seed's record is read:
    at once, or, given ``trees``, with the batch's others (the caller finishes the batch,
    after which every yielded record is complete).
    """
    known = sorted(resync or [])
    texts = texts or {}
    waiting: dict[int, RecordInfo] = {}  # seed offset -> the text record waiting for it
    try:
        f = store.open(key)
    except OSError as e:  # not a regular file (a FIFO, a folder), unreadable
        yield start, RecordInfo(error=str(e.strerror or e))
        return
    with f:
        size = f.seek(0, 2)
        if limit is not None:
            size = min(size, limit)  # a reader's snapshot: bytes appended later are not its business
        f.seek(start)
        offset = start
        pending: bytes | memoryview | None = b""
        while offset < size:
            check = texts.get(offset)
            info, reader = read_record(f, offset, pending, check)
            if info.text is not None and check is not None and check.seed_at is not None:
                waiting[check.seed_at] = info
            if offset in waiting:
                if trees is None:
                    finish_tree(waiting.pop(offset), info.block)
                else:
                    trees.add(waiting.pop(offset), info.block)
            yield offset, info
            if reader is not None:
                pending = reader.leftover
                offset += reader.compressed_length
                continue
            pending = None
            later = [o for o in known if o > offset]
            nxt = later[0] if later else next_member_offset(f, offset + 1, size)
            if nxt is None:
                return
            offset = nxt
            f.seek(offset)
            pending = b""


def finish_tree(content: RecordInfo, seed: bytes | None) -> None:
    """Compute a deferred token tree once its seed is known (nothing with a bad seed: the
    seed record's own check reports it)."""
    finish_trees([(content, seed)])


def finish_trees(items: list[tuple[RecordInfo, bytes | None]]) -> None:
    """``finish_tree`` of each (text record, seed), the trees computed in one call."""
    owners: list[RecordInfo] = []
    texts: list[tuple[str | bytes, bytes]] = []
    for content, seed in items:
        if content.text is not None and seed is not None and len(seed) == 32:
            owners.append(content)
            texts.append((content.text, seed))  # (held whole already)
    for content, tree in zip(owners, whole_trees(texts), strict=True):
        content.redactable = tree
    for content, _ in items:
        content.text = None


TREE_BATCH_BYTES = 4 << 20


class TreeBatch:
    """Deferred token trees, computed together (``whole_trees``: in C, eight texts' salts
    side by side) once about ``TREE_BATCH_BYTES`` of their texts are held, and at
    ``finish``."""

    def __init__(self) -> None:
        self.items: list[tuple[RecordInfo, bytes | None]] = []
        self.held = 0

    def add(self, content: RecordInfo, seed: bytes | None) -> None:
        """A text record and its seed (None: unreadable)."""
        self.items.append((content, seed))
        self.held += len(content.text or "")
        if self.held >= TREE_BATCH_BYTES:
            self.finish()

    def finish(self) -> None:
        """Compute every tree added so far."""
        finish_trees(self.items)
        self.items = []
        self.held = 0


def scan_range(
    store: Store, key: str, resync: list[int], texts: dict[int, TextCheck], start: int, limit: int
) -> list[tuple[int, RecordInfo]]:
    """``scan_file`` of one byte range, as a list (for a worker process). A text whose
    seed lies beyond the range gets its token tree here too, its seed read where it is:
    the job that read the text finishes it, so no tree is left for the end of a verify."""
    trees = TreeBatch()
    found = list(scan_file(store, key, resync, texts, limit, start, trees))
    trees.finish()
    for offset, info in found:
        if info.text is not None:  # its seed was not read in the range (beyond it, or skipped)
            check = texts.get(offset)
            at = check.seed_at if check is not None else None
            trees.add(info, read_block(store, key, at, 64) if at is not None else None)
    trees.finish()
    return found


def scan_range_packed(
    store: Store, key: str, resync: list[int], texts: dict[int, TextCheck], start: int, limit: int
) -> bytes:
    """``scan_range`` for a worker: its result as bytes (``prehash.pack``), the cyclic
    garbage collector paused as in the parent (``gcpause.py``)."""
    from .prehash import pack

    with gc_paused():
        return pack(
            [
                (offset, _record_fields(info))
                for offset, info in scan_range(store, key, resync, texts, start, limit)
            ]
        )


def unpack_records(data: bytes) -> list[tuple[int, RecordInfo]]:
    """What ``scan_range_packed`` sent."""
    from .prehash import unpack

    return [(offset, RecordInfo(*fields)) for offset, fields in unpack(data)]


def split_points(known: list[int], size: int, parts: int) -> list[int]:
    """Record offsets (from ``known``: sorted, without repeats) cutting a file into
    ``parts`` ranges of similar size."""
    starts = known[bisect.bisect_right(known, 0) : bisect.bisect_left(known, size)]
    cuts: list[int] = []
    for k in range(1, parts):
        want = size * k // parts
        i = bisect.bisect_left(starts, want)  # the nearest start is at i - 1 or i
        near = [starts[j] for j in (i - 1, i) if 0 <= j < len(starts)]
        best = min(near, key=lambda o: abs(o - want), default=None)
        if best is not None and best not in cuts and (not cuts or best > cuts[-1]):
            cuts.append(best)
    return cuts


def manifest_positions(store: Store, names: list[str]) -> dict[str, tuple[str, int]]:
    """Where each signed manifest sits as a WARC metadata record: manifest id -> (file, offset).

    The first copy found wins; damaged records are skipped (``verify`` reports them).
    """
    found: dict[str, tuple[str, int]] = {}
    for name in names:
        for offset, info in scan_file(store, warc_key(name)):
            if (
                info.error is None
                and info.record_type == "metadata"
                and (info.content_type == MANIFEST_CONTENT_TYPE)
            ):
                found.setdefault("sha256:" + info.sha256.hex(), (name, offset))
    return found


def read_block(store: Store, key: str, offset: int, limit: int) -> bytes | None:
    """The block of the record at ``offset`` if it is sound and at most ``limit`` bytes."""
    try:
        with store.open(key) as f:
            reader = RecordReader(f, offset)
            if reader.headers.content_length > limit:
                return None
            return b"".join(reader.block())
    except (OSError, WarcFormatError):
        return None


def read_payload(store: Store, key: str, offset: int, limit: int) -> bytes | None:
    """A version's bytes: the block, or for an HTTP response the payload after its head."""
    try:
        with store.open(key) as f:
            reader = RecordReader(f, offset)
            if reader.headers.content_length > limit + MAX_HEAD:
                return None
            return b"".join(payload_of(reader))
    except (OSError, WarcFormatError, HeadTooLarge):
        return None


def payload_of(reader: RecordReader) -> Iterator[bytes]:
    """The record's payload as chunks (raises HeadTooLarge for a damaged response)."""
    h = reader.headers
    if is_http_record(h.get("warc-type"), h.get("content-type")):
        return payload_chunks(reader.block())
    return reader.block()
