"""Durable shared state: idempotency keys, the delivery queue, the drainer's lease and the
rate-limit counters.

Two backends behind one small interface (`Store`): SQLite in `DATA_DIR` (one machine, any
number of gunicorn workers) and Redis (`REDIS_URL`, several gateway instances). Every
read-modify-write is atomic across processes and threads, so correctness never depends on
in-process state. Times are wall-clock seconds (`time.time()`), shared by every process.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol

import redis

QUEUED, CREATED, FAILED = "enfileirado", "criado", "falhou"
REDIS_PREFIX = "glpi-gateway:"
SQLITE_FILE = "gateway.sqlite3"
SQLITE_BUSY_TIMEOUT = 10.0


class StoreUnavailable(RuntimeError):
    """The store (SQLite file or Redis) could not be read or written."""


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

    def enqueue(self, protocol: str, payload: str, maybe_sent: bool, delay: float = 0.0) -> None:
        """Durably add a ticket to deliver, first tried `delay` seconds from now (committed when
        this returns); a protocol already in the store is left as it is."""

    def ticket(self, protocol: str) -> QueuedTicket | None:
        """The queued ticket with this protocol, whatever its state, or None."""

    def next_queued(self) -> QueuedTicket | None:
        """The oldest ticket still waiting for delivery."""

    def queue_stats(self) -> tuple[int, float | None]:
        """How many tickets wait for delivery, and the `created_at` of the oldest (None when none)."""

    def mark_attempt(self, protocol: str) -> None:
        """Record, before sending, that the ticket may reach GLPI from now on."""

    def reschedule(self, protocol: str, attempts: int, next_attempt_at: float, reason: str) -> None:
        ...

    def finish_ticket(self, protocol: str, state: str, ticket_id: int | None, reason: str | None, ttl: float) -> None:
        ...

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease `name` for `owner`; False while someone else holds it."""

    def release_lease(self, name: str, owner: str) -> None:
        ...

    def hit_counter(self, key: str, window_seconds: int) -> tuple[int, float]:
        """Count a hit on `key`: the hits so far in its window (which starts at the first hit
        and lasts `window_seconds`) and the seconds until that window ends."""

    def purge_expired(self) -> None:
        ...

    def close(self) -> None:
        ...


def open_store(data_dir: str, redis_url: str | None, redis_prefix: str = REDIS_PREFIX) -> Store:
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        return RedisStore(client, redis_prefix)
    return SqliteStore(data_dir)


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


# --- SQLite ---------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    protocol TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    headers TEXT,
    locked_until REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    protocol TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    ticket_id INTEGER,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    maybe_sent INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS queue_by_state ON queue (state, seq);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
