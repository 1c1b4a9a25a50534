"""The store's contract, run against both backends: SQLite (a file in a temporary DATA_DIR) and Redis."""

from __future__ import annotations

import io
import os
import stat
import threading
import time

import pytest
import redis

from glpi_gateway.store import (
    CANCELLED,
    CREATED,
    FAILED,
    QUEUED,
    ClaimOutcome,
    QueueFull,
    StoredAnswer,
    StoreUnavailable,
    open_store,
)
from glpi_gateway.store.redis import RedisStore
from glpi_gateway.store.sqlite import FILES_DIR, ORPHAN_GRACE_SECONDS, SqliteStore
from tests.helpers import Clock

LOCK = 60.0
TTL = 3600.0


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def make_store(request, tmp_path, clock):
    """Opens stores sharing one backend, as separate gateway processes would."""
    opened = []

    def _make():
        if request.param == "sqlite":
            store = SqliteStore(str(tmp_path / "data"), clock=clock)
        else:
            url = request.getfixturevalue("redis_url")
            prefix = request.getfixturevalue("redis_prefix")
            store = RedisStore(redis.Redis.from_url(url), prefix, clock=clock)
        opened.append(store)
        return store

    yield _make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()


# --- idempotency keys -----------------------------------------------------------------------


def test_first_claim_of_a_key_is_new_and_binds_the_protocol(store):
    claim = store.claim_key("k1", "fp", "p1", LOCK, TTL)
    assert claim.outcome is ClaimOutcome.NEW
    assert claim.record.protocol == "p1" and claim.record.answer is None


def test_repeat_while_the_first_runs_is_in_flight(store):
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    claim = store.claim_key("k1", "fp", "p2", LOCK, TTL)
    assert claim.outcome is ClaimOutcome.IN_FLIGHT and claim.record.protocol == "p1"


def test_repeat_with_another_body_is_a_mismatch_even_after_the_answer(store):
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    assert store.claim_key("k1", "other", "p2", LOCK, TTL).outcome is ClaimOutcome.MISMATCH
    store.finish_key("k1", StoredAnswer(201, '{"ticket_id": 5}', {}), TTL)
    assert store.claim_key("k1", "other", "p2", LOCK, TTL).outcome is ClaimOutcome.MISMATCH


def test_finished_key_replays_its_answer_with_headers(store):
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    store.finish_key("k1", StoredAnswer(202, '{"status": "enfileirado"}', {"Location": "/chamados/p1"}), TTL)
    claim = store.claim_key("k1", "fp", "p2", LOCK, TTL)
    assert claim.outcome is ClaimOutcome.REPLAY
    assert claim.record.answer == StoredAnswer(202, '{"status": "enfileirado"}', {"Location": "/chamados/p1"})
    assert claim.record.protocol == "p1"


def test_released_key_is_taken_over_with_the_same_protocol(store):
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    store.release_key("k1")
    claim = store.claim_key("k1", "fp", "p2", LOCK, TTL)
    assert claim.outcome is ClaimOutcome.TAKEN_OVER and claim.record.protocol == "p1"
    assert store.claim_key("k1", "fp", "p3", LOCK, TTL).outcome is ClaimOutcome.IN_FLIGHT


def test_a_key_whose_holder_died_is_taken_over_once_its_lock_expires(store, clock):
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    clock.now += LOCK + 1
    assert store.claim_key("k1", "fp", "p2", LOCK, TTL).outcome is ClaimOutcome.TAKEN_OVER


def test_keys_are_independent(store):
    assert store.claim_key("k1", "fp", "p1", LOCK, TTL).outcome is ClaimOutcome.NEW
    assert store.claim_key("k2", "fp", "p2", LOCK, TTL).outcome is ClaimOutcome.NEW


def run_at_once(count: int, action) -> list:
    """`action(index)` in `count` threads released together; their results."""
    results = []
    start = threading.Barrier(count)

    def run(index):
        start.wait()
        results.append(action(index))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_claims_from_separate_stores_let_exactly_one_through(make_store):
    stores = [make_store() for _ in range(4)]
    outcomes = run_at_once(
        12, lambda index: stores[index % 4].claim_key("shared", "fp", f"p{index}", LOCK, TTL).outcome
    )
    assert outcomes.count(ClaimOutcome.NEW) == 1
    assert outcomes.count(ClaimOutcome.IN_FLIGHT) == 11


