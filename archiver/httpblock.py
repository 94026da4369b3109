"""The block of a WARC ``response`` (or ``request``) record: an HTTP message head, then the payload.

A manifest's content digests are those of the payload (the document as the
server sent it); the record's ``WARC-Block-Digest`` covers head and payload.
The head ends at the first empty line (CR LF CR LF), which an HTTP head
cannot contain before its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

MAX_HEAD = 256 * 1024
HTTP_CONTENT_TYPES = ("application/http",)


class HeadTooLarge(ValueError):
    """No end of the HTTP head within ``MAX_HEAD`` bytes."""


class PayloadSplitter:
    """Fed a block chunk by chunk, returns the part of each chunk that is payload."""

    def __init__(self) -> None:
        self._head = bytearray()
        self.head: bytes | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self.head is not None:
            return chunk
        self._head += chunk
        end = self._head.find(b"\r\n\r\n")
        # (an end found beyond MAX_HEAD is refused too: the verdict must not depend on how
        # the block was cut into chunks, and a reader may take a block whole)
        if (end < 0 and len(self._head) > MAX_HEAD) or end + 4 > MAX_HEAD:
            raise HeadTooLarge(f"no end of the HTTP head within {MAX_HEAD} bytes")
        if end < 0:
            return b""
        self.head = bytes(self._head[: end + 4])
        rest = bytes(self._head[end + 4 :])
        self._head = bytearray()
        return rest

    def finish(self) -> None:
        """Raises HeadTooLarge (a ValueError) if the block ended inside the head."""
        if self.head is None:
            raise HeadTooLarge("the block ends inside its HTTP head")


def payload_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The payload of an HTTP message block given as chunks."""
    split = PayloadSplitter()
    for chunk in chunks:
        part = split.feed(chunk)
        if part:
            yield part
    split.finish()


def is_http_record(record_type: str | None, content_type: str | None) -> bool:
    """Whether a record's block is an HTTP message (its payload follows a head)."""
    return record_type in ("response", "request") and (content_type or "").split(";")[0].strip() in (
        HTTP_CONTENT_TYPES
    )
