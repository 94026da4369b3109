"""Appending records to the log and signing the checkpoint: the last step of every write.

All or nothing: if the append or the checkpoint fails, the log is cut back to
its previous size and no checkpoint of the new size remains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from .keystore import SigningKey
from .layout import Layout
from .tlog import Log, write_checkpoint


def log_records(
    layout: Layout, archive_id: str, records: Sequence[tuple[str, bytes]], signer: SigningKey
) -> int:
    """Append (path inside the archive, exact bytes) records and sign a checkpoint.

    Returns the new tree size. The caller holds the writer lock.

    Raises:
        StoreError: writing failed; the log is as it was.
    """
    log = Log(layout.log)
    before = log.size
    checkpoint = None
    try:
        size = log.append(records) if records else before
        checkpoint = write_checkpoint(log, archive_id, signer.name, signer.key_id, signer.private)
    except BaseException:
        with contextlib.suppress(OSError):
            if checkpoint is not None:
                checkpoint.unlink()
            if log.size != before:
                log.truncate(before)
        raise
    return size


def undo(layout: Layout, size: int) -> None:
    """Cut the log back to ``size`` leaves and drop checkpoints beyond it (rollback)."""
    log = Log(layout.log)
    with contextlib.suppress(OSError):
        for cp in log.checkpoint_files():
            if int(cp.name) > size:
                cp.unlink()
        if log.size > size:
            log.truncate(size)
