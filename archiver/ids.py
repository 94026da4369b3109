"""Random UUIDs (version 4) for document and record ids, without a system call each.

``uuid.uuid4()`` asks the kernel for 16 bytes every time; an ingest makes four
ids per document, and those calls and the ``UUID`` objects were a few percent
of ingesting an article. Here the same kernel randomness (``os.urandom``) is
drawn 4 KiB at a time and cut into ids with the same version and variant bits
as ``uuid.uuid4`` (tests compare them). The pool is dropped in a forked child,
so parent and child never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_used = 0


def _drop_pool() -> None:
    global _pool, _used
    _pool, _used = b"", 0


os.register_at_fork(after_in_child=_drop_pool)

# the version (4) and variant (RFC 4122) bits of a UUID, as uuid.UUID(version=4) sets them
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (4 << 76) | (0x8000 << 48)


def uuid4_int() -> int:
    """A random version-4 UUID as its 128-bit integer."""
    global _pool, _used
    with _lock:
        if _used + 16 > len(_pool):
            _pool, _used = os.urandom(_POOL_BYTES), 0
        raw = _pool[_used : _used + 16]
        _used += 16
    return (int.from_bytes(raw, "big") & _CLEAR) | _SET


def uuid4_hex() -> str:
    """``uuid.uuid4().hex``: 32 lowercase hex digits."""
    return f"{uuid4_int():032x}"


def uuid4_str() -> str:
    """``str(uuid.uuid4())``: the 8-4-4-4-12 form."""
    h = f"{uuid4_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
