"""Verifier checks that only an S3 archive needs: what Object Lock leaves visible.

An S3 server with Object Lock refuses to delete or shorten a locked version, but
accepts a second PUT to the same key (a new version, served from then on) and a
DELETE without a version id (a delete marker that hides the object). Neither
destroys the locked original; both change what readers see. So:

- ``object-overwritten``: a key under the archive's prefix has more than one
  version with different bytes, or a delete marker. (Versions with identical
  bytes, the same MD5 and size, are what a retried PUT leaves; they change nothing
  and are not reported.) The other findings of the same run say what the change
  did; this one says it was made through S3, and that the original is still there
  to be recovered by version id.
- ``object-unlocked``: a WARC file, a log segment, a checkpoint, a key record or
  ``archive.json`` (and, for a document-scoped run, the documents' manifests) is
  not under COMPLIANCE retention: it could be deleted for good.

Manifests and tokens are written with their retention in the same request that
writes them, so a full run checks the locks of the objects above only (a HEAD
each); ``audit`` and ``verify DOC`` check the manifests of the documents they cover.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from .layout import ARCHIVE_JSON, CHECKPOINTS, EVENT_NAME, KEYS, TIMESTAMPS, events_prefix, warc_key
from .logview import SEGMENTS
from .problems import Problem, ProblemCode
from .s3store import READERS, S3Store, Version
from .snapshot import Snapshot


def check_objects(store: S3Store, snap: Snapshot, documents: list[str] | None) -> list[Problem]:
    """Both checks, for the whole archive (``documents`` None) or for some documents."""
    if documents is None:
        versions = store.versions()
    else:
        versions = []
        for doc in documents:
            versions += store.versions(events_prefix(doc))
            versions += store.versions(f"{TIMESTAMPS}{doc[:2]}/{doc}-")
    problems = _versions(versions)
    if documents is None:
        keys = [warc_key(n) for n in snap.warc_sizes] + [CHECKPOINTS + n for n in snap.checkpoints]
        keys += [e.key for e in store.files(SEGMENTS)] + [e.key for e in store.files(KEYS)] + [ARCHIVE_JSON]
    else:
        keys = sorted(k for k in snap.records if k.endswith(".json") and not k.startswith(KEYS))
    problems += _locks(store, keys)
    return problems


def _problem(code: ProblemCode, message: str, key: str) -> Problem:
    """A finding about one object, with its document and event when it is a manifest."""
    m = EVENT_NAME.match(key.rsplit("/", 1)[-1])
    if m is None:
        return Problem(code=code, message=message, file=key)
    return Problem(code=code, message=message, file=key, document=m.group(1), event=int(m.group(2)))


def _versions(versions: list[Version]) -> list[Problem]:
    by_key: dict[str, list[Version]] = defaultdict(list)
    for v in versions:
        by_key[v.key].append(v)
    out = []
    for key in sorted(by_key):
        vs = by_key[key]
        kept = [v for v in vs if not v.delete_marker]
        if any(v.delete_marker for v in vs):
            out.append(
                _problem(
                    ProblemCode.OBJECT_OVERWRITTEN,
                    f"deleted through S3 (a delete marker hides it); {len(kept)} version(s) remain "
                    "under Object Lock and can be read by version id",
                    key,
                )
            )
        elif len({(v.etag, v.size) for v in kept}) > 1:
            out.append(
                _problem(
                    ProblemCode.OBJECT_OVERWRITTEN,
                    f"written {len(kept)} times with different bytes; the first version is the "
                    "one archiver wrote (it remains under Object Lock)",
                    key,
                )
            )
    return out


def _locks(store: S3Store, keys: list[str]) -> list[Problem]:
    def mode(key: str) -> str | None:
        head = store.head(key)
        return "absent" if head is None else head.get("ObjectLockMode")

    with ThreadPoolExecutor(READERS) as pool:
        modes = list(pool.map(mode, keys))
    return [
        _problem(
            ProblemCode.OBJECT_UNLOCKED,
            f"not under COMPLIANCE retention (lock mode: {m or 'none'}): it could be deleted for good",
            key,
        )
        for key, m in zip(keys, modes, strict=True)
        if m not in ("COMPLIANCE", "absent")  # an absent object is reported by the other checks
    ]
