"""``archiver export bagit``: the archive as a BagIt 1.0 bag (RFC 8493).

Layout of the bag::

    DEST/bagit.txt
    DEST/bag-info.txt                 archive id, tool, export time, latest checkpoint
    DEST/manifest-sha256.txt          every payload file (RFC 8493 2.1.3)
    DEST/manifest-sha512.txt
    DEST/tagmanifest-sha256.txt       the tag files
    DEST/tagmanifest-sha512.txt
    DEST/data/archive/...             the archive itself (manifests/, store/): verifiable as is,
                                      `archiver --archive DEST verify`
    DEST/data/documents/DOC/NAME      each document's current version, for people

The bag is built in a hidden sibling folder and renamed into place when
complete, so ``DEST`` either does not exist or is a whole bag.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .__version__ import TOOL_NAME, __version__
from .archive import Archive
from .errors import InvalidInput, StoreError
from .exportcopy import Copied, Hashed, HashingWriter, copy_archive, iter_current
from .fsutil import fsync_dir
from .layout import warc_key
from .manifest import Event
from .warcread import RecordReader, WarcFormatError
from .warcscan import payload_of

BAGIT_VERSION = "1.0"
ARCHIVE_DIR = "data/archive"


@dataclass(frozen=True, slots=True)
class BagResult:
    """What ``export bagit`` wrote."""

    path: Path
    documents: int
    files: int
    bytes: int
    withheld: int


def export_bagit(archive: Archive, dest: Path, documents: list[str] | None = None) -> BagResult:
    """Write a BagIt bag of the archive (or of ``documents`` only) at ``dest``.

    Raises:
        InvalidInput: ``dest`` exists, or an unknown document.
        StoreError: reading the archive or writing the bag failed; nothing is left at ``dest``.
    """
    if dest.exists() or dest.is_symlink():
        raise InvalidInput(f"{dest} already exists: choose a new folder for the bag")
    parent = dest.parent
    if not parent.is_dir():
        raise InvalidInput(f"{parent}: no such folder")
    tmp = parent / f".{dest.name}.partial-{os.getpid()}"
    try:
        tmp.mkdir()
        copied = copy_archive(archive, tmp / ARCHIVE_DIR, documents)
        payload = [Hashed(f"{ARCHIVE_DIR}/{h.rel}", h.size, h.sha256, h.sha512) for h in copied.files]
        payload += _write_documents(archive, tmp, copied)
        _write_tag_files(tmp, archive, copied, payload)
        fsync_dir(tmp)
        os.rename(tmp, dest)
        fsync_dir(parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write the bag: {e.strerror or e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BagResult(
        path=dest,
        documents=len(copied.documents),
        files=len(payload),
        bytes=sum(h.size for h in payload),
        withheld=len(copied.withheld),
    )


def safe_name(name: str | None, media_type: str) -> str:
    """A file name for people, safe on any file system and in a BagIt manifest line."""
    if name:
        name = unicodedata.normalize("NFC", name)
        name = "".join("_" if (unicodedata.category(c)[0] == "C" or c in '/\\%:*?"<>|') else c for c in name)
        name = name.lstrip(". ").strip()[:150]
    if not name:
        ext = mimetypes.guess_extension(media_type.split(";")[0].strip()) or ".bin"
        name = "content" + ext
    return name


def _write_documents(archive: Archive, bag: Path, copied: Copied) -> list[Hashed]:
    out = []
    for doc, e in iter_current(copied.documents):
        rel = f"data/documents/{doc}/{safe_name(e.filename, e.content['media_type'])}"
        out.append(_write_content(archive, bag, rel, e))
    return out


def _write_content(archive: Archive, bag: Path, rel: str, e: Event) -> Hashed:
    """Copy a version's bytes out of the WARC store, checking them against the manifest."""
    ref = e.content_ref
    writer = HashingWriter(bag / rel)
    try:
        with archive.store.open(warc_key(str(ref["warc_file"]))) as f:
            reader = RecordReader(f, int(ref["offset"]))
            for chunk in payload_of(reader):
                writer.write(chunk)
    except (OSError, WarcFormatError, ValueError) as err:
        raise StoreError(f"cannot read document {e.document_id}: {err}; run `archiver verify`") from err
    hashed = writer.close(rel)
    if hashed.sha256 != e.content["sha256"]:
        raise StoreError(
            f"document {e.document_id}: stored bytes differ from the manifest; run `archiver verify`"
        )
    return hashed


def _write_tag_files(bag: Path, archive: Archive, copied: Copied, payload: list[Hashed]) -> None:
    tags: list[Hashed] = []

    def tag(name: str, text: str) -> None:
        w = HashingWriter(bag / name)
        w.write(text.encode("utf-8"))
        tags.append(w.close(name))

    tag("bagit.txt", f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n")
    info = copied.export_info
    cp = info.get("checkpoint") or {}
    octets = sum(h.size for h in payload)
    fields = [
        ("Source-Organization", "archiver archive " + archive.archive_id),
        ("External-Identifier", archive.archive_id),
        ("Bagging-Date", str(info["exported_at"])[:10]),
        ("Bag-Software-Agent", f"{TOOL_NAME} {__version__}"),
        ("Payload-Oxum", f"{octets}.{len(payload)}"),
        ("Archiver-Export-Time", str(info["exported_at"])),
        ("Archiver-Export-Scope", "archive" if info["documents"] is None else "documents"),
        ("Archiver-Documents", str(len(copied.documents))),
        ("Archiver-Withheld-Records", str(len(copied.withheld))),
        ("Archiver-Checkpoint-Size", str(cp.get("size", 0))),
        ("Archiver-Checkpoint-Root", str(cp.get("root", ""))),
        ("Archiver-Checkpoint-File", f"{ARCHIVE_DIR}/manifests/log/checkpoints/{cp.get('file', '')}"),
        (
            "Internal-Sender-Description",
            "An archiver archive (data/archive: signed manifests, WARC store, log) and the current "
            "version of each document (data/documents). Verify with `archiver --archive BAG verify`, "
            "or without archiver as docs/verifying.md describes.",
        ),
    ]
    tag("bag-info.txt", "".join(f"{k}: {v}\n" for k, v in fields))
    for alg in ("sha256", "sha512"):
        tag(f"manifest-{alg}.txt", "".join(f"{getattr(h, alg)}  {_encode(h.rel)}\n" for h in payload))
    tagged = list(tags)
    for alg in ("sha256", "sha512"):
        with contextlib.suppress(FileNotFoundError):
            tag(f"tagmanifest-{alg}.txt", "".join(f"{getattr(h, alg)}  {h.rel}\n" for h in tagged))


def _encode(rel: str) -> str:
    """RFC 8493 2.1.3: CR, LF and % in a manifest path are percent-encoded."""
    return rel.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
