"""The packaged JSON Schemas (``schemas/``) and validators built from them.

Validators are compiled once per process and check formats (``date-time``
needs ``rfc3339-validator``, which is a dependency for that reason).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported only when a rejection must be explained
    from jsonschema import Draft202012Validator
    from referencing import Registry

SCHEMA_NAMES = ("common", "metadata", "manifest", "key", "revocation", "archive", "report", "audit", "export")


@cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource

    pairs = [(doc["$id"], Resource.from_contents(doc)) for doc in map(_schema_doc, SCHEMA_NAMES)]
    return Registry[Any]().with_resources(pairs)


@cache
def _schema_doc(name: str) -> Any:
    """A schema, parsed once per process (callers must not change it): every validator
    compiled references all of them, and a one-document verify compiles several."""
    return json.loads(schema_text(name))


@cache
def _schema_dir() -> Path:
    # Installed from a wheel, the schemas are package data (archiver/schemas/);
    # in a source checkout or an editable install they are the repository's
    # top-level schemas/, the very files auditors are given.
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / "manifest.schema.json").is_file():
            return candidate
    raise RuntimeError("archiver's JSON Schemas are not installed")  # a broken installation


def schema_text(name: str) -> str:
    """The text of ``schemas/NAME.schema.json`` as shipped with the package."""
    return (_schema_dir() / f"{name}.schema.json").read_text("utf-8")


@cache
def validator(name: str) -> Draft202012Validator:
    """A compiled validator for one schema (the published schema, references and all)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        _schema_doc(name), registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


@cache
def _fast_validator(name: str) -> Any:
    """The same schema compiled by jsonschema-rs: the same verdicts (tested against
    jsonschema on valid and mutated records of every schema), some 50 times faster.
    jsonschema stays the reference and explains every rejection (``schema_errors``)."""
    import jsonschema_rs

    docs = {doc["$id"]: doc for doc in map(_schema_doc, SCHEMA_NAMES)}
    base = _schema_doc(name)
    return jsonschema_rs.validator_for(base, retriever=lambda uri: docs[uri], validate_formats=True)


def is_valid(name: str, value: Any) -> bool:
    """Whether ``value`` is valid against a schema (the fast path)."""
    return bool(_fast_validator(name).is_valid(value))


def schema_errors(name: str, value: Any, limit: int = 5) -> list[str]:
    """Every error (up to ``limit``) as ``/json/pointer: message``; empty when valid."""
    if is_valid(name, value):
        return []
    out: list[str] = []
    for err in validator(name).iter_errors(value):
        pointer = "/" + "/".join(str(p) for p in err.absolute_path)
        msg = err.message
        if len(msg) > 200:
            msg = msg[:200] + "..."
        out.append(f"{pointer}: {msg}")
        if len(out) >= limit:
            break
    if not out:  # the two validators disagree: reject, and say so (never seen; tested)
        out.append("/: rejected by jsonschema-rs though jsonschema finds no error (please report)")
    return sorted(out)
