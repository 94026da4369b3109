"""A real HTTP server on 127.0.0.1 for capture and WARC-import tests (started by the tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HTML = (
    '<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>صور قيصر</title></head>'
    "<body><h1>صور قيصر</h1><p>أدلة على التعذيب في السجون السورية.</p></body></html>\n"
).encode()


class Handler(BaseHTTPRequestHandler):
    corpus: Path | None = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/page.html":
            self.send(200, HTML, "text/html; charset=utf-8")
        elif path.startswith("/corpus/") and self.corpus is not None:
            name = path.removeprefix("/corpus/")
            f = self.corpus / name
            if "/" in name or not f.is_file():
                self.send(404, b"not found\n", "text/plain")
            else:
                self.send(200, f.read_bytes(), "text/plain; charset=utf-8")
        elif path == "/redirect":
            self.send(302, b"moved\n", "text/plain", {"Location": "/hop"})
        elif path == "/hop":
            self.send(301, b"", "text/plain", {"Location": "/page.html"})
        elif path == "/loop":
            self.send(302, b"", "text/plain", {"Location": "/loop"})
        elif path == "/slow":
            time.sleep(3)
            self.send(200, b"late\n", "text/plain")
        elif path == "/trickle":  # headers at once, then a body that never finishes in time
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
        elif path == "/big":
            self.send(200, b"\0" * (2 << 20), "application/octet-stream")
        elif path == "/big-undeclared":  # no Content-Length: the limit must stop the read itself
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"\1" * 65536)
            self.close_connection = True
        elif path == "/ftp-redirect":
            self.send(302, b"", "text/plain", {"Location": "ftp://example.org/x"})
        else:
            self.send(404, "لا توجد صفحة\n".encode(), "text/plain; charset=utf-8")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeouts, size limits) is what these tests do on purpose


@contextmanager
def run_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run an HTTP server on 127.0.0.1 in a thread; yields its base URL."""
    server = QuietServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve(corpus: Path | None = None) -> Iterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) of the test site (serving ``corpus``)."""
    with run_server(type("H", (Handler,), {"corpus": corpus})) as base:
        yield base
