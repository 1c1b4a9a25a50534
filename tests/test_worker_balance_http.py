"""Connections are shared between the gunicorn processes (docs/desempenho.md).

Each process runs its Python on one core (GIL), and a kept-alive connection stays with the
process that accepted it: connections landing 18/6 leave one process queueing requests while
the other idles. Before the connection board, 24 connections opened one after another landed
6/18, 7/17, 14/10; with a wait proportional to each process's own connections (no board), 8/16
under a loaded `make test`.
"""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path

import pytest

from tests.harness import sandbox_settings

pytestmark = pytest.mark.slow

CONNECTIONS = 24


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _established_inodes(port: int) -> set[str]:
    """The sockets of the server's side of the established TCP connections to `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
            inodes.add(fields[9])
    return inodes


def _worker_pids(gateway) -> set[int]:
    """The processes that answered requests, from the gateway's own log lines."""
    return {line["pid"] for line in gateway.records() if line.get("event") == "pedido"}


def _ping(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/ping")
    response = connection.getresponse()
    response.read()
    assert response.status == 200


def test_connections_opened_one_after_another_are_shared_between_the_processes(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, WEB_CONCURRENCY="2", GUNICORN_THREADS="4"))
    port = int(gateway.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 15
    while len(_worker_pids(gateway)) < 2:  # both processes booted and serving
        assert time.monotonic() < deadline, gateway.logs()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        _ping(connection)
        connection.close()
    pids = sorted(_worker_pids(gateway))

    for _ in range(3):
        connections = []
        for _ in range(CONNECTIONS):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            _ping(connection)  # answered: the connection is accepted and kept alive
            connections.append(connection)
        established = _established_inodes(port)
        held = [len(_socket_inodes(pid) & established) for pid in pids]
        for connection in connections:
            connection.close()

        assert sum(held) == CONNECTIONS, held
        assert max(held) - min(held) <= 6, held
        time.sleep(0.2)  # the processes see the closes before the next round
