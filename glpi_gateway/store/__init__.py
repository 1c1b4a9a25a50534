"""Durable shared state: idempotency keys, the delivery queue (with the files of queued requests),
the drainer's lease and the rate-limit counters.

Two backends behind one small interface (`Store`): SQLite in `DATA_DIR` (one machine, any
number of gunicorn workers) and Redis (`REDIS_URL`, several gateway instances). Every
read-modify-write is atomic across processes and threads, so correctness never depends on
in-process state. Times are wall-clock seconds (`time.time()`), shared by every process.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import IO, Protocol

QUEUED, CREATED, FAILED = "enfileirado", "criado", "falhou"
CANCELLED = "cancelado"  # by the person on call (python app.py fila cancelar), never by the gateway
STATES = (QUEUED, CREATED, FAILED, CANCELLED)
REDIS_PREFIX = "glpi-gateway:"
SQLITE_FILE = "gateway.sqlite3"
SQLITE_BUSY_TIMEOUT = 10.0
REDIS_TIMEOUT = 5.0
# The rate limiter's own, short wait on the store: a sick store must not hold every request
# (REVIEW.md #7); past it the limit is not checked (fail open, logged and counted).
RATE_LIMIT_STORE_TIMEOUT = 0.2


class StoreUnavailable(RuntimeError):
    """The store (SQLite file or Redis) could not be read or written."""


class QueueFull(Exception):
    """The attachments already queued plus these would pass QUEUE_MAX_ATTACHMENT_BYTES: nothing was stored."""


class ProtocolNotFound(LookupError):
    """No queued request has this protocol (or it was finished longer than IDEMPOTENCY_TTL ago)."""


class TicketNotYetCreated(LookupError):
    """The protocol is a request still waiting in the queue (or refused): no ticket to add to yet."""


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class KeyRecord:
    fingerprint: str
    protocol: str
    answer: StoredAnswer | None


class ClaimOutcome(Enum):
    NEW = "new"  # first use of the key: go ahead
    TAKEN_OVER = "taken_over"  # an earlier attempt ended without a final answer: go ahead, it may have sent
    REPLAY = "replay"  # a final answer is stored: send it again
    IN_FLIGHT = "in_flight"  # another request with this key is running
    MISMATCH = "mismatch"  # the key was used with another body


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    record: KeyRecord


@dataclass(frozen=True)
class QueuedTicket:
    protocol: str
    payload: str
    state: str
    ticket_id: int | None
    reason: str | None
    attempts: int
    maybe_sent: bool
    next_attempt_at: float
    created_at: float


class Store(Protocol):
    def claim_key(self, key: str, fingerprint: str, protocol: str, lock_seconds: float, ttl: float) -> Claim:
        """Bind `key` to this request, or say why not (see ClaimOutcome)."""

    def finish_key(self, key: str, answer: StoredAnswer, ttl: float) -> None:
        """Store the final answer for `key`; it is replayed until `ttl` seconds from now."""

    def release_key(self, key: str) -> None:
        """End the request without a final answer: the next request with the key takes over."""

    def enqueue(
        self,
        protocol: str,
        payload: str,
        maybe_sent: bool,
        delay: float = 0.0,
        files: Sequence[IO[bytes]] = (),
        max_file_bytes: int = 0,
        parent: str | None = None,
    ) -> None:
        """Durably add a ticket to deliver, first tried `delay` seconds from now (committed when
        this returns); a protocol already in the store is left as it is.

        `files` (seekable streams, read from their start) are kept with it, durable before the entry
        is, until it is delivered (CREATED) or its record expires. QueueFull, and nothing stored,
        when they would take the bytes of every queued file past `max_file_bytes`.

        `parent`: the protocol this entry belongs to (a complement of that ticket); `queued_for`
        lists it under that protocol."""

    def queued_file(self, protocol: str, index: int) -> IO[bytes] | None:
        """The file number `index` (from 0) kept with a queued ticket, or None when it is gone."""

    def ticket(self, protocol: str) -> QueuedTicket | None:
        """The queued ticket with this protocol, whatever its state, or None."""

    def next_queued(self) -> QueuedTicket | None:
        """The oldest ticket still waiting for delivery."""

    def queued_for(self, parent: str) -> list[QueuedTicket]:
        """The entries queued with `parent` as their parent, whatever their state, in arrival order,
        while their records live (like `ticket`)."""

    def queue_stats(self) -> tuple[int, float | None]:
        """How many tickets wait for delivery, and the `created_at` of the oldest (None when none)."""

    def mark_attempt(self, protocol: str) -> bool:
        """Record, before sending, that the ticket may reach GLPI from now on; atomically, and only
        while it waits for delivery. False (nothing recorded, do not send) when it no longer does:
        the person on call cancelled it since it was read."""

    def reschedule(self, protocol: str, attempts: int, next_attempt_at: float, reason: str) -> None:
        """A failed attempt: the ticket waits until `next_attempt_at`, with `reason` (the last error)
        for GET /chamados and the queue command; only while it still waits for delivery."""

    def finish_ticket(self, protocol: str, state: str, ticket_id: int | None, reason: str | None, ttl: float) -> None:
        """End a delivery: CREATED drops the payload and the files at once; FAILED keeps both until
        the record expires (`ttl`), so that `python app.py fila reenviar` can still deliver it."""

    # --- the queue command (python app.py fila): safe while gateways run ---------------------

    def list_tickets(self, states: Collection[str] | None = None) -> list[QueuedTicket]:
        """Every ticket the store holds (waiting, or finished less than its TTL ago) in arrival
        order; only those whose state is in `states` when given."""

    def retry_ticket(self, protocol: str) -> QueuedTicket | None:
        """Send the ticket again, now, atomically: a FAILED or CANCELLED one waits for delivery again
        (attempts and reason cleared), a QUEUED one is due at once (its history kept); it keeps its
        place in line, that of its arrival. A CREATED one is left as it is. Returns the ticket as
        it now stands, or None when the store has no such protocol."""

    def cancel_ticket(self, protocol: str, reason: str, ttl: float) -> QueuedTicket | None:
        """Take a QUEUED ticket out of the queue for good, atomically: state CANCELLED, `reason` kept,
        the record kept `ttl` seconds. A ticket in another state is left as it is (a delivery already
        under way still ends in its own state). Returns the ticket as it now stands, or None when the
        store has no such protocol."""

    # --- protocols of created tickets (GET /chamados/<protocolo>) -----------------------------

    def remember_protocol(self, protocol: str, ticket_id: int, ttl: float) -> None:
        """Keep `protocol -> ticket_id` for `ttl` seconds (PROTOCOL_TTL_DAYS): one write, no read."""

    def protocol_ticket(self, protocol: str) -> int | None:
        """The ticket id remembered for `protocol`, or None (unknown or expired alike)."""

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease `name` for `owner`; False while someone else holds it."""

    def release_lease(self, name: str, owner: str) -> None:
        """Give up the lease `name` if `owner` holds it (a stopping process), so another takes it at once."""

    def count_hit(self, key: str, window_seconds: int, limit: int) -> float | None:
        """Count a hit on `key` unless its window (which starts at the first hit and lasts
        `window_seconds`) already holds `limit` hits: None when counted; else, the hit refused
        and not counted, the seconds until that window ends."""

    def purge_expired(self) -> None:
        """Delete what expired, with the files of records that are gone, and files no entry owns
        (a process killed between writing them and committing their entry)."""

    def close(self) -> None:
        """Close the connections this process opened (the store is not used afterwards)."""


