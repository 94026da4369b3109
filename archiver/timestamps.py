"""Trusted time: RFC 3161 time-stamp tokens over manifests and checkpoints.

An archivist's clock proves nothing; a time-stamp authority's signature over
a record's digest proves the record existed at the TSA's ``genTime``.

On disk (all logged, so adding or removing one is visible):

- ``manifests/tsa/SHA256.pem``: a TSA certificate (or its root CA) the archive
  trusts, named by the SHA-256 of its DER (``archiver tsa trust CERT.pem``);
- ``manifests/timestamps/DD/DOC-SEQ.tsr``: the TimeStampResp (DER, as the TSA
  sent it) over SHA-256 of the manifest file ``manifests/events/DD/DOC-SEQ.json``;
- ``manifests/timestamps/checkpoints/N.tsr``: the same over the checkpoint
  file ``manifests/log/checkpoints/N``.

An auditor checks one with OpenSSL alone::

    openssl ts -verify -data manifests/events/DD/DOC-SEQ.json \\
        -in manifests/timestamps/DD/DOC-SEQ.tsr -CAfile tsa-root.pem

``verify`` reports ``time-invalid`` for a token that does not parse, is not
granted, is not signed by a chain to a trusted certificate, whose message
imprint is not the digest of its record, whose record is missing, or whose
manifest claims a time later than the token's ``genTime`` (beyond
``CLOCK_SKEW``): the manifest then existed before the time it claims.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import InvalidInput
from .layout import CHECKPOINTS, EVENTS, TIMESTAMPS, TSA, Layout
from .problems import Problem, ProblemCode
from .storage import Store, children

if TYPE_CHECKING:
    from cryptography import x509

    from .archive import Archive
    from .keystore import SigningKey

CLOCK_SKEW = timedelta(minutes=5)
MAX_TOKEN = 1 << 16
MAX_CERT = 1 << 16


@dataclass(frozen=True, slots=True)
class Stamp:
    """A token obtained: where it goes and its bytes."""

    path: Path
    der: bytes


def token_key(subject: str) -> str:
    """Where the token over a manifest or a checkpoint (keys) lives."""
    if subject.startswith(EVENTS):
        shard, name = subject[len(EVENTS) :].split("/", 1)
        return f"{TIMESTAMPS}{shard}/{name.removesuffix('.json')}.tsr"
    if subject.startswith(CHECKPOINTS):
        return f"{TIMESTAMPS}checkpoints/{subject[len(CHECKPOINTS) :]}.tsr"
    raise ValueError(f"no time-stamp token for {subject}")


def token_path(layout: Layout, subject: Path) -> Path:
    """``token_key`` for a local archive's files."""
    return layout.root / token_key(layout.relative(subject))


def subject_of(token: str) -> str | None:
    """The record (key) a token file claims to cover (None: a misplaced file)."""
    parts = token[len(TIMESTAMPS) :].split("/")
    if not token.startswith(TIMESTAMPS) or len(parts) != 2 or not parts[1].endswith(".tsr"):
        return None
    stem = parts[1][: -len(".tsr")]
    if parts[0] == "checkpoints":
        return CHECKPOINTS + stem
    return f"{EVENTS}{parts[0]}/{stem}.json"


def load_certificates(paths: list[Path]) -> list[x509.Certificate]:
    """PEM certificates (several per file allowed).

    Raises:
        InvalidInput: unreadable or not PEM certificates.
    """
    from cryptography import x509  # (imported where used: 20 ms of every verify's start)

    out: list[x509.Certificate] = []
    for p in paths:
        try:
            raw = p.read_bytes()[: MAX_CERT + 1]
            if len(raw) > MAX_CERT:
                raise InvalidInput(f"{p}: larger than {MAX_CERT} bytes: not a certificate file")
            out += x509.load_pem_x509_certificates(raw)
        except OSError as e:
            raise InvalidInput(f"{p}: {e.strerror}") from e
        except ValueError:
            raise InvalidInput(f"{p}: not a PEM certificate") from None
    return out


