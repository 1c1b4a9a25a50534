"""The `Idempotency-Key` header of POST /criar-chamado, as Stripe and Zendesk do it.

The first request with a key binds it to a fingerprint of its validated body and, once it has
a final answer, stores that answer; a repeat with the same body gets the stored answer again.
A ticket created by a JSON request stores nothing more: the protocol it remembers for
GET /chamados rebuilds its 201 (`claim`'s `created_answer`).
Which answers are final (stored): 2xx (201 created, 202 queued) and the 4xx that GLPI's data
decided (unknown CNPJ, ambiguous CNPJ, unknown category, ticket refused). Not stored, so the
client can retry with the same key: 5xx/503 (GLPI or the store failing) and 401 (the gateway's
own GLPI credentials). Validation errors never reach the key: the body is validated first.

A request without the header gets an implicit key made of the caller and the body, kept for
DEDUPE_WINDOW_SECONDS: the same submission sent twice (a retried POST, a double click, a
script that retries on timeout) opens one ticket, and the repeat gets the first one's answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from glpi_gateway.store import Claim, ClaimOutcome, Store, StoredAnswer

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IN_FLIGHT_RETRY_AFTER = 2
KEY_PATTERN = r"[A-Za-z0-9._:+/=~-]{1,255}"
_SANE_KEY = re.compile(KEY_PATTERN)
MIN_LOCK_SECONDS = 60.0
GLPI_CALLS_PER_REQUEST = 8  # a cold request: setup checks, category, entity, ticket search, POST


class InvalidIdempotencyKey(ValueError):
    """The header is present but is not 1-255 characters of letters, digits and ._:+/=~-."""


class IdempotencyKeyInFlight(Exception):
    """Another request with the same key is still running."""


class IdempotencyKeyReused(Exception):
    """The key was used before with a different body."""


@dataclass(frozen=True)
class HeldKey:
    """A key a request has claimed, until its answer settles it: stored for `ttl` seconds when
    the answer is one to give again, released otherwise."""

    key: str
    ttl: float
    explicit: bool  # sent by the client, or implicit (a keyless request's caller and body)

    def keeps(self, status: int) -> bool:
        return is_final(status) if self.explicit else is_final_without_key(status)


def idempotency_key(header: str | None) -> str | None:
    if header is None:
        return None
    if not _SANE_KEY.fullmatch(header):
        raise InvalidIdempotencyKey(header)
    return header


def implicit_key(caller: str | None, canonical_body: str) -> str:
    """The key of a request sent without one: the caller (API key name) and the body itself.
    `#` cannot occur in a client's key, so the two kinds of key never meet."""
    return f"{caller or ''}#{fingerprint(canonical_body)}"


def is_final_without_key(status: int) -> bool:
    """Which answers an identical keyless repeat gets again: only those that created or queued a
    ticket. A refusal (e.g. an unknown CNPJ) is answered afresh: GLPI's data may have been fixed."""
    return status in (201, 202)


def fingerprint(canonical_body: str) -> str:
    return hashlib.sha256(canonical_body.encode("utf-8")).hexdigest()


def lock_seconds(glpi_timeout: float) -> float:
    """How long a request holds its key: past this it is presumed dead (its worker was killed)
    and a repeat takes over, looking for the ticket it may have created before sending again."""
    return max(MIN_LOCK_SECONDS, GLPI_CALLS_PER_REQUEST * glpi_timeout)


def claim(
    store: Store,
    key: str,
    canonical_body: str,
    protocol: str,
    lock: float,
    ttl: float,
    created_answer: Callable[[str, int], StoredAnswer] | None = None,
) -> Claim:
    """NEW, TAKEN_OVER or REPLAY; raises when the request must not go ahead. The key lives at
    least as long as its lock, however short IDEMPOTENCY_TTL is: a key that vanished while its
    request runs would let a repeat through with a new protocol.

    With `created_answer`, a key without a stored answer whose protocol names a ticket is
    answered as that ticket's creation, `created_answer(protocol, ticket_id)`: the caller stores
    no answer for such a request (its protocol is the answer), and a repeat that comes while
    the first request is still answering gets the ticket rather than "em andamento"."""
    claimed = store.claim_key(key, fingerprint(canonical_body), protocol, lock, max(ttl, lock))
    if claimed.outcome is ClaimOutcome.MISMATCH:
        raise IdempotencyKeyReused(key)
    if created_answer is not None and claimed.outcome in (ClaimOutcome.IN_FLIGHT, ClaimOutcome.TAKEN_OVER):
        ticket_id = store.protocol_ticket(claimed.record.protocol)
        if ticket_id is not None:
            answer = created_answer(claimed.record.protocol, ticket_id)
            return Claim(ClaimOutcome.REPLAY, replace(claimed.record, answer=answer))
    if claimed.outcome is ClaimOutcome.IN_FLIGHT:
        raise IdempotencyKeyInFlight(key)
    return claimed


def is_final(status: int) -> bool:
    """Whether an answer is stored for replay (see the module docstring)."""
    return status < 500 and status != 401
