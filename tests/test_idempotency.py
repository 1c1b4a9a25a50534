"""idempotency.py: which keys are sane, what a fingerprint covers, which answers are stored."""
from __future__ import annotations

import uuid

import pytest

from delivery import encode_request
from idempotency import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    claim,
    fingerprint,
    idempotency_key,
    is_final,
    lock_seconds,
)
from store import ClaimOutcome, SqliteStore, StoredAnswer
from test_gateway import ticket_request


@pytest.mark.parametrize("key", [str(uuid.uuid4()), "a", "form-42.submit:7", "YWJj+/=~_", "x" * 255])
def test_sane_keys_are_accepted(key):
    assert idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tem espaço", "ção", "a\nb", "a;b"])
def test_insane_keys_are_refused(key):
    with pytest.raises(InvalidIdempotencyKey):
        idempotency_key(key)


def test_no_header_means_no_key():
    assert idempotency_key(None) is None


def test_fingerprint_covers_the_validated_body():
    base = encode_request(ticket_request())
    assert fingerprint(base) == fingerprint(encode_request(ticket_request()))
    assert fingerprint(base) != fingerprint(encode_request(ticket_request(urgencia=5)))


@pytest.mark.parametrize("status, stored", [
    (201, True), (202, True), (400, True), (404, True), (409, True),
    (401, False), (500, False), (502, False), (503, False),
])
def test_final_answers_are_stored_and_server_side_failures_are_not(status, stored):
    assert is_final(status) is stored


def test_key_lock_outlives_a_request_even_with_a_long_glpi_timeout():
    assert lock_seconds(2) == 60
    assert lock_seconds(30) == 240


def test_claim_raises_for_another_body_and_for_a_request_in_flight(tmp_path):
    store = SqliteStore(str(tmp_path))
    body = encode_request(ticket_request())
    assert claim(store, "k", body, "p1", 60, 3600).outcome is ClaimOutcome.NEW
    with pytest.raises(IdempotencyKeyInFlight):
        claim(store, "k", body, "p2", 60, 3600)
    with pytest.raises(IdempotencyKeyReused):
        claim(store, "k", encode_request(ticket_request(urgencia=1)), "p2", 60, 3600)
    store.finish_key("k", StoredAnswer(201, "{}", {}), 3600)
    assert claim(store, "k", body, "p3", 60, 3600).outcome is ClaimOutcome.REPLAY
    store.close()
