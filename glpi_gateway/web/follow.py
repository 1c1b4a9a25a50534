"""After the ticket: GET /chamados/<protocolo> (a ticket's or a queued request's state) and
POST /chamados/<protocolo>/complemento (the customer's message and files, JSON or multipart).

Where to change things: the routes in `register_follow_routes`, what a lookup answers in
`status_answer` and `complement_answer`, what a complement may hold in `_complement_body`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import IO, Any

from flask import Flask, Response, jsonify, request

from config import Config
from glpi_client import GlpiError
from glpi_gateway.attachments import Attachment, UploadSlots
from glpi_gateway.delivery import (
    PROTOCOL_PATTERN,
    ComplementJob,
    QueuedFile,
    add_or_enqueue_complement,
    complement_target,
    decode_job,
    new_complement_id,
)
from glpi_gateway.follow import complement_message, glpi_text, mark_delivered_messages
from glpi_gateway.ratelimit import RateLimiter
from glpi_gateway.store import CANCELLED, CREATED, QUEUED, ProtocolNotFound, QueuedTicket, Store
from glpi_gateway.ticket_format import build_complement_content
from glpi_gateway.tickets import TicketGateway
from glpi_gateway.validation import COMPLEMENT_AUTHOR_MAX_LENGTH, COMPLEMENT_MAX_LENGTH, ValidationError
from glpi_gateway.web.access import COMPLEMENT_ENDPOINT, LOOKUP_ENDPOINT
from glpi_gateway.web.context import current
from glpi_gateway.web.tickets import (
    claim_key,
    fingerprints,
    json_body,
    limit_multipart_body,
    refuse_text_for_files,
    send_files,
    uploaded_files,
)

# What GET /chamados/<protocolo> tells of a ticket cancelled by the person on call.
CANCELLED_FIELDS = ("motivo", "cancelado_em")
DEFAULT_COMPLEMENT_AUTHOR = "cliente"
# The `aviso` of a lookup whose ticket GLPI could not give now (down, slow, refusing).
GLPI_UNREADABLE = "o GLPI não pôde ser consultado agora; o estado do chamado volta a aparecer em instantes"

log = logging.getLogger(__name__)


def register_follow_routes(
    app: Flask, gateway: TicketGateway, store: Store, config: Config, upload_slots: UploadSlots
) -> None:
    lookups = RateLimiter(store, None, None, lookup_per_ip=config.rate_limit_lookup_per_ip)

    @app.get("/chamados/<protocolo>", endpoint=LOOKUP_ENDPOINT)
    def ticket_status(protocolo: str) -> Response:
        """A created ticket's live state in GLPI, or a queued request's state. Unknown, malformed,
        expired and deleted answer alike: the protocol is the credential."""
        lookups.check_lookup(current().client_ip)
        if not PROTOCOL_PATTERN.fullmatch(protocolo):
            raise ProtocolNotFound(protocolo)
        ticket_id = store.protocol_ticket(protocolo)
        queued = store.ticket(protocolo)  # while it lives (IDEMPOTENCY_TTL), it adds when it was received
        if ticket_id is None and queued is None:
            raise ProtocolNotFound(protocolo)
        current().protocolo = protocolo
        if queued is not None:
            answer = status_answer(queued)
            if ticket_id is None and queued.state == CREATED:
                ticket_id = queued.ticket_id
        else:
            answer = {"protocolo": protocolo, "status": CREATED, "ticket_id": ticket_id}
        waiting = [complement_answer(entry) for entry in store.queued_for(protocolo) if entry.state != CREATED]
        if waiting:
            answer["complementos"] = waiting
        if ticket_id is not None:
            current().ticket_id = ticket_id
            try:
                answer["chamado"] = gateway.follow_ticket(ticket_id)
                mark_delivered_messages(waiting, answer["chamado"])
            except GlpiError as error:
                # What the gateway knows still answers; only GLPI's side is missing for now.
                log.warning(
                    "chamado %s não pôde ser lido do GLPI para a consulta: %s %s",
                    ticket_id,
                    error.code,
                    error.message,
                    extra={"event": "consulta_sem_glpi"},
                )
                answer["aviso"] = GLPI_UNREADABLE
        response = jsonify(answer)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/chamados/<protocolo>/complemento", endpoint=COMPLEMENT_ENDPOINT)
    def add_to_ticket(protocolo: str) -> Response | tuple:
        """The customer adds a message (and files, in multipart) to their ticket: a public GLPI
        follow-up, refused once the ticket is closed; queued when GLPI is unavailable or the ticket
        itself still waits. Idempotent like ticket creation, per protocol."""
        lookups.check_lookup(current().client_ip)  # guessing protocols here is limited like lookups
        if request.mimetype == "multipart/form-data":
            with upload_slots:
                return _complement_with_attachments(gateway, store, config, protocolo)
        message, author = _complement_body(json_body())
        return _add_complement(gateway, store, config, protocolo, message, author)


def status_answer(ticket: QueuedTicket) -> dict[str, Any]:
    """The body of GET /chamados/<protocolo>."""
    answer: dict[str, Any] = {
        "protocolo": ticket.protocol,
        "status": ticket.state,
        "recebido_em": _iso(ticket.created_at),
    }
    if ticket.state == QUEUED:
        answer["tentativas"] = ticket.attempts
        if ticket.attempts:
            answer["ultimo_erro"] = ticket.reason
            answer["proxima_tentativa_em"] = _iso(ticket.next_attempt_at)
    elif ticket.state == CREATED:
        answer["ticket_id"] = ticket.ticket_id
        answer.update(json.loads(ticket.reason or "{}"))  # the files' report, for a request with files
    elif ticket.state == CANCELLED:
        reason = json.loads(ticket.reason or "{}")  # who cancelled it stays out: the queue command shows it
        answer.update({name: reason[name] for name in CANCELLED_FIELDS if name in reason})
    else:
        answer.update(json.loads(ticket.reason or "{}"))
    return answer


def complement_answer(entry: QueuedTicket) -> dict[str, Any]:
    """A complement not delivered yet (or refused), as GET /chamados/<protocolo> lists it: its state
    like a queued request's, the message as the customer wrote it and the names of its files."""
    state = status_answer(entry)
    answer: dict[str, Any] = {"complemento": state.pop("protocolo"), **state, "mensagem_entregue": False}
    try:
        job = decode_job(entry.payload)
    except (ValueError, TypeError):
        return answer
    if isinstance(job, ComplementJob):
        answer["texto"] = complement_message(glpi_text(job.content)) or ""
        answer["anexos"] = [queued.filename for queued in job.files]
    return answer


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _complement_with_attachments(gateway: TicketGateway, store: Store, config: Config, protocol: str) -> tuple:
    """The multipart variant of a complement: `mensagem` and `nome` as form fields, files in
    `anexos`, checked like /criar-chamado's; they become documents of the ticket."""
    limit_multipart_body(config)
    message, author = _complement_body(request.form.to_dict())
    refuse_text_for_files()
    attachments, files = uploaded_files(config)
    return _add_complement(gateway, store, config, protocol, message, author, attachments, files)


