"""gunicorn's gthread worker with a buffering front: a thread only ever sees a complete request.

Stock gthread hands a connection to a thread as soon as its first byte arrives and then
reads the headers and the body with blocking calls and no deadline, so a client that
trickles a byte now and then holds a thread for as long as it likes (REVIEW.md, finding 1).
Here the worker's event loop (the main thread, which already multiplexes kept-alive
connections) reads each request itself, without blocking: the header block, then the body
as framed by Content-Length or chunked encoding, into a buffer that moves to a temporary
file past `SPOOL_MEMORY_BYTES`. Only a request that has fully arrived goes to the thread
pool, where gunicorn's parser reads it from that buffer. A request that does not arrive in
time is dropped: the header block within `header_timeout`, each piece of the body within
`body_idle_timeout` of the previous one, the whole request within `request_timeout`.

It also shares new connections between the processes: each posts how many connections it
holds on a `ConnectionBoard`, and one that holds more than another waits a moment before
accepting, so the emptier one takes the connection (see ACCEPT_YIELD_SECONDS).

Everything else stays gthread's: the threads (and their thread-local GLPI sessions), the
keep-alive handling, the heartbeat. TLS is left to stock gthread (the bytes here would be
ciphertext); the image serves plain HTTP.

Imported by the gunicorn master when it reads its settings, so it imports nothing from
the app (prometheus_client must not be loaded before `on_starting`).
"""

from __future__ import annotations

import errno
import mmap
import re
import selectors
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

# Memory per connection stays small whatever the number of connections: a JSON body (64 KiB at
# most by default) fits; a larger body (uploads) goes to a temporary file.
SPOOL_MEMORY_BYTES = 64 * 1024
# A header block larger than this closes the connection (nginx allows 4 × 8 KiB by default).
MAX_HEADER_BYTES = 64 * 1024
# A browser or an HTTP client sends its header block at once; 10 s is generous on a slow link.
HEADER_TIMEOUT_SECONDS = 10.0
# The body may take long (a 25 MiB upload on a slow uplink) but must keep moving.
BODY_IDLE_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 300.0
# Each blocking read, or whole sendall, of a thread on the client socket (BufferedSocket.setblocking):
# long enough for the largest answer (Swagger UI, ~1.5 MB) on a slow link.
THREAD_IO_TIMEOUT_SECONDS = 60.0
# Bodies announced larger than this are not waited for: the application refuses them (413)
# from Content-Length alone. Above the app's own limits (MAX_*_BODY_BYTES).
MAX_BUFFERED_BODY_BYTES = 64 * 1024 * 1024
# Several processes wait on one listening socket; the kernel wakes them all and whichever runs
# first accepts, so keep-alive connections can land 12/4 on two processes, and the one with 12
# queues its requests on its one core (GIL). A process holding more connections than another
# waits this long before accepting, so the emptier one takes the connection; if it did not (busy),
# the waiting one does. Processes holding as many as the emptiest accept at once.
ACCEPT_YIELD_SECONDS = 0.002
# Only while few connections wait to be accepted: with more (a burst, slow clients reconnecting all
# at once), waiting would ration accepts and new connections would queue behind the waits.
ACCEPT_YIELD_MAX_QUEUE = 8
# One read of the event loop: large enough for throughput, small enough to stay fair.
READ_CHUNK = 64 * 1024
READS_PER_EVENT = 16

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_CHUNKED = re.compile(rb"^transfer-encoding[ \t]*:.*chunked", re.IGNORECASE | re.MULTILINE)
_EXPECT_CONTINUE = re.compile(rb"^expect[ \t]*:[ \t]*100-continue", re.IGNORECASE | re.MULTILINE)


