"""Generic in-process helpers for caching GLPI answers: an expiring dict and single-flight calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

CACHE_MAX_ENTRIES = 10_000

T = TypeVar("T")


class TtlCache(Generic[T]):
    """A small thread-safe dict whose entries expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = CACHE_MAX_ENTRIES):
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def put(self, key: str, value: T, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                now = self._clock()
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self._max_entries:
                    self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (self._clock() + ttl, value)


class SingleFlight:
    """Concurrent calls for the same key share one execution of the function."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Flight] = {}

    def do(self, key: str, function: Callable[[], T]) -> T:
        with self._lock:
            flight = self._calls.get(key)
            leader = flight is None
            if flight is None:
                flight = self._calls[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result
        try:
            flight.result = function()
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._calls[key]
            flight.done.set()
        return flight.result


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
