"""The Redis backend of the store: the same state shared by several gateway instances (REDIS_URL).

The files of a queued request are one hash (`files:<protocolo>`, a field per file, each at most
ATTACHMENTS_MAX_BYTES), written in the same MULTI/EXEC as the entry; `queued-files` holds the bytes
of each protocol's files, summed to bound them.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Collection, Sequence
from typing import IO, Any

import redis

from glpi_gateway.store import (
    CANCELLED,
    CREATED,
    FAILED,
    QUEUED,
    REDIS_PREFIX,
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

# Atomic: the first hit of a window starts its expiry. Answers -1 when the hit is counted; else,
# the window already holding the limit, the milliseconds until it ends (the hit not counted).
_REDIS_COUNT_HIT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and tonumber(redis.call('GET', KEYS[1])) >= tonumber(ARGV[2]) then
  return ttl
end
redis.call('INCR', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return -1
"""


class RedisStore:
    """The same state in Redis, for several gateway instances. Read-modify-writes are
    WATCH/MULTI transactions (retried on conflict); the queue order is a sorted set.

    Durability is Redis's: run it with appendonly yes (appendfsync always for no loss at all).
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = REDIS_PREFIX,
        clock: Callable[[], float] = time.time,
        check: bool = True,
    ):
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._count_hit_script = client.register_script(_REDIS_COUNT_HIT)
        if check:
            self._guarded(self._redis.ping)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    # Any, not the action's own type: redis-py types its replies bytes | str whatever decode_responses.
    def _guarded(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis: {error.__class__.__name__}: {error}") from error

    def claim_key(self, key: str, fingerprint: str, protocol: str, lock_seconds: float, ttl: float) -> Claim:
        name = self._key("key", key)
        result: list[Claim] = []

        def attempt(pipe: redis.client.Pipeline) -> None:
            now = self._clock()
            # redis-py types every reply bytes | str whatever decode_responses; it is off here, so bytes.
            stored = {k.decode(): v.decode() for k, v in pipe.hgetall(name).items()}  # type: ignore[union-attr]
            existing = None
            if stored:
                answer = decode_answer(stored.get("status"), stored.get("body"), stored.get("headers"))
                existing = KeyRecord(stored["fingerprint"], stored["protocol"], answer)
            outcome = decide_claim(existing, float(stored.get("locked_until", 0)), fingerprint, now)
            pipe.multi()
            if outcome is ClaimOutcome.NEW:
                pipe.delete(name)
                pipe.hset(
                    name, mapping={"fingerprint": fingerprint, "protocol": protocol, "locked_until": now + lock_seconds}
                )
                pipe.expireat(name, int(now + ttl) + 1)
                existing = KeyRecord(fingerprint, protocol, None)
            elif outcome is ClaimOutcome.TAKEN_OVER:
                pipe.hset(name, "locked_until", now + lock_seconds)
            assert existing is not None  # decide_claim answers NEW, which sets it, whenever there was no record
            result[:] = [Claim(outcome, existing)]

        self._guarded(self._redis.transaction, attempt, name)
        return result[0]

    def finish_key(self, key: str, answer: StoredAnswer, ttl: float) -> None:
        name = self._key("key", key)
        pipe = self._redis.pipeline()
        pipe.hset(
            name,
            mapping={
                "status": answer.status,
                "body": answer.body,
                "headers": json.dumps(answer.headers),
                "locked_until": 0,
            },
        )
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
        contents = [_read_whole(stream) for stream in files]
        size = sum(len(content) for content in contents)
        name = self._key("ticket", protocol)
        seq = self._guarded(self._redis.incr, self._key("seq"))  # a gap in the numbers is harmless

        def attempt(pipe: redis.client.Pipeline) -> None:
            known = pipe.exists(name)  # a request that takes over a key may queue its protocol a second time
            if contents and not known:
                queued = sum(int(value) for value in pipe.hvals(self._key("queued-files")))
                if queued + size > max_file_bytes:
                    raise QueueFull()
            now = self._clock()
            pipe.multi()  # the record, its files and its place in line together
            if known:
                return
            pipe.hset(
                name,
                mapping={
                    "payload": payload,
                    "state": QUEUED,
                    "attempts": 0,
                    "maybe_sent": int(maybe_sent),
                    "next_attempt_at": now + delay,
                    "created_at": now,
                    "seq": seq,
                },
            )
            if contents:
                pipe.hset(self._key("files", protocol), mapping={str(i): data for i, data in enumerate(contents)})
                pipe.hset(self._key("queued-files"), protocol, size)
            pipe.zadd(self._key("queue"), {protocol: seq})
            if parent is not None:
                pipe.zadd(self._key("children", parent), {protocol: seq})
                pipe.sadd(self._key("parents"), parent)  # for purge_expired to find the list again

        self._guarded(self._redis.transaction, attempt, name, self._key("queued-files"))

    def queued_file(self, protocol: str, index: int) -> IO[bytes] | None:
        content = self._guarded(self._redis.hget, self._key("files", protocol), str(index))
        return None if content is None else io.BytesIO(content)

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

    def queued_for(self, parent: str) -> list[QueuedTicket]:
        """Members whose record expired are dropped from the parent's index as they are met."""
        index = self._key("children", parent)
        found = []
        for member in self._guarded(self._redis.zrange, index, 0, -1):
            ticket = self.ticket(member.decode())
            if ticket is None:
                self._guarded(self._redis.zrem, index, member)
            else:
                found.append(ticket)
        return found

    def queue_stats(self) -> tuple[int, float | None]:
        head = self.next_queued()  # the oldest, once stale entries are gone from the front of the line
        if head is None:
            return 0, None
        return self._guarded(self._redis.zcard, self._key("queue")), head.created_at

    def mark_attempt(self, protocol: str) -> bool:
        name = self._key("ticket", protocol)
        marked: list[bool] = []

        def attempt(pipe: redis.client.Pipeline) -> None:
            waiting = pipe.hget(name, "state") == QUEUED.encode()
            pipe.multi()
            if waiting:
                pipe.hset(name, "maybe_sent", 1)
            marked[:] = [waiting]

        self._guarded(self._redis.transaction, attempt, name)
        return marked[0]

    def reschedule(self, protocol: str, attempts: int, next_attempt_at: float, reason: str) -> None:
        name = self._key("ticket", protocol)

        def attempt(pipe: redis.client.Pipeline) -> None:
            waiting = pipe.hget(name, "state") == QUEUED.encode()  # not one cancelled during its delivery
            pipe.multi()
            if waiting:
                pipe.hset(name, mapping={"attempts": attempts, "next_attempt_at": next_attempt_at, "reason": reason})

        self._guarded(self._redis.transaction, attempt, name)

    def finish_ticket(self, protocol: str, state: str, ticket_id: int | None, reason: str | None, ttl: float) -> None:
        name = self._key("ticket", protocol)
        expires_at = int(self._clock() + ttl) + 1
        pipe = self._redis.pipeline()
        pipe.hset(
            name, mapping={"state": state, "ticket_id": "" if ticket_id is None else ticket_id, "reason": reason or ""}
        )
        if state == CREATED:  # in GLPI: GET /chamados reads only the state; a failed one can be retried
            pipe.hdel(name, "payload")
            pipe.delete(self._key("files", protocol))
            pipe.hdel(self._key("queued-files"), protocol)
        else:
            pipe.expireat(self._key("files", protocol), expires_at)
        pipe.zrem(self._key("queue"), protocol)
        pipe.expireat(name, expires_at)
        self._guarded(pipe.execute)

    def list_tickets(self, states: Collection[str] | None = None) -> list[QueuedTicket]:
        """SCANs the prefix's ticket records: a read that never blocks Redis, one batch at a time."""
        first = self._key("ticket", "")
        names = self._guarded(lambda: list(self._redis.scan_iter(match=_glob_escape(first) + "*", count=1000)))
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        found = []
        for name, stored in zip(names, self._guarded(pipe.execute), strict=True):
            if not stored:  # expired since the scan
                continue
            ticket = _redis_ticket(name.decode()[len(first) :], stored)
            if states is None or ticket.state in states:
                found.append((int(stored.get(b"seq", 0)), ticket))
        found.sort(key=lambda pair: pair[0])
        return [ticket for _, ticket in found]

    def retry_ticket(self, protocol: str) -> QueuedTicket | None:
        name = self._key("ticket", protocol)

        def attempt(pipe: redis.client.Pipeline) -> None:
            stored = {_text(key): _text(value) for key, value in pipe.hgetall(name).items()}
            state = stored.get("state")
            pipe.multi()
            if state == QUEUED:
                pipe.hset(name, "next_attempt_at", self._clock())
            elif state in (FAILED, CANCELLED):
                pipe.hset(
                    name,
                    mapping={
                        "state": QUEUED,
                        "attempts": 0,
                        "reason": "",
                        "ticket_id": "",
                        "next_attempt_at": self._clock(),
                    },
                )
                pipe.persist(name)
                pipe.persist(self._key("files", protocol))
                pipe.zadd(self._key("queue"), {protocol: int(stored["seq"])})  # its place of arrival

        self._guarded(self._redis.transaction, attempt, name)
        return self.ticket(protocol)

    def cancel_ticket(self, protocol: str, reason: str, ttl: float) -> QueuedTicket | None:
        name = self._key("ticket", protocol)

        def attempt(pipe: redis.client.Pipeline) -> None:
            waiting = pipe.hget(name, "state") == QUEUED.encode()
            pipe.multi()
            if waiting:
                pipe.hset(name, mapping={"state": CANCELLED, "reason": reason})
                pipe.zrem(self._key("queue"), protocol)
                pipe.expireat(name, int(self._clock() + ttl) + 1)
                pipe.expireat(self._key("files", protocol), int(self._clock() + ttl) + 1)

        self._guarded(self._redis.transaction, attempt, name)
        return self.ticket(protocol)

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        lease = self._key("lease", name)
        milliseconds = max(1, int(seconds * 1000))
        if self._guarded(self._redis.set, lease, owner, nx=True, px=milliseconds):
            return True
        taken: list[bool] = []

        def renew(pipe: redis.client.Pipeline) -> None:
            holder = pipe.get(lease)
            pipe.multi()
            mine = holder is None or holder.decode() == owner  # type: ignore[union-attr]  # bytes: see claim_key
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
            if holder is not None and holder.decode() == owner:  # type: ignore[union-attr]  # bytes: see claim_key
                pipe.delete(lease)

        self._guarded(self._redis.transaction, release, lease)

    def remember_protocol(self, protocol: str, ticket_id: int, ttl: float) -> None:
        self._guarded(self._redis.set, self._key("protocol", protocol), ticket_id, px=max(1, int(ttl * 1000)))

    def protocol_ticket(self, protocol: str) -> int | None:
        value = self._guarded(self._redis.get, self._key("protocol", protocol))
        return int(value) if value is not None else None

    def count_hit(self, key: str, window_seconds: int, limit: int) -> float | None:
        milliseconds = int(
            self._guarded(
                self._count_hit_script, keys=[self._key("ratelimit", key)], args=[window_seconds * 1000, limit]
            )
        )
        return None if milliseconds < 0 else milliseconds / 1000

    def purge_expired(self) -> None:
        """Redis expires finished records, their files and the counters by itself; what is left is to
        stop counting the bytes of files that expired, and to drop expired entries from their
        parents' lists (an emptied list is gone: Redis deletes an empty sorted set)."""
        counted = self._key("queued-files")
        for protocol in self._guarded(self._redis.hkeys, counted):
            if not self._guarded(self._redis.exists, self._key("files", protocol.decode())):
                self._guarded(self._redis.hdel, counted, protocol)
        parents = self._key("parents")
        for parent in self._guarded(self._redis.smembers, parents):
            self.queued_for(parent.decode())
            if not self._guarded(self._redis.exists, self._key("children", parent.decode())):
                self._guarded(self._redis.srem, parents, parent)

    def close(self) -> None:
        self._redis.close()


def _read_whole(stream: IO[bytes]) -> bytes:
    stream.seek(0)
    content = stream.read()
    stream.seek(0)
    return content


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob_escape(text: str) -> str:
    """`text` matched literally by a SCAN MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _redis_ticket(protocol: str, stored: dict[bytes, bytes]) -> QueuedTicket:
    fields = {key.decode(): value.decode() for key, value in stored.items()}
    return QueuedTicket(
        protocol=protocol,
        payload=fields.get("payload", ""),  # cleared once the ticket is finished
        state=fields["state"],
        ticket_id=int(fields["ticket_id"]) if fields.get("ticket_id") else None,
        reason=fields.get("reason") or None,
        attempts=int(fields.get("attempts", 0)),
        maybe_sent=fields.get("maybe_sent") == "1",
        next_attempt_at=float(fields["next_attempt_at"]),
        created_at=float(fields["created_at"]),
    )
