"""Getting each ticket into GLPI exactly once, now or later.

Every request gets a protocol id, written in the ticket as a "Protocolo: <id>" line. When an
earlier attempt may have reached GLPI (its answer was lost), the ticket carrying the protocol is
looked up and adopted instead of sending it again. When GLPI is unavailable, the validated
request is queued durably in the store, and one `DeliveryWorker` across all processes (the
holder of the store's lease) delivers the queue in order, with exponential backoff and jitter.

A request's files are queued with it (the store keeps them) and become documents of its ticket
once the ticket exists. Each document carries a mark in its `comment`, "Protocolo: <id> · anexo
<n>/<total>", so that a document whose upload answer was lost is found and adopted, not sent twice.

A customer's complement (a follow-up message, with files or not) has its own id, written in the
follow-up ("Protocolo do complemento: <id>") and in its documents' marks. It is queued like a
ticket request when GLPI is unavailable, or behind its ticket while that one (or an earlier
complement of it) still waits, and delivered to the ticket in arrival order.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from typing import IO, Any

from glpi_client import GlpiError, GlpiUnavailable
from glpi_gateway.attachments import Attachment, file_type_of
from glpi_gateway.errors import (
    CATEGORIA_DESCONHECIDA,
    CHAMADO_AINDA_NA_FILA,
    CHAMADO_FECHADO,
    CHAMADO_RECUSADO,
    ENTIDADE_AMBIGUA,
    ENTIDADE_NAO_ENCONTRADA,
    PROTOCOLO_NAO_ENCONTRADO,
    answer_for,
)
from glpi_gateway.store import (
    CREATED,
    FAILED,
    QUEUED,
    ProtocolNotFound,
    QueuedTicket,
    Store,
    StoreUnavailable,
    TicketNotYetCreated,
)
from glpi_gateway.ticket_format import COMPLEMENT_ID_PATTERN, COMPLEMENT_MARK_LABEL
from glpi_gateway.tickets import (
    AmbiguousEntity,
    AttachmentReport,
    EntityNotFound,
    GatewaySetupError,
    TicketClosed,
    TicketGateway,
    TicketGone,
    TicketRefused,
    UnknownCategory,
)
from glpi_gateway.validation import TicketRequest

log = logging.getLogger(__name__)

PROTOCOL_LABEL = "Protocolo"
PROTOCOL_PATTERN = re.compile(r"[0-9a-f]{32}")
LEASE_NAME = "delivery"
LEASE_SECONDS = 10.0
POLL_SECONDS = 1.0
PURGE_EVERY_SECONDS = 600.0
FIRST_RETRY_SECONDS = 1.0
UNREADABLE_CODIGO = "registro_invalido"
# Every `codigo` of a failed protocol (see refusal_reason).
REFUSAL_CODIGOS = tuple(
    answer.codigo for answer in (ENTIDADE_NAO_ENCONTRADA, ENTIDADE_AMBIGUA, CATEGORIA_DESCONHECIDA, CHAMADO_RECUSADO)
) + (UNREADABLE_CODIGO,)
# Every `codigo` of a failed complement.
COMPLEMENT_REFUSAL_CODIGOS = tuple(
    answer.codigo for answer in (CHAMADO_FECHADO, PROTOCOLO_NAO_ENCONTRADO, CHAMADO_AINDA_NA_FILA)
) + (UNREADABLE_CODIGO,)
# Answers about the request itself: retrying cannot change them.
FINAL_REFUSALS = (EntityNotFound, AmbiguousEntity, UnknownCategory, TicketRefused)
# Why a complement can never reach its ticket: closed, gone, or never created.
FINAL_COMPLEMENT_REFUSALS = (TicketClosed, TicketGone, ProtocolNotFound, TicketNotYetCreated)
# The `tipo` of a queued job: a ticket to create (with its files, if any), or a complement.
TICKET_JOB = "chamado"
COMPLEMENT_JOB = "complemento"
# A complement's id: not a protocol, so GET /chamados/<id> does not answer for it.
# Why a queued complement waits: its ticket is not created yet (only after `fila reenviar`).
TICKET_STILL_QUEUED = "chamado_na_fila"
LOST_FILE_REASON = "o arquivo guardado na fila não foi encontrado"


@dataclass(frozen=True)
class QueuedFile:
    """What delivery needs of a queued file besides its bytes (which the store keeps)."""

    filename: str
    mime: str
    size: int
    sha256: str
    number: int  # its place among the request's files, from 1: what its document's mark says


@dataclass(frozen=True)
class Job:
    """A queued ticket request: the validated fields, the files still to send (the store keeps
    file i of `files` as its file i), and the ticket when it was created before they were queued."""

    request: TicketRequest
    files: tuple[QueuedFile, ...] = ()
    file_count: int = 0  # how many files the request had: the marks say "anexo n/file_count"
    ticket_id: int | None = None


@dataclass(frozen=True)
class ComplementJob:
    """A queued complement of the ticket `protocol`: its follow-up `content` (HTML, escaped and marked
    with the complement's id) and the files still to send, like Job's."""

    protocol: str
    content: str
    author: str
    files: tuple[QueuedFile, ...] = ()
    file_count: int = 0
    followup_id: int | None = None  # when the follow-up was posted before the files were queued


def new_complement_id() -> str:
    return f"c-{uuid.uuid4().hex}"


def new_protocol() -> str:
    """A fresh protocol id. Not the request id: that one comes from the client and may repeat,
    and a repeated protocol would adopt somebody else's ticket."""
    return uuid.uuid4().hex


def remember_protocol(store: Store, protocol: str, ticket_id: int, ttl: float) -> bool:
    """Keep `protocol -> ticket_id` for GET /chamados/<protocolo>; whether it was kept. A store
    failure is logged, not raised: the ticket exists and the customer gets their answer; only
    following it by this protocol is lost."""
    try:
        store.remember_protocol(protocol, ticket_id, ttl)
        return True
    except StoreUnavailable as error:
        log.error(
            "protocolo %s do chamado %s não registrado para consulta: %s",
            protocol,
            ticket_id,
            error,
            extra={"event": "protocolo_nao_registrado"},
        )
        return False


def encode_request(request: TicketRequest) -> str:
    """The canonical JSON of a validated request: the idempotency fingerprint of a JSON request."""
    # Its fields are plain values: read as they are, not deep-copied (asdict) on every request.
    return json.dumps(vars(request), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def encode_job(job: Job | ComplementJob) -> str:
    """The queue payload of a job."""
    if isinstance(job, ComplementJob):
        return encode_complement(job)
    return json.dumps(
        {
            "tipo": TICKET_JOB,
            "pedido": asdict(job.request),
            "anexos": [asdict(queued) for queued in job.files],
            "total_anexos": job.file_count,
            "ticket_id": job.ticket_id,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def encode_complement(job: ComplementJob) -> str:
    """The queue payload of a complement."""
    return json.dumps(
        {
            "tipo": COMPLEMENT_JOB,
            "protocolo": job.protocol,
            "conteudo": job.content,
            "autor": job.author,
            "anexos": [asdict(queued) for queued in job.files],
            "total_anexos": job.file_count,
            "acompanhamento_id": job.followup_id,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_job(payload: str) -> Job | ComplementJob:
    """A job from its queue payload; ValueError or TypeError when it cannot be read."""
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("the payload is not a JSON object")
    if "tipo" not in data:  # queued before payloads had a type: a ticket request alone
        return Job(TicketRequest(**data))
    if data["tipo"] not in (TICKET_JOB, COMPLEMENT_JOB):
        raise ValueError(f"unknown job type {data['tipo']!r}")
    files = tuple(QueuedFile(**queued) for queued in data.get("anexos") or ())
    if data["tipo"] == COMPLEMENT_JOB:
        texts = (data["protocolo"], data["conteudo"], data["autor"])
        followup_id = data.get("acompanhamento_id")
        if not all(isinstance(text, str) for text in texts) or not isinstance(followup_id, int | None):
            raise TypeError("a complement's protocol, content and author are text, its follow-up an integer")
        return ComplementJob(*texts, files, int(data.get("total_anexos") or 0), followup_id)
    ticket_id = data.get("ticket_id")
    if ticket_id is not None and not isinstance(ticket_id, int):
        raise TypeError("ticket_id must be an integer")
    return Job(TicketRequest(**data["pedido"]), files, int(data.get("total_anexos") or 0), ticket_id)


def document_mark(protocol: str, number: int, total: int) -> str:
    """The `comment` of the document made of a request's (or a complement's) file number `number` of `total`."""
    label = COMPLEMENT_MARK_LABEL if COMPLEMENT_ID_PATTERN.fullmatch(protocol) else PROTOCOL_LABEL
    return f"{label}: {protocol} · anexo {number}/{total}"


def attachments_answer(report: AttachmentReport, pending: Sequence[str] = ()) -> dict[str, Any]:
    """The `anexos` member of an answer: what became a document, what GLPI refused and what waits
    in the queue."""
    return {
        "enviados": [{"arquivo": name, "documento_id": document_id} for name, document_id in report.sent],
        "falharam": [{"arquivo": name, "motivo": reason} for name, reason in report.failed],
        "pendentes": [{"arquivo": name} for name in pending],
    }


def deliver(gateway: TicketGateway, request: TicketRequest, protocol: str, maybe_sent: bool) -> int:
    """The ticket for `protocol`: adopted when an earlier attempt may have created it, else created."""
    if maybe_sent:
        found = gateway.find_ticket_with_line(PROTOCOL_LABEL, protocol)
        if found is not None:
            log.info(
                "chamado %s adotado para o protocolo %s (a resposta da criação tinha se perdido)",
                found,
                protocol,
                extra={"event": "chamado_adotado"},
            )
            return found
    return gateway.create_ticket(request, extra_lines=((PROTOCOL_LABEL, protocol),))


def create_or_enqueue(
    gateway: TicketGateway,
    store: Store,
    request: TicketRequest,
    protocol: str,
    maybe_sent: bool,
    queue_when_unavailable: bool,
    resend_delay: float,
    files: Sequence[tuple[QueuedFile, IO[bytes]]] = (),
    max_file_bytes: int = 0,
) -> int | None:
    """The ticket id, or None when GLPI is unavailable and the request was queued (committed
    before this returns), with its `files`. Without queueing, GlpiUnavailable propagates; QueueFull
    when the files would pass `max_file_bytes` of queued files.

    A request whose answer was lost waits `resend_delay` seconds (GLPI_TIMEOUT) before the
    delivery worker looks for its ticket: GLPI may still be writing it."""
    try:
        return deliver(gateway, request, protocol, maybe_sent)
    except GlpiUnavailable as error:
        if not queue_when_unavailable:
            raise
        sent = maybe_sent or error.request_sent
        _enqueue(store, protocol, Job(request, file_count=len(files)), files, sent, resend_delay, max_file_bytes)
        log.warning(
            "GLPI indisponível (%s); pedido enfileirado com o protocolo %s (%d anexo(s))",
            error.code,
            protocol,
            len(files),
            extra={"event": "pedido_enfileirado"},
        )
        return None


def enqueue_pending_files(
    store: Store,
    protocol: str,
    job: Job | ComplementJob,
    files: Sequence[tuple[QueuedFile, IO[bytes]]],
    report: AttachmentReport,
    resend_delay: float,
    max_file_bytes: int,
) -> None:
    """Queue the files GLPI could not take because it became unavailable after their ticket was
    created (`job.ticket_id`) or their complement's follow-up posted (`job.followup_id`): the
    delivery worker sends them later. QueueFull or StoreUnavailable when they cannot be kept."""
    pending = [files[position] for position in report.pending]
    sent = report.pending_error is not None and report.pending_error.request_sent
    _enqueue(store, protocol, job, pending, sent, resend_delay, max_file_bytes)
    log.warning(
        "GLPI indisponível durante os anexos de %s; %d anexo(s) enfileirado(s)",
        protocol,
        len(pending),
        extra={"event": "anexos_enfileirados"},
    )


def ticket_of_protocol(store: Store, protocol: str) -> int | None:
    """The ticket a protocol leads to, or None while its request (or its files) still wait in the
    queue; ProtocolNotFound when unknown, TicketNotYetCreated when its request failed or was cancelled."""
    queued = store.ticket(protocol)
    if queued is not None and queued.state == QUEUED:
        return None
    ticket_id = store.protocol_ticket(protocol)
    if ticket_id is not None:
        return ticket_id
    if queued is None:
        raise ProtocolNotFound(protocol)
    if queued.state != CREATED or queued.ticket_id is None:
        raise TicketNotYetCreated(protocol)
    return queued.ticket_id


def complement_target(store: Store, protocol: str) -> int | None:
    """The ticket a new complement of `protocol` goes to now, or None when it must wait in the queue:
    behind its ticket's request (or files), or behind an earlier complement still waiting."""
    ticket_id = ticket_of_protocol(store, protocol)
    if ticket_id is None or any(entry.state == QUEUED for entry in store.queued_for(protocol)):
        return None
    return ticket_id


def add_or_enqueue_complement(
    gateway: TicketGateway,
    store: Store,
    complement_id: str,
    job: ComplementJob,
    ticket_id: int | None,
    maybe_sent: bool,
    queue_when_unavailable: bool,
    resend_delay: float,
    files: Sequence[tuple[QueuedFile, IO[bytes]]] = (),
    max_file_bytes: int = 0,
) -> int | None:
    """The follow-up's id, or None when the complement was queued (committed before this returns)
    with its `files`: it waits behind its ticket (`ticket_id` None), or GLPI is unavailable. Without
    queueing, GlpiUnavailable propagates; QueueFull as for create_or_enqueue."""
    if ticket_id is not None:
        try:
            return gateway.add_complement(ticket_id, job.content, complement_id, adopt=maybe_sent)
        except GlpiUnavailable as error:
            if not queue_when_unavailable:
                raise
            maybe_sent = maybe_sent or error.request_sent
    _enqueue(store, complement_id, job, files, maybe_sent, resend_delay, max_file_bytes)
    log.warning(
        "complemento %s do protocolo %s enfileirado (%s; %d anexo(s))",
        complement_id,
        job.protocol,
        "GLPI indisponível" if ticket_id is not None else "atrás do chamado na fila",
        len(files),
        extra={"event": "complemento_enfileirado"},
    )
    return None


def _enqueue(
    store: Store,
    protocol: str,
    job: Job | ComplementJob,
    files: Sequence[tuple[QueuedFile, IO[bytes]]],
    maybe_sent: bool,
    resend_delay: float,
    max_file_bytes: int,
) -> None:
    """Queue `job` with `files` (its `files` are theirs); one that may have reached GLPI waits
    `resend_delay` before it is looked for. A complement is queued under its ticket's protocol."""
    store.enqueue(
        protocol,
        encode_job(replace(job, files=tuple(queued for queued, _ in files))),
        maybe_sent,
        delay=resend_delay if maybe_sent else 0.0,
        files=[stream for _, stream in files],
        max_file_bytes=max_file_bytes,
        parent=job.protocol if isinstance(job, ComplementJob) else None,
    )


def queue_backlog(store: Store, clock: Callable[[], float] = time.time) -> tuple[int, float]:
    """How many tickets wait for delivery, and how many seconds the oldest has waited (0 when none)."""
    depth, oldest = store.queue_stats()
    return depth, 0.0 if oldest is None else max(0.0, clock() - oldest)


def backoff_delay(
    attempts: int, max_seconds: float, retry_after: float | None = None, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before attempt `attempts + 1`: exponential from FIRST_RETRY_SECONDS up to
    `max_seconds`, jittered over its upper half so that retries spread out; never sooner
    than a Retry-After GLPI gave."""
    ceiling = min(max_seconds, FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 30))
    delay = ceiling / 2 + rand() * ceiling / 2
    return max(delay, retry_after or 0.0)


def refusal_reason(error: Exception) -> dict[str, str]:
    """`codigo` and `motivo` shown by GET /chamados/<protocolo> for a ticket GLPI will never accept:
    the answer the request would have had if GLPI had been up (errors.answer_for)."""
    final = isinstance(error, FINAL_REFUSALS + FINAL_COMPLEMENT_REFUSALS)
    refusal = answer_for(error) if final else None
    if refusal is None:
        return {"codigo": UNREADABLE_CODIGO, "motivo": "o pedido guardado na fila não pôde ser lido"}
    return {"codigo": refusal.answer.codigo, "motivo": refusal.reason}


class DeliveryWorker:
    """Drains the store's queue in a background thread while it holds the store's lease.

    Every gunicorn worker process runs one; the lease makes exactly one of them (across
    instances too, with Redis) deliver at a time, and a heartbeat renews it while a delivery
    is under way. The lease expires LEASE_SECONDS after its holder died, and another takes over.

    `observer(state, codigo)` hears of every ticket that reached a final state here: CREATED
    (codigo None) or FAILED with the `codigo` of its refusal.
    """

    def __init__(
        self,
        store: Store,
        gateway: TicketGateway,
        retry_max_seconds: float,
        final_ttl: float,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
        observer: Callable[[str, str | None], None] | None = None,
        protocol_ttl: float | None = None,
    ):
        """`protocol_ttl`: seconds a delivered ticket stays reachable by its protocol (PROTOCOL_TTL_DAYS)."""
        self._store = store
        self._gateway = gateway
        self._retry_max_seconds = retry_max_seconds
        self._final_ttl = final_ttl
        self._protocol_ttl = protocol_ttl
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._observer = observer
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._delivering = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_purge = 0.0
        self._holding = False

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._drain, name="delivery-drainer", daemon=True),
            threading.Thread(target=self._heartbeat, name="delivery-heartbeat", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        """Let the delivery under way finish (up to `timeout` seconds), then give the lease back."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        try:
            self._store.release_lease(LEASE_NAME, self.owner)
        except StoreUnavailable as error:
            log.warning(
                "não foi possível liberar a vez de entregar (%s); ela expira sozinha",
                error,
                extra={"event": "vez_nao_liberada"},
            )

    def run_once(self) -> bool:
        """One step: deliver the head of the queue if it is due and the lease is ours.
        Returns True when it attempted a delivery."""
        holding = self._store.acquire_lease(LEASE_NAME, self.owner, self._lease_seconds)
        if holding != self._holding:
            log.info(
                "vez de entregar a fila %s por %s",
                "assumida" if holding else "perdida",
                self.owner,
                extra={"event": "vez_assumida" if holding else "vez_perdida", "owner": self.owner},
            )
            self._holding = holding
        if not holding:
            return False
        now = self._clock()
        if now >= self._next_purge:
            self._store.purge_expired()
            self._next_purge = now + PURGE_EVERY_SECONDS
        ticket = self._store.next_queued()
        if ticket is None or ticket.next_attempt_at > now:
            return False
        self._delivering.set()
        try:
            self._attempt(ticket)
        finally:
            self._delivering.clear()
        return True

    def _attempt(self, ticket: QueuedTicket) -> None:
        try:
            job = decode_job(ticket.payload)
        except (ValueError, TypeError) as error:
            log.error(
                "protocolo %s na fila está ilegível (%s); marcado como falho",
                ticket.protocol,
                error,
                extra={"event": "pedido_ilegivel"},
            )
            self._finish(ticket, FAILED, None, refusal_reason(error))
            return
        # From here on the ticket may reach GLPI: after a crash, look for it before sending again.
        if not self._store.mark_attempt(ticket.protocol):
            log.info(
                "protocolo %s saiu da fila antes da entrega (cancelado): não enviado",
                ticket.protocol,
                extra={"event": "entrega_cancelada"},
            )
            return
        try:
            if isinstance(job, ComplementJob):
                outcome = self._deliver_complement(ticket, job)
            else:
                outcome = self._deliver_ticket(ticket, job)
        except FINAL_REFUSALS + FINAL_COMPLEMENT_REFUSALS as error:
            log.warning(
                "protocolo %s na fila recusado de vez: %s", ticket.protocol, error, extra={"event": "entrega_recusada"}
            )
            self._finish(ticket, FAILED, None, refusal_reason(error), observed=isinstance(job, Job))
        except (GlpiError, GatewaySetupError) as error:
            # Not about the request: GLPI down, our tokens or our settings. Keep it and retry.
            self._postpone(ticket, getattr(error, "code", type(error).__name__), getattr(error, "retry_after", None))
        else:
            if outcome is None:  # a complement whose ticket is back in the queue (fila reenviar)
                self._postpone(ticket, TICKET_STILL_QUEUED, None)
                return
            ticket_id, answer = outcome
            log.info(
                "protocolo %s da fila entregue ao chamado %s por %s",
                ticket.protocol,
                ticket_id,
                self.owner,
                extra={"event": "entregue", "owner": self.owner, "protocolo": ticket.protocol, "ticket_id": ticket_id},
            )
            self._finish(ticket, CREATED, ticket_id, answer, observed=isinstance(job, Job))

    def _deliver_ticket(self, entry: QueuedTicket, job: Job) -> tuple[int, dict[str, Any] | None]:
        """Create (or adopt) the job's ticket, then send its files: (ticket id, what the lookup shows)."""
        ticket_id = self._ticket_of(entry, job)
        report = None
        if job.files:
            report = self._send_files(entry, job, ticket_id)
            if report.pending_error is not None:
                raise report.pending_error  # the ticket is known now: only the missing files are left
        self._remember(entry.protocol, ticket_id)
        return ticket_id, {"anexos": attachments_answer(report)} if report is not None else None

    def _deliver_complement(self, entry: QueuedTicket, job: ComplementJob) -> tuple[int, dict[str, Any] | None] | None:
        """Post a queued complement to its ticket, then its files: (ticket id, what the lookup shows),
        or None while its ticket waits in the queue. After an attempt that may have posted it, the
        follow-up carrying its id is adopted (GLPI took it; the answer was lost)."""
        ticket_id = ticket_of_protocol(self._store, job.protocol)
        if ticket_id is None:
            return None
        followup_id = job.followup_id
        if followup_id is None:
            followup_id = self._gateway.add_complement(ticket_id, job.content, entry.protocol, adopt=entry.maybe_sent)
        answer: dict[str, Any] = {"acompanhamento_id": followup_id}
        if job.files:
            report = self._send_files(entry, job, ticket_id)
            if report.pending_error is not None:
                raise report.pending_error  # a later attempt adopts the follow-up, then sends the rest
            answer["anexos"] = attachments_answer(report)
        return ticket_id, answer

    def _postpone(self, entry: QueuedTicket, reason: str, retry_after: float | None) -> None:
        """Try `entry` again later, with backoff: not delivered for a reason that may pass."""
        attempts = entry.attempts + 1
        delay = backoff_delay(attempts, self._retry_max_seconds, retry_after)
        log.info(
            "entrega do protocolo %s falhou (%s); tentativa %s em %.1f s",
            entry.protocol,
            reason,
            attempts + 1,
            delay,
            extra={"event": "entrega_adiada"},
        )
        self._store.reschedule(entry.protocol, attempts, self._clock() + delay, reason)

    def _ticket_of(self, ticket: QueuedTicket, job: Job) -> int:
        """The job's ticket: already known (created before its files were queued, or by an earlier
        attempt that then stopped at a file), else adopted or created now."""
        known = job.ticket_id
        if known is None and job.files:
            known = self._store.protocol_ticket(ticket.protocol)
        if known is not None:
            return known
        ticket_id = deliver(self._gateway, job.request, ticket.protocol, ticket.maybe_sent)
        if job.files:
            self._remember(ticket.protocol, ticket_id)  # a later attempt then sends only the files
        return ticket_id

    def _send_files(self, ticket: QueuedTicket, job: Job | ComplementJob, ticket_id: int) -> AttachmentReport:
        """Upload the job's files to its ticket. After an attempt that may have sent some, the
        ticket's documents are read first and those already carrying a file's mark are adopted."""
        with ExitStack() as opened:
            attachments, comments, lost = [], [], []
            for index, queued in enumerate(job.files):
                stream = self._store.queued_file(ticket.protocol, index)
                if stream is None:
                    lost.append((queued.filename, LOST_FILE_REASON))
                    continue
                opened.enter_context(stream)
                attachments.append(Attachment(queued.filename, stream, file_type_of(queued.mime)))
                comments.append(document_mark(ticket.protocol, queued.number, job.file_count))
            report = self._gateway.attach_files(ticket_id, attachments, comments, adopt=ticket.maybe_sent)
        if lost:
            log.error(
                "protocolo %s: %d anexo(s) sumiram da fila e não foram enviados",
                ticket.protocol,
                len(lost),
                extra={"event": "anexo_perdido_na_fila"},
            )
        return AttachmentReport(report.sent, report.failed + lost, report.pending, report.pending_error)

    def _remember(self, protocol: str, ticket_id: int) -> None:
        if self._protocol_ttl is not None:
            remember_protocol(self._store, protocol, ticket_id, self._protocol_ttl)

    def _finish(
        self, ticket: QueuedTicket, state: str, ticket_id: int | None, reason: dict | None, observed: bool = True
    ) -> None:
        """`observed`: a ticket's end, which the observer hears of (a complement's is not)."""
        self._store.finish_ticket(
            ticket.protocol,
            state,
            ticket_id,
            json.dumps(reason, ensure_ascii=False) if reason else None,
            self._final_ttl,
        )
        if self._observer is not None and observed:
            self._observer(state, reason.get("codigo") if reason else None)

    def _drain(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.run_once()
            except StoreUnavailable as error:
                log.error("fila de entrega inacessível: %s", error, extra={"event": "fila_inacessivel"})
                busy = False
            if not busy:
                self._stopping.wait(self._poll_seconds)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self._lease_seconds / 3):
            if not self._delivering.is_set():
                continue
            try:
                if not self._store.acquire_lease(LEASE_NAME, self.owner, self._lease_seconds):
                    log.error(
                        "vez de entregar perdida durante uma entrega (este processo ficou parado?)",
                        extra={"event": "vez_perdida_na_entrega"},
                    )
            except StoreUnavailable as error:
                log.error("não foi possível renovar a vez de entregar: %s", error, extra={"event": "vez_nao_renovada"})
