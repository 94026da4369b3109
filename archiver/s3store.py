"""An archive's files as S3 objects below ``s3://BUCKET/PREFIX/``, under Object Lock.

Reading (``S3Store`` is a ``Store``): list, ranged GETs, a seekable reader for
WARC files. Writing (used only by ``s3commit.py`` and ``migrate.py``): every
object is PUT once, with ``Content-MD5`` (the server refuses a body that does not
match) and, except WARC files that are locked when their command commits, a
COMPLIANCE retention in the same request. Large files go up in parts of
``PART`` bytes, each with its own ``Content-MD5``, so memory stays constant.

What Object Lock gives and does not give is in docs/scale-out.md: a locked
version cannot be deleted or shortened through the S3 API, but a second PUT to
the same key is accepted as a new version, and the cluster's operator can purge
everything. So the verifier lists every version under the prefix
(``object-overwritten``) and checks the locks (``object-unlocked``).

Facts measured against Ceph radosgw 16.2 (../shared/notes/ceph-s3-postgres.md):
it verifies ``Content-MD5``; it ignores flexible checksums, so boto3 is told to
send them only when required; it applies no retention given to a multipart
upload, so retention is set after completing one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InvalidInput, StoreError
from .storage import MAX_RECORD, Entry, Store, check_key

#: the COMPLIANCE retention of a new S3 archive's objects, unless told otherwise (ten years)
DEFAULT_RETENTION_DAYS = 3650
#: multipart part size: the most memory an upload holds at once
PART = 16 << 20
#: reads ahead of a WARC reader's position (one ranged GET streams from there on)
READ_BUFFER = 1 << 20
#: parallel GETs when many small objects are read (manifests, keys)
READERS = 16

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where an S3 archive is."""

    bucket: str
    prefix: str  # "" or "a/b/" (always ending in a slash)
    endpoint: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def __str__(self) -> str:
        return self.url


def is_s3_url(value: str | os.PathLike[str] | None) -> bool:
    """Whether an --archive or --store value names an S3 archive."""
    return isinstance(value, str) and value.startswith("s3://")


