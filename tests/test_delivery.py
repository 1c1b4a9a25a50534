"""delivery.py: adopt-before-resend, queueing when GLPI is unavailable, backoff, and one worker step
at a time over a real SQLite store and a fake gateway."""

from __future__ import annotations

import io
import json

import pytest

from glpi_client import GlpiAuthError, GlpiUnavailable
from glpi_gateway.delivery import (
    LEASE_NAME,
    ComplementJob,
    DeliveryWorker,
    Job,
    QueuedFile,
    add_or_enqueue_complement,
    backoff_delay,
    complement_target,
    create_or_enqueue,
    decode_job,
    deliver,
    encode_job,
    encode_request,
    new_complement_id,
    new_protocol,
    queue_backlog,
)
from glpi_gateway.store import CREATED, FAILED, QUEUED
from glpi_gateway.store.sqlite import SqliteStore
from glpi_gateway.tickets import AttachmentReport, EntityNotFound, TicketClosed, TicketRefused
from glpi_gateway.web.follow import complement_answer, status_answer
from tests.helpers import Clock, ticket_request

TTL = 3600.0


class FakeGateway:
    """Creates tickets in a list; can be told to fail; finds tickets by their protocol line."""

    def __init__(self):
        self.tickets: dict[int, str] = {}  # id -> protocol
        self.fail_with: Exception | None = None
        self.create_then_fail = False
        self.searches = 0
        self.uploads: list[tuple] = []  # (ticket id, file name, bytes, comment, adopt)
        self.unavailable_at_upload: int | None = None  # the upload (counting from 0) where GLPI goes away
        self.refused: set[str] = set()  # file names GLPI refuses

    def attach_files(self, ticket_id, attachments, comments=None, adopt=False):
        sent, failed = [], []
        for position, attachment in enumerate(attachments):
            if len(self.uploads) == self.unavailable_at_upload:
                self.unavailable_at_upload = None
                error = GlpiUnavailable("down", "CONNECTION_FAILED")
                return AttachmentReport(sent, failed, list(range(position, len(attachments))), error)
            self.uploads.append((ticket_id, attachment.filename, attachment.content.read(), comments[position], adopt))
            if attachment.filename in self.refused:
                failed.append((attachment.filename, "o GLPI recusou o arquivo: tipo"))
            else:
                sent.append((attachment.filename, 900 + len(self.uploads)))
        return AttachmentReport(sent, failed, [])

    def find_ticket_with_line(self, label, value):
        assert label == "Protocolo"
        self.searches += 1
        if self.fail_with is not None and not self.create_then_fail:
            raise self.fail_with
        return min((tid for tid, protocol in self.tickets.items() if protocol == value), default=None)

    def create_ticket(self, request, extra_lines=()):
        ((label, protocol),) = extra_lines
        assert label == "Protocolo"
        if self.fail_with is not None and not self.create_then_fail:
            raise self.fail_with
        ticket_id = len(self.tickets) + 1
        self.tickets[ticket_id] = protocol
        if self.fail_with is not None:
            raise self.fail_with
        return ticket_id


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    opened = SqliteStore(str(tmp_path), clock=clock)
    yield opened
    opened.close()


def make_worker(store, gateway, clock, owner_suffix="", observer=None):
    worker = DeliveryWorker(store, gateway, retry_max_seconds=60, final_ttl=TTL, clock=clock, observer=observer)
    worker.owner += owner_suffix
    return worker


def test_protocols_are_fresh_hex_ids():
    first, second = new_protocol(), new_protocol()
    assert first != second and len(first) == 32 and int(first, 16) >= 0


def test_a_job_survives_the_queue_payload_round_trip():
    request = ticket_request(email_cliente="a@b.com.br", categoria=4, urgencia=5)
    files = (QueuedFile("print.png", "image/png", 10, "ab" * 32, 2),)
    for job in (Job(request), Job(request, files, 3, ticket_id=17)):
        assert decode_job(encode_job(job)) == job


def test_a_payload_queued_before_jobs_had_a_type_is_read_as_a_ticket_request():
    request = ticket_request(categoria=4)
    assert decode_job(encode_request(request)) == Job(request)


def test_a_job_of_an_unknown_type_is_unreadable():
    with pytest.raises(ValueError):
        decode_job('{"tipo": "outra-coisa"}')


