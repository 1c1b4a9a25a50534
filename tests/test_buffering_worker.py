"""The buffering worker (glpi_gateway/buffering_worker.py): when has a request fully arrived, how
many connections wait to be accepted, and how many does each process hold?"""

from __future__ import annotations

import os
import selectors
import socket
from collections import deque
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from gunicorn.workers.gthread import TConn  # type: ignore[import-untyped]

from glpi_gateway import buffering_worker
from glpi_gateway.buffering_worker import (
    ACCEPT_YIELD_MAX_QUEUE,
    BODY_IDLE_TIMEOUT_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    MAX_BUFFERED_BODY_BYTES,
    MAX_HEADER_BYTES,
    REQUEST_TIMEOUT_SECONDS,
    BufferedSocket,
    BufferingThreadWorker,
    ConnectionBoard,
    _accept_queue,
    _ChunkScanner,
    _Refused,
)

REQUEST = b"POST /criar-chamado HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


def fed(*pieces: bytes, limit: int = 10_000) -> _ChunkScanner:
    scanner = _ChunkScanner(limit)
    for piece in pieces:
        scanner.feed(piece)
    return scanner


def test_a_chunked_body_ends_at_the_last_chunk_and_its_trailers():
    body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert fed(body).done
    assert not fed(body[:-2]).done
    # However the bytes arrive, one at a time included.
    assert fed(*[body[i : i + 1] for i in range(len(body))]).done


def test_chunk_data_that_looks_like_framing_is_skipped():
    assert not fed(b"5\r\n0\r\n\r\n\r\n").done  # the chunk's data is "0\r\n\r\n", not the end
    assert fed(b"5\r\n0\r\n\r\n\r\n0\r\n\r\n").done


def test_malformed_or_oversized_chunked_bodies_go_to_the_parser_at_once():
    assert fed(b"zz\r\n").done  # gunicorn's parser answers 400
    assert fed(b"ffff\r\n", limit=100).done  # the app refuses it; no need to wait for it
    with pytest.raises(_Refused):
        fed(b"1" * 9000)


class LoopOnly(BufferingThreadWorker):
    """The worker's event loop alone: no gunicorn arbiter, no threads; what each dispatched
    connection's thread would read is listed."""

    def __init__(self) -> None:  # not super().__init__: gunicorn's needs an arbiter
        self.cfg = SimpleNamespace(is_ssl=False)
        self.poller = selectors.DefaultSelector()
        self.keepalived_conns: deque = deque()
        self.incoming = {}
        self.nr_conns = 1
        self.header_timeout = HEADER_TIMEOUT_SECONDS
        self.body_idle_timeout = BODY_IDLE_TIMEOUT_SECONDS
        self.request_timeout = REQUEST_TIMEOUT_SECONDS
        self.max_body_bytes = MAX_BUFFERED_BODY_BYTES
        self.max_header_bytes = MAX_HEADER_BYTES
        self.dispatched: list[tuple[TConn, bytes]] = []

    def enqueue_req(self, conn: TConn) -> None:
        self.dispatched.append((conn, conn.sock.recv(len(REQUEST) + 1)))


@pytest.fixture
def connected() -> Iterator[tuple[LoopOnly, TConn, socket.socket]]:
    """A worker, a connection it has just accepted (not on its poller yet) and the client's end."""
    worker = LoopOnly()
    server_end, client_end = socket.socketpair()
    with server_end, client_end:
        yield worker, TConn(worker.cfg, BufferedSocket(server_end), ("127.0.0.1", 1), ("127.0.0.1", 2)), client_end
    worker.poller.close()


@pytest.fixture
def kept_alive(connected) -> tuple[LoopOnly, TConn, socket.socket]:
    """The same connection after an answer: kept alive on the poller, as gthread leaves it."""
    worker, conn, client_end = connected
    worker.keepalived_conns.append(conn)
    worker.poller.register(conn.sock, selectors.EVENT_READ, lambda _: worker.on_client_socket_readable(conn, None))
    return connected


def run_loop_once(worker: LoopOnly) -> None:
    for key, _ in worker.poller.select(timeout=1):
        key.data(key.fileobj)


def test_a_request_that_arrived_whole_goes_to_a_thread_in_the_same_turn_of_the_loop(kept_alive):
    worker, conn, client = kept_alive
    client.sendall(REQUEST)
    run_loop_once(worker)
    assert worker.dispatched == [(conn, REQUEST)]
    assert worker.poller.get_map() == {}  # off the poller while a thread serves it
    assert worker.incoming == {}


