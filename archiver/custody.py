"""Chain-of-custody rules, applied to a document's events in sequence. No I/O.

Invariants (each violation is reported with its problem code):

1. Event 0 is ``captured``; its actor becomes the custodian.
2. A later ``captured`` event (a re-capture) records the same bytes again:
   its content must equal the current content (``content-mismatch``); any
   archivist may make it; custody does not change.
3. ``edited`` and ``redacted`` are made by the custodian (``custody-invalid``)
   and change the content (``content-mismatch`` if they do not).
4. ``transferred`` is made by the custodian, to a trusted archivist key other
   than the custodian; the transfer is pending and the giver stays custodian.
5. ``accepted`` is made by the receiver of the pending transfer and names that
   transfer's manifest id; the receiver becomes custodian. An accept with no
   pending transfer, by another key, or naming another transfer is
   ``custody-invalid``, and so is any custodian-only action by a receiver who
   has not accepted ("an unaccepted transfer treated as done").
6. ``attested`` (an auditor) and ``transferred``/``accepted`` do not change
   the content: they carry the current ``content`` member unchanged.
7. Time never runs backwards along a chain and no event is in the future
   beyond ``FUTURE_TOLERANCE`` (``time-invalid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .problems import ProblemCode

FUTURE_TOLERANCE = timedelta(minutes=5)
CONTENT_CHANGING = frozenset({"edited", "redacted"})
CUSTODIAN_ONLY = frozenset({"edited", "redacted", "transferred"})

Finding = tuple[ProblemCode, str]


@dataclass(slots=True)
class CustodyState:
    """Who holds a document after the events seen so far."""

    custodian: str | None = None
    pending_to: str | None = None
    pending_transfer: str | None = None
    content: dict[str, Any] | None = None
    storage: dict[str, Any] | None = None
    time: datetime | None = None
    sealed_before: int | None = None  # versions below this sequence were redacted away
    history: list[str] = field(default_factory=list)  # custodian after each event


def step(
    state: CustodyState,
    raw: dict[str, Any],
    digest: str,
    archivists: frozenset[str],
    now: datetime,
) -> list[Finding]:
    """Apply one event (its parsed manifest and manifest id) to ``state``; return findings."""
    out: list[Finding] = []
    action = raw["action"]
    actor = raw["actor"]["key_id"]
    seq = raw["sequence"]
    when = datetime.fromisoformat(raw["time"].replace("Z", "+00:00"))
    if state.time is not None and when < state.time:
        out.append((ProblemCode.TIME_INVALID, f"event time {raw['time']} is before the previous event's"))
    if when > now + FUTURE_TOLERANCE:
        out.append((ProblemCode.TIME_INVALID, f"event time {raw['time']} is in the future"))
    content = raw["content"]
    if seq == 0:
        if action != "captured":
            out.append((ProblemCode.CHAIN_BROKEN, f"a document must start with a capture, not {action}"))
        state.custodian = actor
    elif action == "captured":
        if state.content is not None and (content["sha256"], content["size"]) != (
            state.content["sha256"],
            state.content["size"],
        ):
            out.append((ProblemCode.CONTENT_MISMATCH, "a re-capture must record the current bytes"))
    elif action in CONTENT_CHANGING:
        if state.content is not None and content["sha256"] == state.content["sha256"]:
            out.append((ProblemCode.CONTENT_MISMATCH, f"an {action} event that does not change the content"))
    elif state.content is not None and content != state.content:
        out.append(
            (ProblemCode.CONTENT_MISMATCH, f"a {action} event must carry the current content unchanged")
        )

    if action in CUSTODIAN_ONLY and seq > 0 and actor != state.custodian:
        who = "the pending receiver, before accepting," if actor == state.pending_to else "a key"
        out.append(
            (ProblemCode.CUSTODY_INVALID, f"{action} by {who} that did not hold the document ({actor[:16]})")
        )
    if action == "transferred":
        to = raw["transfer"]["to"]["key_id"]
        if to == state.custodian:
            out.append((ProblemCode.CUSTODY_INVALID, "transfer to the current custodian"))
        elif to not in archivists:
            out.append((ProblemCode.CUSTODY_INVALID, f"transfer to {to[:16]}, not a trusted archivist key"))
        if actor == state.custodian:
            state.pending_to, state.pending_transfer = to, digest
    elif action == "accepted":
        if state.pending_to is None:
            out.append((ProblemCode.CUSTODY_INVALID, "accept without a pending transfer"))
        elif actor != state.pending_to:
            out.append((ProblemCode.CUSTODY_INVALID, f"accept by {actor[:16]}, not the transfer's receiver"))
        elif raw["accept"]["transfer"] != state.pending_transfer:
            out.append((ProblemCode.CUSTODY_INVALID, "accept names another transfer than the pending one"))
        else:
            state.custodian = actor
        state.pending_to = state.pending_transfer = None
    if action == "redacted":
        state.sealed_before = seq
    if action in CONTENT_CHANGING or seq == 0 or state.content is None:
        state.content, state.storage = content, raw["storage"]
    state.time = when if state.time is None else max(state.time, when)
    state.history.append(state.custodian or "")
    return out


def replay(
    events: list[dict[str, Any]], digests: list[str], archivists: frozenset[str], now: datetime
) -> tuple[CustodyState, list[tuple[int, Finding]]]:
    """Apply a whole chain; findings tagged with the event's sequence number."""
    state = CustodyState()
    found: list[tuple[int, Finding]] = []
    for raw, digest in zip(events, digests, strict=True):
        found += [(raw["sequence"], f) for f in step(state, raw, digest, archivists, now)]
    return state, found
