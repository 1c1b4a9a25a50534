"""The buffering worker (glpi_gateway/buffering_worker.py): when has a request fully arrived, how
many connections wait to be accepted, and how many does each process hold?"""

from __future__ import annotations

import os
import socket

import pytest

from glpi_gateway.buffering_worker import (
    ACCEPT_YIELD_MAX_QUEUE,
    ConnectionBoard,
    _accept_queue,
    _ChunkScanner,
    _Refused,
)


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
