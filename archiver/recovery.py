"""Crash recovery and the write session every writing command runs in (docs/durability.md).

Before a command writes anything it records, in ``store/.pending``, the
committed state: the log size and the size of every WARC file. Its signed
checkpoint is its commit point. The intent is removed when the command ends.

A writer that finds an intent left behind (a crash, a kill, a power cut):

- if a checkpoint larger than the recorded log size exists, the interrupted
  command had committed: only the derived index is rebuilt;
- otherwise it rolls the archive back to the recorded state: record files
  that the log does not hold, log entries and checkpoints beyond it, WARC
  tails and files beyond it (in that order: see ``_recover``) are moved to
  ``store/quarantine/TIME/`` (never deleted: they may be the only copy of
  something), then the index is rebuilt.

Either way a line is appended to ``store/recovery.log`` saying what was done,
and the command prints it as a warning. A command that fails cleanly (disk
full, bad input found late) rolls back the same way but deletes its own
debris, so the archive is byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from .archive import Archive
from .errors import CorruptArchive
from .fsutil import ArchiveLock, atomic_write, crashpoint, fsync_dir
from .layout import Layout
from .timeutil import format_time
from .tlog import Log

INTENT = ".pending"
log_warning = logging.getLogger("archiver").warning


def _intent_path(layout: Layout) -> Path:
    return layout.store / INTENT


def write_intent(layout: Layout) -> None:
    """Record the committed state before a command writes anything."""
    state = {
        "log_size": Log(layout.log).size,
        "warc": {p.name: p.stat().st_size for p in layout.warc_files()},
        "pid": os.getpid(),
    }
    atomic_write(_intent_path(layout), json.dumps(state).encode(), overwrite=True)


def clear_intent(layout: Layout) -> None:
    """The command is over: forget its intent."""
    with contextlib.suppress(FileNotFoundError):
        _intent_path(layout).unlink()
        fsync_dir(layout.store)


def _latest_checkpoint_size(log: Log) -> int:
    files = log.checkpoint_files()
    return int(files[-1].name) if files else 0


def recover(archive: Archive, *, keep_leftovers: bool = True) -> list[str]:
    """Finish or roll back an interrupted command; returns what was done (empty: nothing to do).

    The caller holds the exclusive lock.

    Raises:
        CorruptArchive: the intent file itself is unreadable.
    """
    layout = archive.layout
    path = _intent_path(layout)
    if not path.exists():
        return []
    try:
        state: dict[str, Any] = json.loads(path.read_bytes())
        log_size = int(state["log_size"])
        warc: dict[str, int] = {str(k): int(v) for k, v in state["warc"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CorruptArchive(f"{path} is damaged ({e}); restore the archive from a backup") from e
    try:
        return _recover(archive, log_size, warc, keep_leftovers)
    except ValueError as e:  # the log is shorter than what was committed: not a crash leftover
        raise CorruptArchive(
            f"cannot recover an interrupted write: {e}; run `archiver verify` and "
            "restore the archive from a backup"
        ) from e


def _recover(archive: Archive, log_size: int, warc: dict[str, int], keep_leftovers: bool) -> list[str]:
    layout = archive.layout
    log = Log(layout.log)
    actions: list[str] = []
    committed = _latest_checkpoint_size(log) > log_size and log.size >= _latest_checkpoint_size(log)
    if committed:
        actions.append("the interrupted command had committed (its checkpoint exists); index rebuilt")
        _cut_log(log, _latest_checkpoint_size(log), None, actions)
    else:
        stash = (
            layout.store / "quarantine" / format_time(archive.clock()).replace(":", "")
            if keep_leftovers
            else None
        )
        # In this order, so that a recovery killed between two steps leaves only what a
        # crash leaves (WARC records no manifest names, log entries past the checkpoint):
        # cutting the WARC first left manifests naming records that were no longer there,
        # which a reader rightly calls missing (found by the crash test's random kills).
        _remove_unlogged_records(layout, log, log_size, stash, actions)
        crashpoint("recovery-records-moved")
        _cut_log(log, log_size, stash, actions)
        crashpoint("recovery-log-cut")
        _roll_back_warc(layout, warc, stash, actions)
        if not actions:
            actions.append("an interrupted command had written nothing")
    if keep_leftovers or committed:
        # After a crash the index's state is unknown; after a clean failure before the
        # commit point it was never touched (and rebuilding it would change its bytes).
        from .reindex import reindex_locked

        reindex_locked(archive)
    if keep_leftovers:
        line = f"{format_time(archive.clock())} recovered an interrupted write: {'; '.join(actions)}\n"
        log_warning("recovered an interrupted write: %s (see store/recovery.log)", "; ".join(actions))
        with open(layout.store / "recovery.log", "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    clear_intent(layout)
    return actions


def _stash(path: Path, layout: Layout, stash: Path | None) -> None:
    if stash is None:
        path.unlink()
        return
    target = stash / path.relative_to(layout.root)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)


def _roll_back_warc(layout: Layout, sizes: dict[str, int], stash: Path | None, actions: list[str]) -> None:
    for path in layout.warc_files():
        recorded = sizes.get(path.name)
        size = path.stat().st_size
        if recorded is None:
            _stash(path, layout, stash)
            actions.append(f"removed {path.name} ({size} bytes) started by the interrupted command")
        elif size > recorded:
            if stash is not None:
                stash.mkdir(parents=True, exist_ok=True)
                with open(path, "rb") as src, open(stash / f"{path.name}.tail-{recorded}", "wb") as dst:
                    src.seek(recorded)
                    shutil.copyfileobj(src, dst)
            os.truncate(path, recorded)
            actions.append(f"cut {size - recorded} uncommitted bytes from {path.name}")
        elif size < recorded:
            actions.append(
                f"{path.name} is shorter than committed ({size} < {recorded}): run `archiver verify`"
            )
    fsync_dir(layout.store)


def _cut_log(log: Log, size: int, stash: Path | None, actions: list[str]) -> None:
    extra = [p for p in log.checkpoint_files() if int(p.name) > size]
    for p in extra:
        p.unlink()
    if log.size > size or extra:
        actions.append(f"rolled the log back to {size} records")
    log.truncate(size)


def _remove_unlogged_records(
    layout: Layout, log: Log, size: int, stash: Path | None, actions: list[str]
) -> None:
    from .logcheck import record_files

    logged = {p for _, p in log.entries()[:size]}
    moved = 0
    for path in record_files(layout):
        if layout.relative(path) not in logged:
            _stash(path, layout, stash)
            moved += 1
    for tmp in layout.manifests.rglob(".*.tmp*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
    if moved:
        actions.append(
            f"{'moved' if stash else 'removed'} {moved} uncommitted record file(s)"
            + (f" to {layout.relative(stash)}" if stash else "")
        )


class WriteSession:
    """What every writing command runs in: exclusive lock, recovery, intent, rollback."""

    def __init__(self, archive: Archive, wait_seconds: float = 0.0) -> None:
        self.archive = archive
        self._lock = ArchiveLock(archive.layout.lock, wait_seconds)
        self.recovered: list[str] = []

    def __enter__(self) -> WriteSession:
        self._lock.__enter__()
        try:
            self.recovered = recover(self.archive)
            write_intent(self.archive.layout)
            crashpoint("intent-written")
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                crashpoint("before-intent-cleared")
                clear_intent(self.archive.layout)
            else:
                # This command's own debris: deleted, not quarantined, so that a clean
                # failure leaves the archive exactly as it was. If even that fails, the
                # intent stays and the next writer recovers.
                with contextlib.suppress(Exception):
                    recover(self.archive, keep_leftovers=False)
        finally:
            self._lock.__exit__(exc_type, exc, tb)
