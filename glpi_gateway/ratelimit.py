"""Abuse limits per client IP and per API key, counted where every worker sees them.

A counter's window starts at its first hit and lasts `window_seconds`; the
store's `count_hit` counts a hit within the limit, or answers the seconds until
the window ends (the `Retry-After` of a refusal). Counters live in the gateway's store
(SQLite under `DATA_DIR`, or Redis with `REDIS_URL`), next to the queue, reached
through a store handle of the limiter's own with a short timeout
(RATE_LIMIT_STORE_TIMEOUT). If the store fails or is slow, requests go through,
a warning is logged and `unchecked` is told (a metric): an abuse limit must not
take ticket creation down with it, nor hold every request while the store is sick.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Callable

from config import RateLimit
from glpi_gateway.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

IPV6_CLIENT_PREFIX = 64  # one IPv6 client usually holds a whole /64


class RateLimited(Exception):
    """Over a limit; `retry_after` is the whole seconds until the window ends."""

    def __init__(self, scope: str, rate: RateLimit, retry_after: int):
        super().__init__(f"over the {scope} limit {rate}")
        self.scope = scope
        self.rate = rate
        self.retry_after = retry_after


class RateLimiter:
    def __init__(
        self,
        store: Store,
        per_ip: RateLimit | None,
        per_key: RateLimit | None,
        unchecked: Callable[[str], None] = lambda scope: None,
        ipv6_prefix: int = IPV6_CLIENT_PREFIX,
        lookup_per_ip: RateLimit | None = None,
    ):
        self._store = store
        self._per_ip = per_ip
        self._per_key = per_key
        self._unchecked = unchecked  # told the scope of each limit that could not be checked
        self._ipv6_prefix = ipv6_prefix
        self._lookup_per_ip = lookup_per_ip

    def check_ip(self, ip: str) -> None:
        self._check("ip", self._per_ip, limit_subject(ip, self._ipv6_prefix))

    def check_lookup(self, ip: str) -> None:
        """GET /chamados/<protocolo>, counted apart: the protocol is a credential, guessing it is limited."""
        self._check("lookup", self._lookup_per_ip, limit_subject(ip))

    def check_key(self, key_name: str) -> None:
        self._check("key", self._per_key, key_name)

    def _check(self, scope: str, rate: RateLimit | None, subject: str) -> None:
        if rate is None:
            return
        try:
            wait = self._store.count_hit(f"{scope}:{rate.window_seconds}:{subject}", rate.window_seconds, rate.limit)
        except StoreUnavailable as error:
            log.warning(
                "limite por %s não verificado, contador indisponível: %s",
                scope,
                error,
                extra={"event": "limite_nao_verificado"},
            )
            self._unchecked(scope)
            return
        if wait is not None:
            raise RateLimited(scope, rate, max(1, math.ceil(wait)))


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


def limit_subject(ip: str, ipv6_prefix: int = IPV6_CLIENT_PREFIX) -> str:
    """What the per-IP limit counts: the address, or its network of `ipv6_prefix` bits for IPv6
    (RATE_LIMIT_IPV6_PREFIX: one subscriber often holds a /56 or a /48, not just a /64)."""
    address = _parse_ip(ip)
    if address is None or address.version == 4:
        return ip
    return str(ipaddress.ip_network(f"{address}/{ipv6_prefix}", strict=False))


def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text or "")
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple) -> bool:
    return any(address in network for network in trusted)
