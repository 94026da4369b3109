"""Random ids drawn from a pool (archiver/ids.py) are uuid4's ids, and never repeat."""

from __future__ import annotations

import multiprocessing
import os
import uuid

from archiver import ids


def test_ids_are_version_4_uuids_in_uuid4_s_forms():
    for _ in range(2000):  # several refills of the pool
        text = ids.uuid4_str()
        u = uuid.UUID(text)
        assert u.version == 4 and u.variant == uuid.RFC_4122
        assert str(u) == text
        h = ids.uuid4_hex()
        assert uuid.UUID(hex=h).hex == h and uuid.UUID(hex=h).version == 4


def test_the_bits_are_those_uuid4_sets_on_the_same_bytes():
    for _ in range(200):
        raw = os.urandom(16)
        # what uuid.uuid4() does with its 16 random bytes
        want = uuid.UUID(bytes=raw, version=4).int
        got = (int.from_bytes(raw, "big") & ids._CLEAR) | ids._SET
        assert got == want


def test_ids_do_not_repeat():
    seen = {ids.uuid4_hex() for _ in range(20000)}
    assert len(seen) == 20000


def _child_ids(conn) -> None:  # runs in a forked child
    conn.send([ids.uuid4_hex() for _ in range(50)])
    conn.close()


def test_a_forked_child_does_not_reuse_the_parent_s_pool():
    ids.uuid4_hex()  # the parent now holds a partly used pool
    parent, child = multiprocessing.get_context("fork").Pipe()
    p = multiprocessing.get_context("fork").Process(target=_child_ids, args=(child,))
    p.start()
    from_child = parent.recv()
    p.join()
    from_parent = [ids.uuid4_hex() for _ in range(50)]
    assert not set(from_child) & set(from_parent)
