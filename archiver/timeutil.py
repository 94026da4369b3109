"""Times as the archive writes them: RFC 3339, UTC, microseconds, ``Z``.

One fixed textual form, so that a manifest's ``time`` and its WARC record's
``WARC-Date`` are the same string and compare by equality.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def system_clock() -> datetime:
    """The current time in UTC.

    ``ARCHIVER_TEST_NOW`` (an RFC 3339 time) pins it; it exists for
    reproducible test vectors and is named so that nobody mistakes it for a
    setting. The verifier never uses it to decide what is "in the future".
    """
    pinned = os.environ.get("ARCHIVER_TEST_NOW")
    if pinned:
        return parse_time(pinned)
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    """``2026-11-24T05:46:18.123456Z``."""
    u = t.astimezone(UTC)
    if u.year >= 1000:  # isoformat pads the year to 4 digits; strftime's %Y may not below 1000
        # a few times faster than strftime, and called for every event written
        return u.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return u.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time with an explicit offset.

    Raises:
        ValueError: not RFC 3339.
    """
    if not _RFC3339.match(text):
        raise ValueError(f"not an RFC 3339 time: {text[:40]!r}")
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
