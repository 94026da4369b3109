"""Streaming digest of normalised text, in bounded memory.

The text digest (``content.text_sha256``) is SHA-256 of the UTF-8 encoding of:
the decoded text, a leading U+FEFF removed, CR LF and lone CR replaced by LF,
then Unicode NFC. Two captures of one article that differ only in line endings
or composed/decomposed letters have the same text digest.

NFC is not defined chunk by chunk, so we only cut the text before an ASCII
character: ASCII characters have canonical combining class 0, NFC quick-check
"Yes", and are never the second part of a canonical composition, so nothing
before the cut can combine or reorder with anything after it, and
``NFC(a + b) == NFC(a) + NFC(b)``. Text with no ASCII character for
``MAX_PENDING`` characters (no space, digit or newline: not prose) gets no
text digest rather than unbounded memory.
"""

from __future__ import annotations

import codecs
import hashlib
import unicodedata
from collections.abc import Callable

from . import fasthash

MAX_PENDING = 1 << 22  # characters held back while waiting for a safe cut
#: a block up to this size may be digested whole (``digest_whole``): no codec Python has
#: decodes a byte to more than one character, so its text stays within ``MAX_PENDING``
WHOLE_BYTES = 1 << 20


def text_codec(encoding: str) -> codecs.CodecInfo:
    """The codec of a charset name, refusing the bytes-to-bytes ones (``base64``, ``hex``,
    ``zlib``...) as ``bytes.decode`` does: they decode to bytes, not text.

    Raises:
        LookupError: no codec of that name, or not a text encoding.
    """
    info = codecs.lookup(encoding)
    if not getattr(info, "_is_text_encoding", True):
        raise LookupError(f"{encoding!r} is not a text encoding")
    return info


class TextDigester:
    """Feed bytes; ``result()`` is the hex digest, or None if the bytes are not text."""

    def __init__(self, encoding: str, on_text: Callable[[str], None] | None = None) -> None:
        """``on_text`` receives the decoded text as it streams (before normalisation)."""
        """Raises LookupError: ``encoding`` is not a text encoding Python knows."""
        self._on_text = on_text
        self._decoder = text_codec(encoding).incrementaldecoder("strict")
        self._hash = hashlib.sha256()
        self._pending = ""
        self._started = False
        self.failed = False

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the document."""
        if self.failed:
            return
        try:
            text = self._decoder.decode(data)
        except (UnicodeDecodeError, ValueError):
            self.failed = True
            return
        if self._on_text is not None and text:
            self._on_text(text)
        self._push(text, final=False)

    def _push(self, text: str, *, final: bool) -> bool:
        """Hash what can be hashed; False when the input turned out not to be text."""
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if "\x00" in text:
            # NUL is not in any prose we archive; such bytes are data, not text.
            self.failed = True
            return False
        pending = self._pending + text
        if final:
            cut = len(pending)
        else:
            # A trailing CR may be the first half of CR LF: keep it back.
            end = len(pending) - 1 if pending.endswith("\r") else len(pending)
            cut = -1
            start = max(len(self._pending) - 1, 0)
            for i in range(end - 1, start - 1, -1):
                if pending[i] < "\x80":
                    cut = i
                    break
            if cut > 0 and pending[cut] == "\n" and pending[cut - 1] == "\r":
                cut -= 1  # never split a CR LF pair; CR is ASCII, so still a safe cut
            if cut <= 0:
                if len(pending) > MAX_PENDING:
                    self.failed = True
                    return False
                self._pending = pending
                return True
        head, self._pending = pending[:cut], pending[cut:]
        head = head.replace("\r\n", "\n").replace("\r", "\n")
        self._hash.update(unicodedata.normalize("NFC", head).encode("utf-8"))
        return True

    def result(self) -> str | None:
        """Finish; the hex digest, or None if the input did not decode as text."""
        if self.failed:
            return None
        try:
            tail = self._decoder.decode(b"", final=True)
        except (UnicodeDecodeError, ValueError):
            self.failed = True
            return None
        if self._on_text is not None and tail:
            self._on_text(tail)
        if not self._push(tail, final=True):
            return None
        return self._hash.hexdigest()


def digest_whole(
    data: bytes, encoding: str, data_sha256: bytes | None = None
) -> tuple[str | None, str | None]:
    """What a ``TextDigester`` fed ``data`` (at most ``WHOLE_BYTES``) in any chunks gives,
    in a few calls instead of its per-chunk loop, and the decoded text (before the
    digest's normalisation, as ``on_text`` would see it); ``(None, None)`` when the bytes
    are not text.

    ``data_sha256``: the SHA-256 of ``data``, when known. UTF-8 text already in the
    digest's normal form (no BOM, no CR, NFC: an article as archived) is its own
    normalised encoding, so its digest is that one, without encoding and hashing again.

    Raises:
        LookupError: ``encoding`` is not a text encoding Python knows.
    """
    codec = text_codec(encoding)
    try:
        # the incremental decoder, as the streaming digester's: codecs' one-shot and
        # incremental forms differ at the edges (utf-8-sig takes a truncated BOM at the
        # end as nothing incrementally, as an error in one call)
        text = codec.incrementaldecoder("strict").decode(data, True)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if "\x00" in text:
        return None, None
    body = text[1:] if text.startswith("\ufeff") else text
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    normal = unicodedata.normalize("NFC", body)
    # (normalize returns its argument itself when it is already NFC)
    if data_sha256 is not None and normal is text and codec.name == "utf-8":
        return data_sha256.hex(), text
    return hashlib.sha256(normal.encode("utf-8")).hexdigest(), text


def normal_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text already in the digest's normal form (no BOM, no CR,
    no NUL, NFC), judged from the bytes without decoding them (``_fasthash.utf8_nfc_plain``:
    only characters NFC leaves alone beside any other are accepted). Its text digest is
    then its own SHA-256. False means "decode and see" (``digest_whole``), not "not text";
    it is always False without the C accelerator."""
    return fasthash.utf8_nfc_plain is not None and fasthash.utf8_nfc_plain(data)


def text_sha256(data: bytes, encoding: str = "utf-8") -> str | None:
    """The text digest of a whole byte string (the reference definition, for tests and docs)."""
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    if "\x00" in text:
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()
