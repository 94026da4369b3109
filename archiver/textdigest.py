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

MAX_PENDING = 1 << 22  # characters held back while waiting for a safe cut


class TextDigester:
    """Feed bytes; ``result()`` is the hex digest, or None if the bytes are not text."""

    def __init__(self, encoding: str, on_text: Callable[[str], None] | None = None) -> None:
        """``on_text`` receives the decoded text as it streams (before normalisation)."""
        self._on_text = on_text
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
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
