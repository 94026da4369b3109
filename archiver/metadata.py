"""User metadata: gathered from options, a --metadata file and sidecars; validated.

Precedence, most specific last (later wins; ``meta`` pairs merge by key):
``--metadata FILE.json`` < the sidecar ``NAME.meta.json`` beside a file <
the command-line options (``--url``, ``--title``, ..., ``--meta KEY=VALUE``).
Everything is validated against ``schemas/metadata.schema.json`` before a
single byte is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .canonical import JSONFormatError, load_strict
from .errors import InvalidInput
from .fsutil import read_upto
from .schema import schema_errors

MAX_METADATA_FILE = 1 << 20
SIDECAR_SUFFIX = ".meta.json"


def read_metadata_file(path: Path) -> dict[str, Any]:
    """Read and validate one metadata JSON file.

    Raises:
        InvalidInput: unreadable, too large, not strict JSON, or not schema-valid.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise InvalidInput(f"{path}: cannot read metadata ({e.strerror})") from e
    try:
        if os.fstat(fd).st_size > MAX_METADATA_FILE:
            raise InvalidInput(f"{path}: metadata file larger than 1 MiB")
        raw = read_upto(fd, MAX_METADATA_FILE)
    finally:
        os.close(fd)
    if len(raw) > MAX_METADATA_FILE:  # it grew while read
        raise InvalidInput(f"{path}: metadata file larger than 1 MiB")
    try:
        doc = load_strict(raw)
    except JSONFormatError as e:
        raise InvalidInput(f"{path}: invalid metadata JSON: {e}") from e
    validate(doc, str(path))
    assert isinstance(doc, dict)
    return doc


def validate(doc: Any, where: str) -> None:
    """Validate against the metadata schema.

    Raises:
        InvalidInput: with every error (up to 5) and its JSON pointer.
    """
    errors = schema_errors("metadata", doc)
    if errors:
        raise InvalidInput(f"{where}: invalid metadata: {'; '.join(errors)}")


def parse_meta_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` strings to a dict.

    Raises:
        InvalidInput: a pair without ``=``.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--meta {pair[:60]!r}: expected KEY=VALUE")
        out[key] = value
    return out


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge metadata layers, later ones winning; ``meta`` merges by key."""
    out: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key == "meta":
                meta.update(value)
            elif value is not None:
                out[key] = value
    if meta:
        out["meta"] = meta
    return out


def sidecar_for(path: Path) -> Path:
    """The sidecar file that would describe ``path``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)