def parse_s3_url(url: str, endpoint: str | None = None) -> S3Location:
    """``s3://BUCKET[/PREFIX]`` with the endpoint from the argument, ``$ARCHIVER_S3_ENDPOINT``
    or ``$AWS_ENDPOINT_URL`` (None: boto3's own default, AWS).

    Raises:
        InvalidInput: not such a URL, or a prefix segment that is not a plain name.
    """
    if not url.startswith("s3://"):
        raise InvalidInput(f"{url[:80]!r} is not an s3://BUCKET/PREFIX URL")
    bucket, _, prefix = url[5:].partition("/")
    if not _BUCKET.match(bucket):
        raise InvalidInput(f"{bucket[:80]!r} is not a valid S3 bucket name")
    parts = [p for p in prefix.split("/") if p]
    if any(not _PREFIX_PART.match(p) or ".." in p for p in parts) or len(prefix) > 512:
        raise InvalidInput(f"unsafe S3 prefix {prefix[:80]!r}: use plain names separated by /")
    endpoint = endpoint or os.environ.get("ARCHIVER_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    return S3Location(bucket, "".join(p + "/" for p in parts), endpoint or None)


def make_client(endpoint: str | None) -> Any:
    """A boto3 S3 client as archiver needs it (credentials from the standard AWS places).

    Raises:
        StoreError: boto3 is not installed.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise StoreError("S3 archives need boto3: pip install 'archiver[s3]'") from e

    config = Config(
        s3={"addressing_style": "path"},
        # older radosgw and other S3 servers reject or ignore flexible checksums; Content-MD5
        # and our own SHA-256 do the job (docs/scale-out.md)
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=READERS + 4,
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def s3_error(action: str, where: str, e: Exception) -> Exception:
    """One line for an S3 failure: missing objects as FileNotFoundError, the rest StoreError."""
    code = _code(e)
    if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
        return FileNotFoundError(2, "no such object", where)
    if type(e).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return StoreError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile)"
        )
    if type(e).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return StoreError(f"cannot reach the S3 endpoint to {action} {where}: {e}")
    detail = str(getattr(e, "response", {}).get("Error", {}).get("Message") or "")
    if not code:
        detail = str(e)
    return StoreError(f"cannot {action} {where}: {code or type(e).__name__}{': ' + detail if detail else ''}")


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


@dataclass(frozen=True, slots=True)
class Version:
    """One version (or delete marker) of an object."""

    key: str
    version_id: str
    latest: bool
    etag: str | None  # None for a delete marker
    size: int
    delete_marker: bool = False


class S3Store(Store):
    """The objects of one archive. Picklable (verify reads large WARC files in worker
    processes): the client is made again, lazily, in each process."""

    parallelism = READERS

    def __init__(self, where: S3Location) -> None:
        self.where = where
        self.location = where.url
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"where": self.where, "location": self.location, "_client": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.where.endpoint)
        return self._client

    @property
    def bucket(self) -> str:
        return self.where.bucket

    def object_key(self, key: str) -> str:
        """The full object key of an archive key."""
        return self.where.prefix + check_key(key)

    def _where(self, key: str) -> str:
        return f"{self.where.url}{key}"

    # -- reading -----------------------------------------------------------------------------------
    def files(self, prefix: str) -> list[Entry]:
        full = self.where.prefix + prefix
        out: list[Entry] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                for obj in page.get("Contents", []):
                    out.append(Entry(obj["Key"][len(self.where.prefix) :], int(obj["Size"])))
        except Exception as e:
            raise s3_error("list", self._where(prefix), e) from e
        out.sort(key=lambda e: e.key)
        return out

    def read(self, key: str, limit: int | None = MAX_RECORD) -> bytes:
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if limit is not None:
            kw["Range"] = f"bytes=0-{max(limit, 1) - 1}"
        try:
            body = self.client.get_object(**kw)["Body"]
            data: bytes = body.read()
        except Exception as e:
            if _code(e) == "InvalidRange":  # an empty object
                return b""
            raise s3_error("read", self._where(key), e) from e
        return data if limit is None else data[:limit]

    def read_many(
        self, keys: list[str], limit: int | None = MAX_RECORD
    ) -> Iterator[tuple[str, bytes | OSError]]:
        """Read many small objects with parallel GETs, in the given order."""
        from concurrent.futures import ThreadPoolExecutor

        def one(key: str) -> bytes | OSError:
            try:
                return self.read(key, limit)
            except OSError as e:
                return e

        self.client  # noqa: B018 - made once here, shared by the threads (boto3 clients are)
        with ThreadPoolExecutor(READERS) as pool:
            yield from zip(keys, pool.map(one, keys), strict=True)

    def open(self, key: str) -> BinaryIO:
        """A seekable reader; a missing object is found (FileNotFoundError) at the first read."""
        return io.BufferedReader(_RangeReader(self, self.object_key(key), self._where(key)), READ_BUFFER)

    def size(self, key: str) -> int | None:
        try:
            head = self.head(key)
        except (StoreError, OSError):
            return None
        return None if head is None else int(head["ContentLength"])

    def head(self, key: str, version_id: str | None = None) -> dict[str, Any] | None:
        """HEAD of an object (or of one version of it); None if there is none."""
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if version_id is not None:
            kw["VersionId"] = version_id
        try:
            out: dict[str, Any] = self.client.head_object(**kw)
            return out
        except Exception as e:
            if _code(e) in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
                return None
            raise s3_error("look up", self._where(key), e) from e

    def versions(self, prefix: str = "") -> list[Version]:
        """Every version and delete marker below the archive's prefix."""
        out: list[Version] = []
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=self.where.prefix + prefix
            )
            for page in pages:
                for v in page.get("Versions", []):
                    out.append(
                        Version(
                            v["Key"][len(self.where.prefix) :],
                            v["VersionId"],
                            bool(v["IsLatest"]),
                            v.get("ETag"),
                            int(v.get("Size", 0)),
                        )
                    )
                for d in page.get("DeleteMarkers", []):
                    out.append(
                        Version(
                            d["Key"][len(self.where.prefix) :],
                            d["VersionId"],
                            bool(d["IsLatest"]),
                            None,
                            0,
                            True,
                        )
                    )
        except Exception as e:
            raise s3_error("list the versions of", self._where(prefix), e) from e
        return out

    # -- writing -----------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, retain_until: datetime | None) -> str:
        """PUT one object (Content-MD5; COMPLIANCE retention until ``retain_until``). Returns
        its version id."""
        kw: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "Body": data,
            "ContentMD5": _md5(data),
        }
        if retain_until is not None:
            kw["ObjectLockMode"] = "COMPLIANCE"
            kw["ObjectLockRetainUntilDate"] = retain_until
        try:
            return str(self.client.put_object(**kw).get("VersionId") or "")
        except Exception as e:
            raise s3_error("write", self._where(key), e) from e

    def upload(self, key: str, path: Path) -> tuple[str, int, str]:
        """Upload a local file (not locked: ``lock`` it once its command commits), in parts
        when large. Returns (version id, size, SHA-256 hex)."""
        size = path.stat().st_size
        sha = hashlib.sha256()
        okey = self.object_key(key)
        try:
            with open(path, "rb") as f:
                if size <= PART:
                    data = f.read()
                    sha.update(data)
                    return self.put(key, data, None), size, sha.hexdigest()
                mp = self.client.create_multipart_upload(Bucket=self.bucket, Key=okey)
                parts = []
                try:
                    n = 1
                    while data := f.read(PART):
                        sha.update(data)
                        r = self.client.upload_part(
                            Bucket=self.bucket,
                            Key=okey,
                            UploadId=mp["UploadId"],
                            PartNumber=n,
                            Body=data,
                            ContentMD5=_md5(data),
                        )
                        parts.append({"ETag": r["ETag"], "PartNumber": n})
                        n += 1
                    done = self.client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=okey,
                        UploadId=mp["UploadId"],
                        MultipartUpload={"Parts": parts},
                    )
                except BaseException:
                    # the upload failed already: that error is the one to report
                    with contextlib.suppress(Exception):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=okey, UploadId=mp["UploadId"]
                        )
                    raise
                return str(done.get("VersionId") or ""), size, sha.hexdigest()
        except OSError as e:
            raise StoreError(f"cannot read {path}: {e.strerror}") from e
        except StoreError:
            raise
        except Exception as e:
            raise s3_error("upload", self._where(key), e) from e

    def lock(self, key: str, version_id: str, retain_until: datetime) -> None:
        """Put one version under COMPLIANCE retention."""
        try:
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=self.object_key(key),
                VersionId=version_id,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": retain_until},
            )
        except Exception as e:
            raise s3_error("lock", self._where(key), e) from e

    def delete_version(self, key: str, version_id: str) -> None:
        """Delete one (unlocked) version for good: debris of a command that did not commit.
        A version that is gone already is fine (a removal run again after an interruption)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key), VersionId=version_id)
        except Exception as e:
            if _code(e) in ("NoSuchKey", "NoSuchVersion", "404"):
                return
            raise s3_error("delete", self._where(key), e) from e

    def prepare_bucket(self) -> None:
        """Make sure the bucket exists with Object Lock (creating it so if it is missing).

        Raises:
            StoreError: it exists without Object Lock (Object Lock cannot be turned on later).
        """
        c = self.client
        try:
            c.head_bucket(Bucket=self.bucket)
        except Exception as e:
            if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise s3_error("open bucket", f"s3://{self.bucket}", e) from e
            try:
                c.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
            except Exception as e2:
                raise s3_error("create bucket", f"s3://{self.bucket}", e2) from e2
        try:
            conf = c.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
            enabled = conf.get("ObjectLockEnabled") == "Enabled"
        except Exception:
            enabled = False
        if not enabled:
            raise StoreError(
                f"bucket {self.bucket} has no Object Lock (it cannot be turned on later): "
                "use a new bucket, which archiver creates with Object Lock"
            )


class _RangeReader(io.RawIOBase):
    """A seekable reader over one object, by ranged GETs: each fetches a window from the
    position, starting small (a record read at an offset costs little) and doubling while
    the reading goes on in sequence (a whole WARC file streams in few requests). Every
    response is read to its end, so connections are reused."""

    MIN_WINDOW = 64 << 10
    MAX_WINDOW = 64 << 20

    def __init__(self, store: S3Store, object_key: str, where: str) -> None:
        self._store = store
        self._key = object_key
        self._where = where
        self._size: int | None = None  # learned from the first response (or a HEAD, for seek-to-end)
        self._pos = 0
        self._body: Any = None
        self._body_pos = -1
        self._left = 0  # bytes of the current response not yet read
        self._window = self.MIN_WINDOW

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _length(self) -> int:
        if self._size is None:
            try:
                head = self._store.client.head_object(Bucket=self._store.bucket, Key=self._key)
            except Exception as e:
                raise s3_error("read", self._where, e) from e
            self._size = int(head["ContentLength"])
        return self._size

    def seek(self, offset: int, whence: int = 0) -> int:
        base = 0 if whence == 0 else self._pos if whence == 1 else self._length()
        self._pos = max(0, base + offset)
        return self._pos

    def _fetch(self) -> bool:
        """Start the next response at the position; False at the end of the object."""
        sequential = self._body is not None and self._body_pos == self._pos
        self._close_body()
        self._window = min(self._window * 2, self.MAX_WINDOW) if sequential else self.MIN_WINDOW
        end = self._pos + self._window - 1
        try:
            got = self._store.client.get_object(
                Bucket=self._store.bucket, Key=self._key, Range=f"bytes={self._pos}-{end}"
            )
        except Exception as e:
            if _code(e) == "InvalidRange":  # at or past the end
                return False
            raise s3_error("read", self._where, e) from e
        total = str(got.get("ContentRange", "")).rpartition("/")[2]
        if total.isdigit():
            self._size = int(total)
        self._body = got["Body"]
        self._body_pos = self._pos
        self._left = int(got.get("ContentLength", 0))
        return self._left > 0

    def readinto(self, buf: Any) -> int:
        if self._size is not None and self._pos >= self._size:
            return 0
        if (self._body is None or self._body_pos != self._pos or self._left == 0) and not self._fetch():
            return 0
        try:
            data = self._body.read(min(len(buf), self._left))
        except Exception as e:
            raise s3_error("read", self._where, e) from e
        n = len(data)
        buf[:n] = data
        self._pos += n
        self._body_pos = self._pos
        self._left = self._left - n if n else 0
        return n

    def _close_body(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                if self._left:  # a response not read to its end: its connection is dropped
                    self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()
