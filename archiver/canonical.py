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
import json.encoder
from collections.abc import Callable
from sys import intern
from typing import Any

import rfc8785

from . import fasthash
from .errors import InvalidInput

_orjson_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _orjson_loads
except ImportError:  # a declared dependency; without it, json's C scanner (ADR 0017)
    _orjson_loads = None

#: Nothing we read legitimately nests deeper; deeper input is hostile.
MAX_DEPTH = 64


class JSONFormatError(ValueError):
    """Raised by ``load_strict`` for input that is not strict JSON."""


def _duplicate(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no duplicate")


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
    return load_strict_plain(raw)[0]


class _NotPlain(Exception):
    """Raised by the fast path's hooks: this value is not plain, parse it the long way."""


def _fast_pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    # Member names interned: a verify holds every manifest of the archive, each with the
    # same eighty-odd names, and json shares names only within one document. A seventh
    # of a verify's memory, at no measurable cost in time (the worker's marshal bytes
    # then carry each name once per job, and the parent interns them again).
    obj = {intern(k): v for k, v in items}
    if len(obj) != len(items):
        raise JSONFormatError(f"duplicate member name {_duplicate(items)!r}")
    if not "".join(obj).isascii():
        raise _NotPlain
    return obj


def _fast_integer(digits: str) -> int:
    value = int(digits)
    if not -_MAX_SAFE <= value <= _MAX_SAFE:
        raise _NotPlain
    return value


# Built once: json.loads(text, **hooks) builds a decoder and its scanner on every call,
# a fifth of parsing a 2 KB manifest. Its hooks keep no state, so it is shared.
_FAST = json.JSONDecoder(
    object_pairs_hook=_fast_pairs,
    parse_int=_fast_integer,
    parse_float=_reject_float,
    parse_constant=_reject_constant,
)


# json's C parser with nothing but the refusals (floats, NaN): no call per object or integer
_BARE = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)


