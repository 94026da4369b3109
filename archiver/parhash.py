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
from concurrent.futures import Future, ThreadPoolExecutor

#: bytes seen before SHA-512 moves to a helper thread
THRESHOLD = 4 << 20
#: chunks handed to the helper and not yet hashed (bounds memory: chunks are at most 1 MiB)
IN_FLIGHT = 4


class Hashes:
    """Feed chunks with ``update``; ``sha256()`` and ``sha512()`` give the raw digests.

    Chunks must not be modified after they are passed in (``bytes`` never are).
    """

    def __init__(self, *, sha512: bool = True) -> None:
        self.h256 = hashlib.sha256()
        self.h512 = hashlib.sha512() if sha512 else None
        self.size = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._done: tuple[bytes, bytes | None] | None = None

    def update(self, chunk: bytes) -> None:
        """Hash the next bytes of the stream."""
        self.size += len(chunk)
        if self.h512 is None:
            self.h256.update(chunk)
            return
        if self._pool is None and self.size > THRESHOLD:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archiver-sha512")
        if self._pool is None:
            self.h256.update(chunk)
            self.h512.update(chunk)
            return
        # one helper thread, so its updates run in the order they were submitted
        self._pending.append(self._pool.submit(self.h512.update, chunk))
        self.h256.update(chunk)
        while len(self._pending) > IN_FLIGHT:
            self._pending.popleft().result()

    def finish(self) -> tuple[bytes, bytes | None]:
        """(SHA-256, SHA-512 or None) of everything fed; stops the helper thread."""
        if self._done is None:
            try:
                while self._pending:
                    self._pending.popleft().result()
            finally:
                if self._pool is not None:
                    self._pool.shutdown(wait=True)
                    self._pool = None
            self._done = (self.h256.digest(), self.h512.digest() if self.h512 is not None else None)
        return self._done

    def close(self) -> None:
        """Stop the helper thread if the stream was abandoned (an error while reading)."""
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
            self._pending.clear()
