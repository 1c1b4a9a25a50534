"""The SQLite backend of the store: one file in DATA_DIR, shared by every gunicorn worker of one machine."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable

from glpi_gateway.store import (
    QUEUED,
    SQLITE_BUSY_TIMEOUT,
    SQLITE_FILE,
    Claim,
    ClaimOutcome,
    KeyRecord,
    QueuedTicket,
    StoredAnswer,
    StoreUnavailable,
    decide_claim,
    decode_answer,
)

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

    def __init__(
        self,
        data_dir: str,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = SQLITE_BUSY_TIMEOUT,
        create_schema: bool = True,
    ):
        self.path = os.path.join(data_dir, SQLITE_FILE)
        _private_files(data_dir, self.path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        if not create_schema:
            return
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
                    self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
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
                "WHERE key = ? AND expires_at > ?",
                (key, now),
            ).fetchone()
            existing = None if row is None else KeyRecord(row[0], row[1], decode_answer(row[2], row[3], row[4]))
            outcome = decide_claim(existing, row[5] if row else 0.0, fingerprint, now)
            if outcome is ClaimOutcome.NEW:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, protocol, locked_until, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (key, fingerprint, protocol, now + lock_seconds, now + ttl),
                )
                existing = KeyRecord(fingerprint, protocol, None)
            elif outcome is ClaimOutcome.TAKEN_OVER:
                db.execute("UPDATE idempotency_keys SET locked_until = ? WHERE key = ?", (now + lock_seconds, key))
        return Claim(outcome, existing)

    def finish_key(self, key: str, answer: StoredAnswer, ttl: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE idempotency_keys SET status = ?, body = ?, headers = ?, locked_until = 0, expires_at = ? "
                "WHERE key = ?",
                (answer.status, answer.body, json.dumps(answer.headers), self._clock() + ttl, key),
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
                "VALUES (?, ?, ?, ?, ?, ?)",
                (protocol, payload, QUEUED, int(maybe_sent), now + delay, now),
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
                # The payload (the customer's data) is no longer needed: GET /chamados reads the state.
                "UPDATE queue SET state = ?, ticket_id = ?, reason = ?, expires_at = ?, payload = '' "
                "WHERE protocol = ?",
                (state, ticket_id, reason, self._clock() + ttl, protocol),
            )

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        now = self._clock()
        with self._transaction() as db:
            row = db.execute("SELECT owner, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute(
                "INSERT OR REPLACE INTO leases (name, owner, expires_at) VALUES (?, ?, ?)", (name, owner, now + seconds)
            )
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


def _private_files(data_dir: str, path: str) -> None:
    """DATA_DIR 0700 and the database 0600 (its -wal and -shm files take the database's mode):
    they hold customer data, and the usual umask 022 would make them world-readable."""
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    for name, mode in ((data_dir, 0o700), (path, 0o600), (path + "-wal", 0o600), (path + "-shm", 0o600)):
        try:
            if name == path and not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            if os.path.exists(name):
                os.chmod(name, mode)
        except PermissionError:
            pass  # not ours (e.g. a mounted directory): its owner decides


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


def _queued_ticket(row: tuple) -> QueuedTicket:
    protocol, payload, state, ticket_id, reason, attempts, maybe_sent, next_attempt_at, created_at = row
    return QueuedTicket(
        protocol,
        payload,
        state,
        ticket_id,
        reason,
        int(attempts),
        bool(maybe_sent),
        float(next_attempt_at),
        float(created_at),
    )