def trusted_certificates(store: Store, only: frozenset[str] | None = None) -> list[x509.Certificate]:
    """The TSA certificates the archive trusts (``only``: a reader's snapshot of record files)."""
    out: list[x509.Certificate] = []
    for e in children(store, TSA, ".pem"):
        if only is not None and e.key not in only:
            continue
        from cryptography import x509

        try:
            out += x509.load_pem_x509_certificates(store.read(e.key, MAX_CERT))
        except (OSError, ValueError):
            continue  # reported by check_tokens
    return out


def certificate_key(cert: x509.Certificate) -> str:
    """Where a trusted certificate is kept: named by the SHA-256 of its DER."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return f"{TSA}{hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()}.pem"


def request_token(url: str, data: bytes, roots: list[x509.Certificate], timeout: float = 30.0) -> bytes:
    """Ask the TSA at ``url`` for a token over SHA-256 of ``data``; check it before keeping it.

    Raises:
        InvalidInput: no trusted TSA certificate, the TSA is unreachable or refuses, or its
            answer does not verify (wrong imprint, nonce, signature or certificate).
    """
    from rfc3161_client import (
        TimestampRequestBuilder,
        VerificationError,
        VerifierBuilder,
        decode_timestamp_response,
    )

    if not roots:
        raise InvalidInput(
            "this archive trusts no time-stamp authority: run `archiver tsa trust CERT.pem` first"
        )
    req = TimestampRequestBuilder().data(data).nonce(nonce=True).cert_request(cert_request=True).build()
    der = _post(url, req.as_bytes(), timeout)
    try:
        resp = decode_timestamp_response(der)
    except ValueError as e:
        raise InvalidInput(f"time-stamp authority {url}: unreadable answer ({e})") from None
    builder = VerifierBuilder.from_request(req)
    for cert in roots:
        builder = builder.add_root_certificate(cert)
    try:
        builder.build().verify_message(resp, data)
    except (VerificationError, ValueError) as e:
        raise InvalidInput(f"time-stamp authority {url}: its token does not verify ({e})") from None
    return der


def _post(url: str, body: bytes, timeout: float) -> bytes:
    import http.client  # (imported where used, as x509: not every command asks a TSA)

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"--tsa {url[:200]}: an http:// or https:// URL is needed")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body, {"Content-Type": "application/timestamp-query"})
        resp = conn.getresponse()
        data = resp.read(MAX_TOKEN + 1)
        if resp.status != 200:
            raise InvalidInput(f"time-stamp authority {url[:200]}: HTTP {resp.status} {resp.reason}")
        if len(data) > MAX_TOKEN:
            raise InvalidInput(f"time-stamp authority {url[:200]}: answer larger than {MAX_TOKEN} bytes")
        return data
    except (OSError, http.client.HTTPException) as e:
        raise InvalidInput(f"time-stamp authority {url[:200]}: unreachable ({e})") from None
    finally:
        conn.close()


def check_token(
    der: bytes, subject: bytes, roots: list[x509.Certificate], claimed: datetime | None
) -> tuple[datetime | None, str | None]:
    """(genTime, None) if the token is sound for ``subject``, else (None or genTime, the reason)."""
    from rfc3161_client import VerificationError, VerifierBuilder, decode_timestamp_response

    try:
        resp = decode_timestamp_response(der)
        gen_time = resp.tst_info.gen_time
    except (ValueError, AttributeError) as e:
        return None, f"unreadable time-stamp token ({e})"
    if not roots:
        return gen_time, "no trusted time-stamp authority certificate to check the token against"
    builder = VerifierBuilder()
    for cert in roots:
        builder = builder.add_root_certificate(cert)
    try:
        builder.build().verify_message(resp, subject)
    except (VerificationError, ValueError) as e:
        return gen_time, f"time-stamp token does not verify: {e}"
    if gen_time.tzinfo is None:
        from datetime import UTC

        gen_time = gen_time.replace(tzinfo=UTC)
    if claimed is not None and claimed > gen_time + CLOCK_SKEW:
        return gen_time, (
            f"the manifest claims {claimed.isoformat()} but was time-stamped at {gen_time.isoformat()}"
        )
    return gen_time, None


def check_tokens(
    store: Store,
    records: frozenset[str] | None,
    roots: list[x509.Certificate],
    claimed_time: Callable[[str], datetime | None],
    documents: list[str] | None = None,
) -> tuple[list[Problem], int]:
    """Every token in the archive (or of ``documents``) checked: (``time-invalid`` findings, count).

    ``claimed_time``: the time a record's key claims (a manifest's event time), asked only
    for records that have a token."""
    problems: list[Problem] = []
    checked = 0
    tokens = [e for e in store.files(TIMESTAMPS) if e.key.endswith(".tsr")]
    if not tokens:
        return problems, 0
    from cryptography import x509

    for e in children(store, TSA):
        if records is not None and e.key not in records:
            continue
        try:
            x509.load_pem_x509_certificates(store.read(e.key, MAX_CERT))
        except (OSError, ValueError):
            problems.append(
                Problem(code=ProblemCode.SCHEMA_INVALID, message="not a PEM certificate", file=e.key)
            )
    for token in tokens:
        rel = token.key
        if records is not None and rel not in records:
            continue
        if documents is not None and not any(token.name.startswith(d) for d in documents):
            continue
        subject = subject_of(rel)
        doc = token.name[:32] if subject is not None and subject.endswith(".json") else None
        if subject is None or store.size(subject) is None:
            problems.append(
                Problem(
                    code=ProblemCode.TIME_INVALID,
                    message="time-stamp token for a record that does not exist",
                    document=doc,
                    file=rel,
                )
            )
            continue
        try:
            der = store.read(rel, MAX_TOKEN + 1)
            data = store.read(subject)
        except OSError as e:
            problems.append(
                Problem(code=ProblemCode.TIME_INVALID, message=f"unreadable: {e.strerror}", file=rel)
            )
            continue
        checked += 1
        _, why = check_token(der, data, roots, claimed_time(subject))
        if why is not None:
            seq = int(token.name[33:-4]) if doc is not None and token.name[33:-4].isdigit() else None
            problems.append(
                Problem(code=ProblemCode.TIME_INVALID, message=why, document=doc, event=seq, file=rel)
            )
    return problems, checked


def write_token(path: Path, der: bytes) -> None:
    """Write a token file once (never replaced), directories synced by the caller."""
    from .fsutil import write_new

    path.parent.mkdir(parents=True, exist_ok=True)
    write_new(path, der)


def trust_tsa(archive: Archive, cert_file: Path, signer: SigningKey) -> list[str]:
    """Trust the TSA certificate(s) in a PEM file: kept under ``manifests/tsa/`` and logged.

    Returns the keys of the files written (a certificate trusted already is skipped).

    Raises:
        InvalidInput: not a PEM certificate.
        StoreError: writing failed.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = load_certificates([cert_file])
    with archive.recording() as batch:
        for cert in certs:
            key = certificate_key(cert)
            if archive.store.size(key) is not None or key in dict(batch.records):
                continue
            batch.add(key, cert.public_bytes(Encoding.PEM))
        batch.signer = signer
    return [k for k, _ in batch.records]


def stamp_checkpoint(archive: Archive, url: str, signer: SigningKey) -> str:
    """Obtain a token over the latest checkpoint, keep it (logged: a new checkpoint follows).

    Returns the token's key.

    Raises:
        InvalidInput: no checkpoint yet, or the TSA failed (nothing written).
        StoreError: writing failed.
    """
    with archive.recording() as batch:
        log = archive.log_view()
        names = log.checkpoint_names()
        if not names:
            raise InvalidInput("this archive has no checkpoint yet: ingest something first")
        subject = CHECKPOINTS + names[-1]
        key = token_key(subject)
        if archive.store.size(key) is not None:
            return key  # this checkpoint carries a token already
        der = request_token(url, log.checkpoint(names[-1]), trusted_certificates(archive.store))
        batch.add(key, der)
        batch.signer = signer
    return key