def test_deliver_creates_with_the_protocol_line_when_nothing_was_sent():
    gateway = FakeGateway()
    assert deliver(gateway, ticket_request(), "p1", maybe_sent=False) == 1
    assert gateway.tickets == {1: "p1"} and gateway.searches == 0


def test_deliver_adopts_the_ticket_an_earlier_attempt_created():
    gateway = FakeGateway()
    gateway.tickets[7] = "p1"
    assert deliver(gateway, ticket_request(), "p1", maybe_sent=True) == 7
    assert gateway.tickets == {7: "p1"}


def test_deliver_creates_after_searching_when_the_earlier_attempt_created_nothing():
    gateway = FakeGateway()
    assert deliver(gateway, ticket_request(), "p1", maybe_sent=True) == 1
    assert gateway.searches == 1


def test_unavailable_glpi_queues_the_request_durably(store):
    gateway = FakeGateway()
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    assert create_or_enqueue(gateway, store, ticket_request(), "p1", False, True, resend_delay=10) is None
    queued = store.ticket("p1")
    assert queued.state == QUEUED and queued.maybe_sent is False
    assert queued.next_attempt_at == queued.created_at  # nothing was sent: try again at once
    assert decode_job(queued.payload) == Job(ticket_request())


def test_lost_answer_is_queued_as_maybe_sent(store):
    gateway = FakeGateway()
    gateway.fail_with = GlpiUnavailable("slow", "TIMEOUT", request_sent=True)
    gateway.create_then_fail = True
    assert create_or_enqueue(gateway, store, ticket_request(), "p1", False, True, resend_delay=10) is None
    queued = store.ticket("p1")
    assert queued.maybe_sent is True
    assert queued.next_attempt_at == queued.created_at + 10  # GLPI may still be writing it


def test_without_queueing_unavailable_glpi_propagates(store):
    gateway = FakeGateway()
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    with pytest.raises(GlpiUnavailable):
        create_or_enqueue(gateway, store, ticket_request(), "p1", False, False, resend_delay=10)
    assert store.ticket("p1") is None


@pytest.mark.parametrize("attempts, low, high", [(1, 0.5, 1), (2, 1, 2), (3, 2, 4), (10, 30, 60), (50, 30, 60)])
def test_backoff_grows_exponentially_with_jitter_up_to_the_maximum(attempts, low, high):
    assert backoff_delay(attempts, 60, rand=lambda: 0.0) == low
    assert backoff_delay(attempts, 60, rand=lambda: 1.0) == high


def test_backoff_never_comes_before_retry_after():
    assert backoff_delay(1, 60, retry_after=120, rand=lambda: 1.0) == 120
    assert backoff_delay(8, 60, retry_after=5, rand=lambda: 0.5) == 45


def test_worker_delivers_the_queue_in_order(store, clock):
    gateway = FakeGateway()
    for protocol in ("p1", "p2", "p3"):
        store.enqueue(protocol, encode_request(ticket_request()), maybe_sent=False)
    worker = make_worker(store, gateway, clock)
    while worker.run_once():
        pass
    assert gateway.tickets == {1: "p1", 2: "p2", 3: "p3"}
    assert [store.ticket(p).ticket_id for p in ("p1", "p2", "p3")] == [1, 2, 3]
    assert status_answer(store.ticket("p2"))["status"] == CREATED


def test_a_delivered_ticket_is_remembered_by_its_protocol_for_the_protocol_ttl(store, clock):
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    worker = DeliveryWorker(
        store, FakeGateway(), retry_max_seconds=60, final_ttl=TTL, clock=clock, protocol_ttl=TTL * 10
    )
    assert worker.run_once()
    clock.now += TTL + 1  # the queue record is gone, the protocol still leads to the ticket
    assert store.ticket("p1") is None and store.protocol_ticket("p1") == 1


def test_worker_backs_off_while_glpi_is_down_and_resumes(store, clock):
    gateway = FakeGateway()
    gateway.fail_with = GlpiUnavailable("down", "SERVER_ERROR", 500, request_sent=True, retry_after=30)
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    worker = make_worker(store, gateway, clock)
    assert worker.run_once()
    queued = store.ticket("p1")
    assert queued.attempts == 1 and queued.next_attempt_at >= clock.now + 30
    answer = status_answer(queued)
    assert answer["status"] == QUEUED and answer["ultimo_erro"] == "SERVER_ERROR"
    assert not worker.run_once()  # not due yet
    gateway.fail_with = None
    clock.now += 31
    assert worker.run_once()
    assert store.ticket("p1").state == CREATED


