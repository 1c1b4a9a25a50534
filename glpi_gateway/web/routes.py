"""The API's routes: /ping, /health, /debug, POST /criar-chamado and POST /chamados/<protocolo>/complemento
(JSON or multipart, with their Idempotency-Key), GET /chamados/<protocolo>, and the API document at
/openapi.json and /docs."""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import UnsupportedMediaType

from config import Config
from glpi_client import GlpiError
from glpi_gateway import idempotency
from glpi_gateway.attachments import FIELD as ATTACHMENTS_FIELD
from glpi_gateway.attachments import (
    Attachment,
    UploadLimits,
    UploadSlots,
    content_size,
    sha256_of,
    take_attachments,
    upload_limits,
)
from glpi_gateway.challenge import HONEYPOT_FIELD, HoneypotFilled
from glpi_gateway.delivery import (
    PROTOCOL_PATTERN,
    ComplementJob,
    Job,
    QueuedFile,
    add_or_enqueue_complement,
    attachments_answer,
    complement_target,
    create_or_enqueue,
    decode_job,
    document_mark,
    encode_request,
    enqueue_pending_files,
    new_complement_id,
    new_protocol,
    remember_protocol,
)
from glpi_gateway.follow import complement_message, glpi_text, mark_delivered_messages
from glpi_gateway.health import Readiness
from glpi_gateway.idempotency import HeldKey
from glpi_gateway.notify import EmailNotifyPolicy
from glpi_gateway.ratelimit import RateLimiter
from glpi_gateway.store import (
    CANCELLED,
    CREATED,
    QUEUED,
    ClaimOutcome,
    ProtocolNotFound,
    QueuedTicket,
    QueueFull,
    Store,
    StoredAnswer,
    StoreUnavailable,
)
from glpi_gateway.ticket_format import build_complement_content
from glpi_gateway.tickets import UNAVAILABLE_REASON, TicketGateway
from glpi_gateway.validation import (
    COMPLEMENT_AUTHOR_MAX_LENGTH,
    COMPLEMENT_MAX_LENGTH,
    TicketRequest,
    ValidationError,
    validate_ticket_request,
)
from glpi_gateway.web.access import COMPLEMENT_ENDPOINT, CREATE_TICKET_ENDPOINT, LOOKUP_ENDPOINT, is_open_path
from glpi_gateway.web.context import current
from glpi_gateway.web.openapi import SWAGGER_UI_DIR, build_document

PING_TEXT = "App Flask está ativo!"
# Headers of a final answer that a replay for the same Idempotency-Key gives again.
STORED_HEADERS = ("Location",)
# What GET /chamados/<protocolo> tells of a ticket cancelled by the person on call.
CANCELLED_FIELDS = ("motivo", "cancelado_em")
# The `aviso` of a lookup whose ticket GLPI could not give now (down, slow, refusing).
DEFAULT_COMPLEMENT_AUTHOR = "cliente"
GLPI_UNREADABLE = "o GLPI não pôde ser consultado agora; o estado do chamado volta a aparecer em instantes"
DOCS_PAGE = (Path(__file__).resolve().parent / "static" / "docs.html").read_text(encoding="utf-8")

log = logging.getLogger(__name__)


def api_document(metrics: bool = True) -> dict:
    """The OpenAPI document of this app; without `metrics` (METRICS_ENABLED=false) there is no /metrics."""
    return build_document(PING_TEXT, is_open_path, metrics)


