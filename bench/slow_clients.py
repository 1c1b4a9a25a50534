"""`make bench-slow-clients`: does the gateway keep answering while slow clients hold connections?

Starts the GLPI sandbox and the gateway under gunicorn as the Docker image does (loopback
only), then for `--seconds` keeps open, from one attacker thread:

- `--trickle-headers` connections that send a request line and then one header line every
  `--interval` seconds, never finishing the header block;
- `--idle` connections that connect and send nothing;
- `--trickle-bodies` connections that send complete headers of a `POST /criar-chamado`
  with `Content-Length: 60000` and then one byte of body every `--interval` seconds.

A connection the server closes is opened again, so the pressure stays the same. Meanwhile
`--legit` clients alternate `GET /ping` and `POST /criar-chamado` (a new connection each,
5 s timeout) and the script prints their success ratio and latency percentiles.

    .venv/bin/python bench/slow_clients.py                 # what the make target runs (60 s)
    GUNICORN_WORKER_CLASS=gthread .venv/bin/python bench/slow_clients.py   # stock gthread
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench import serve, start_sandbox

ROOT = Path(__file__).resolve().parent.parent

HOST = "127.0.0.1"
BODY_LENGTH = 60000
LEGIT_TIMEOUT = 5.0
TICKET = {
    "nome_cliente": "Maria Souza",
    "telefone_cliente": "(11) 91234-5678",
    "cnpj_cliente": "11.222.333/0001-81",
    "anydesk_cliente": "123 456 789",
    "descricao_problema": "A impressora do financeiro não imprime desde ontem.",
}


@dataclass
class Result:
    attempts: int = 0
    successes: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    reconnections: int = 0
    slow_open_at_end: int = 0

    @property
    def ratio(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("inf")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Slow:
    """One slow connection: what it sends first and what it sends every interval."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind = kind
        self.port = port
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.close()
        sock = socket.create_connection((HOST, self.port), timeout=2)
        sock.setblocking(False)
        self.sock = sock
        if self.kind == "headers":
            self._send(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        elif self.kind == "body":
            self._send(
                b"POST /criar-chamado HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {BODY_LENGTH}\r\n\r\n{{".encode()
            )

    def tick(self) -> bool:
        """Send the next trickle; False when the server closed the connection."""
        if self.sock is None:
            return False
        try:
            if self.sock.recv(4096) == b"":
                return False
        except BlockingIOError:
            pass
        except OSError:
            return False
        if self.kind == "headers":
            return self._send(b"X-a: b\r\n")
        if self.kind == "body":
            return self._send(b" ")
        return True

    def _send(self, data: bytes) -> bool:
        assert self.sock is not None
        try:
            self.sock.send(data)
            return True
        except BlockingIOError:
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _attacker(slow: list[_Slow], interval: float, stop: threading.Event, result: Result) -> None:
    for connection in slow:
        try:
            connection.open()
        except OSError:
            result.reconnections += 1
    while not stop.wait(interval):
        for connection in slow:
            if not connection.tick():
                result.reconnections += 1
                try:
                    connection.open()
                except OSError:
                    connection.close()


def _legit_once(port: int, index: int) -> tuple[bool, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=LEGIT_TIMEOUT)
    try:
        if index % 2:
            # Each request another customer's: identical bodies would be answered from the dedupe
            # window (DEDUPE_WINDOW_SECONDS), or 409 while the first is still being sent.
            unique = f"{TICKET['descricao_problema']} (pedido {os.getpid()}.{threading.get_ident()}.{index})"
            body = json.dumps({**TICKET, "descricao_problema": unique}).encode()
            connection.request(
                "POST", "/criar-chamado", body, {"Content-Type": "application/json", "Connection": "close"}
            )
            expected: tuple[int, ...] = (200, 201, 202)
        else:
            connection.request("GET", "/ping", headers={"Connection": "close"})
            expected = (200,)
        response = connection.getresponse()
        response.read()
        return response.status in expected, f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as error:
        return False, type(error).__name__
    finally:
        connection.close()


def _legit(port: int, stop: threading.Event, result: Result, lock: threading.Lock, pause: float) -> None:
    index = 0
    while not stop.is_set():
        started = time.perf_counter()
        ok, outcome = _legit_once(port, index)
        elapsed = time.perf_counter() - started
        index += 1
        with lock:
            result.attempts += 1
            if ok:
                result.successes += 1
                result.latencies.append(elapsed)
            else:
                result.failures[outcome] = result.failures.get(outcome, 0) + 1
                result.latencies.append(max(elapsed, LEGIT_TIMEOUT))
        stop.wait(pause)


def run_attack(
    port: int,
    seconds: float,
    trickle_headers: int = 200,
    idle: int = 200,
    trickle_bodies: int = 40,
    legit: int = 4,
    interval: float = 2.0,
    settle: float = 2.0,
) -> Result:
    """Hold the slow connections for `seconds` while `legit` clients measure the service."""
    result = Result()
    slow = (
        [_Slow("headers", port) for _ in range(trickle_headers)]
        + [_Slow("idle", port) for _ in range(idle)]
        + [_Slow("body", port) for _ in range(trickle_bodies)]
    )
    stop_attack, stop_legit = threading.Event(), threading.Event()
    lock = threading.Lock()
    attacker = threading.Thread(target=_attacker, args=(slow, interval, stop_attack, result), daemon=True)
    attacker.start()
    time.sleep(settle)  # the slow connections are in place before measuring
    clients = [
        threading.Thread(target=_legit, args=(port, stop_legit, result, lock, 0.1), daemon=True) for _ in range(legit)
    ]
    for client in clients:
        client.start()
    time.sleep(seconds)
    stop_legit.set()
    for client in clients:
        client.join(timeout=LEGIT_TIMEOUT + 5)
    stop_attack.set()
    attacker.join(timeout=interval + 5)
    result.slow_open_at_end = sum(1 for connection in slow if connection.sock is not None)
    for connection in slow:
        connection.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--trickle-headers", type=int, default=200)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--trickle-bodies", type=int, default=40)
    parser.add_argument("--legit", type=int, default=4)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency the sandbox adds to every GLPI call")
    args = parser.parse_args(argv)

    sandbox = start_sandbox(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory(prefix="slow-clients-") as log_dir:
            server = serve("app:create_app()", sandbox, Path(log_dir), {})
            try:
                result = run_attack(
                    server.port,
                    args.seconds,
                    args.trickle_headers,
                    args.idle,
                    args.trickle_bodies,
                    args.legit,
                    args.interval,
                )
            finally:
                server.stop()
    finally:
        sandbox.stop()
    print(
        f"conexões lentas: {args.trickle_headers} cabeçalhos a conta-gotas, {args.idle} ociosas, "
        f"{args.trickle_bodies} corpos a conta-gotas; {args.seconds:g} s"
    )
    print(f"pedidos legítimos: {result.successes}/{result.attempts} ok ({result.ratio:.1%})")
    print(
        f"latência: p50 {result.percentile(0.5) * 1000:.0f} ms, p99 {result.percentile(0.99) * 1000:.0f} ms, "
        f"máx {max(result.latencies, default=0) * 1000:.0f} ms"
    )
    if result.failures:
        print(f"falhas: {result.failures}")
    print(f"conexões lentas fechadas pelo servidor (e reabertas): {result.reconnections}")
    ok = result.ratio >= 0.99 and result.percentile(0.99) < 1.0
    print("meta (≥ 99% ok, p99 < 1 s):", "atingida" if ok else "NÃO atingida")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