"""
_QUEUE_COLUMNS = "protocol, payload, state, ticket_id, reason, attempts, maybe_sent, next_attempt_at, created_at"


class SqliteStore:
    """One SQLite file in WAL mode; synchronous=FULL makes every commit survive a power cut.

    Each thread has its own connection; writes that read first run in BEGIN IMMEDIATE
    transactions, which serialise them across processes.
    """

    def __init__(self, data_dir: str, clock: Callable[[], float] = time.time):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, SQLITE_FILE)
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            self._connection().executescript(_SCHEMA)  # commits by itself
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                # check_same_thread off only so that close() may run in another thread: each
                # connection is otherwise used by the thread that opened it.
                db = sqlite3.connect(
                    self.path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite {self.path}: {error}") from error
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def _transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(self._connection(), self.path)

    def claim_key(self, key: str, fingerprint: str, protocol: str, lock_seconds: float, ttl: float) -> Claim:
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, protocol, status, body, headers, locked_until FROM idempotency_keys "
                "WHERE key = ? AND expires_at > ?", (key, now),
            ).fetchone()
            existing = None if row is None else KeyRecord(row[0], row[1], _answer(row[2], row[3], row[4]))
            outcome = decide_claim(existing, row[5] if row else 0.0, fingerprint, now)
            if outcome is ClaimOutcome.NEW:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, protocol, locked_until, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)", (key, fingerprint, protocol, now + lock_seconds, now + ttl),
                )
                existing = KeyRecord(fingerprint, protocol, None)
            elif outcome is ClaimOutcome.TAKEN_OVER:
                db.execute("UPDATE idempotency_keys SET locked_until = ? WHERE key = ?", (now + lock_seconds, key))
        return Claim(outcome, existing)

    def finish_key(self, key: str, answer: StoredAnswer, ttl: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE idempotency_keys SET status = ?, body = ?, headers = ?, locked_until = 0, expires_at = ? "
                "WHERE key = ?", (answer.status, answer.body, json.dumps(answer.headers), self._clock() + ttl, key),
            )

    def release_key(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE idempotency_keys SET locked_until = 0 WHERE key = ?", (key,))

    def enqueue(self, protocol: str, payload: str, maybe_sent: bool, delay: float = 0.0) -> None:
        now = self._clock()
        with self._transaction() as db:
            db.execute(
                # OR IGNORE: a request that takes over a key may queue its protocol a second time.
                "INSERT OR IGNORE INTO queue (protocol, payload, state, maybe_sent, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (protocol, payload, QUEUED, int(maybe_sent), now + delay, now),
            )

    def ticket(self, protocol: str) -> QueuedTicket | None:
        row = self._read_one(
            f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE protocol = ? AND (expires_at IS NULL OR expires_at > ?)",
            (protocol, self._clock()),
        )
        return _queued_ticket(row) if row else None

    def next_queued(self) -> QueuedTicket | None:
        row = self._read_one(f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE state = ? ORDER BY seq LIMIT 1", (QUEUED,))
        return _queued_ticket(row) if row else None

    def queue_stats(self) -> tuple[int, float | None]:
        depth, oldest = self._read_one("SELECT COUNT(*), MIN(created_at) FROM queue WHERE state = ?", (QUEUED,))
        return depth, oldest

    def _read_one(self, sql: str, parameters: tuple) -> tuple | None:
        """A read outside any write transaction: in WAL mode it never waits for writers."""
        try:
            return self._connection().execute(sql, parameters).fetchone()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error

    def mark_attempt(self, protocol: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE queue SET maybe_sent = 1 WHERE protocol = ?", (protocol,))

    def reschedule(self, protocol: str, attempts: int, next_attempt_at: float, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE queue SET attempts = ?, next_attempt_at = ?, reason = ? WHERE protocol = ? AND state = ?",
                (attempts, next_attempt_at, reason, protocol, QUEUED),
            )

    def finish_ticket(self, protocol: str, state: str, ticket_id: int | None, reason: str | None, ttl: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE queue SET state = ?, ticket_id = ?, reason = ?, expires_at = ? WHERE protocol = ?",
                (state, ticket_id, reason, self._clock() + ttl, protocol),
            )

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        now = self._clock()
        with self._transaction() as db:
            row = db.execute("SELECT owner, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute("INSERT OR REPLACE INTO leases (name, owner, expires_at) VALUES (?, ?, ?)",
                       (name, owner, now + seconds))
        return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def hit_counter(self, key: str, window_seconds: int) -> tuple[int, float]:
        now = self._clock()
        with self._transaction() as db:
            count, expires_at = db.execute(
                "INSERT INTO rate_counters (key, count, expires_at) VALUES (?1, 1, ?2) "
                "ON CONFLICT (key) DO UPDATE SET "
                "count = CASE WHEN expires_at <= ?3 THEN 1 ELSE count + 1 END, "
                "expires_at = CASE WHEN expires_at <= ?3 THEN ?2 ELSE expires_at END "
                "RETURNING count, expires_at",
                (key, now + window_seconds, now),
            ).fetchone()
        return count, expires_at - now

    def purge_expired(self) -> None:
        now = self._clock()
        with self._transaction() as db:
            db.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM queue WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            db.execute("DELETE FROM rate_counters WHERE expires_at <= ?", (now,))

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()


class _SqliteTransaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); SQLite errors become StoreUnavailable."""

    def __init__(self, db: sqlite3.Connection, path: str):
        self._db = db
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self._path}: {error}") from error
        return self._db

    def __exit__(self, kind, error, traceback) -> None:
        try:
            self._db.execute("COMMIT" if kind is None else "ROLLBACK")
        except sqlite3.Error as failure:
            raise StoreUnavailable(f"SQLite {self._path}: {failure}") from failure
        if isinstance(error, sqlite3.Error):
            raise StoreUnavailable(f"SQLite {self._path}: {error}") from error