def register_routes(app: Flask, gateway: TicketGateway, readiness: Readiness, store: Store, config: Config) -> None:
    upload_slots = UploadSlots(config.multipart_max_in_flight)
    lookups = RateLimiter(store, None, None, lookup_per_ip=config.rate_limit_lookup_per_ip)
    document = api_document(metrics=config.metrics_enabled)
    notify = EmailNotifyPolicy(store, config.email_notify_limit, config.email_notify_unlimited_keys)

    @app.get("/ping")
    def ping() -> Response:
        return Response(PING_TEXT, mimetype="text/plain")

    @app.get("/health")
    def health() -> Response:
        checks = readiness.checks()
        ready = all(check["ok"] for check in checks.values())
        if current().sees_details:
            response = jsonify(status="ok" if ready else "indisponivel", checks=checks)
        else:  # the public form key and callers without a key: the status only (REVIEW.md #13)
            response = jsonify(status="ok" if ready else "indisponivel")
        response.status_code = 200 if ready else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/debug")
    def debug() -> Response:
        raise RuntimeError("/debug: erro proposital para testar o tratamento de erros")

    @app.post("/criar-chamado", endpoint=CREATE_TICKET_ENDPOINT)
    def create_ticket() -> Response | tuple:
        if request.mimetype == "multipart/form-data":
            with upload_slots:
                return _create_ticket_with_attachments(gateway, store, config, notify)
        ctx = current()
        sent = _json_body()
        _refuse_if_a_bot(sent.get(HONEYPOT_FIELD) if isinstance(sent, dict) else None)
        ticket_request = replace(validate_ticket_request(sent), origem=ctx.api_key)
        _count_ticket_attempt()
        protocol, maybe_sent, replay = _claim_key(store, config, encode_request(ticket_request), new_protocol())
        ctx.protocolo = protocol
        if replay is not None:
            return replay
        # After the claim: a replay sends no new ticket, so it must not count a notification.
        ticket_request = notify.apply(ticket_request, ctx.api_key)
        ctx.ticket_id = _create_or_enqueue(gateway, store, config, ticket_request, protocol, maybe_sent)
        if ctx.ticket_id is None:
            return _queued(protocol)
        return _created(store, config, protocol, ctx.ticket_id)

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
        message, author = _complement_body(_json_body())
        return _add_complement(gateway, store, config, protocolo, message, author)

    @app.get("/openapi.json")
    def openapi_document() -> Response:
        # Unsorted keys: the document lists fields and answers in contract order.
        return Response(app.json.dumps(document, sort_keys=False), mimetype="application/json")

    @app.get("/docs")
    def docs() -> Response:
        return _not_framed(Response(DOCS_PAGE, mimetype="text/html"))

    @app.get("/docs/<path:arquivo>")
    def docs_asset(arquivo: str) -> Response:
        return _not_framed(send_from_directory(SWAGGER_UI_DIR, arquivo))


def register_idempotency_hook(app: Flask, store: Store, config: Config) -> None:
    @app.after_request
    def settle_idempotency_key(response: Response) -> Response:
        """Store a final answer for the request's Idempotency-Key, or free the key for a retry."""
        ctx = current()
        held, ctx.held_key = ctx.held_key, None
        if held is None:
            return response
        try:
            if held.keeps(response.status_code):
                headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
                answer = StoredAnswer(response.status_code, response.get_data(as_text=True), headers)
                store.finish_key(held.key, answer, held.ttl)
            else:
                store.release_key(held.key)
        except StoreUnavailable as error:
            # The answer stands. The key stays locked until its lock expires; then a repeat
            # takes over and finds this request's ticket by its protocol before sending.
            log.error(
                "não foi possível registrar a resposta da Idempotency-Key: %s",
                error,
                extra={"event": "idempotency_key_nao_registrada"},
            )
        return response


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


def _create_ticket_with_attachments(
    gateway: TicketGateway, store: Store, config: Config, notify: EmailNotifyPolicy
) -> tuple[Response, int, dict[str, str]] | Response:
    """The multipart variant: the same fields as form fields, plus files in `anexos`.

    Every file is checked before the ticket is created; the ticket then exists whatever
    GLPI does with each file, and the answer says which ones it took. With GLPI unavailable the
    request is queued with its files (202), like a JSON one; files GLPI could not take because it
    became unavailable after the ticket was created are queued for that ticket (`pendentes`).
    """
    ctx = current()
    _limit_multipart_body(config)
    _refuse_if_a_bot(request.form.get(HONEYPOT_FIELD))
    ticket_request = replace(validate_ticket_request(request.form.to_dict()), origem=ctx.api_key)
    _refuse_text_for_files()
    _count_ticket_attempt()
    attachments, files = _uploaded_files(config)
    # Two requests are the same when their fields and their files' names and bytes are.
    canonical = json.dumps([json.loads(encode_request(ticket_request)), _fingerprints(files)], ensure_ascii=False)
    protocol, maybe_sent, replay = _claim_key(store, config, canonical, new_protocol())
    ctx.protocolo = protocol
    if replay is not None:
        return replay
    ticket_request = notify.apply(ticket_request, ctx.api_key)
    ticket_id = ctx.ticket_id = _create_or_enqueue(gateway, store, config, ticket_request, protocol, maybe_sent, files)
    if ticket_id is None:
        return _queued(protocol)
    remember_protocol(store, protocol, ticket_id, config.protocol_ttl_days * 86400.0)
    job = Job(ticket_request, file_count=len(files), ticket_id=ticket_id)
    sent = _send_files(gateway, store, config, ticket_id, protocol, job, attachments, files, maybe_sent)
    headers = {"Location": f"/chamados/{protocol}"}
    answer = jsonify(ticket_id=ticket_id, protocolo=protocol, anexos=sent)
    return answer, 201, headers


