"""Abuse limits per client IP and per API key, counted where every worker sees them.

A counter's window starts at its first hit and lasts `window_seconds`; `hit`
answers the count so far and the seconds until the window ends (the
`Retry-After` of a refusal). Counters live in SQLite under `DATA_DIR` (shared by
the workers of one machine) or in Redis (`REDIS_URL`, shared by several
instances). If the counter store fails, requests go through and a warning is
logged: an abuse limit must not take ticket creation down with it.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import os
import sqlite3
import threading
import time
from typing import Protocol

import redis

from config import Config, ConfigError, RateLimit
from logging_setup import LOGGER_NAME

log = logging.getLogger(LOGGER_NAME)

SQLITE_FILE = "rate-limits.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_PURGE_EVERY = 1000  # hits between deletions of expired counters
REDIS_KEY_PREFIX = "glpi-gateway:ratelimit:"
REDIS_TIMEOUT_SECONDS = 1.0
IPV6_CLIENT_PREFIX = 64  # one IPv6 client usually holds a whole /64
# Atomic: the first hit of a window starts its expiry; answers [count, milliseconds left].
_REDIS_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RateLimited(Exception):
    """Over a limit; `retry_after` is the whole seconds until the window ends."""

    def __init__(self, scope: str, rate: RateLimit, retry_after: int):
        super().__init__(f"over the {scope} limit {rate}")
        self.scope = scope
        self.rate = rate
        self.retry_after = retry_after


class CounterUnavailable(Exception):
    """The counter store could not be reached or written."""


class Counters(Protocol):
    def hit(self, key: str, window_seconds: int) -> tuple[int, float]: ...


class SqliteCounters:
    """Counters in one SQLite file (WAL): every process opening it shares them."""

    def __init__(self, path: str, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._hits = 0
        self._db = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a counter lost in a power cut is harmless
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rate_counters "
            "(key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)"
        )

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        now = self._clock()
        try:
            with self._lock:
                count, expires_at = self._db.execute(
                    "INSERT INTO rate_counters (key, count, expires_at) VALUES (?1, 1, ?2) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "count = CASE WHEN expires_at <= ?3 THEN 1 ELSE count + 1 END, "
                    "expires_at = CASE WHEN expires_at <= ?3 THEN ?2 ELSE expires_at END "
                    "RETURNING count, expires_at",
                    (key, now + window_seconds, now),
                ).fetchone()
                self._hits += 1
                if self._hits % SQLITE_PURGE_EVERY == 0:
                    self._db.execute("DELETE FROM rate_counters WHERE expires_at <= ?", (now,))
        except sqlite3.Error as error:
            raise CounterUnavailable(f"SQLite: {error}") from error
        return count, expires_at - now

    def close(self) -> None:
        self._db.close()


class RedisCounters:
    """Counters in Redis, for several gateway instances behind a load balancer."""

    def __init__(self, url: str):
        self._redis = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._script = self._redis.register_script(_REDIS_HIT)

    def hit(self, key: str, window_seconds: int) -> tuple[int, float]:
        try:
            count, milliseconds = self._script(keys=[REDIS_KEY_PREFIX + key], args=[window_seconds * 1000])
        except redis.RedisError as error:
            raise CounterUnavailable(f"Redis: {type(error).__name__}") from error
        return int(count), int(milliseconds) / 1000

    def close(self) -> None:
        self._redis.close()


def open_counters(config: Config) -> Counters:
    if config.redis_url:
        return RedisCounters(config.redis_url)
    try:
        os.makedirs(config.data_dir, exist_ok=True)
        return SqliteCounters(os.path.join(config.data_dir, SQLITE_FILE))
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(f"DATA_DIR={config.data_dir!r}: não foi possível abrir o arquivo dos limites ({error})") from None


class RateLimiter:
    def __init__(self, counters: Counters, per_ip: RateLimit | None, per_key: RateLimit | None):
        self._counters = counters
        self._per_ip = per_ip
        self._per_key = per_key

    def check_ip(self, ip: str) -> None:
        self._check("ip", self._per_ip, limit_subject(ip))

    def check_key(self, key_name: str) -> None:
        self._check("key", self._per_key, key_name)

    def _check(self, scope: str, rate: RateLimit | None, subject: str) -> None:
        if rate is None:
            return
        try:
            count, reset_in = self._counters.hit(f"{scope}:{rate.window_seconds}:{subject}", rate.window_seconds)
        except CounterUnavailable as error:
            log.warning("limite por %s não verificado, contador indisponível: %s", scope, error)
            return
        if count > rate.limit:
            raise RateLimited(scope, rate, max(1, math.ceil(reset_in)))


def client_ip(peer: str | None, forwarded_for: str, trusted: tuple) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    right-most address of X-Forwarded-For that is not itself a trusted proxy."""
    address = _parse_ip(peer)
    if address is None:
        return peer or ""
    for hop in reversed([part.strip() for part in forwarded_for.split(",")] if forwarded_for else []):
        if not _is_trusted(address, trusted):
            break
        hop_address = _parse_ip(hop)
        if hop_address is None:  # a trusted proxy never writes garbage: the client did
            break
        address = hop_address
    return str(address)


def limit_subject(ip: str) -> str:
    """What the per-IP limit counts: the address, or its /64 for IPv6."""
    address = _parse_ip(ip)
    if address is None or address.version == 4:
        return ip
    return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))


def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text or "")
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address, trusted: tuple) -> bool:
    return any(address in network for network in trusted)