def test_worker_looks_for_the_ticket_before_resending_after_a_lost_answer(store, clock):
    gateway = FakeGateway()
    gateway.fail_with = GlpiUnavailable("slow", "TIMEOUT", request_sent=True)
    gateway.create_then_fail = True
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    worker = make_worker(store, gateway, clock)
    assert worker.run_once()  # creates the ticket, the answer is lost
    gateway.fail_with = None
    clock.now += 10
    assert worker.run_once()
    assert gateway.tickets == {1: "p1"}
    assert store.ticket("p1").ticket_id == 1


def test_a_crash_during_delivery_is_followed_by_a_search(store, clock):
    """mark_attempt is written before sending: a worker killed mid-send leaves maybe_sent behind."""
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    store.mark_attempt("p1")
    gateway = FakeGateway()
    gateway.tickets[5] = "p1"  # what the killed worker had created
    assert make_worker(store, gateway, clock).run_once()
    assert store.ticket("p1").ticket_id == 5 and gateway.tickets == {5: "p1"}


@pytest.mark.parametrize(
    "refusal, codigo",
    [
        (EntityNotFound("45723174000110"), "entidade_nao_encontrada"),
        (TicketRefused("You don't have permission", 400), "chamado_recusado"),
    ],
)
def test_worker_marks_requests_glpi_will_never_accept_as_failed(store, clock, refusal, codigo):
    gateway = FakeGateway()
    gateway.fail_with = refusal
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    worker = make_worker(store, gateway, clock)
    assert worker.run_once()
    answer = status_answer(store.ticket("p1"))
    assert answer["status"] == FAILED and answer["codigo"] == codigo and answer["motivo"]
    assert store.next_queued() is None


def test_worker_keeps_retrying_when_the_problem_is_the_gateways_credentials(store, clock):
    gateway = FakeGateway()
    gateway.fail_with = GlpiAuthError("bad token", "ERROR_GLPI_LOGIN_USER_TOKEN", 401)
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    make_worker(store, gateway, clock).run_once()
    assert store.ticket("p1").state == QUEUED


def test_unreadable_queue_record_fails_instead_of_blocking_the_queue(store, clock):
    store.enqueue("p1", json.dumps({"unknown_field": 1}), maybe_sent=False)
    store.enqueue("p2", encode_request(ticket_request()), maybe_sent=False)
    gateway = FakeGateway()
    worker = make_worker(store, gateway, clock)
    while worker.run_once():
        pass
    assert status_answer(store.ticket("p1"))["codigo"] == "registro_invalido"
    assert store.ticket("p2").state == CREATED


def test_only_the_lease_holder_delivers(store, clock):
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    gateway = FakeGateway()
    first, second = make_worker(store, gateway, clock, "-a"), make_worker(store, gateway, clock, "-b")
    assert store.acquire_lease(LEASE_NAME, first.owner, 10)
    assert not second.run_once()
    assert gateway.tickets == {}
    first.stop(timeout=1)  # never started: stopping just gives the lease back
    assert second.run_once() and gateway.tickets == {1: "p1"}


def test_the_observer_hears_each_final_state_once_and_no_retry(store, clock):
    heard = []
    gateway = FakeGateway()
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    store.enqueue("p2", encode_request(ticket_request()), maybe_sent=False)
    store.enqueue("p3", json.dumps({"unknown_field": 1}), maybe_sent=False)
    worker = make_worker(store, gateway, clock, observer=lambda state, codigo: heard.append((state, codigo)))
    gateway.fail_with = GlpiUnavailable("down", "SERVER_ERROR", 500, request_sent=False)
    assert worker.run_once()
    assert heard == []  # p1 waits for another attempt
    gateway.fail_with = None
    clock.now += 120
    assert worker.run_once()
    gateway.fail_with = EntityNotFound("45723174000110")
    assert worker.run_once()
    assert worker.run_once()
    assert heard == [(CREATED, None), (FAILED, "entidade_nao_encontrada"), (FAILED, "registro_invalido")]


def test_queue_backlog_is_the_depth_and_the_wait_of_the_oldest(store, clock):
    assert queue_backlog(store, clock) == (0, 0.0)
    store.enqueue("p1", "{}", maybe_sent=False)
    clock.now += 7
    store.enqueue("p2", "{}", maybe_sent=False)
    clock.now += 3
    depth, oldest_age = queue_backlog(store, clock)
    assert depth == 2 and oldest_age == pytest.approx(10)