def test_a_request_still_arriving_stays_with_the_loop_until_its_last_byte(kept_alive):
    worker, conn, client = kept_alive
    client.sendall(REQUEST[:30])
    run_loop_once(worker)
    assert worker.dispatched == []
    assert list(worker.incoming.values())[0].conn is conn
    client.sendall(REQUEST[30:])
    run_loop_once(worker)
    assert worker.dispatched == [(conn, REQUEST)]
    assert worker.poller.get_map() == {}


def test_a_request_longer_than_one_turns_reads_goes_on_in_the_next_turns(connected, monkeypatch):
    worker, conn, client = connected
    monkeypatch.setattr(buffering_worker, "READ_CHUNK", 16)
    monkeypatch.setattr(buffering_worker, "READS_PER_EVENT", 2)
    client.sendall(REQUEST)  # all there at once, but more than one turn's 2 reads of 16 bytes
    worker._start_incoming(conn)
    turns = 0
    while not worker.dispatched:
        assert len(worker.poller.get_map()) == 1  # still watched, or the rest is never read
        run_loop_once(worker)
        turns += 1
    assert worker.dispatched == [(conn, REQUEST)] and turns >= 1


def test_a_new_connection_whose_request_is_not_there_yet_is_watched_by_the_loop(connected):
    worker, conn, client = connected
    worker._start_incoming(conn)
    assert worker.dispatched == [] and len(worker.poller.get_map()) == 1
    client.sendall(REQUEST)
    run_loop_once(worker)
    assert worker.dispatched == [(conn, REQUEST)]
    assert worker.poller.get_map() == {}


def test_the_accept_queue_counts_the_connections_waiting_to_be_accepted():
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        clients = [socket.create_connection(listener.getsockname()) for _ in range(ACCEPT_YIELD_MAX_QUEUE + 3)]
        try:
            assert _accept_queue(listener) == ACCEPT_YIELD_MAX_QUEUE + 3  # a burst: no waiting to accept
            listener.accept()[0].close()
            assert _accept_queue(listener) == ACCEPT_YIELD_MAX_QUEUE + 2
        finally:
            for client in clients:
                client.close()


def test_an_accept_queue_that_cannot_be_read_counts_as_long():
    with socket.socket(socket.AF_UNIX) as listener:
        assert _accept_queue(listener) > ACCEPT_YIELD_MAX_QUEUE


def test_the_board_gives_the_fewest_connections_of_the_other_processes():
    board = ConnectionBoard(slots=4)
    first, second, third = board.claim(set()), board.claim({0}), board.claim({0, 1})
    assert (first, second, third) == (0, 1, 2)
    board.post(first, 9)
    board.post(second, 4)
    board.post(third, 6)
    assert board.fewest_but(first) == 4
    assert board.fewest_but(second) == 6
    board.release(second)  # its process exited: it no longer counts
    assert board.fewest_but(first) == 6
    assert board.fewest_but(third) == 9


def test_a_process_alone_on_the_board_has_nobody_to_leave_connections_to():
    board = ConnectionBoard(slots=4)
    assert board.fewest_but(board.claim(set())) is None


def test_a_process_that_stopped_posting_is_not_left_connections():
    now = [100.0]
    board = ConnectionBoard(slots=4, clock=lambda: now[0])
    busy, stuck = board.claim(set()), board.claim({0})
    board.post(busy, 6)
    board.post(stuck, 0)  # then its event loop hangs: it will not accept anything
    now[0] += ConnectionBoard.STALE_SECONDS - 0.5
    board.post(busy, 6)
    assert board.fewest_but(busy) == 0  # posted moments ago: it may just be busy
    now[0] += 1.0
    board.post(busy, 6)
    assert board.fewest_but(busy) is None  # silent too long: accept without waiting for it
    board.post(stuck, 1)  # its loop runs again
    assert board.fewest_but(busy) == 1


def test_a_board_full_of_live_processes_gives_no_slot():
    assert ConnectionBoard(slots=2).claim({0, 1}) is None


@pytest.mark.slow  # a process
def test_the_board_is_shared_with_forked_processes():
    board = ConnectionBoard(slots=2)
    parent, child = board.claim(set()), board.claim({0})
    pid = os.fork()
    if pid == 0:  # the child posts, as a gunicorn worker does
        board.post(child, 7)
        os._exit(0)
    os.waitpid(pid, 0)
    assert board.fewest_but(parent) == 7
