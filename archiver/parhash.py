"""SHA-256 and SHA-512 of one stream, on two cores once the stream is large.

Every byte archiver stores or checks is hashed with both algorithms. For a
large document (photographs, video, a crawler's WARC) that is most of the
work: SHA-512 runs at about 800 MB/s on one core here, SHA-256 at about
1.7 GB/s. hashlib releases the GIL while it hashes a large buffer, so a
helper thread can take SHA-512 while the caller hashes SHA-256, decompresses
or copies the same chunk.

Small streams (below ``THRESHOLD`` bytes, every text article) never start a
thread: for them the hand-over would cost more than it saves. The digests
are the same either way; only the wall time differs.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: bytes seen before SHA-512 moves to a helper thread
THRESHOLD = 4 << 20
#: calls handed to a helper and not yet run (bounds memory: chunks are at most 1 MiB)
IN_FLIGHT = 4


class Helper:
    """One helper thread running the calls handed to it in order, with at most
    ``IN_FLIGHT`` waiting (the caller blocks beyond that: memory stays bounded).
    Used to put SHA-512, compression and writing on a second core."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[Future[None]] = deque()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue ``fn(*args)``; raises the error of an earlier call, if one failed."""
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > IN_FLIGHT:
            self._pending.popleft().result()

    def drain(self) -> None:
        """Wait for every queued call (raising the first error)."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Stop the thread; calls still queued are dropped (after a failure)."""
        for f in self._pending:
            f.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


class Hashes:
    """Feed chunks with ``update``; ``sha256()`` and ``sha512()`` give the raw digests.

    Chunks must not be modified after they are passed in (``bytes`` never are).
    """

    def __init__(self, *, sha512: bool = True) -> None:
        self.h256 = hashlib.sha256()
        self.h512 = hashlib.sha512() if sha512 else None
        self.size = 0
        self._helper: Helper | None = None
        self._done: tuple[bytes, bytes | None] | None = None

    def update(self, chunk: bytes) -> None:
        """Hash the next bytes of the stream."""
        self.size += len(chunk)
        if self.h512 is None:
            self.h256.update(chunk)
            return
        if self._helper is None and self.size > THRESHOLD:
            self._helper = Helper("archiver-sha512")
        if self._helper is None:
            self.h256.update(chunk)
            self.h512.update(chunk)
            return
        self._helper.submit(self.h512.update, chunk)
        self.h256.update(chunk)

    def finish(self) -> tuple[bytes, bytes | None]:
        """(SHA-256, SHA-512 or None) of everything fed; stops the helper thread."""
        if self._done is None:
            try:
                if self._helper is not None:
                    self._helper.drain()
            finally:
                self.close()
            self._done = (self.h256.digest(), self.h512.digest() if self.h512 is not None else None)
        return self._done

    def close(self) -> None:
        """Stop the helper thread if the stream was abandoned (an error while reading)."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None
