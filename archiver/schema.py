"""The packaged JSON Schemas (``schemas/``) and validators built from them.

Validators are compiled once per process and check formats (``date-time``
needs ``rfc3339-validator``, which is a dependency for that reason).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_NAMES = ("common", "metadata", "manifest", "key", "revocation", "archive", "report", "audit", "export")


@cache
def _registry() -> Registry[Any]:
    pairs = []
    for name in SCHEMA_NAMES:
        doc = json.loads(schema_text(name))
        pairs.append((doc["$id"], Resource.from_contents(doc)))
    return Registry[Any]().with_resources(pairs)


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
    doc = json.loads(schema_text(name))
    return Draft202012Validator(doc, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def _fast_validator(name: str) -> Draft202012Validator:
    """The same schema with every ``$ref`` inlined: the same verdicts, several times faster,
    because resolving references across files dominates validation time."""
    docs = {json.loads(schema_text(n))["$id"]: json.loads(schema_text(n)) for n in SCHEMA_NAMES}
    base = json.loads(schema_text(name))
    return Draft202012Validator(_inline(base, base, docs), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _inline(node: Any, doc: dict[str, Any], docs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(v, doc, docs) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _inline(v, doc, docs) for k, v in node.items() if k != "$ref"}
    ref = node.get("$ref")
    if ref is None:
        return out
    target_name, _, fragment = ref.partition("#")
    target = doc if not target_name else docs[doc["$id"].rsplit("/", 1)[0] + "/" + target_name]
    sub: Any = target
    for part in [p for p in fragment.split("/") if p]:
        sub = sub[part]
    sub = {k: v for k, v in sub.items() if k not in ("$id", "$schema", "$defs")}
    resolved = _inline(sub, target, docs)
    if not out:
        return resolved
    out.setdefault("allOf", []).append(resolved)
    return out


def is_valid(name: str, value: Any) -> bool:
    """Whether ``value`` is valid against a schema (the fast path)."""
    return bool(_fast_validator(name).is_valid(value))


def schema_errors(name: str, value: Any, limit: int = 5) -> list[str]:
    """Every error (up to ``limit``) as ``/json/pointer: message``; empty when valid."""
    if is_valid(name, value):
        return []
    out = []
    for err in validator(name).iter_errors(value):
        pointer = "/" + "/".join(str(p) for p in err.absolute_path)
        msg = err.message
        if len(msg) > 200:
            msg = msg[:200] + "..."
        out.append(f"{pointer}: {msg}")
        if len(out) >= limit:
            break
    return sorted(out)