class BufferedSocket:
    """A client socket whose reads come first from what the event loop buffered.

    gunicorn's parser only calls `recv`; everything else (sending, fileno, closing)
    goes to the real socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._spool: Any = None  # a SpooledTemporaryFile being read by the parser
        self._ready = 0  # bytes of the spool not yet read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def fileno(self) -> int:
        return self.sock.fileno()

    def setblocking(self, flag: bool) -> None:
        # gthread makes the socket blocking, with no timeout, for the thread. A thread normally
        # reads only from the buffer; should the parser ever need more than the front framed (a
        # request the two read differently), a read that waits longer than this fails instead
        # of holding the thread. Sending the answer is bounded the same way.
        if flag:
            self.sock.settimeout(THREAD_IO_TIMEOUT_SECONDS)
        else:
            self.sock.setblocking(False)

    @property
    def pending(self) -> int:
        return self._ready

    def feed(self, spool: Any, size: int) -> None:
        """Make `size` buffered bytes (a spool rewound to its start) the next ones `recv` returns."""
        leftover = self._take_rest()
        if leftover:
            # Bytes buffered before (a pipelined request) come before the new ones.
            rest = spool.read()
            spool.seek(0)
            spool.truncate()
            spool.write(leftover + rest)
            spool.seek(0)
            size += len(leftover)
        self._close_spool()
        self._spool, self._ready = spool, size

    def _take_rest(self) -> bytes:
        if not self._ready:
            return b""
        data = self._spool.read(self._ready)
        self._ready = 0
        return data

    def take_pending(self) -> bytes:
        """What was buffered and not read yet (it goes back through the buffering front)."""
        data = self._take_rest()
        self._close_spool()
        return data

    def recv(self, size: int, *flags: int) -> bytes:
        if self._ready:
            data = self._spool.read(min(size, self._ready))
            self._ready -= len(data)
            if not self._ready:
                self._close_spool()
            return data
        return self.sock.recv(size, *flags)

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def close(self) -> None:
        self._close_spool()
        self.sock.close()


def _accept_queue(listener: socket.socket) -> int:
    """Connections waiting to be accepted (Linux: tcp_info of a listening socket has it in
    tcpi_unacked); a number past ACCEPT_YIELD_MAX_QUEUE when unknown, e.g. a Unix socket."""
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    except (OSError, AttributeError):
        return ACCEPT_YIELD_MAX_QUEUE + 1
    return int.from_bytes(info[24:28], sys.byteorder)


class ConnectionBoard:
    """How many connections each process of one gunicorn holds, in memory the processes share: an
    anonymous shared mapping the master makes before forking them (gunicorn.conf.py). A slot is
    written by its process only: its count and when it posted it (CLOCK_MONOTONIC, one clock for
    all processes); a free slot holds FREE.

    A count not posted for STALE_SECONDS is not counted: its process is stuck (gunicorn kills it
    after its timeout) or still starting, and either way is not accepting; leaving connections to
    it would only make the others wait before each accept."""

    FREE = -1
    # The event loop posts at least once a second (gthread waits for events 1 s at most).
    STALE_SECONDS = 2.0
    _SLOT = struct.Struct("=iq")  # connections, milliseconds of CLOCK_MONOTONIC when posted

    def __init__(self, slots: int = 64, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = slots
        self._clock = clock
        self._memory = mmap.mmap(-1, self._SLOT.size * slots)  # MAP_SHARED: the forked processes see one memory
        for slot in range(slots):
            self._SLOT.pack_into(self._memory, self._SLOT.size * slot, self.FREE, 0)

    def claim(self, taken: set[int]) -> int | None:
        """A slot none of `taken` (the live processes' slots) uses, set to 0; None when all are."""
        slot = next((slot for slot in range(self._slots) if slot not in taken), None)
        if slot is not None:
            self.post(slot, 0)
        return slot

    def release(self, slot: int) -> None:
        self.post(slot, self.FREE)

    def post(self, slot: int, connections: int) -> None:
        self._SLOT.pack_into(self._memory, self._SLOT.size * slot, connections, int(self._clock() * 1000))

    def fewest_but(self, slot: int) -> int | None:
        """The fewest connections another live process holds; None when there is no other."""
        fresh_since = int((self._clock() - self.STALE_SECONDS) * 1000)
        others = [
            count
            for index, (count, posted_at) in enumerate(self._SLOT.iter_unpack(self._memory))
            if index != slot and count != self.FREE and posted_at >= fresh_since
        ]
        return min(others, default=None)


class _Incoming:
    """One request being read by the event loop."""

    def __init__(self, conn: TConn, now: float, worker: BufferingThreadWorker, initial: bytes = b"") -> None:
        self.conn = conn
        self.spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
        self.size = 0
        self.head = b""  # the bytes up to the end of the header block, once known
        self._head_buffer = bytearray()  # the bytes so far, until the header block ends
        self.needed: int | None = None  # total bytes of the request, once known
        self.chunked: _ChunkScanner | None = None
        self.started = now
        self.deadline = now + worker.header_timeout
        self.request_deadline = now + worker.request_timeout
        self.worker = worker
        if initial:
            self.add(initial, now)

    def add(self, data: bytes, now: float) -> None:
        self.spool.write(data)
        self.size += len(data)
        if not self.head:
            self.head = self._find_head(data)
            if not self.head:
                return
            self._on_head()
        elif self.chunked is not None:
            self.chunked.feed(data)
        if self.needed is None or self.size < self.needed:
            self.deadline = min(now + self.worker.body_idle_timeout, self.request_deadline)

    def _find_head(self, data: bytes) -> bytes:
        # Only the new bytes (and the 3 before them) are searched: trickled headers cost linear time.
        searched_from = max(0, len(self._head_buffer) - len(_HEADER_END) + 1)
        self._head_buffer += data
        end = self._head_buffer.find(_HEADER_END, searched_from)
        if end < 0:
            if len(self._head_buffer) > self.worker.max_header_bytes:
                raise _Refused("cabeçalhos grandes demais")
            return b""
        head = bytes(self._head_buffer[: end + len(_HEADER_END)])
        self._head_buffer = bytearray()
        return head

    def _on_head(self) -> None:
        head = self.head
        if head.lstrip(b"\r\n")[:4].upper().startswith(b"PRI "):
            # HTTP/2 prior knowledge: nothing to frame here, gthread takes it as it is.
            self.needed = self.size
            return
        if _CHUNKED.search(head):
            self.chunked = _ChunkScanner(self.worker.max_body_bytes)
            self.spool.seek(len(head))
            self.chunked.feed(self.spool.read())
            self.spool.seek(0, 2)
        else:
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if length > self.worker.max_body_bytes:
                # The application refuses it from the header alone (413) without reading it.
                length = 0
            self.needed = len(head) + length
        if _EXPECT_CONTINUE.search(head) and not self.complete:
            # The client waits for this before sending the body. gunicorn may send its own
            # later too: a client accepts any number of 1xx answers (RFC 9110, 15.2).
            try:
                self.conn.sock.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                pass

    @property
    def complete(self) -> bool:
        if not self.head:
            return False
        if self.chunked is not None:
            return self.chunked.done
        return self.needed is not None and self.size >= self.needed


class _Refused(Exception):
    pass


class _ChunkScanner:
    """Follows chunked framing (RFC 9112, 7.1) only to tell where the body ends."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.line = b""
        self.remaining = 0  # bytes of chunk data (plus its CRLF) still to skip
        self.total = 0
        self.in_trailer = False
        self.done = False

    def feed(self, data: bytes) -> None:
        position = 0
        while position < len(data) and not self.done:
            if self.remaining:
                skip = min(self.remaining, len(data) - position)
                self.remaining -= skip
                position += skip
                continue
            newline = data.find(b"\n", position)
            if newline < 0:
                self.line += data[position:]
                if len(self.line) > 8192:
                    raise _Refused("linha de chunk grande demais")
                return
            line = (self.line + data[position:newline]).rstrip(b"\r")
            self.line = b""
            position = newline + 1
            if self.in_trailer:
                if not line:
                    self.done = True
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                # Malformed: the parser in the thread answers 400 with what is here.
                self.done = True
                return
            if size == 0:
                self.in_trailer = True
                continue
            self.total += size
            if self.total > self.limit:
                # Over the limit: the application refuses it; no need to wait for the rest.
                self.done = True
                return
            self.remaining = size + 2


class BufferingThreadWorker(ThreadWorker):
    """gthread whose threads get only requests that have fully arrived (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = HEADER_TIMEOUT_SECONDS
        self.body_idle_timeout = BODY_IDLE_TIMEOUT_SECONDS
        self.request_timeout = REQUEST_TIMEOUT_SECONDS
        self.max_body_bytes = MAX_BUFFERED_BODY_BYTES
        self.max_header_bytes = MAX_HEADER_BYTES
        self.incoming: dict[int, _Incoming] = {}
        self._accept_resumes_at: float | None = None
        # Set by gunicorn.conf.py's pre_fork in the master; None: accept like stock gthread.
        self.connection_board: ConnectionBoard | None = None
        self.board_slot = 0

    @property
    def _stock(self) -> bool:
        return bool(self.cfg.is_ssl)

    # Accepting: a process holding more connections than another lets the emptier one take a new one.

    def _post_connections(self) -> None:
        if self.connection_board is not None:
            self.connection_board.post(self.board_slot, self.nr_conns)

    def _yields_accept(self, listener: socket.socket) -> bool:
        """Whether to leave a pending connection to an emptier process for a moment."""
        board = self.connection_board
        if board is None or _accept_queue(listener) > ACCEPT_YIELD_MAX_QUEUE:
            return False
        held = self.nr_conns
        board.post(self.board_slot, held)
        fewest = board.fewest_but(self.board_slot)
        if fewest is None or held <= fewest:
            return False
        self._accept_resumes_at = time.monotonic() + ACCEPT_YIELD_SECONDS
        self.set_accept_enabled(False)
        return True

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and self._accept_resumes_at is not None:
            return  # yielding: _resume_accepting turns it back on
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        resumes_at = self._accept_resumes_at
        if resumes_at is not None:
            timeout = min(timeout, max(resumes_at - time.monotonic(), 0.0))
        super().wait_for_and_dispatch_events(timeout)
        self._post_connections()  # connections closed meanwhile count off at once
        if resumes_at is not None and time.monotonic() >= resumes_at:
            self._resume_accepting()

    def _resume_accepting(self) -> None:
        """The yield is over: take what nobody else took, then listen again."""
        self._accept_resumes_at = None
        if not self.alive or self.nr_conns >= self.worker_connections:
            return
        for listener in self.sockets:
            self._accept_one(listener)

    def accept(self, listener: socket.socket) -> None:
        if self._yields_accept(listener):
            return
        self._accept_one(listener)

    # New connections and kept-alive ones that become readable go to the buffering front.

    def _accept_one(self, listener: socket.socket) -> None:
        if self._stock:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, BufferedSocket(client_sock), client_addr, listener.getsockname())
        self._start_incoming(conn)

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        if self._stock:
            return super().on_client_socket_readable(conn, client)
        self.keepalived_conns.remove(conn)
        self._start_incoming(conn)

    def _start_incoming(self, conn: TConn, initial: bytes = b"") -> None:
        """Read what has arrived at once: a request that came whole (the usual case) goes to a
        thread without another turn of the event loop."""
        conn.sock.setblocking(False)
        incoming = _Incoming(conn, time.monotonic(), self, initial)
        if incoming.complete:  # a pipelined request, buffered whole with the previous one
            self._dispatch(incoming)
            return
        self.incoming[conn.sock.fileno()] = incoming
        if self._polled(conn.sock):
            # Kept alive: same events, the front's callback; selectors swaps it without a system call.
            self.poller.modify(conn.sock, selectors.EVENT_READ, partial(self._on_incoming_readable, incoming))
        self._on_incoming_readable(incoming, conn.sock)

    def _polled(self, sock: Any) -> bool:
        return sock in self.poller.get_map()

    def _on_incoming_readable(self, incoming: _Incoming, _fileobj: Any) -> None:
        real = incoming.conn.sock.sock
        now = time.monotonic()
        try:
            for _ in range(READS_PER_EVENT):
                try:
                    data = real.recv(READ_CHUNK)
                except BlockingIOError:
                    break
                if not data:
                    # The client went away (or half-closed before finishing): nothing to answer.
                    self._drop(incoming)
                    return
                incoming.add(data, now)
                if incoming.complete:
                    self._unregister(incoming)
                    self._dispatch(incoming)
                    return
        except (OSError, _Refused):
            self._drop(incoming)
            return
        # More to come (or more already there, after READS_PER_EVENT reads): the poller says when.
        if not self._polled(real):
            self.poller.register(real, selectors.EVENT_READ, partial(self._on_incoming_readable, incoming))

    def _dispatch(self, incoming: _Incoming) -> None:
        conn = incoming.conn
        incoming.spool.seek(0)
        conn.sock.feed(incoming.spool, incoming.size)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _unregister(self, incoming: _Incoming) -> None:
        self.incoming.pop(incoming.conn.sock.fileno(), None)
        try:
            self.poller.unregister(incoming.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _drop(self, incoming: _Incoming) -> None:
        self._unregister(incoming)
        incoming.spool.close()
        self.nr_conns -= 1
        incoming.conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for incoming in [item for item in self.incoming.values() if item.deadline <= now]:
            self._drop(incoming)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        sock = conn.sock
        if (
            not self._stock
            and isinstance(sock, BufferedSocket)
            and sock.pending
            and self.alive
            and not fs.cancelled()
            and fs.exception() is None
            and fs.result() is True
            and conn.parser is not None
            and not conn.parser.unreader.buf.getvalue()
        ):
            # A pipelined request already buffered: it goes through the front like any other.
            self._start_incoming(conn, sock.take_pending())
            return
        super().finish_request(conn, fs)
