"""``archiver export wacz``: the archive as a WACZ 1.1.1 package (Webrecorder), signed.

The package (a ZIP; WARC files stored, not deflated)::

    archive/NNNNNN.warc.gz       the archive's WARC files (sealed material withheld, exportcopy.py)
    indexes/index.cdx            CDXJ index of every response, resource, revisit and conversion record
    pages/pages.jsonl            one page per document captured from an http(s) URL
    archiver/manifests.tar       manifests/ of the exported copy: keys, signed manifests,
                                 log, checkpoints, time-stamp tokens, export.json
    datapackage.json             Frictionless data package: every file's sha256 and size
    datapackage-digest.json      sha256 of datapackage.json, and signedData

``archiver/manifests.tar`` holds one tar because WACZ validators accept files
only two levels deep. Extracting it beside the WARC files gives back an
archive that ``archiver verify`` checks (docs/verifying.md).

Signing (WACZ Signing and Verification 0.1.0, "anonymous signature"): the
``signedData`` object has the spec's members ``hash``, ``created``,
``software``, ``version``, ``signature`` and ``publicKey``, but the key is the
archive's Ed25519 key, not ECDSA P-256 as the spec assumes: ``signature`` is
the Ed25519 signature of the UTF-8 bytes of ``hash`` and ``publicKey`` the
base64 raw 32-byte Ed25519 public key, with ``algorithm: "ed25519"`` and
``keyId`` (the archive's key id, whose key record is in the tar) added. Tools
that only know ECDSA cannot check it; the domain-certificate form is not
used (an archivist has no TLS certificate to sign with). With a TSA, an RFC
3161 token over the signature is added as the spec's ``timeSignature``, with
the TSA's trusted certificates as ``timestampCert``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

from .__version__ import TOOL_NAME, __version__
from .archive import Archive
from .errors import InvalidInput, StoreError
from .exportcopy import copy_archive
from .fsutil import fsync_dir
from .keystore import SigningKey
from .signing import raw_public

WACZ_VERSION = "1.1.1"
CDX_TYPES = ("response", "resource", "revisit", "conversion")  # conversion: edited and redacted versions


@dataclass(frozen=True, slots=True)
class WaczResult:
    """What ``export wacz`` wrote."""

    path: Path
    documents: int
    pages: int
    records: int
    withheld: int


def surt(url: str) -> str:
    """The SURT form CDXJ indexes sort by: ``com,example)/path?query`` (``www.`` dropped)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return url.lower()
    host = parts.hostname.lower().removeprefix("www.")
    is_ip = ":" in host or host.replace(".", "").isdigit()
    key = host if is_ip else ",".join(reversed(host.split(".")))
    if parts.port and parts.port not in (80, 443):
        key += f":{parts.port}"
    path = parts.path or "/"
    return f"{key}){path}" + (f"?{parts.query}" if parts.query else "")


def _timestamp(warc_date: str) -> str:
    return "".join(c for c in warc_date if c.isdigit())[:14]


def cdx_lines(path: Path, name: str) -> list[str]:
    """CDXJ lines for the replayable records of one (exported) WARC file."""
    out = []
    with open(path, "rb") as f:
        it = ArchiveIterator(f)
        for rec in it:
            rtype = rec.rec_type
            uri = rec.rec_headers.get_header("WARC-Target-URI")
            date = rec.rec_headers.get_header("WARC-Date") or ""
            if rtype not in CDX_TYPES or not uri or uri.startswith("urn:archiver:event:"):
                rec.raw_stream.read()
                continue
            fields: dict[str, Any] = {"url": uri}
            if rec.http_headers is not None and rtype != "resource":
                status = rec.http_headers.get_statuscode()
                if status:
                    fields["status"] = status
                mime = rec.http_headers.get_header("Content-Type")
            else:
                mime = rec.rec_headers.get_header("Content-Type")
            fields["mime"] = (mime or "application/octet-stream").split(";")[0].strip()
            digest = rec.rec_headers.get_header("WARC-Payload-Digest")
            if digest:
                fields["digest"] = digest
            if rtype == "revisit":
                fields["mime"] = "warc/revisit"
            rec.raw_stream.read()
            fields["offset"] = it.get_record_offset()
            fields["length"] = it.get_record_length()
            fields["filename"] = name
            out.append(f"{surt(uri)} {_timestamp(date)} {json.dumps(fields, ensure_ascii=False)}")
    return out


def export_wacz(
    archive: Archive,
    dest: Path,
    key: SigningKey,
    documents: list[str] | None = None,
    tsa: str | None = None,
) -> WaczResult:
    """Write a signed WACZ of the archive (or of ``documents``) at ``dest``.

    Raises:
        InvalidInput: ``dest`` exists, unknown document, or the TSA failed.
        StoreError: reading the archive or writing the package failed; nothing is left at ``dest``.
    """
    if dest.exists() or dest.is_symlink():
        raise InvalidInput(f"{dest} already exists: choose a new file name")
    if not dest.parent.is_dir():
        raise InvalidInput(f"{dest.parent}: no such folder")
    tmp_zip = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    try:
        with tempfile.TemporaryDirectory(prefix="archiver-wacz-") as work:
            copy = Path(work) / "copy"
            copied = copy_archive(archive, copy, documents)
            result = _package(archive, copy, copied.export_info, tmp_zip, key, tsa, len(copied.documents))
        with open(tmp_zip, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp_zip, dest)
        fsync_dir(dest.parent)
    except OSError as e:
        tmp_zip.unlink(missing_ok=True)
        raise StoreError(f"cannot write {dest}: {e.strerror or e}") from e
    except BaseException:
        tmp_zip.unlink(missing_ok=True)
        raise
    return WaczResult(dest, result[0], result[1], result[2], len(copied.withheld))