def _add_complement(
    gateway: TicketGateway,
    store: Store,
    config: Config,
    protocol: str,
    message: str,
    author: str,
    attachments: list[Attachment] | None = None,
    files: list[tuple[QueuedFile, IO[bytes]]] | None = None,
) -> tuple:
    """201 with the follow-up (and what became of the files), or 202 when the complement was queued."""
    ctx = current()
    if not PROTOCOL_PATTERN.fullmatch(protocol):
        raise ProtocolNotFound(protocol)
    ctx.protocolo = protocol
    ticket_id = complement_target(store, protocol)
    files = files or []
    canonical = json.dumps([protocol, message, author, *([fingerprints(files)] if files else [])], ensure_ascii=False)
    complement_id, maybe_sent, replay = claim_key(
        store, config, canonical, new_complement_id(), scope=f"complemento/{protocol}/"
    )
    if replay is not None:
        return replay, replay.status_code
    content = build_complement_content(message, author, ctx.api_key, complement_id)
    job = ComplementJob(protocol, content, author, file_count=len(files))
    followup_id = add_or_enqueue_complement(
        gateway,
        store,
        complement_id,
        job,
        ticket_id,
        maybe_sent,
        config.queue_when_unavailable,
        config.glpi_timeout,
        files,
        config.queue_max_attachment_bytes,
    )
    if ticket_id is None or followup_id is None:
        ctx.queued = True
        location = {"Location": f"/chamados/{protocol}"}
        return jsonify(status=QUEUED, protocolo=protocol, complemento=complement_id), 202, location
    ctx.ticket_id = ticket_id
    answer: dict[str, Any] = {
        "protocolo": protocol,
        "ticket_id": ticket_id,
        "acompanhamento_id": followup_id,
        "complemento": complement_id,
    }
    if attachments:
        pending_job = replace(job, followup_id=followup_id)
        answer["anexos"] = send_files(
            gateway, store, config, ticket_id, complement_id, pending_job, attachments, files, maybe_sent
        )
    return jsonify(answer), 201


def _complement_body(sent: object) -> tuple[str, str]:
    """(message, who wrote it) from the body of POST /chamados/<protocolo>/complemento."""
    if not isinstance(sent, dict):
        raise ValidationError(invalid={"corpo": "envie um objeto JSON"})
    message = sent.get("mensagem")
    if message is None or (isinstance(message, str) and not message.strip()):
        raise ValidationError(missing=["mensagem"])
    if not isinstance(message, str):
        raise ValidationError(invalid={"mensagem": "deve ser texto"})
    message = message.replace("\r\n", "\n").strip()
    if len(message) > COMPLEMENT_MAX_LENGTH:
        raise ValidationError(invalid={"mensagem": f"no máximo {COMPLEMENT_MAX_LENGTH} caracteres"})
    author = sent.get("nome")
    if author is not None and not isinstance(author, str):
        raise ValidationError(invalid={"nome": "deve ser texto"})
    author = (author or "").strip() or DEFAULT_COMPLEMENT_AUTHOR
    if len(author) > COMPLEMENT_AUTHOR_MAX_LENGTH:
        raise ValidationError(invalid={"nome": f"no máximo {COMPLEMENT_AUTHOR_MAX_LENGTH} caracteres"})
    return message, author