class CancelledWhileRead:
    """The store, with the person on call cancelling the head of the queue just after the worker read it."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def next_queued(self):
        head = self._store.next_queued()
        if head is not None:
            self._store.cancel_ticket(head.protocol, '{"motivo": "cancelado"}', TTL)
        return head


def test_a_ticket_cancelled_after_the_worker_read_it_is_not_sent(store, clock):
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    gateway = FakeGateway()
    heard = []
    worker = make_worker(CancelledWhileRead(store), gateway, clock, observer=lambda *event: heard.append(event))
    worker.run_once()
    assert gateway.tickets == {} and heard == []
    assert status_answer(store.ticket("p1"))["status"] == "cancelado"


# --- a request's files -------------------------------------------------------------------------

FILES = (("a.png", "image/png", b"\x89PNG-a"), ("b.pdf", "application/pdf", b"%PDF-b"))


def queue_with_files(store, protocol="p1", files=FILES):
    queued_files = [
        (QueuedFile(name, mime, len(data), "0" * 64, n), io.BytesIO(data))
        for n, (name, mime, data) in enumerate(files, start=1)
    ]
    gateway = FakeGateway()
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    create_or_enqueue(gateway, store, ticket_request(), protocol, False, True, 10, queued_files, max_file_bytes=1000)


def test_a_queued_requests_files_become_marked_documents_of_its_ticket_and_are_then_deleted(store, clock):
    queue_with_files(store)
    gateway = FakeGateway()
    make_worker(store, gateway, clock).run_once()
    assert gateway.tickets == {1: "p1"}
    assert gateway.uploads == [
        (1, "a.png", b"\x89PNG-a", "Protocolo: p1 · anexo 1/2", False),
        (1, "b.pdf", b"%PDF-b", "Protocolo: p1 · anexo 2/2", False),
    ]
    delivered = status_answer(store.ticket("p1"))
    assert delivered["status"] == CREATED and [sent["arquivo"] for sent in delivered["anexos"]["enviados"]] == [
        "a.png",
        "b.pdf",
    ]
    assert store.queued_file("p1", 0) is None


def test_glpi_lost_between_files_resumes_on_the_same_ticket_looking_for_what_was_sent(store, clock):
    queue_with_files(store)
    gateway = FakeGateway()
    gateway.unavailable_at_upload = 1
    worker = DeliveryWorker(store, gateway, retry_max_seconds=1, final_ttl=TTL, clock=clock, protocol_ttl=TTL)
    worker.run_once()
    assert store.ticket("p1").state == QUEUED and store.ticket("p1").reason == "CONNECTION_FAILED"
    clock.now += 2
    worker.run_once()
    assert gateway.tickets == {1: "p1"}  # not created again
    assert [(upload[1], upload[4]) for upload in gateway.uploads] == [
        ("a.png", False),
        ("a.png", True),
        ("b.pdf", True),
    ]
    assert store.ticket("p1").state == CREATED


def test_a_file_glpi_refuses_is_reported_failed_and_the_ticket_still_delivered(store, clock):
    queue_with_files(store)
    gateway = FakeGateway()
    gateway.refused = {"b.pdf"}
    make_worker(store, gateway, clock).run_once()
    delivered = status_answer(store.ticket("p1"))
    assert delivered["status"] == CREATED
    assert delivered["anexos"]["falharam"] == [{"arquivo": "b.pdf", "motivo": "o GLPI recusou o arquivo: tipo"}]
    assert len(gateway.uploads) == 2


# --- a customer's complement ---------------------------------------------------------------------


class ComplementGateway(FakeGateway):
    """FakeGateway plus follow-ups: tickets can be closed, and a follow-up's answer can be lost."""

    def __init__(self):
        super().__init__()
        self.followups: dict[int, tuple[int, str, str]] = {}  # id -> (ticket id, mark, content)
        self.closed: set[int] = set()
        self.lose_answer = False

    def add_complement(self, ticket_id, content, mark=None, adopt=False):
        if self.fail_with is not None:
            raise self.fail_with
        if adopt:
            for followup_id, (ticket, posted_mark, _) in self.followups.items():
                if (ticket, posted_mark) == (ticket_id, mark):
                    return followup_id
        if ticket_id in self.closed:
            raise TicketClosed(ticket_id)
        followup_id = 500 + len(self.followups)
        self.followups[followup_id] = (ticket_id, mark, content)
        if self.lose_answer:
            self.lose_answer = False
            raise GlpiUnavailable("timeout", "TIMEOUT", request_sent=True)
        return followup_id