def open_store(
    data_dir: str, redis_url: str | None, redis_prefix: str = REDIS_PREFIX, timeout: float | None = None
) -> Store:
    """The Redis store when `redis_url` is set, else the SQLite file in `data_dir`.

    `timeout` (seconds) bounds each wait on the store; a store opened with one expects the
    schema (or the Redis server) to be there already, as the rate limiter's does.
    """
    if redis_url:
        import redis

        from glpi_gateway.store.redis import RedisStore

        wait = REDIS_TIMEOUT if timeout is None else timeout
        client = redis.Redis.from_url(redis_url, socket_timeout=wait, socket_connect_timeout=wait)
        return RedisStore(client, redis_prefix, check=timeout is None)
    from glpi_gateway.store.sqlite import SqliteStore

    if timeout is None:
        return SqliteStore(data_dir)
    return SqliteStore(data_dir, busy_timeout=timeout, create_schema=False)


def decide_claim(existing: KeyRecord | None, locked_until: float, fingerprint: str, now: float) -> ClaimOutcome:
    """What a request carrying `fingerprint` may do with a key in this state (shared by both backends)."""
    if existing is None:
        return ClaimOutcome.NEW
    if existing.fingerprint != fingerprint:
        return ClaimOutcome.MISMATCH
    if existing.answer is not None:
        return ClaimOutcome.REPLAY
    if locked_until > now:
        return ClaimOutcome.IN_FLIGHT
    return ClaimOutcome.TAKEN_OVER


def decode_answer(status: int | str | None, body: str | None, headers: str | None) -> StoredAnswer | None:
    """A stored answer from its stored columns (None while the request runs); shared by both backends.
    SQLite gives the status as an int, Redis as the text of one."""
    if status is None:
        return None
    return StoredAnswer(int(status), body or "", json.loads(headers or "{}"))
