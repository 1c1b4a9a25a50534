"""Contract of ratelimit.py: who the client is, and counters shared through SQLite or Redis."""
from __future__ import annotations

import ipaddress
import logging
import uuid

import pytest

from config import RateLimit
from conftest import free_port
from ratelimit import (
    CounterUnavailable,
    RateLimited,
    RateLimiter,
    RedisCounters,
    SqliteCounters,
    client_ip,
    limit_subject,
)

PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- the client's address ----------------------------------------------------------


@pytest.mark.parametrize(
    "peer, forwarded_for, expected",
    [
        ("203.0.113.9", "", "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # untrusted peer: its header is ignored
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client cannot push itself aside
        ("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),  # chain of trusted proxies
        ("127.0.0.1", "10.9.9.9, 10.1.2.3", "10.9.9.9"),  # every hop trusted: the left-most
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1, garbage", "127.0.0.1"),
        ("127.0.0.1", "garbage, 198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", " 2001:db8::1 ", "2001:db8::1"),
        ("::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"),  # IPv4-mapped peer
        ("127.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_ip_trusts_x_forwarded_for_only_through_trusted_proxies(peer, forwarded_for, expected):
    assert client_ip(peer, forwarded_for, PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_ip("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_ipv6_clients_are_limited_per_slash_64_and_ipv4_per_address():
    assert limit_subject("2001:db8:1:2:aaaa::1") == limit_subject("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert limit_subject("198.51.100.1") == "198.51.100.1"


# --- SQLite counters ----------------------------------------------------------------


def test_sqlite_counter_counts_within_the_window_and_restarts_after_it(tmp_path):
    clock = Clock()
    counters = SqliteCounters(str(tmp_path / "c.sqlite3"), clock=clock)
    assert counters.hit("a", 60) == (1, 60)
    clock.now += 20
    assert counters.hit("a", 60) == (2, 40)
    assert counters.hit("b", 60) == (1, 60)
    clock.now += 40
    assert counters.hit("a", 60) == (1, 60)


def test_sqlite_counters_are_shared_by_every_connection_to_the_file(tmp_path):
    path = str(tmp_path / "c.sqlite3")
    first, second = SqliteCounters(path), SqliteCounters(path)
    assert [first.hit("k", 60)[0], second.hit("k", 60)[0], first.hit("k", 60)[0]] == [1, 2, 3]


def test_a_broken_sqlite_file_is_reported_as_counter_unavailable(tmp_path):
    counters = SqliteCounters(str(tmp_path / "c.sqlite3"))
    counters.close()
    with pytest.raises(CounterUnavailable):
        counters.hit("k", 60)


# --- Redis counters -----------------------------------------------------------------


def test_redis_counter_counts_within_the_window_and_reports_the_time_left(redis_url):
    counters = RedisCounters(redis_url)
    key = f"test:{uuid.uuid4().hex}"
    assert counters.hit(key, 60)[0] == 1
    count, reset_in = counters.hit(key, 60)
    assert count == 2 and 0 < reset_in <= 60
    counters.close()


def test_redis_counters_are_shared_by_every_client(redis_url):
    first, second = RedisCounters(redis_url), RedisCounters(redis_url)
    key = f"test:{uuid.uuid4().hex}"
    assert [first.hit(key, 60)[0], second.hit(key, 60)[0], first.hit(key, 60)[0]] == [1, 2, 3]


def test_an_unreachable_redis_is_reported_as_counter_unavailable():
    with pytest.raises(CounterUnavailable):
        RedisCounters(f"redis://127.0.0.1:{free_port()}/0").hit("k", 60)


# --- the limiter --------------------------------------------------------------------


def test_limiter_refuses_past_the_limit_with_the_seconds_until_the_window_ends(tmp_path):
    clock = Clock()
    limiter = RateLimiter(SqliteCounters(str(tmp_path / "c.sqlite3"), clock=clock), RateLimit(2, 3600), None)
    limiter.check_ip("198.51.100.1")
    clock.now += 1000.5
    limiter.check_ip("198.51.100.1")
    with pytest.raises(RateLimited) as caught:
        limiter.check_ip("198.51.100.1")
    assert caught.value.scope == "ip" and caught.value.retry_after == 2600
    limiter.check_ip("198.51.100.2")  # another client has its own count
    limiter.check_key("any")  # no per-key limit configured


def test_limiter_lets_requests_through_and_warns_when_the_counters_fail(caplog):
    class Failing:
        def hit(self, key, window_seconds):
            raise CounterUnavailable("Redis: ConnectionError")

    limiter = RateLimiter(Failing(), RateLimit(1, 60), RateLimit(1, 60))
    with caplog.at_level(logging.WARNING, logger="glpi_gateway"):
        for _ in range(3):
            limiter.check_ip("198.51.100.1")
            limiter.check_key("site")
    assert "contador indisponível" in caplog.text