def test_sqlite_key_expires_after_its_ttl(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    store.finish_key("k1", StoredAnswer(201, "{}", {}), TTL)
    clock.now += TTL + 1
    assert store.claim_key("k1", "other", "p2", LOCK, TTL).outcome is ClaimOutcome.NEW
    store.close()


@pytest.mark.slow
def test_redis_key_carries_an_expiry_near_its_ttl(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    store.claim_key("k1", "fp", "p1", LOCK, TTL)
    store.finish_key("k1", StoredAnswer(201, "{}", {}), 100)
    assert 0 < client.ttl(f"{redis_prefix}key:k1") <= 101
    store.close()


# --- the queue ------------------------------------------------------------------------------


def test_queue_hands_out_tickets_in_arrival_order(store):
    for protocol in ("a1", "b2", "c3"):
        store.enqueue(protocol, f'{{"p": "{protocol}"}}', maybe_sent=False)
    assert store.next_queued().protocol == "a1"
    store.finish_ticket("a1", CREATED, 10, None, TTL)
    assert store.next_queued().protocol == "b2"
    store.finish_ticket("b2", FAILED, None, '{"codigo": "x"}', TTL)
    assert store.next_queued().protocol == "c3"
    store.finish_ticket("c3", CREATED, 11, None, TTL)
    assert store.next_queued() is None


def test_queued_ticket_reports_its_state_through_its_life(store, clock):
    store.enqueue("a1", '{"x": 1}', maybe_sent=False)
    queued = store.ticket("a1")
    assert (queued.state, queued.attempts, queued.maybe_sent, queued.payload) == (QUEUED, 0, False, '{"x": 1}')
    store.mark_attempt("a1")
    store.reschedule("a1", 1, clock.now + 5, "TIMEOUT")
    queued = store.ticket("a1")
    assert (queued.attempts, queued.maybe_sent, queued.reason) == (1, True, "TIMEOUT")
    assert queued.next_attempt_at == pytest.approx(clock.now + 5)
    store.finish_ticket("a1", CREATED, 42, None, TTL)
    created = store.ticket("a1")
    assert (created.state, created.ticket_id) == (CREATED, 42)


def test_a_queued_ticket_can_wait_before_its_first_attempt(store, clock):
    store.enqueue("a1", "{}", maybe_sent=True, delay=7)
    assert store.next_queued().next_attempt_at == pytest.approx(clock.now + 7)


def test_unknown_protocol_is_none(store):
    assert store.ticket("nope") is None


def test_queue_written_by_one_store_is_seen_by_another(make_store):
    make_store().enqueue("a1", "{}", maybe_sent=True)
    assert make_store().next_queued().maybe_sent is True


def test_entries_queued_for_a_parent_are_listed_in_arrival_order_whatever_their_state(make_store):
    store = make_store()
    store.enqueue("t1", "{}", maybe_sent=False)
    for protocol in ("c1", "c2", "c3"):
        store.enqueue(protocol, "{}", maybe_sent=False, parent="t1")
    store.enqueue("other", "{}", maybe_sent=False, parent="t2")
    store.finish_ticket("c1", FAILED, None, '{"codigo": "x"}', TTL)
    store.finish_ticket("c2", CREATED, 5, None, TTL)
    listed = make_store().queued_for("t1")
    assert [(entry.protocol, entry.state) for entry in listed] == [("c1", FAILED), ("c2", CREATED), ("c3", QUEUED)]
    assert store.queued_for("c1") == [] and store.queued_for("nothing") == []


def test_sqlite_an_expired_child_leaves_its_parents_list(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.enqueue("c1", "{}", maybe_sent=False, parent="t1")
    store.finish_ticket("c1", CREATED, 1, None, TTL)
    clock.now += TTL + 1
    assert store.queued_for("t1") == []
    store.purge_expired()
    assert store.queued_for("t1") == []
    store.close()


def test_sqlite_finished_ticket_is_purged_after_its_ttl(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.enqueue("a1", "{}", maybe_sent=False)
    store.finish_ticket("a1", CREATED, 1, None, TTL)
    clock.now += TTL + 1
    assert store.ticket("a1") is None
    store.purge_expired()
    store.close()


# --- the drainer's lease --------------------------------------------------------------------


def test_lease_has_one_holder_who_can_renew_and_release_it(store):
    assert store.acquire_lease("delivery", "a", 30)
    assert not store.acquire_lease("delivery", "b", 30)
    assert store.acquire_lease("delivery", "a", 30)
    store.release_lease("delivery", "b")  # not b's: nothing happens
    assert not store.acquire_lease("delivery", "b", 30)
    store.release_lease("delivery", "a")
    assert store.acquire_lease("delivery", "b", 30)


def test_sqlite_lease_of_a_dead_holder_expires(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    assert store.acquire_lease("delivery", "a", 10)
    clock.now += 11
    assert store.acquire_lease("delivery", "b", 10)
    store.close()


@pytest.mark.slow
def test_redis_lease_of_a_dead_holder_expires(redis_url, redis_prefix):
    store = RedisStore(redis.Redis.from_url(redis_url), redis_prefix)
    assert store.acquire_lease("delivery", "a", 0.05)
    time.sleep(0.2)
    assert store.acquire_lease("delivery", "b", 10)
    store.close()


# --- rate-limit counters ----------------------------------------------------------------------


def test_counter_takes_hits_up_to_its_limit_then_reports_the_time_left_in_its_window(store, clock):
    assert store.count_hit("ip:60:198.51.100.1", 60, 2) is None
    clock.now += 20
    assert store.count_hit("ip:60:198.51.100.1", 60, 2) is None
    assert 0 < store.count_hit("ip:60:198.51.100.1", 60, 2) <= 60  # Redis keeps its own clock
    assert store.count_hit("ip:60:198.51.100.2", 60, 2) is None  # another key counts apart


def test_counters_are_shared_by_every_store_on_the_backend(make_store):
    first, second = make_store(), make_store()
    assert [first.count_hit("k", 60, 2), second.count_hit("k", 60, 2)] == [None, None]
    assert first.count_hit("k", 60, 2) is not None


def test_concurrent_hits_from_separate_stores_take_exactly_the_limit(make_store):
    stores = [make_store() for _ in range(4)]
    answers = run_at_once(12, lambda index: stores[index % 4].count_hit("shared", 60, 5))
    assert answers.count(None) == 5


def test_sqlite_counter_restarts_after_its_window_and_is_purged_once_expired(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    assert store.count_hit("a", 60, 2) is None
    store.count_hit("b", 10, 2)
    clock.now += 20
    assert store.count_hit("a", 60, 2) is None
    store.purge_expired()  # "b" expired, "a" still counting
    assert store._connection().execute("SELECT key FROM rate_counters").fetchall() == [("a",)]
    assert store.count_hit("a", 60, 2) == 40
    clock.now += 40
    assert store.count_hit("a", 60, 2) is None
    store.close()


@pytest.mark.slow
def test_redis_counter_lives_under_the_store_prefix_and_expires_with_its_window(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    store.count_hit("ip:60:198.51.100.1", 60, 10)
    assert 0 < client.pttl(f"{redis_prefix}ratelimit:ip:60:198.51.100.1") <= 60_000
    store.close()


# --- protocols of created tickets -----------------------------------------------------------------


def test_a_remembered_protocol_gives_its_ticket_and_an_unknown_one_none(store):
    store.remember_protocol("p1", 42, TTL)
    assert store.protocol_ticket("p1") == 42
    assert store.protocol_ticket("p2") is None


def test_a_protocol_remembered_by_one_store_is_seen_by_another(make_store):
    make_store().remember_protocol("p1", 7, TTL)
    assert make_store().protocol_ticket("p1") == 7


def test_sqlite_protocol_expires_after_its_ttl_and_is_purged(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.remember_protocol("p1", 42, TTL)
    clock.now += TTL + 1
    assert store.protocol_ticket("p1") is None
    store.purge_expired()
    assert store._connection().execute("SELECT protocol FROM protocols").fetchall() == []
    store.close()


@pytest.mark.slow
def test_redis_protocol_lives_under_the_store_prefix_with_its_ttl(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    store.remember_protocol("p1", 42, 100)
    assert 0 < client.pttl(f"{redis_prefix}protocol:p1") <= 100_000
    store.close()


def test_a_counter_on_a_failed_sqlite_store_is_store_unavailable(tmp_path):
    store = SqliteStore(str(tmp_path))
    store.close()
    with pytest.raises(StoreUnavailable):
        store.count_hit("k", 60, 10)


# --- opening ----------------------------------------------------------------------------------


def test_sqlite_store_creates_its_data_dir_and_survives_a_reopen(tmp_path):
    data_dir = tmp_path / "nested" / "data"
    first = open_store(str(data_dir), None)
    first.enqueue("a1", "{}", maybe_sent=False)
    first.close()
    assert (data_dir / "gateway.sqlite3").exists()
    second = open_store(str(data_dir), None)
    assert second.next_queued().protocol == "a1"
    second.close()


def test_sqlite_store_runs_in_wal_mode(tmp_path):
    store = SqliteStore(str(tmp_path))
    assert store._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def _synchronous_of_each_write(store: SqliteStore, write) -> list[int]:
    """The `synchronous` setting (2 FULL, 1 NORMAL) each statement `write` makes that changes the file runs with."""
    db = store._connection()
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        write()
    finally:
        db.set_trace_callback(None)
    levels, level = [], 1
    for statement in statements:
        if statement.startswith("PRAGMA synchronous="):
            level = 2 if statement.endswith("FULL") else 1
        elif statement.startswith(("INSERT", "UPDATE", "DELETE")):
            levels.append(level)
    return levels


def test_sqlite_commits_what_the_queue_promises_with_an_fsync(tmp_path):
    store = SqliteStore(str(tmp_path))
    assert _synchronous_of_each_write(store, lambda: store.enqueue("p1", "{}", maybe_sent=False)) == [2]
    assert _synchronous_of_each_write(store, lambda: store.mark_attempt("p1")) == [2]
    assert _synchronous_of_each_write(store, lambda: store.acquire_lease("entrega", "eu", 10)) == [2]
    store.close()


def test_sqlite_writes_keys_protocols_and_counters_without_waiting_for_the_disk(tmp_path):
    store = SqliteStore(str(tmp_path))
    assert _synchronous_of_each_write(store, lambda: store.claim_key("k", "f", "p", 60, 60)) == [1]
    assert _synchronous_of_each_write(store, lambda: store.remember_protocol("p", 7, 60)) == [1]
    assert _synchronous_of_each_write(store, lambda: store.count_hit("ip:1", 60, 10)) == [1]
    assert store._connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL after a durable one
    store.close()


def test_sqlite_write_waiting_longer_than_the_timeout_for_its_turn_is_store_unavailable(tmp_path):
    SqliteStore(str(tmp_path)).close()
    store = SqliteStore(str(tmp_path), busy_timeout=0.05, create_schema=False)
    holding, release = threading.Event(), threading.Event()

    def hold_the_turn() -> None:
        with store._transaction():
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    holding.wait(5)
    try:
        with pytest.raises(StoreUnavailable):
            store.count_hit("ip:1", 60, 10)
    finally:
        release.set()
        holder.join()
    assert store.count_hit("ip:1", 60, 10) is None  # the turn is free again
    store.close()


def test_unreachable_redis_is_store_unavailable():
    with pytest.raises(StoreUnavailable):
        open_store("unused", "redis://127.0.0.1:1/0")


def test_queue_stats_count_the_waiting_tickets_and_date_the_oldest(store, clock):
    assert store.queue_stats() == (0, None)
    first_at = clock.now
    store.enqueue("a1", "{}", maybe_sent=False)
    clock.now += 5
    store.enqueue("b2", "{}", maybe_sent=False, delay=30)
    store.enqueue("c3", "{}", maybe_sent=False)
    depth, oldest = store.queue_stats()
    assert depth == 3 and oldest == pytest.approx(first_at)
    store.reschedule("a1", 1, clock.now + 60, "TIMEOUT")  # still waiting: still counted
    assert store.queue_stats()[0] == 3
    store.finish_ticket("a1", CREATED, 10, None, TTL)
    depth, oldest = store.queue_stats()
    assert depth == 2 and oldest == pytest.approx(first_at + 5)
    store.finish_ticket("b2", FAILED, None, '{"codigo": "x"}', TTL)
    store.finish_ticket("c3", CREATED, 11, None, TTL)
    assert store.queue_stats() == (0, None)


def test_queue_stats_see_what_another_store_queued(make_store):
    make_store().enqueue("a1", "{}", maybe_sent=False)
    assert make_store().queue_stats()[0] == 1


def test_queueing_a_protocol_twice_keeps_the_first_record(store):
    store.enqueue("a1", '{"first": true}', maybe_sent=False)
    store.enqueue("a1", '{"second": true}', maybe_sent=True)
    assert store.ticket("a1").payload == '{"first": true}'
    store.finish_ticket("a1", CREATED, 3, None, TTL)
    assert store.next_queued() is None


# --- the queue command: listing, retrying, cancelling -------------------------------------------


def test_list_tickets_gives_every_state_in_arrival_order_and_filters_by_state(store):
    for protocol in ("a1", "b2", "c3", "d4"):
        store.enqueue(protocol, "{}", maybe_sent=False)
    store.finish_ticket("b2", FAILED, None, '{"codigo": "x"}', TTL)
    store.finish_ticket("c3", CREATED, 7, None, TTL)
    assert [(ticket.protocol, ticket.state) for ticket in store.list_tickets()] == [
        ("a1", QUEUED),
        ("b2", FAILED),
        ("c3", CREATED),
        ("d4", QUEUED),
    ]
    assert [ticket.protocol for ticket in store.list_tickets({QUEUED})] == ["a1", "d4"]
    assert [ticket.protocol for ticket in store.list_tickets([FAILED, CREATED])] == ["b2", "c3"]
    assert store.list_tickets(()) == []


def test_list_tickets_of_an_empty_store_is_empty(store):
    assert store.list_tickets() == []


def test_sqlite_list_leaves_out_tickets_finished_longer_than_their_ttl_ago(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.enqueue("a1", "{}", maybe_sent=False)
    store.enqueue("b2", "{}", maybe_sent=False)
    store.finish_ticket("a1", CREATED, 1, None, TTL)
    clock.now += TTL + 1
    assert [ticket.protocol for ticket in store.list_tickets()] == ["b2"]
    assert store.retry_ticket("a1") is None  # gone for GET /chamados too: not brought back
    store.close()


@pytest.mark.slow
def test_redis_list_reads_only_its_own_prefix(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    mine, other = RedisStore(client, redis_prefix), RedisStore(client, redis_prefix + "x*")
    mine.enqueue("a1", "{}", maybe_sent=False)
    other.enqueue("b2", "{}", maybe_sent=False)
    assert [ticket.protocol for ticket in mine.list_tickets()] == ["a1"]
    assert [ticket.protocol for ticket in other.list_tickets()] == ["b2"]
    mine.close()


def test_retry_puts_a_failed_ticket_back_in_its_place_of_arrival_due_now(store, clock):
    store.enqueue("a1", "{}", maybe_sent=True)
    store.enqueue("b2", "{}", maybe_sent=False)
    store.reschedule("a1", 3, clock.now + 60, "TIMEOUT")
    store.finish_ticket("a1", FAILED, None, '{"codigo": "entidade_nao_encontrada"}', TTL)
    clock.now += 5
    retried = store.retry_ticket("a1")
    assert (retried.state, retried.attempts, retried.reason, retried.maybe_sent) == (QUEUED, 0, None, True)
    assert retried.next_attempt_at == pytest.approx(clock.now)
    assert store.next_queued().protocol == "a1"  # first in line again: it arrived first
    assert store.queue_stats()[0] == 2
    store.finish_ticket("a1", CREATED, 9, None, TTL)
    assert store.next_queued().protocol == "b2"


def test_a_retried_ticket_is_kept_until_delivered_however_long_that_takes(store, clock):
    store.enqueue("a1", "{}", maybe_sent=False)
    store.finish_ticket("a1", FAILED, None, '{"codigo": "x"}', 10)
    store.retry_ticket("a1")
    clock.now += 3600
    store.purge_expired()
    assert store.ticket("a1").state == QUEUED


def test_retry_makes_a_waiting_ticket_due_now_and_keeps_its_history(store, clock):
    store.enqueue("a1", "{}", maybe_sent=False)
    store.reschedule("a1", 4, clock.now + 300, "CONNECTION_FAILED")
    retried = store.retry_ticket("a1")
    assert (retried.state, retried.attempts, retried.reason) == (QUEUED, 4, "CONNECTION_FAILED")
    assert retried.next_attempt_at == pytest.approx(clock.now)


def test_retry_leaves_a_created_ticket_as_it_is(store):
    store.enqueue("a1", "{}", maybe_sent=False)
    store.finish_ticket("a1", CREATED, 5, None, TTL)
    kept = store.retry_ticket("a1")
    assert (kept.state, kept.ticket_id) == (CREATED, 5)
    assert store.next_queued() is None


def test_retry_and_cancel_of_an_unknown_protocol_are_none(store):
    assert store.retry_ticket("nope") is None
    assert store.cancel_ticket("nope", '{"motivo": "x"}', TTL) is None


def test_cancel_takes_a_waiting_ticket_out_of_the_queue_for_good(store):
    store.enqueue("a1", "{}", maybe_sent=False)
    store.enqueue("b2", "{}", maybe_sent=False)
    cancelled = store.cancel_ticket("a1", '{"motivo": "duplicado"}', TTL)
    assert (cancelled.state, cancelled.reason) == (CANCELLED, '{"motivo": "duplicado"}')
    assert store.next_queued().protocol == "b2"
    assert store.queue_stats()[0] == 1
    assert not store.mark_attempt("a1")  # a drainer that had read it before does not send it
    store.reschedule("a1", 1, 0.0, "TIMEOUT")  # nor does its failed attempt bring it back
    assert store.ticket("a1").reason == '{"motivo": "duplicado"}'


def test_cancel_leaves_a_finished_ticket_as_it_is(store):
    store.enqueue("a1", "{}", maybe_sent=False)
    store.finish_ticket("a1", FAILED, None, '{"codigo": "x"}', TTL)
    assert store.cancel_ticket("a1", '{"motivo": "y"}', TTL).state == FAILED


def test_a_cancelled_ticket_can_be_sent_again(store):
    store.enqueue("a1", "{}", maybe_sent=False)
    store.cancel_ticket("a1", '{"motivo": "engano"}', TTL)
    assert store.retry_ticket("a1").state == QUEUED
    assert store.next_queued().protocol == "a1"


def test_mark_attempt_marks_only_a_waiting_ticket(store):
    store.enqueue("a1", "{}", maybe_sent=False)
    assert store.mark_attempt("a1") and store.ticket("a1").maybe_sent
    store.finish_ticket("a1", CREATED, 1, None, TTL)
    assert not store.mark_attempt("a1")
    assert not store.mark_attempt("nope")


def test_sqlite_cancelled_ticket_expires_after_its_ttl(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.enqueue("a1", "{}", maybe_sent=False)
    store.cancel_ticket("a1", '{"motivo": "x"}', 100)
    clock.now += 101
    assert store.ticket("a1") is None
    store.close()


@pytest.mark.slow
def test_redis_cancelled_ticket_carries_an_expiry_and_a_retried_one_none(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    store.enqueue("a1", "{}", maybe_sent=False)
    store.cancel_ticket("a1", '{"motivo": "x"}', 100)
    assert 0 < client.ttl(f"{redis_prefix}ticket:a1") <= 101
    store.retry_ticket("a1")
    assert client.ttl(f"{redis_prefix}ticket:a1") == -1  # no expiry: kept until delivered
    store.close()


def test_concurrent_cancel_and_retry_leave_one_consistent_ticket(make_store):
    stores = [make_store() for _ in range(4)]
    stores[0].enqueue("a1", "{}", maybe_sent=False)

    def act(index):
        if index % 2:
            stores[index % 4].cancel_ticket("a1", '{"motivo": "x"}', TTL)
        else:
            stores[index % 4].retry_ticket("a1")

    run_at_once(12, act)
    final = stores[0].ticket("a1")
    assert final.state in (QUEUED, CANCELLED)
    assert (stores[0].next_queued() is not None) == (final.state == QUEUED)


# --- data at rest (REVIEW.md #11) -----------------------------------------------------------


def test_a_finished_ticket_keeps_its_state_but_not_the_customers_data(store):
    store.enqueue("a1", '{"nome_cliente": "Joana", "descricao_problema": "Senha: hunter2"}', False)
    store.finish_ticket("a1", CREATED, 10, None, TTL)
    finished = store.ticket("a1")
    assert (finished.state, finished.ticket_id) == (CREATED, 10)
    assert "hunter2" not in finished.payload and "Joana" not in finished.payload


def test_a_failed_ticket_keeps_its_data_so_that_it_can_be_retried(store):
    store.enqueue("a1", '{"nome_cliente": "Joana"}', False)
    store.finish_ticket("a1", FAILED, None, '{"codigo": "entidade_nao_encontrada"}', TTL)
    assert store.retry_ticket("a1").payload == '{"nome_cliente": "Joana"}'


def test_sqlite_files_are_private_to_the_gateways_user(tmp_path):
    import stat

    data_dir = tmp_path / "novo"
    store = SqliteStore(str(data_dir))
    store.enqueue("a1", "{}", False)  # the -wal and -shm files exist once something is written
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        files = list(data_dir.iterdir())
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), [
            (f.name, oct(f.stat().st_mode)) for f in files
        ]
    finally:
        store.close()


# --- files of queued requests --------------------------------------------------------------------


def _files(*contents: bytes) -> list[io.BytesIO]:
    return [io.BytesIO(content) for content in contents]


def _read(store, protocol: str, index: int) -> bytes | None:
    found = store.queued_file(protocol, index)
    if found is None:
        return None
    with found:
        return found.read()


def test_files_queued_with_a_ticket_are_read_back_whole_and_in_order(make_store):
    make_store().enqueue("a1", "{}", maybe_sent=False, files=_files(b"first", b"second"), max_file_bytes=100)
    other = make_store()  # another process
    assert [_read(other, "a1", 0), _read(other, "a1", 1), _read(other, "a1", 2)] == [b"first", b"second", None]


def test_files_that_would_pass_the_bound_are_refused_and_nothing_is_stored(store):
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"x" * 60), max_file_bytes=100)
    with pytest.raises(QueueFull):
        store.enqueue("b2", "{}", maybe_sent=False, files=_files(b"y" * 30, b"z" * 11), max_file_bytes=100)
    assert store.ticket("b2") is None and _read(store, "b2", 0) is None
    store.enqueue("c3", "{}", maybe_sent=False, files=_files(b"y" * 40), max_file_bytes=100)  # exactly at the bound
    assert _read(store, "c3", 0) == b"y" * 40


def test_a_bound_of_zero_refuses_any_file_but_not_a_ticket_without_files(store):
    with pytest.raises(QueueFull):
        store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"x"), max_file_bytes=0)
    store.enqueue("b2", "{}", maybe_sent=False, max_file_bytes=0)
    assert store.ticket("a1") is None and store.ticket("b2").state == QUEUED


def test_delivered_files_are_deleted_and_their_bytes_freed(store):
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"x" * 100), max_file_bytes=100)
    store.finish_ticket("a1", CREATED, 7, None, TTL)
    assert _read(store, "a1", 0) is None
    store.enqueue("b2", "{}", maybe_sent=False, files=_files(b"y" * 100), max_file_bytes=100)
    assert _read(store, "b2", 0) == b"y" * 100


def test_a_failed_tickets_files_stay_for_a_retry(store):
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"kept"), max_file_bytes=100)
    store.finish_ticket("a1", FAILED, None, '{"codigo": "x"}', TTL)
    store.purge_expired()
    assert _read(store, "a1", 0) == b"kept"


def test_queueing_a_protocol_twice_keeps_its_first_files(store):
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"first"), max_file_bytes=100)
    store.enqueue("a1", "{}", maybe_sent=True, files=_files(b"second"), max_file_bytes=100)
    assert _read(store, "a1", 0) == b"first"


def test_sqlite_files_of_an_expired_ticket_are_purged_and_their_bytes_freed(tmp_path, clock):
    store = SqliteStore(str(tmp_path), clock=clock)
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"x" * 100), max_file_bytes=100)
    store.finish_ticket("a1", FAILED, None, None, 60)
    clock.now += 61
    store.purge_expired()
    assert not (tmp_path / FILES_DIR / "a1").exists()
    store.enqueue("b2", "{}", maybe_sent=False, files=_files(b"y" * 100), max_file_bytes=100)
    store.close()


