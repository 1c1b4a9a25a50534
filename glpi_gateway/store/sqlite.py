"""The SQLite backend of the store: one file in DATA_DIR, shared by every gunicorn worker of one machine.

The files of queued requests live beside it, in DATA_DIR/anexos/<protocolo>/<n>: written under a
temporary name and fsynced, then moved into place before their queue entry commits.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import IO

from glpi_gateway.store import (
    CANCELLED,
    CREATED,
    FAILED,
    QUEUED,
    SQLITE_BUSY_TIMEOUT,
    SQLITE_FILE,
    Claim,
    ClaimOutcome,
    KeyRecord,
    QueuedTicket,
    QueueFull,
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
CREATE TABLE IF NOT EXISTS protocols (
    protocol TEXT PRIMARY KEY,
    ticket_id INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queued_files (
    protocol TEXT PRIMARY KEY,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_parents (
    protocol TEXT PRIMARY KEY,
    parent TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_parents_by_parent ON queue_parents (parent);
"""
FILES_DIR = "anexos"
# A directory of files that no queue entry owns is deleted once this old: an entry being committed
# right now owns its directory a moment after it was written.
ORPHAN_GRACE_SECONDS = 3600.0
_COPY_CHUNK = 1024 * 1024
# Backoff between attempts to set the store up while another process holds a lock (seconds).
_FIRST_SET_UP_PAUSE = 0.005
_LAST_SET_UP_PAUSE = 0.2
_QUEUE_COLUMNS = "protocol, payload, state, ticket_id, reason, attempts, maybe_sent, next_attempt_at, created_at"
# A ticket by protocol, unless it was finished longer than its TTL ago (purge_expired deletes those later).
_LIVE_TICKET = f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE protocol = ? AND (expires_at IS NULL OR expires_at > ?)"