def _complement_with_attachments(gateway: TicketGateway, store: Store, config: Config, protocol: str) -> tuple:
    """The multipart variant of a complement: `mensagem` and `nome` as form fields, files in
    `anexos`, checked like /criar-chamado's; they become documents of the ticket."""
    _limit_multipart_body(config)
    message, author = _complement_body(request.form.to_dict())
    _refuse_text_for_files()
    attachments, files = _uploaded_files(config)
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
    canonical = json.dumps([protocol, message, author, *([_fingerprints(files)] if files else [])], ensure_ascii=False)
    complement_id, maybe_sent, replay = _claim_key(
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
        answer["anexos"] = _send_files(
            gateway, store, config, ticket_id, complement_id, pending_job, attachments, files, maybe_sent
        )
    return jsonify(answer), 201


def _limit_multipart_body(config: Config) -> None:
    """The public form key's smaller body limit, or everybody else's: set before anything reads the body."""
    request.max_content_length = _upload_limits(config).max_body_bytes


def _upload_limits(config: Config) -> UploadLimits:
    api_key = current().api_key
    return upload_limits(config, public_form=api_key is not None and api_key == config.form_api_key_name)


def _refuse_text_for_files() -> None:
    if ATTACHMENTS_FIELD in request.form:  # a text part, where a file was meant: refused, not ignored
        raise ValidationError(invalid={ATTACHMENTS_FIELD: "envie arquivos neste campo, não texto"})


def _uploaded_files(config: Config) -> tuple[list[Attachment], list[tuple[QueuedFile, IO[bytes]]]]:
    """The request's files, checked against the caller's limits, and each as the queue would keep it.

    The files stay in Werkzeug's spools (memory up to 500 KB, then a temporary file): only their
    first bytes are read to judge them, and all of them to hash them, in chunks."""
    limits = _upload_limits(config)
    attachments = take_attachments(
        ((field, upload.filename, upload.stream) for field, upload in request.files.items(multi=True)),
        limits.max_count,
        limits.max_bytes,
        limits.types,
    )
    files = [
        (QueuedFile(a.filename, a.file_type.mime, content_size(a.content), sha256_of(a.content), number), stream)
        for number, a in enumerate(attachments, start=1)
        for stream in [a.content if not isinstance(a.content, bytes) else io.BytesIO(a.content)]
    ]
    return attachments, files


def _fingerprints(files: list[tuple[QueuedFile, IO[bytes]]]) -> list[list[str]]:
    """What makes two requests' files the same: their names and bytes."""
    return [[queued.filename, queued.sha256] for queued, _ in files]


def _send_files(
    gateway: TicketGateway,
    store: Store,
    config: Config,
    ticket_id: int,
    protocol: str,
    job: Job | ComplementJob,
    attachments: list[Attachment],
    files: list[tuple[QueuedFile, IO[bytes]]],
    maybe_sent: bool,
) -> dict[str, Any]:
    """Upload the files as documents of the ticket, marked with `protocol` (a ticket's or a
    complement's id), and queue with `job` those GLPI's unavailability left pending: the answer's
    `anexos`. Pending files that cannot be queued are listed among `falharam`."""
    marks = [document_mark(protocol, queued.number, len(files)) for queued, _ in files]
    report = gateway.attach_files(ticket_id, attachments, marks, adopt=maybe_sent)
    pending = [files[position][0].filename for position in report.pending]
    if pending and config.queue_when_unavailable:
        try:
            enqueue_pending_files(
                store, protocol, job, files, report, config.glpi_timeout, config.queue_max_attachment_bytes
            )
            return attachments_answer(report, pending)
        except (QueueFull, StoreUnavailable) as error:
            log.error(
                "anexos do chamado %s não puderam ir para a fila: %s",
                ticket_id,
                type(error).__name__,
                extra={"event": "anexos_nao_enfileirados"},
            )
    report.failed.extend((name, UNAVAILABLE_REASON) for name in pending)
    return attachments_answer(report)


def _create_or_enqueue(
    gateway: TicketGateway,
    store: Store,
    config: Config,
    ticket_request: TicketRequest,
    protocol: str,
    maybe_sent: bool,
    files: list[tuple[QueuedFile, IO[bytes]]] | None = None,
) -> int | None:
    """delivery.create_or_enqueue with this gateway's settings."""
    return create_or_enqueue(
        gateway,
        store,
        ticket_request,
        protocol,
        maybe_sent,
        config.queue_when_unavailable,
        resend_delay=config.glpi_timeout,
        files=files or (),
        max_file_bytes=config.queue_max_attachment_bytes,
    )


def _queued(protocol: str) -> tuple[Response, int, dict[str, str]]:
    """The 202 of a request queued for delivery."""
    current().queued = True
    return jsonify(status=QUEUED, protocolo=protocol), 202, {"Location": f"/chamados/{protocol}"}


def _claim_key(
    store: Store, config: Config, canonical: str, fresh_id: str, scope: str = ""
) -> tuple[str, bool, Response | None]:
    """The request's id (`fresh_id`, or the one an earlier attempt with the same key got), after
    claiming its key (explicit, or implicit within the dedupe window): (id, whether an earlier
    attempt with the key may have sent it, the answer to replay when the key already has one)."""
    held = _key_to_hold(canonical, config, scope)
    if held is None:
        return fresh_id, False, None
    claim = idempotency.claim(
        store, held.key, canonical, fresh_id, idempotency.lock_seconds(config.glpi_timeout), held.ttl
    )
    if claim.outcome is ClaimOutcome.REPLAY:
        assert claim.record.answer is not None  # REPLAY means a final answer is stored (decide_claim)
        return claim.record.protocol, False, _replay(claim.record.answer)
    current().held_key = held
    return claim.record.protocol, claim.outcome is ClaimOutcome.TAKEN_OVER, None


def _created(store: Store, config: Config, protocol: str, ticket_id: int) -> tuple[Response, int, dict[str, str]]:
    """The 201 of a ticket just created (or adopted): its number, and where to follow it. The
    protocol is remembered for PROTOCOL_TTL_DAYS with one store write; a replay of this answer
    (Idempotency-Key) writes nothing."""
    remember_protocol(store, protocol, ticket_id, config.protocol_ttl_days * 86400.0)
    return jsonify(ticket_id=ticket_id, protocolo=protocol), 201, {"Location": f"/chamados/{protocol}"}


def _refuse_if_a_bot(honeypot: object) -> None:
    if honeypot not in (None, ""):
        raise HoneypotFilled()


def _not_framed(response: Response) -> Response:
    """No other site may frame the API docs (clickjacking on "Try it out"), nor sniff their types."""
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _count_ticket_attempt() -> None:
    """A valid request is a ticket attempt: now it counts against its key's limit, when deferred."""
    count = current().count_ticket_attempt
    if count is not None:
        count()


def _replay(answer: StoredAnswer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json", headers=answer.headers)
    response.headers[idempotency.REPLAYED_HEADER] = "true"
    return response


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


def _key_to_hold(canonical_body: str, config: Config, scope: str = "") -> HeldKey | None:
    """The client's Idempotency-Key, scoped to its API key so that two clients cannot collide;
    else, within DEDUPE_WINDOW_SECONDS, the implicit key of this caller and body."""
    caller = current().api_key
    given = idempotency.idempotency_key(request.headers.get(idempotency.IDEMPOTENCY_HEADER))
    if given is not None:
        return HeldKey(f"{caller or ''}/{scope}{given}", config.idempotency_ttl, explicit=True)
    if config.dedupe_window_seconds > 0:
        return HeldKey(idempotency.implicit_key(caller, canonical_body), config.dedupe_window_seconds, explicit=False)
    return None


def _json_body() -> object:
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # deep nesting ([[[[...): the decoder gives up, the client gets a 400
        body = None
    if body is None:
        raise ValidationError(invalid={"corpo": "JSON malformado ou vazio"})
    return body