def _answer(status: int | None, body: str | None, headers: str | None) -> StoredAnswer | None:
    if status is None:
        return None
    return StoredAnswer(int(status), body or "", json.loads(headers or "{}"))


def _queued_ticket(row: tuple) -> QueuedTicket:
    protocol, payload, state, ticket_id, reason, attempts, maybe_sent, next_attempt_at, created_at = row
    return QueuedTicket(protocol, payload, state, ticket_id, reason, int(attempts), bool(maybe_sent),
                        float(next_attempt_at), float(created_at))


# --- Redis ----------------------------------------------------------------------------------

# Atomic: the first hit of a window starts its expiry; answers [count, milliseconds left].
_REDIS_HIT_COUNTER = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisStore:
    """The same state in Redis, for several gateway instances. Read-modify-writes are
    WATCH/MULTI transactions (retried on conflict); the queue order is a sorted set.

    Durability is Redis's: run it with appendonly yes (appendfsync always for no loss at all).
    """

    def __init__(self, client: redis.Redis, prefix: str = REDIS_PREFIX, clock: Callable[[], float] = time.time):
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._hit_counter_script = client.register_script(_REDIS_HIT_COUNTER)
        self._guarded(self._redis.ping)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _guarded(self, action: Callable, *args, **kwargs):
        try:
            return action(*args, **kwargs)
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis: {error.__class__.__name__}: {error}") from error

    def claim_key(self, key: str, fingerprint: str, protocol: str, lock_seconds: float, ttl: float) -> Claim:
        name = self._key("key", key)
        result: list[Claim] = []

        def attempt(pipe: redis.client.Pipeline) -> None:
            now = self._clock()
            stored = {k.decode(): v.decode() for k, v in pipe.hgetall(name).items()}
            existing = None
            if stored:
                answer = _answer(stored.get("status"), stored.get("body"), stored.get("headers"))
                existing = KeyRecord(stored["fingerprint"], stored["protocol"], answer)
            outcome = decide_claim(existing, float(stored.get("locked_until", 0)), fingerprint, now)
            pipe.multi()
            if outcome is ClaimOutcome.NEW:
                pipe.delete(name)
                pipe.hset(name, mapping={"fingerprint": fingerprint, "protocol": protocol,
                                         "locked_until": now + lock_seconds})
                pipe.expireat(name, int(now + ttl) + 1)
                existing = KeyRecord(fingerprint, protocol, None)
            elif outcome is ClaimOutcome.TAKEN_OVER:
                pipe.hset(name, "locked_until", now + lock_seconds)
            result[:] = [Claim(outcome, existing)]

        self._guarded(self._redis.transaction, attempt, name)
        return result[0]

    def finish_key(self, key: str, answer: StoredAnswer, ttl: float) -> None:
        name = self._key("key", key)
        pipe = self._redis.pipeline()
        pipe.hset(name, mapping={"status": answer.status, "body": answer.body,
                                 "headers": json.dumps(answer.headers), "locked_until": 0})
        pipe.expireat(name, int(self._clock() + ttl) + 1)
        self._guarded(pipe.execute)

    def release_key(self, key: str) -> None:
        name = self._key("key", key)

        def attempt(pipe: redis.client.Pipeline) -> None:
            exists = pipe.exists(name)
            pipe.multi()
            if exists:
                pipe.hset(name, "locked_until", 0)

        self._guarded(self._redis.transaction, attempt, name)

    def enqueue(self, protocol: str, payload: str, maybe_sent: bool, delay: float = 0.0) -> None:
        now = self._clock()
        if self._guarded(self._redis.exists, self._key("ticket", protocol)):
            return  # a request that takes over a key may queue its protocol a second time
        seq = self._guarded(self._redis.incr, self._key("seq"))
        pipe = self._redis.pipeline()  # MULTI/EXEC: the record and its place in line together
        pipe.hset(self._key("ticket", protocol), mapping={
            "payload": payload, "state": QUEUED, "attempts": 0, "maybe_sent": int(maybe_sent),
            "next_attempt_at": now + delay, "created_at": now, "seq": seq,
        })
        pipe.zadd(self._key("queue"), {protocol: seq})
        self._guarded(pipe.execute)

    def ticket(self, protocol: str) -> QueuedTicket | None:
        stored = self._guarded(self._redis.hgetall, self._key("ticket", protocol))
        return _redis_ticket(protocol, stored) if stored else None

    def next_queued(self) -> QueuedTicket | None:
        while True:
            first = self._guarded(self._redis.zrange, self._key("queue"), 0, 0)
            if not first:
                return None
            protocol = first[0].decode()
            found = self.ticket(protocol)
            if found is not None and found.state == QUEUED:
                return found
            self._guarded(self._redis.zrem, self._key("queue"), protocol)  # finished or vanished

    def queue_stats(self) -> tuple[int, float | None]:
        head = self.next_queued()  # the oldest, once stale entries are gone from the front of the line
        if head is None:
            return 0, None
        return self._guarded(self._redis.zcard, self._key("queue")), head.created_at

    def mark_attempt(self, protocol: str) -> None:
        self._guarded(self._redis.hset, self._key("ticket", protocol), "maybe_sent", 1)

    def reschedule(self, protocol: str, attempts: int, next_attempt_at: float, reason: str) -> None:
        self._guarded(self._redis.hset, self._key("ticket", protocol),
                      mapping={"attempts": attempts, "next_attempt_at": next_attempt_at, "reason": reason})

    def finish_ticket(self, protocol: str, state: str, ticket_id: int | None, reason: str | None, ttl: float) -> None:
        name = self._key("ticket", protocol)
        pipe = self._redis.pipeline()
        pipe.hset(name, mapping={"state": state, "ticket_id": "" if ticket_id is None else ticket_id,
                                 "reason": reason or ""})
        pipe.zrem(self._key("queue"), protocol)
        pipe.expireat(name, int(self._clock() + ttl) + 1)
        self._guarded(pipe.execute)

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        lease = self._key("lease", name)
        milliseconds = max(1, int(seconds * 1000))
        if self._guarded(self._redis.set, lease, owner, nx=True, px=milliseconds):
            return True
        taken: list[bool] = []

        def renew(pipe: redis.client.Pipeline) -> None:
            holder = pipe.get(lease)
            pipe.multi()
            mine = holder is None or holder.decode() == owner
            if mine:
                pipe.set(lease, owner, px=milliseconds)
            taken[:] = [mine]

        self._guarded(self._redis.transaction, renew, lease)
        return taken[0]

    def release_lease(self, name: str, owner: str) -> None:
        lease = self._key("lease", name)

        def release(pipe: redis.client.Pipeline) -> None:
            holder = pipe.get(lease)
            pipe.multi()
            if holder is not None and holder.decode() == owner:
                pipe.delete(lease)

        self._guarded(self._redis.transaction, release, lease)

    def hit_counter(self, key: str, window_seconds: int) -> tuple[int, float]:
        count, milliseconds = self._guarded(
            self._hit_counter_script, keys=[self._key("ratelimit", key)], args=[window_seconds * 1000]
        )
        return int(count), int(milliseconds) / 1000

    def purge_expired(self) -> None:
        """Nothing to do: Redis expires finished records and counters by itself."""

    def close(self) -> None:
        self._redis.close()


def _redis_ticket(protocol: str, stored: dict[bytes, bytes]) -> QueuedTicket:
    fields = {key.decode(): value.decode() for key, value in stored.items()}
    return QueuedTicket(
        protocol=protocol,
        payload=fields["payload"],
        state=fields["state"],
        ticket_id=int(fields["ticket_id"]) if fields.get("ticket_id") else None,
        reason=fields.get("reason") or None,
        attempts=int(fields.get("attempts", 0)),
        maybe_sent=fields.get("maybe_sent") == "1",
        next_attempt_at=float(fields["next_attempt_at"]),
        created_at=float(fields["created_at"]),
    )
