"""Fetching a URL for ``archiver capture``: every exchange kept, bytes bounded, time bounded.

The exchanges (each redirect hop and the final response) are kept as the
request head we sent and the response head we received, rebuilt from the
parsed status line and header fields in the order received. The body is
read with ``Accept-Encoding: identity`` and spooled to a temporary file;
``http.client`` removes chunked transfer coding, so a ``Transfer-Encoding``
field is kept as ``X-Archiver-Orig-Transfer-Encoding`` (the recorded block
holds the body as decoded from the transfer coding, not as framed on the
wire). A ``Content-Encoding`` (gzip) body is kept as sent.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .__version__ import TOOL_NAME, __version__
from .errors import InvalidInput

REDIRECTS = (301, 302, 303, 307, 308)
MAX_URL = 8192
MAX_REDIRECT_BODY = 1 << 20
USER_AGENT = f"{TOOL_NAME}/{__version__} (evidence capture)"


@dataclass(slots=True)
class Exchange:
    """One request and its response."""

    url: str
    request_head: bytes
    status: int
    reason: str
    response_head: bytes
    headers: list[tuple[str, str]]
    body: Path | None = None  # spooled body (final response; small bodies of redirects too)
    body_size: int = 0

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclass(slots=True)
class Fetched:
    """A URL fetched: the hops, the last of which holds the document."""

    requested: str
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def final(self) -> Exchange:
        return self.exchanges[-1]

    def content_type(self) -> tuple[str | None, str | None]:
        """(media type, charset) from the final response's Content-Type."""
        value = self.final.header("Content-Type")
        if not value:
            return None, None
        msg = Message()
        msg["Content-Type"] = value
        charset = msg.get_param("charset")
        return msg.get_content_type(), (str(charset).lower() if isinstance(charset, str) else None)

    def cleanup(self) -> None:
        for ex in self.exchanges:
            if ex.body is not None:
                ex.body.unlink(missing_ok=True)


def check_url(url: str) -> str:
    """Refuse what is not an absolute http(s) URL of sane length.

    Raises:
        InvalidInput: with the reason.
    """
    if len(url) > MAX_URL:
        raise InvalidInput(f"URL longer than {MAX_URL} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidInput(f"{url[:80]!r}: a URL may not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{url[:200]}: only absolute http:// and https:// URLs can be captured")
    return url


def fetch(url: str, *, timeout: float, max_bytes: int, max_redirects: int) -> Fetched:
    """Fetch ``url``, following redirects; the whole fetch must end within ``timeout`` seconds.

    Raises:
        InvalidInput: bad URL, network failure, timeout, too many redirects, body over ``max_bytes``.
    """
    result = Fetched(check_url(url))
    deadline = time.monotonic() + timeout
    current = url
    try:
        for _ in range(max_redirects + 1):
            ex = _exchange(current, deadline, max_bytes)
            result.exchanges.append(ex)
            location = ex.header("Location")
            if ex.status not in REDIRECTS or location is None:
                return result
            current = check_url(urljoin(current, location))
        raise InvalidInput(f"{url[:200]}: more than {max_redirects} redirects")
    except BaseException:
        result.cleanup()
        raise


def _exchange(url: str, deadline: float, max_bytes: int) -> Exchange:
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise InvalidInput(f"{url[:200]}: timed out")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        import ssl  # only for https: importing it costs start-up time of every command

        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=remaining, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=remaining)
    host_header = parts.netloc.rsplit("@", 1)[-1]
    req_headers = [
        ("Host", host_header),
        ("User-Agent", USER_AGENT),
        ("Accept", "*/*"),
        ("Accept-Encoding", "identity"),
        ("Connection", "close"),
    ]
    request_head = (
        f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in req_headers) + "\r\n"
    ).encode("latin-1", "replace")
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for k, v in req_headers:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        headers = [
            ("X-Archiver-Orig-Transfer-Encoding" if k.lower() == "transfer-encoding" else k, v)
            for k, v in resp.getheaders()
        ]
        version = "HTTP/1.1" if resp.version == 11 else "HTTP/1.0"
        response_head = (
            f"{version} {resp.status} {resp.reason}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers)
            + "\r\n"
        ).encode("latin-1", "replace")
        ex = Exchange(url, request_head, resp.status, resp.reason, response_head, headers)
        limit = max_bytes if resp.status not in REDIRECTS else MAX_REDIRECT_BODY
        declared = resp.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise InvalidInput(f"{url[:200]}: response of {int(declared)} bytes exceeds the limit of {limit}")
        ex.body, ex.body_size = _spool(resp, url, deadline, limit, conn)
        return ex
    except TimeoutError:
        raise InvalidInput(f"{url[:200]}: timed out") from None
    except (OSError, http.client.HTTPException) as e:
        raise InvalidInput(f"{url[:200]}: cannot fetch ({type(e).__name__}: {e})") from None
    finally:
        conn.close()


def _spool(
    resp: http.client.HTTPResponse, url: str, deadline: float, limit: int, conn: http.client.HTTPConnection
) -> tuple[Path, int]:
    fd, name = tempfile.mkstemp(prefix="archiver-capture-")
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise InvalidInput(f"{url[:200]}: timed out")
                if conn.sock is not None:
                    conn.sock.settimeout(remaining)
                data = resp.read1(1 << 16)
                if not data:
                    break
                size += len(data)
                if size > limit:
                    raise InvalidInput(f"{url[:200]}: response exceeds the limit of {limit} bytes")
                out.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size
