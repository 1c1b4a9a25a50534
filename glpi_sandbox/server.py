"""The HTTP server the sandbox answers through: threads, keep-alive, and a clean stop."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from .api import Response

if TYPE_CHECKING:
    from .sandbox import GlpiSandbox

log = logging.getLogger(__name__)


class SandboxServer(ThreadingHTTPServer):
    """One thread per connection; keeps track of open connections so stop() can close them."""

    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once must not be refused

    def __init__(self, address: tuple[str, int], sandbox: GlpiSandbox):
        super().__init__(address, RequestHandler)
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def bound_address(self) -> tuple[str, int]:
        """The host and port the server listens on (the port the system chose when asked for port 0)."""
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every answer carries a Content-Length."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    server_version = "glpi-sandbox"
    timeout = 120  # an idle keep-alive connection is closed after this
    wbufsize = -1  # headers and body leave in one write, flushed after each request

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay

    def do_GET(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad request framing")
            return
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        origin = f"{scheme}://{self.headers.get('Host') or '{}:{}'.format(*self.server.bound_address())}"
        try:
            response = self.server.sandbox.handle(
                self.command, self.path, self.headers, body, origin, self.client_address[0]
            )
        except Exception:  # a sandbox bug must still be an answer, never a traceback
            log.exception("GLPI sandbox failed on %s %s", self.command, self.path)
            response = Response.json(500, ["ERROR", "internal error of the GLPI sandbox"])
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, fmt, *args) -> None:
        log.debug("%s - %s", self.address_string(), fmt % args)
