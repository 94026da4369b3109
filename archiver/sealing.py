"""Signing a manifest and queueing it: the last step of every event."""

from __future__ import annotations

from typing import Any

from .canonical import pretty_bytes
from .commit import Transaction
from .keystore import SigningKey
from .layout import event_key
from .manifest import Event
from .signing import make_signature


def seal_and_queue(
    tx: Transaction,
    manifest: dict[str, Any],
    key: SigningKey,
    role: str,
    content_record_id: str,
    *,
    concurrent: bool,
) -> Event:
    """Sign ``manifest``, store it as a WARC metadata record, queue it for commit.

    The manifest goes through the schema before anything is committed: a bug
    that produced an invalid manifest must not produce a signed one.
    """
    manifest["signatures"] = [make_signature(manifest, key.private, role)]
    data = pretty_bytes(manifest)
    event = Event.of(manifest, data, event_key(manifest["document_id"], manifest["sequence"]))
    meta = tx.write_manifest_record(data, event, content_record_id, concurrent)
    tx.add(event, data, meta)
    return event
