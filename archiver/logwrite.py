"""Appending records to the log and signing the checkpoint: the last step of every write.

The checkpoint is the command's commit point. Rolling back a failed or
interrupted command is the write session's job (``recovery.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .fsutil import crashpoint
from .keystore import SigningKey
from .layout import Layout
from .merkle import leaf_hash
from .tlog import Log, write_checkpoint


def log_records(
    layout: Layout, archive_id: str, records: Sequence[tuple[str, bytes]], signer: SigningKey
) -> int:
    """Append (path inside the archive, exact bytes) records and sign a checkpoint."""
    return log_leaves(layout, archive_id, [(path, leaf_hash(data)) for path, data in records], signer)


def log_leaves(
    layout: Layout, archive_id: str, leaves: Sequence[tuple[str, bytes]], signer: SigningKey
) -> int:
    """Append (path inside the archive, leaf hash of its bytes) entries and sign a checkpoint.

    Returns the new tree size. The caller holds the writer lock (a write session).

    Raises:
        StoreError: writing failed.
    """
    log = Log(layout.log)
    size = log.append_leaves(leaves) if leaves else log.size
    crashpoint("log-appended")
    write_checkpoint(log, archive_id, signer.name, signer.key_id, signer.private)
    return size
