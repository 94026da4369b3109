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
import http.client
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509

from .errors import InvalidInput
from .layout import Layout
from .problems import Problem, ProblemCode

if TYPE_CHECKING:
    from .archive import Archive
    from .keystore import SigningKey

TSA_DIR = "tsa"
TOKENS_DIR = "timestamps"
CLOCK_SKEW = timedelta(minutes=5)
MAX_TOKEN = 1 << 16
MAX_CERT = 1 << 16


@dataclass(frozen=True, slots=True)
class Stamp:
    """A token obtained: where it goes and its bytes."""

    path: Path
    der: bytes


def token_path(layout: Layout, subject: Path) -> Path:
    """Where the token over a manifest file or a checkpoint file lives."""
    rel = subject.relative_to(layout.manifests)
    if rel.parts[0] == "events":
        return layout.manifests / TOKENS_DIR / rel.parts[1] / (subject.stem + ".tsr")
    if rel.parts[:2] == ("log", "checkpoints"):
        return layout.manifests / TOKENS_DIR / "checkpoints" / (subject.name + ".tsr")
    raise ValueError(f"no time-stamp token for {rel}")


def subject_of(layout: Layout, token: Path) -> Path | None:
    """The record a token file claims to cover (None: a misplaced file)."""
    rel = token.relative_to(layout.manifests / TOKENS_DIR)
    if len(rel.parts) != 2 or not rel.name.endswith(".tsr"):
        return None
    stem = rel.name[: -len(".tsr")]
    if rel.parts[0] == "checkpoints":
        return layout.log / "checkpoints" / stem
    return layout.events / rel.parts[0] / (stem + ".json")


def load_certificates(paths: list[Path]) -> list[x509.Certificate]:
    """PEM certificates (several per file allowed).

    Raises:
        InvalidInput: unreadable or not PEM certificates.
    """
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


def trusted_certificates(layout: Layout, only: frozenset[str] | None = None) -> list[x509.Certificate]:
    """The TSA certificates the archive trusts (``only``: a reader's snapshot of record files)."""
    d = layout.manifests / TSA_DIR
    if not d.is_dir():
        return []
    paths = [p for p in sorted(d.glob("*.pem")) if only is None or layout.relative(p) in only]
    out: list[x509.Certificate] = []
    for p in paths:
        try:
            out += x509.load_pem_x509_certificates(p.read_bytes()[:MAX_CERT])
        except (OSError, ValueError):
            continue  # reported by check_tokens
    return out


def certificate_file(layout: Layout, cert: x509.Certificate) -> Path:
    """Where a trusted certificate is kept: named by the SHA-256 of its DER."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return layout.manifests / TSA_DIR / f"{hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()}.pem"


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
    layout: Layout,
    records: frozenset[str] | None,
    roots: list[x509.Certificate],
    claimed_time: dict[str, datetime],
    documents: list[str] | None = None,
) -> tuple[list[Problem], int]:
    """Every token in the archive (or of ``documents``) checked: (``time-invalid`` findings, count)."""
    problems: list[Problem] = []
    checked = 0
    base = layout.manifests / TOKENS_DIR
    if not base.is_dir():
        return problems, 0
    tsa_dir = layout.manifests / TSA_DIR
    if tsa_dir.is_dir():
        for p in sorted(tsa_dir.iterdir()):
            if records is not None and layout.relative(p) not in records:
                continue
            try:
                x509.load_pem_x509_certificates(p.read_bytes()[:MAX_CERT])
            except (OSError, ValueError):
                problems.append(
                    Problem(
                        code=ProblemCode.SCHEMA_INVALID,
                        message="not a PEM certificate",
                        file=layout.relative(p),
                    )
                )
    for token in sorted(base.rglob("*.tsr")):
        rel = layout.relative(token)
        if records is not None and rel not in records:
            continue
        if documents is not None and not any(token.name.startswith(d) for d in documents):
            continue
        subject = subject_of(layout, token)
        doc = token.name[:32] if subject is not None and subject.suffix == ".json" else None
        if subject is None or not subject.is_file():
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
            der = token.read_bytes()[: MAX_TOKEN + 1]
            data = subject.read_bytes()
        except OSError as e:
            problems.append(
                Problem(code=ProblemCode.TIME_INVALID, message=f"unreadable: {e.strerror}", file=rel)
            )
            continue
        checked += 1
        _, why = check_token(der, data, roots, claimed_time.get(layout.relative(subject)))
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


def trust_tsa(archive: Archive, cert_file: Path, signer: SigningKey) -> list[Path]:
    """Trust the TSA certificate(s) in a PEM file: kept under ``manifests/tsa/`` and logged.

    Returns the files written (a certificate trusted already is skipped).

    Raises:
        InvalidInput: not a PEM certificate.
        StoreError: writing failed.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    from .fsutil import fsync_dir

    certs = load_certificates([cert_file])
    written: list[Path] = []
    with archive.writer_lock():
        for cert in certs:
            path = certificate_file(archive.layout, cert)
            if path.exists():
                continue
            path.parent.mkdir(exist_ok=True)
            write_token(path, cert.public_bytes(Encoding.PEM))
            written.append(path)
        if written:
            fsync_dir(written[0].parent)
            fsync_dir(archive.layout.manifests)
            archive.append_to_log(written, signer)
    return written


def stamp_checkpoint(archive: Archive, url: str, signer: SigningKey) -> Path:
    """Obtain a token over the latest checkpoint, keep it (logged: a new checkpoint follows).

    Raises:
        InvalidInput: no checkpoint yet, or the TSA failed (nothing written).
        StoreError: writing failed.
    """
    from .fsutil import fsync_dir
    from .tlog import Log

    with archive.writer_lock():
        files = Log(archive.layout.log).checkpoint_files()
        if not files:
            raise InvalidInput("this archive has no checkpoint yet: ingest something first")
        latest = files[-1]
        der = request_token(url, latest.read_bytes(), trusted_certificates(archive.layout))
        path = token_path(archive.layout, latest)
        if path.exists():
            return path  # this checkpoint carries a token already
        write_token(path, der)
        fsync_dir(path.parent)
        fsync_dir(path.parent.parent)
        archive.append_to_log([path], signer)
    return path