class SqliteStore:
    """One SQLite file in WAL mode.

    Each thread has its own connection; writes run in BEGIN IMMEDIATE transactions, which
    serialise them across processes. Within a process the threads wait their turn on a lock
    rather than in SQLite's busy handler, which polls with sleeps of up to 100 ms: under load
    that polling, not the writes, made the slowest requests (`make bench`).

    What the queue promises is fsynced before the call returns (synchronous=FULL): a request
    answered 202, a delivery attempt about to start. Keys, protocols and counters are written
    with synchronous=NORMAL, which survives a crash of the process but, on a power cut, may
    lose what was written since the last fsync: the lease holder's renewal, a durable write,
    fsyncs the file every LEASE/POLL second, as Redis's `appendfsync everysec` does.
    """

    def __init__(
        self,
        data_dir: str,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = SQLITE_BUSY_TIMEOUT,
        create_schema: bool = True,
    ):
        self.path = os.path.join(data_dir, SQLITE_FILE)
        self.files_dir = os.path.join(data_dir, FILES_DIR)
        _private_files(data_dir, self.path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_turn = threading.Lock()
        if create_schema:
            self._set_up()

    def _set_up(self) -> None:
        """Put the file in WAL mode and create the tables, retrying while another process holds a lock.

        Every gunicorn worker gets here at start-up, all at once on a fresh DATA_DIR. Switching to
        WAL takes an exclusive lock, and SQLite answers "database is locked" at once, without
        waiting out the busy timeout, to a connection that read the file before another one took
        that lock. Such a lock lasts milliseconds: it is retried, with jittered backoff, for up to
        SQLITE_BUSY_TIMEOUT seconds. WAL mode is kept in the file itself, so this runs once per
        store and not for each thread's connection.
        """
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
        pause = _FIRST_SET_UP_PAUSE
        while True:
            db = self._connection()
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if mode != "wal":  # SQLite keeps the old mode when the file cannot have another
                        raise sqlite3.OperationalError(f"journal_mode stayed {mode!r}, WAL is needed")
                # Every table in one write transaction, whose BEGIN IMMEDIATE waits out the busy timeout.
                db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
                return
            except sqlite3.Error as error:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if not _is_lock(error):
                    raise StoreUnavailable(f"SQLite {self.path}: {error}") from error
                if time.monotonic() + pause > deadline:
                    raise StoreUnavailable(
                        f"SQLite {self.path}: {error} (still locked by another process after "
                        f"{SQLITE_BUSY_TIMEOUT:g} s of retries)"
                    ) from error
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, _LAST_SET_UP_PAUSE)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                # check_same_thread off only so that close() may run in another thread: each
                # connection is otherwise used by the thread that opened it.
                db = sqlite3.connect(
                    self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
                )
                # A setting of the connection, not of the file: no lock, nothing to wait for.
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite {self.path}: {error}") from error
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def _transaction(self, durable: bool = False) -> _SqliteTransaction:
        """A write transaction; `durable` ones are fsynced before they return (see the class)."""
        return _SqliteTransaction(self._connection(), self.path, self._write_turn, self._busy_timeout, durable)

    def _write_one(self, sql: str, parameters: tuple) -> int:
        """One statement, atomic by itself (autocommit: no BEGIN and COMMIT to send), not durable;
        how many rows it changed. No RETURNING: such a statement commits only at its second step,
        holding SQLite's lock on the file while this thread waits for the GIL in between, and the
        other workers' writes meet SQLITE_BUSY and sleep (`make bench`, docs/desempenho.md)."""
        db = self._connection()
        _take_turn(self._write_turn, self._busy_timeout, self.path)
        try:
            return db.execute(sql, parameters).rowcount
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error
        finally:
            self._write_turn.release()

    def claim_key(self, key: str, fingerprint: str, protocol: str, lock_seconds: float, ttl: float) -> Claim:
        now = self._clock()
        # A key seen for the first time (or expired) is claimed by one statement; only a key in
        # use needs reading first, in a transaction.
        if self._write_one(
            "INSERT INTO idempotency_keys (key, fingerprint, protocol, locked_until, expires_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5) "
            "ON CONFLICT (key) DO UPDATE SET fingerprint = ?2, protocol = ?3, status = NULL, body = NULL, "
            "headers = NULL, locked_until = ?4, expires_at = ?5 WHERE expires_at <= ?6",
            (key, fingerprint, protocol, now + lock_seconds, now + ttl, now),
        ):
            return Claim(ClaimOutcome.NEW, KeyRecord(fingerprint, protocol, None))
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
        assert existing is not None  # decide_claim answers NEW, which sets it, whenever there was no record
        return Claim(outcome, existing)

    def finish_key(self, key: str, answer: StoredAnswer, ttl: float) -> None:
        self._write_one(
            "UPDATE idempotency_keys SET status = ?, body = ?, headers = ?, locked_until = 0, expires_at = ? "
            "WHERE key = ?",
            (answer.status, answer.body, json.dumps(answer.headers), self._clock() + ttl, key),
        )

    def release_key(self, key: str) -> None:
        self._write_one("UPDATE idempotency_keys SET locked_until = 0 WHERE key = ?", (key,))

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
        size = sum(_size(stream) for stream in files)
        if files and self._queued_file_bytes() + size > max_file_bytes:
            raise QueueFull()  # the usual refusal, before a byte is written
        final = os.path.join(self.files_dir, protocol)
        staged: str | None = None
        moved = committed = False
        try:
            staged = self._stage(files) if files else None
            now = self._clock()
            with self._transaction(durable=True) as db:
                if db.execute("SELECT 1 FROM queue WHERE protocol = ?", (protocol,)).fetchone():
                    return  # a request that takes over a key may queue its protocol a second time
                db.execute(
                    "INSERT INTO queue (protocol, payload, state, maybe_sent, next_attempt_at, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (protocol, payload, QUEUED, int(maybe_sent), now + delay, now),
                )
                if parent is not None:
                    db.execute("INSERT INTO queue_parents (protocol, parent) VALUES (?, ?)", (protocol, parent))
                if staged is not None:
                    queued = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM queued_files").fetchone()[0]
                    if queued + size > max_file_bytes:
                        raise QueueFull()
                    db.execute(
                        "INSERT INTO queued_files (protocol, files, bytes) VALUES (?, ?, ?)",
                        (protocol, len(files), size),
                    )
                    # In place before the entry commits: a crash in between leaves files that no entry
                    # owns (purge_expired deletes them), never an entry without its files.
                    shutil.rmtree(final, ignore_errors=True)  # such leftovers, of this very protocol
                    os.rename(staged, final)
                    moved = True
                    _fsync_directory(self.files_dir)
            committed = True
        except OSError as error:
            raise StoreUnavailable(f"{self.files_dir}: {error}") from error
        finally:
            if staged is not None and not moved:
                shutil.rmtree(staged, ignore_errors=True)
            if moved and not committed:
                shutil.rmtree(final, ignore_errors=True)

    def _stage(self, files: Sequence[IO[bytes]]) -> str:
        """The files written durably under a temporary directory of FILES_DIR, which this returns."""
        os.makedirs(self.files_dir, mode=0o700, exist_ok=True)
        staged = os.path.join(self.files_dir, f".novo-{uuid.uuid4().hex}")
        os.mkdir(staged, 0o700)
        for index, stream in enumerate(files):
            descriptor = os.open(os.path.join(staged, str(index)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as copy:
                stream.seek(0)
                shutil.copyfileobj(stream, copy, _COPY_CHUNK)
                copy.flush()
                os.fsync(copy.fileno())
            stream.seek(0)
        _fsync_directory(staged)
        return staged

    def _queued_file_bytes(self) -> int:
        row = self._read_one("SELECT COALESCE(SUM(bytes), 0) FROM queued_files", ())
        assert row is not None  # an aggregate without GROUP BY always yields one row
        return int(row[0])

    def queued_file(self, protocol: str, index: int) -> IO[bytes] | None:
        try:
            return open(os.path.join(self.files_dir, protocol, str(index)), "rb")  # noqa: SIM115 (the caller closes it)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreUnavailable(f"{self.files_dir}: {error}") from error

    def ticket(self, protocol: str) -> QueuedTicket | None:
        row = self._read_one(_LIVE_TICKET, (protocol, self._clock()))
        return _queued_ticket(row) if row else None

    def next_queued(self) -> QueuedTicket | None:
        row = self._read_one(f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE state = ? ORDER BY seq LIMIT 1", (QUEUED,))
        return _queued_ticket(row) if row else None

    def queued_for(self, parent: str) -> list[QueuedTicket]:
        columns = ", ".join(f"queue.{name}" for name in _QUEUE_COLUMNS.split(", "))
        try:
            rows = (
                self._connection()
                .execute(
                    f"SELECT {columns} FROM queue_parents JOIN queue USING (protocol) WHERE queue_parents.parent = ? "
                    "AND (queue.expires_at IS NULL OR queue.expires_at > ?) ORDER BY queue.seq",
                    (parent, self._clock()),
                )
                .fetchall()
            )
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error
        return [_queued_ticket(row) for row in rows]

    def queue_stats(self) -> tuple[int, float | None]:
        row = self._read_one("SELECT COUNT(*), MIN(created_at) FROM queue WHERE state = ?", (QUEUED,))
        assert row is not None  # an aggregate without GROUP BY always yields one row
        depth, oldest = row
        return depth, oldest

    def _read_one(self, sql: str, parameters: tuple) -> tuple | None:
        """A read outside any write transaction: in WAL mode it never waits for writers."""
        try:
            return self._connection().execute(sql, parameters).fetchone()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error

    def mark_attempt(self, protocol: str) -> bool:
        with self._transaction(durable=True) as db:
            marked = db.execute(
                "UPDATE queue SET maybe_sent = 1 WHERE protocol = ? AND state = ?", (protocol, QUEUED)
            ).rowcount
        return marked == 1

    def reschedule(self, protocol: str, attempts: int, next_attempt_at: float, reason: str) -> None:
        with self._transaction(durable=True) as db:
            db.execute(
                "UPDATE queue SET attempts = ?, next_attempt_at = ?, reason = ? WHERE protocol = ? AND state = ?",
                (attempts, next_attempt_at, reason, protocol, QUEUED),
            )

    def finish_ticket(self, protocol: str, state: str, ticket_id: int | None, reason: str | None, ttl: float) -> None:
        with self._transaction(durable=True) as db:
            db.execute(
                # Once in GLPI, the customer's data is no longer needed: GET /chamados reads the state.
                # A failed one keeps it, so that `python app.py fila reenviar` can still deliver it.
                "UPDATE queue SET state = ?1, ticket_id = ?2, reason = ?3, expires_at = ?4, "
                "payload = CASE WHEN ?1 = ?6 THEN '' ELSE payload END WHERE protocol = ?5",
                (state, ticket_id, reason, self._clock() + ttl, protocol, CREATED),
            )
            if state == CREATED:
                db.execute("DELETE FROM queued_files WHERE protocol = ?", (protocol,))
        if state == CREATED:  # a crash before this leaves files no entry owns: purge_expired's
            shutil.rmtree(os.path.join(self.files_dir, protocol), ignore_errors=True)

    def list_tickets(self, states: Collection[str] | None = None) -> list[QueuedTicket]:
        wanted = tuple(states) if states is not None else None
        if wanted == ():
            return []
        sql = f"SELECT {_QUEUE_COLUMNS} FROM queue WHERE (expires_at IS NULL OR expires_at > ?)"
        if wanted is not None:
            sql += f" AND state IN ({', '.join('?' * len(wanted))})"
        try:
            rows = self._connection().execute(f"{sql} ORDER BY seq", (self._clock(), *(wanted or ()))).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite {self.path}: {error}") from error
        return [_queued_ticket(row) for row in rows]

    def retry_ticket(self, protocol: str) -> QueuedTicket | None:
        now = self._clock()
        with self._transaction(durable=True) as db:
            db.execute(
                "UPDATE queue SET next_attempt_at = ?1, state = ?2, "
                "attempts = CASE WHEN state = ?2 THEN attempts ELSE 0 END, "
                "reason = CASE WHEN state = ?2 THEN reason ELSE NULL END, expires_at = NULL "
                "WHERE protocol = ?3 AND state IN (?2, ?4, ?5) AND (expires_at IS NULL OR expires_at > ?1)",
                (now, QUEUED, protocol, FAILED, CANCELLED),
            )
            row = db.execute(_LIVE_TICKET, (protocol, now)).fetchone()
        return _queued_ticket(row) if row else None

    def cancel_ticket(self, protocol: str, reason: str, ttl: float) -> QueuedTicket | None:
        now = self._clock()
        with self._transaction(durable=True) as db:
            db.execute(
                "UPDATE queue SET state = ?, reason = ?, expires_at = ? WHERE protocol = ? AND state = ?",
                (CANCELLED, reason, now + ttl, protocol, QUEUED),
            )
            row = db.execute(_LIVE_TICKET, (protocol, now)).fetchone()
        return _queued_ticket(row) if row else None

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        now = self._clock()
        with self._transaction(durable=True) as db:
            row = db.execute("SELECT owner, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            db.execute(
                "INSERT OR REPLACE INTO leases (name, owner, expires_at) VALUES (?, ?, ?)", (name, owner, now + seconds)
            )
        return True

    def release_lease(self, name: str, owner: str) -> None:
        self._write_one("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    def remember_protocol(self, protocol: str, ticket_id: int, ttl: float) -> None:
        self._write_one(
            "INSERT OR REPLACE INTO protocols (protocol, ticket_id, expires_at) VALUES (?, ?, ?)",
            (protocol, ticket_id, self._clock() + ttl),
        )

    def protocol_ticket(self, protocol: str) -> int | None:
        row = self._read_one(
            "SELECT ticket_id FROM protocols WHERE protocol = ? AND expires_at > ?", (protocol, self._clock())
        )
        return int(row[0]) if row else None

    def count_hit(self, key: str, window_seconds: int, limit: int) -> float | None:
        now = self._clock()
        # The limit is in the statement, so that it commits in one step (_write_one); only a
        # refused hit reads its window's end, without the write lock.
        if self._write_one(
            "INSERT INTO rate_counters (key, count, expires_at) VALUES (?1, 1, ?2) "
            "ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN expires_at <= ?3 THEN 1 ELSE count + 1 END, "
            "expires_at = CASE WHEN expires_at <= ?3 THEN ?2 ELSE expires_at END "
            "WHERE expires_at <= ?3 OR count < ?4",
            (key, now + window_seconds, now, limit),
        ):
            return None
        row = self._read_one("SELECT expires_at FROM rate_counters WHERE key = ?", (key,))
        return max(0.0, row[0] - now) if row else 0.0

    def purge_expired(self) -> None:
        now = self._clock()
        with self._transaction(durable=True) as db:  # files are deleted after it commits
            db.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM queue WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            gone = [
                row[0]
                for row in db.execute(
                    "SELECT protocol FROM queued_files WHERE protocol NOT IN (SELECT protocol FROM queue)"
                )
            ]
            db.executemany("DELETE FROM queued_files WHERE protocol = ?", [(protocol,) for protocol in gone])
            db.execute("DELETE FROM queue_parents WHERE protocol NOT IN (SELECT protocol FROM queue)")
            db.execute("DELETE FROM rate_counters WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM protocols WHERE expires_at <= ?", (now,))
            owned = {row[0] for row in db.execute("SELECT protocol FROM queued_files")}
        for protocol in gone:
            shutil.rmtree(os.path.join(self.files_dir, protocol), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.files_dir):
                # Files being queued have no entry yet for a moment: only old ones are orphans.
                if entry.name not in owned and _modified(entry.path) <= time.time() - ORPHAN_GRACE_SECONDS:
                    shutil.rmtree(entry.path, ignore_errors=True)

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
    """This process's turn to write, then BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), fsynced
    when `durable`; waiting longer than `timeout` for the turn and SQLite errors become StoreUnavailable."""

    def __init__(self, db: sqlite3.Connection, path: str, turn: threading.Lock, timeout: float, durable: bool):
        self._db = db
        self._path = path
        self._turn = turn
        self._timeout = timeout
        self._durable = durable

    def __enter__(self) -> sqlite3.Connection:
        _take_turn(self._turn, self._timeout, self._path)
        try:
            if self._durable:
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self._end()
            raise StoreUnavailable(f"SQLite {self._path}: {error}") from error
        return self._db

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self._db.execute("COMMIT" if kind is None else "ROLLBACK")
        except sqlite3.Error as failure:
            raise StoreUnavailable(f"SQLite {self._path}: {failure}") from failure
        finally:
            self._end()
        if isinstance(error, sqlite3.Error):
            raise StoreUnavailable(f"SQLite {self._path}: {error}") from error

    def _end(self) -> None:
        try:
            # Should this fail, the connection stays FULL: slower, never less safe.
            with contextlib.suppress(sqlite3.Error):
                if self._durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
        finally:
            self._turn.release()


def _take_turn(turn: threading.Lock, timeout: float, path: str) -> None:
    if not turn.acquire(timeout=timeout):
        raise StoreUnavailable(f"SQLite {path}: other writes of this process held it {timeout:g} s")


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def _fsync_directory(path: str) -> None:
    """Make the names in a directory (a file created or renamed there) survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _modified(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return time.time()  # gone already: never old enough to delete


def _is_lock(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED, any extended code: another connection holds a lock for now."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


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
