"""``archiver capture URL...``: web pages as WARC ``request``/``response`` records, signed.

Every URL is fetched first (``httpfetch.py``), before the archive is
locked; a URL that fails (network error, timeout, size limit, or an error
status unless ``accept_any_status``) stops the command with nothing written.
Then, in one write transaction, each redirect hop is stored as a request and
a response record, and the final exchange as a request record and a response
record (or, when the archive already holds the same payload, a ``revisit``
record carrying the new response head). The manifest names the final
response (``storage``), its request (``storage.request``) and every hop
(``source.http.redirects``); its content digests are those of the payload.
Capturing the same URL again with an unchanged payload adds a ``captured``
event to the same document.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import IO, Any

from .archive import Archive
from .commit import Transaction
from .errors import InvalidInput
from .httpfetch import Exchange, Fetched, fetch
from .ids import uuid4_hex
from .ingest import Ingested, captured_manifest, recapture_of
from .keystore import SigningKey
from .metadata import merge, validate
from .sealing import seal_and_queue
from .storing import digest_version, ref_json, store_version
from .timeutil import format_time
from .warcstore import HTTP_REQUEST_TYPE, RecordRef

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_REDIRECTS = 10


def capture(
    archive: Archive,
    urls: list[str],
    key: SigningKey,
    *,
    metadata: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_REDIRECTS,
    accept_any_status: bool = False,
    wait_seconds: float = 0.0,
    tsa: str | None = None,
) -> list[Ingested]:
    """Fetch every URL, then store them all in one transaction; all or nothing.

    Raises:
        InvalidInput: a URL could not be captured (nothing is written).
        StoreError: writing failed; nothing was kept.
    """
    md = dict(metadata or {})
    validate(md, "capture options")
    if not urls:
        raise InvalidInput("no URL to capture")
    fetched: list[Fetched] = []
    try:
        for url in urls:
            f = fetch(url, timeout=timeout, max_bytes=max_bytes, max_redirects=max_redirects)
            fetched.append(f)
            if not accept_any_status and not 200 <= f.final.status < 300:
                raise InvalidInput(
                    f"{url[:200]}: the server answered {f.final.status} {f.final.reason}; nothing "
                    "was captured (use --accept-any-status to keep an error page as evidence)"
                )
        with archive.transaction(key, wait_seconds, tsa) as tx:
            batch: dict[str, dict[str, Any]] = {}
            for f in fetched:
                _store(tx, f, key, md, batch)
        return [Ingested.of(w, f.requested) for w, f in zip(tx.done, fetched, strict=True)]
    finally:
        for f in fetched:
            f.cleanup()


def _opener(ex: Exchange) -> Callable[[], IO[bytes]]:
    if ex.body is None:
        return lambda: io.BytesIO(b"")
    path = ex.body
    return lambda: open(path, "rb")


def _write_request(tx: Transaction, ex: Exchange, date: str) -> RecordRef:
    return tx.warc.write_metadata(
        block=ex.request_head,
        content_type=HTTP_REQUEST_TYPE,
        target_uri=ex.url,
        date=date,
        record_type="request",
    )


def _write_hop(tx: Transaction, ex: Exchange, date: str) -> dict[str, Any]:
    """A redirect: its request and response records, as the manifest names them."""
    req = _write_request(tx, ex, date)
    h = hashlib.sha256()
    with _opener(ex)() as fh:
        while data := fh.read(1 << 20):
            h.update(data)
    with _opener(ex)() as fh:
        resp, _ = tx.warc.write_content(
            record_type="response",
            source=fh,
            size=ex.body_size,
            sha256_raw=h.digest(),
            target_uri=ex.url,
            date=date,
            media_type="application/octet-stream",
            http_head=ex.response_head,
            concurrent_to=req.record_id,
        )
    block = hashlib.sha256(ex.response_head)
    with _opener(ex)() as fh:
        while data := fh.read(1 << 20):
            block.update(data)
    return {
        "url": ex.url,
        "status": ex.status,
        "location": (ex.header("Location") or "")[:8192],
        "request": ref_json(req, hashlib.sha256(ex.request_head).hexdigest()),
        "response": ref_json(resp, block.hexdigest()),
    }


def _store(
    tx: Transaction, f: Fetched, key: SigningKey, md: dict[str, Any], batch: dict[str, dict[str, Any]]
) -> None:
    now = format_time(tx.archive.clock())
    hops = [_write_hop(tx, ex, now) for ex in f.exchanges[:-1]]
    final = f.final
    media_type, charset = f.content_type()
    meta = merge({"url": f.requested}, md)
    opener = _opener(final)
    d, seed = digest_version(
        opener,
        display=f.requested,
        filename=None,
        media_type=md.get("media_type") or media_type,
        charset=md.get("charset") or charset,
    )
    req = _write_request(tx, final, now)
    doc_id, seq, prev = recapture_of(tx, d.sha256, meta["url"], None) or (uuid4_hex(), 0, None)
    stored = store_version(
        tx,
        opener,
        d,
        seed,
        display=f.requested,
        language=meta.get("language"),
        record_type="response",
        refers_to=None,
        target_uri=final.url,
        date=now,
        batch=batch,
        http_head=final.response_head,
        concurrent_to=req.record_id,
    )
    stored.storage["request"] = ref_json(req, hashlib.sha256(final.request_head).hexdigest())
    source = {
        "filename": None,
        "metadata": meta,
        "http": {
            "requested_url": f.requested,
            "final_url": final.url,
            "status": final.status,
            "reason": final.reason[:200],
            "content_type": (final.header("Content-Type") or "")[:1024] or None,
            "redirects": hops,
        },
    }
    manifest = captured_manifest(tx, key, (doc_id, seq, prev), now, stored, source)
    seal_and_queue(tx, manifest, key, "archivist", stored.record_id, concurrent=True)