def _package(
    archive: Archive,
    copy: Path,
    info: dict[str, Any],
    out: Path,
    key: SigningKey,
    tsa: str | None,
    n_docs: int,
) -> tuple[int, int, int]:
    resources: list[dict[str, Any]] = []
    warcs = sorted((copy / "store").glob("*.warc.gz"))
    cdx: list[str] = []
    for w in warcs:
        cdx += cdx_lines(w, w.name)
    cdx.sort()
    pages = _pages(copy)
    with zipfile.ZipFile(out, "x", allowZip64=True) as z:

        def add_bytes(arcname: str, data: bytes, deflate: bool = True) -> None:
            z.writestr(
                zipfile.ZipInfo(arcname, date_time=_zip_time(info)),
                data,
                compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED,
            )
            resources.append(_resource(arcname, hashlib.sha256(data).hexdigest(), len(data)))

        for w in warcs:
            arc = f"archive/{w.name}"
            zi = zipfile.ZipInfo(arc, date_time=_zip_time(info))
            zi.compress_type = zipfile.ZIP_STORED  # WACZ: WARCs stored, so records can be read in place
            h = hashlib.sha256()
            size = 0
            with open(w, "rb") as src, z.open(zi, "w", force_zip64=True) as dst:
                while data := src.read(1 << 20):
                    h.update(data)
                    size += len(data)
                    dst.write(data)
            resources.append(_resource(arc, h.hexdigest(), size))
        add_bytes("indexes/index.cdx", "".join(line + "\n" for line in cdx).encode("utf-8"))
        header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
        add_bytes(
            "pages/pages.jsonl",
            "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in [header, *pages]).encode("utf-8"),
        )
        add_bytes("archiver/manifests.tar", _tar(copy / "manifests"), deflate=False)
        created = str(info["exported_at"])[:19] + "Z"
        package = {
            "profile": "data-package",
            "resources": resources,
            "title": f"archiver archive {archive.archive_id}",
            "description": "Exported by archiver: WARC records, signed manifests (archiver/manifests.tar), "
            "log and checkpoints. Sealed originals and redaction seeds are withheld.",
            "created": created,
            "wacz_version": WACZ_VERSION,
            "software": f"{TOOL_NAME} {__version__}",
        }
        if pages:
            package["mainPageURL"] = pages[0]["url"]
        package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode("utf-8")
        z.writestr(zipfile.ZipInfo("datapackage.json", date_time=_zip_time(info)), package_bytes)
        digest = {
            "path": "datapackage.json",
            "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest(),
            "signedData": sign_digest(
                archive, "sha256:" + hashlib.sha256(package_bytes).hexdigest(), created, key, tsa
            ),
        }
        z.writestr(
            zipfile.ZipInfo("datapackage-digest.json", date_time=_zip_time(info)),
            json.dumps(digest, indent=2).encode("utf-8"),
        )
    return n_docs, len(pages), len(cdx)


def sign_digest(
    archive: Archive, hash_: str, created: str, key: SigningKey, tsa: str | None
) -> dict[str, Any]:
    """The ``signedData`` of datapackage-digest.json (module docstring)."""
    signature = key.private.sign(hash_.encode("utf-8"))
    signed: dict[str, Any] = {
        "hash": hash_,
        "created": created,
        "software": f"{TOOL_NAME} {__version__}",
        "version": WACZ_VERSION,
        "signature": base64.b64encode(signature).decode("ascii"),
        "publicKey": base64.b64encode(raw_public(key.private.public_key())).decode("ascii"),
        "algorithm": "ed25519",
        "keyId": key.key_id,
    }
    if tsa is not None:
        from cryptography.hazmat.primitives.serialization import Encoding

        from .timestamps import request_token, trusted_certificates

        roots = trusted_certificates(archive.store)
        signed["timeSignature"] = base64.b64encode(request_token(tsa, signature, roots)).decode("ascii")
        signed["timestampCert"] = "\n".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in roots)
    return signed


def _resource(path: str, sha256: str, size: int) -> dict[str, Any]:
    return {"name": path.rsplit("/", 1)[-1].lower(), "path": path, "hash": f"sha256:{sha256}", "bytes": size}


def _zip_time(info: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    t = str(info["exported_at"])
    return (int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]), int(t[17:19]))


def _tar(folder: Path) -> bytes:
    """A deterministic uncompressed tar of ``folder`` (named ``manifests/...`` inside)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for p in sorted(folder.rglob("*")):
            rel = "manifests/" + p.relative_to(folder).as_posix()
            ti = t.gettarinfo(str(p), arcname=rel)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.mtime = 0
            if p.is_file():
                with open(p, "rb") as f:
                    t.addfile(ti, f)
            else:
                t.addfile(ti)
    return buf.getvalue()


def _pages(copy: Path) -> list[dict[str, Any]]:
    """One page per exported document first captured from an http(s) URL (its first capture)."""
    from .canonical import load_strict

    pages = []
    for path in sorted((copy / "manifests" / "events").rglob("*-000000.json")):
        m = load_strict(path.read_bytes())
        url = (m.get("source") or {}).get("metadata", {}).get("url")
        http = (m.get("source") or {}).get("http")
        if http:
            url = http["final_url"]
        if not url or urlsplit(url).scheme not in ("http", "https"):
            continue
        page: dict[str, Any] = {"id": m["document_id"], "url": url, "ts": m["time"]}
        title = m["source"]["metadata"].get("title")
        if title:
            page["title"] = title
        pages.append(page)
    return pages
