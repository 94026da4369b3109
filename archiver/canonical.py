"""JSON in and out: the only producer of the bytes we sign.

- ``canonical_bytes``: RFC 8785 (JCS) form, what Ed25519 signatures cover.
- ``pretty_bytes``: the human-readable form written to ``manifests/``; a
  manifest's identity (its ``previous`` digest, its log leaf) is the digest of
  exactly these stored bytes, never of a re-serialisation.
- ``load_strict``: parses untrusted JSON. Duplicate member names are rejected
  because two parsers could otherwise see two different documents behind one
  signature; floats, NaN and Infinity are rejected because no record of ours
  has them and their canonical form is where JCS implementations disagree.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from .errors import InvalidInput

#: Nothing we read legitimately nests deeper; deeper input is hostile.
MAX_DEPTH = 64


class JSONFormatError(ValueError):
    """Raised by ``load_strict`` for input that is not strict JSON."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise JSONFormatError(f"duplicate member name {key!r}")
        obj[key] = value
    return obj


def _reject_float(text: str) -> Any:
    raise JSONFormatError(f"non-integer number {text[:20]!r} is not allowed")


def _reject_constant(text: str) -> Any:
    raise JSONFormatError(f"{text} is not allowed")


def _depth(value: Any, limit: int) -> int:
    # Iterative, so that hostile nesting cannot exhaust the interpreter stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


def load_strict(raw: bytes) -> Any:
    """Parse ``raw`` as strict UTF-8 JSON.

    Raises:
        JSONFormatError: not UTF-8, not JSON, duplicate names, floats, too deep.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JSONFormatError(f"not UTF-8 at byte {e.start}") from e
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except RecursionError as e:
        raise JSONFormatError("nested too deeply") from e
    except json.JSONDecodeError as e:
        raise JSONFormatError(f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise JSONFormatError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical form of ``value``.

    Raises:
        InvalidInput: the value cannot be canonicalised (e.g. an integer beyond 2**53,
            a string with a lone surrogate).
    """
    if _plain(value):
        # Without floats, with integers in the interoperable range and keys in ASCII,
        # RFC 8785 is exactly sorted keys, no white space, and JSON.stringify's escapes,
        # which is what the json module writes (tested against rfc8785); ~10x faster.
        try:
            return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        except UnicodeEncodeError as e:
            raise InvalidInput(f"cannot canonicalise JSON: {e.reason}") from e
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError) as e:
        raise InvalidInput(f"cannot canonicalise JSON: {e}") from e


_MAX_SAFE = 2**53 - 1


def _plain(value: Any) -> bool:
    """No float, no integer beyond 2**53 - 1, every key ASCII: the fast path applies."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str) or not k.isascii():
                    return False
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        elif isinstance(v, int):
            if not -_MAX_SAFE <= v <= _MAX_SAFE:
                return False
        else:
            return False
    return True


def pretty_bytes(value: Any) -> bytes:
    """The stored, human-readable form: sorted keys, 2-space indent, UTF-8, final newline."""
    try:
        return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput(f"text is not valid Unicode: {e.reason}") from e
