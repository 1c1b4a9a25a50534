"""Contract of ratelimit.py: who the client is, and the limiter over the store's counters
(the counters themselves are part of the store's contract, tests/test_store.py)."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from config import RateLimit
from glpi_gateway.ratelimit import RateLimited, RateLimiter, client_ip, limit_subject
from glpi_gateway.store.sqlite import SqliteStore
from tests.helpers import Clock

PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


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


# --- the limiter --------------------------------------------------------------------


def test_limiter_refuses_past_the_limit_with_the_seconds_until_the_window_ends(tmp_path):
    clock = Clock(1_000_000.0)
    limiter = RateLimiter(SqliteStore(str(tmp_path), clock=clock), RateLimit(2, 3600), None)
    limiter.check_ip("198.51.100.1")
    clock.now += 1000.5
    limiter.check_ip("198.51.100.1")
    with pytest.raises(RateLimited) as caught:
        limiter.check_ip("198.51.100.1")
    assert caught.value.scope == "ip" and caught.value.retry_after == 2600
    limiter.check_ip("198.51.100.2")  # another client has its own count
    limiter.check_key("any")  # no per-key limit configured


def test_limiter_lets_requests_through_and_warns_when_the_store_fails(tmp_path, caplog):
    store = SqliteStore(str(tmp_path))
    store.close()
    limiter = RateLimiter(store, RateLimit(1, 60), RateLimit(1, 60))
    with caplog.at_level(logging.WARNING, logger="glpi_gateway"):
        for _ in range(3):
            limiter.check_ip("198.51.100.1")
            limiter.check_key("site")
    assert any(getattr(record, "event", None) == "limite_nao_verificado" for record in caplog.records)