def load_strict_plain(raw: bytes, shared: frozenset[str] | None = None) -> tuple[Any, bool]:
    """``load_strict``, and whether the value is *plain* (every member name ASCII, every
    integer within +-(2**53 - 1)): then ``canonical_bytes(value, plain=True)`` skips its
    own walk over the value. Both are noted while parsing, at almost no cost.

    ``shared``: member names whose string values repeat from one document to the next;
    the C accelerator interns them (``sys.intern``), so that the many documents a caller
    holds share one copy of each. Only memory changes, never the value.

    Raises:
        JSONFormatError: not UTF-8, not JSON, duplicate names, floats, too deep.
    """
    if fasthash.json_finish is not None and fasthash.json_colons is not None:
        fast = _parse_fast(raw, shared)
        if fast is not None:
            return fast
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JSONFormatError(f"not UTF-8 at byte {e.start}") from e
    try:
        try:
            value, plain = _FAST.decode(text), True
        except _NotPlain:
            value, plain = _load_noting_plain(text)
    except RecursionError as e:
        raise JSONFormatError("nested too deeply") from e
    except json.JSONDecodeError as e:
        raise JSONFormatError(f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except JSONFormatError:
        raise  # (the hooks' refusals: a ValueError too)
    except ValueError as e:  # an integer of more digits than Python converts (4,300)
        raise JSONFormatError("not JSON: an integer too long to read") from e
    # Nesting is at most the number of opening brackets: count them (in C) before walking.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise JSONFormatError(f"nested deeper than {MAX_DEPTH} levels")
    return value, plain


def _parse_fast(raw: bytes, shared: frozenset[str] | None = None) -> tuple[Any, bool] | None:
    """``load_strict_plain``'s value and plainness by a parser without hooks and one walk
    in C (``_fasthash.json_finish``), or None for anything the long way must decide.

    The parser is orjson where installed (ADR 0017), else json's C scanner. Either refuses
    what strict JSON refuses except three things, which the walk and the count of name
    separators catch: a float (orjson also makes one of an integer beyond 64 bits), a
    name given twice, nesting too deep. Anything refused or caught is parsed again the
    long way, which refuses it exactly as it would have alone: which error comes first
    depends on where each is met while parsing."""
    assert fasthash.json_finish is not None and fasthash.json_colons is not None
    try:
        bare = _orjson_loads(raw) if _orjson_loads is not None else _BARE.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # (orjson's errors and UnicodeDecodeError are ValueErrors)
        return None
    value, members, plain, refused = fasthash.json_finish(bare, MAX_DEPTH, shared)
    if refused or members != fasthash.json_colons(raw):
        return None
    return value, plain


def _load_noting_plain(text: str) -> tuple[Any, bool]:
    """The long way (a value the fast path found not plain): the same checks, noting
    plainness instead of stopping at it."""
    plain = True

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal plain
        obj = {intern(k): v for k, v in items}
        if len(obj) != len(items):
            raise JSONFormatError(f"duplicate member name {_duplicate(items)!r}")
        if plain and not "".join(obj).isascii():
            plain = False
        return obj

    def integer(digits: str) -> int:
        nonlocal plain
        value = int(digits)
        if plain and not -_MAX_SAFE <= value <= _MAX_SAFE:
            plain = False
        return value

    value = json.loads(
        text,
        object_pairs_hook=pairs,
        parse_int=integer,
        parse_float=_reject_float,
        parse_constant=_reject_constant,
    )
    return value, plain


def canonical_bytes(value: Any, *, plain: bool = False) -> bytes:
    """RFC 8785 canonical form of ``value``.

    ``plain``: the caller knows the value is plain (``load_strict_plain``), so the
    check is skipped.

    Raises:
        InvalidInput: the value cannot be canonicalised (e.g. an integer beyond 2**53,
            a string with a lone surrogate).
    """
    if fasthash.json_canonical is not None:
        out = fasthash.json_canonical(value)  # (None: not plain after all, or not exact types)
        if out is not None:
            return out
    if plain or _plain(value):
        # Without floats, with integers in the interoperable range and keys in ASCII,
        # RFC 8785 is exactly sorted keys, no white space, and JSON.stringify's escapes,
        # which is what the json module writes (tested against rfc8785); ~10x faster.
        try:
            return _JCS_PLAIN.encode(value).encode()
        except UnicodeEncodeError as e:
            raise InvalidInput(f"cannot canonicalise JSON: {e.reason}") from e
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError) as e:
        raise InvalidInput(f"cannot canonicalise JSON: {e}") from e


_MAX_SAFE = 2**53 - 1
# built once (json.dumps builds an encoder per call); it keeps no state between calls
_JCS_PLAIN = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


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
    """The stored, human-readable form: sorted keys, 2-space indent, UTF-8, final newline.

    Exactly ``json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)``, written
    out here because the json module has no C encoder for indented output and its
    Python one was a tenth of an ingest (tests compare the two).
    """
    out: list[str] = []
    try:
        _pretty(value, "\n", out)
        text = "".join(out)
    except TypeError:  # a float or another type we never write: the json module decides
        text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput(f"text is not valid Unicode: {e.reason}") from e


_encode_str = json.encoder.encode_basestring  # the C one where CPython has it


def _pretty(value: Any, newline: str, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_str(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        sep = "{" + inner
        for key in sorted(value):
            if not isinstance(key, str):
                raise TypeError("member names are strings")
            out.append(sep + _encode_str(key) + ": ")
            sep = "," + inner
            _pretty(value[key], inner, out)
        out.append(newline + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        sep = "[" + inner
        for item in value:
            out.append(sep)
            sep = "," + inner
            _pretty(item, inner, out)
        out.append(newline + "]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif type(value) is int:
        out.append(int.__repr__(value))
    else:
        raise TypeError(f"not written by _pretty: {type(value).__name__}")
