"""Unified diffs of text versions, and their summary counts.

The diff is computed once, when an edit is made, and stored (a WARC
``metadata`` record whose digest the manifest signs), so that history can be
shown years later without recomputing it with whatever difflib then does.
"""

from __future__ import annotations

import difflib

MAX_DIFF_TEXT = 16 << 20  # both versions are held in memory to diff them


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """A unified diff (3 lines of context), lines joined with LF."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm=""
    )
    return "\n".join(lines) + "\n"


def diff_counts(diff: str) -> dict[str, int]:
    """Lines and characters added and removed, counted inside hunks only.

    The two header lines (``---``/``+++``) come first; after them a line
    starting ``+``/``-`` is always content, even one that reads ``--- x``.
    """
    added = removed = chars_added = chars_removed = 0
    lines = diff.split("\n")
    for line in lines[2:]:
        if line.startswith("+"):
            added += 1
            chars_added += len(line) - 1
        elif line.startswith("-"):
            removed += 1
            chars_removed += len(line) - 1
    return {
        "lines_added": added,
        "lines_removed": removed,
        "chars_added": chars_added,
        "chars_removed": chars_removed,
    }