def queue_complement(store, gateway, protocol="p1", ticket_id=None, files=()):
    complement_id = new_complement_id()
    job = ComplementJob(protocol, f"<p>conteúdo {complement_id}</p>", "Maria", file_count=len(files))
    add_or_enqueue_complement(gateway, store, complement_id, job, ticket_id, False, True, 10, files, 1000)
    return complement_id


def test_a_complement_job_survives_the_queue_payload_round_trip():
    files = (QueuedFile("print.png", "image/png", 10, "ab" * 32, 1),)
    for job in (ComplementJob("p1", "<p>oi</p>", "Maria"), ComplementJob("p1", "<p>oi</p>", "Ana", files, 1, 77)):
        assert decode_job(encode_job(job)) == job


def test_a_complement_queued_behind_its_ticket_is_delivered_after_it_on_it(store, clock):
    store.enqueue("p1", encode_request(ticket_request()), maybe_sent=False)
    gateway = ComplementGateway()
    complement_id = queue_complement(store, gateway)
    assert gateway.followups == {} and store.ticket(complement_id).state == QUEUED
    worker = make_worker(store, gateway, clock)
    while worker.run_once():
        pass
    assert gateway.tickets == {1: "p1"}
    assert gateway.followups == {500: (1, complement_id, f"<p>conteúdo {complement_id}</p>")}
    delivered = store.ticket(complement_id)
    assert (delivered.state, delivered.ticket_id) == (CREATED, 1)


def test_a_complement_whose_ticket_closed_while_it_waited_fails_chamado_fechado(store, clock):
    store.remember_protocol("p1", 1, TTL)
    gateway = ComplementGateway()
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    complement_id = queue_complement(store, gateway, ticket_id=1)
    gateway.fail_with = None
    gateway.closed.add(1)
    make_worker(store, gateway, clock).run_once()
    [failed] = [entry for entry in store.queued_for("p1")]
    assert failed.state == FAILED and gateway.followups == {}
    answer = complement_answer(failed)
    assert answer["complemento"] == complement_id and answer["codigo"] == "chamado_fechado"


def test_a_complement_whose_answer_was_lost_is_adopted_not_posted_again(store, clock):
    store.remember_protocol("p1", 1, TTL)
    gateway = ComplementGateway()
    gateway.lose_answer = True
    complement_id = queue_complement(store, gateway, ticket_id=1)
    assert store.ticket(complement_id).maybe_sent
    clock.now += 10  # GLPI_TIMEOUT: it is looked for, not sent again
    make_worker(store, gateway, clock).run_once()
    assert list(gateway.followups) == [500]
    assert store.ticket(complement_id).state == CREATED


def test_a_queued_complements_files_become_documents_marked_with_the_complement(store, clock):
    store.remember_protocol("p1", 1, TTL)
    gateway = ComplementGateway()
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    files = [(QueuedFile("a.png", "image/png", 6, "0" * 64, 1), io.BytesIO(b"\x89PNG-"))]
    complement_id = queue_complement(store, gateway, ticket_id=1, files=files)
    gateway.fail_with = None
    make_worker(store, gateway, clock).run_once()
    assert gateway.uploads == [
        (1, "a.png", b"\x89PNG-", f"Protocolo do complemento: {complement_id} · anexo 1/1", False)
    ]
    assert store.ticket(complement_id).state == CREATED and store.queued_file(complement_id, 0) is None


def test_a_complement_waits_behind_an_earlier_one_of_the_same_ticket(store):
    store.remember_protocol("p1", 1, TTL)
    gateway = ComplementGateway()
    assert complement_target(store, "p1") == 1
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    queue_complement(store, gateway, ticket_id=1)
    assert complement_target(store, "p1") is None


def test_the_observer_does_not_count_complements_as_tickets(store, clock):
    store.remember_protocol("p1", 1, TTL)
    gateway = ComplementGateway()
    gateway.fail_with = GlpiUnavailable("down", "CONNECTION_FAILED")
    queue_complement(store, gateway, ticket_id=1)
    gateway.fail_with = None
    heard = []
    make_worker(store, gateway, clock, observer=lambda state, codigo: heard.append(state)).run_once()
    assert heard == []