def test_sqlite_files_are_durable_private_and_left_nowhere_else(tmp_path):
    store = SqliteStore(str(tmp_path))
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"one", b"two"), max_file_bytes=100)
    store.close()
    files_dir = tmp_path / FILES_DIR
    assert sorted(path.name for path in files_dir.iterdir()) == ["a1"]  # no temporary directory left
    assert sorted(path.name for path in (files_dir / "a1").iterdir()) == ["0", "1"]
    assert stat.S_IMODE((files_dir / "a1").stat().st_mode) == 0o700
    assert stat.S_IMODE((files_dir / "a1" / "0").stat().st_mode) == 0o600


def test_sqlite_orphan_files_are_purged_once_old_and_spared_while_fresh(tmp_path):
    """Files written by a process killed before its queue entry committed."""
    store = SqliteStore(str(tmp_path))
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"owned"), max_file_bytes=100)
    orphans = [tmp_path / FILES_DIR / "b2", tmp_path / FILES_DIR / ".novo-dead", tmp_path / FILES_DIR / "fresh"]
    for orphan in orphans:
        orphan.mkdir()
        (orphan / "0").write_bytes(b"lost")
    for old in orphans[:2]:
        os.utime(old, (time.time() - ORPHAN_GRACE_SECONDS - 1,) * 2)
    os.utime(tmp_path / FILES_DIR / "a1", (time.time() - ORPHAN_GRACE_SECONDS - 1,) * 2)
    store.purge_expired()
    store.close()
    assert sorted(path.name for path in (tmp_path / FILES_DIR).iterdir()) == ["a1", "fresh"]


