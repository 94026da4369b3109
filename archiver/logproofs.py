"""What ``archiver log`` prints: the latest checkpoint, inclusion and consistency proofs."""

from __future__ import annotations

import base64
from typing import Any

from .archive import Archive
from .errors import CorruptArchive, InvalidInput
from .reading import events_of, select_version
from .tlog import consistency_proof, inclusion_proof, origin_of, parse_checkpoint


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def latest_checkpoint(archive: Archive) -> str:
    """The text of the newest kept checkpoint.

    Raises:
        CorruptArchive: there is none (nothing was ever written).
    """
    log = archive.log_view()
    names = log.checkpoint_names()
    if not names:
        raise CorruptArchive("the log has no checkpoint yet (nothing has been recorded)")
    return log.checkpoint(names[-1]).decode("utf-8")


def prove_inclusion(archive: Archive, document: str, version: int | None = None) -> dict[str, Any]:
    """An RFC 9162 inclusion proof of a document event's manifest against the latest checkpoint.

    Raises:
        DocumentNotFound: unknown document or version.
        CorruptArchive: the manifest is not in the log.
    """
    row = select_version(events_of(archive, document), version)
    log = archive.proof_log()
    cp = parse_checkpoint(latest_checkpoint(archive).encode())
    found = log.leaf_index(row.path)
    index, leaf = found if found is not None and found[0] < cp.size else (None, b"")
    if index is None:
        raise CorruptArchive(
            f"{row.path} is not in the log up to the latest checkpoint; run `archiver verify`"
        )
    return {
        "manifest": row.path,
        "document": row.document_id,
        "version": row.sequence,
        "leaf_index": index,
        "tree_size": cp.size,
        "leaf_hash": _b64(leaf),
        "audit_path": [_b64(h) for h in inclusion_proof(log.node, index, cp.size)],
        "root_hash": _b64(cp.root),
        "checkpoint": cp.text,
    }


def prove_consistency(archive: Archive, old_checkpoint: bytes) -> dict[str, Any]:
    """An RFC 9162 consistency proof from a kept checkpoint to the latest one.

    Raises:
        InvalidInput: not a checkpoint of this archive, or larger than the log.
    """
    try:
        old = parse_checkpoint(old_checkpoint)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"not a checkpoint: {e}") from e
    if old.origin != origin_of(archive.archive_id):
        raise InvalidInput(f"a checkpoint of another archive ({old.origin})")
    log = archive.proof_log()
    new = parse_checkpoint(latest_checkpoint(archive).encode())
    if old.size > new.size:
        raise InvalidInput(
            f"the kept checkpoint ({old.size} records) is larger than this archive's "
            f"latest ({new.size}): this archive was rolled back; run `archiver verify "
            "--checkpoint FILE`"
        )
    proof = consistency_proof(log.node, old.size, new.size) if 0 < old.size < new.size else []
    return {
        "old_size": old.size,
        "old_root_hash": _b64(old.root),
        "new_size": new.size,
        "new_root_hash": _b64(new.root),
        "consistency_path": [_b64(h) for h in proof],
        "checkpoint": new.text,
        "extends": old.size == 0 or log.root(old.size) == old.root,
    }