@pytest.mark.slow
def test_redis_a_parents_list_of_expired_entries_is_deleted_by_the_purge(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    store.enqueue("c1", "{}", maybe_sent=False, parent="t1")
    store.enqueue("c2", "{}", maybe_sent=False, parent="t2")
    store.finish_ticket("c1", CREATED, 1, None, 60)
    client.delete(f"{redis_prefix}ticket:c1")  # as Redis does when the time comes
    store.purge_expired()
    assert not client.exists(f"{redis_prefix}children:t1")
    assert client.smembers(f"{redis_prefix}parents") == {b"t2"}  # t2's entry still waits
    assert [entry.protocol for entry in store.queued_for("t2")] == ["c2"]
    store.close()


@pytest.mark.slow
def test_redis_files_expire_with_a_failed_ticket_and_their_bytes_are_then_freed(redis_url, redis_prefix):
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, redis_prefix)
    store.enqueue("a1", "{}", maybe_sent=False, files=_files(b"x" * 100), max_file_bytes=100)
    store.finish_ticket("a1", FAILED, None, None, 60)
    assert 0 < client.ttl(f"{redis_prefix}files:a1") <= 61
    client.delete(f"{redis_prefix}files:a1")  # as Redis does when the time comes
    store.purge_expired()
    store.enqueue("b2", "{}", maybe_sent=False, files=_files(b"y" * 100), max_file_bytes=100)
    store.close()
