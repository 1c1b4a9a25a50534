"""The API's routes: /ping, /health, /debug, POST /criar-chamado (JSON or multipart, with its
Idempotency-Key), GET /chamados/<protocolo>, and the API document at /openapi.json and /docs."""

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
from glpi_gateway.attachments import UploadSlots, content_size, sha256_of, take_attachments, upload_limits
from glpi_gateway.challenge import HONEYPOT_FIELD, HoneypotFilled
from glpi_gateway.delivery import (
    PROTOCOL_PATTERN,
    QueuedFile,
    attachments_answer,
    create_or_enqueue,
    document_mark,
    encode_request,
    enqueue_pending_files,
    new_protocol,
    remember_protocol,
)
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
    TicketNotYetCreated,
)
from glpi_gateway.ticket_format import build_complement_content
from glpi_gateway.tickets import UNAVAILABLE_REASON, AttachmentReport, TicketGateway
from glpi_gateway.validation import TicketRequest, ValidationError, validate_ticket_request
from glpi_gateway.web.access import COMPLEMENT_ENDPOINT, CREATE_TICKET_ENDPOINT, LOOKUP_ENDPOINT, is_open_path
from glpi_gateway.web.context import current
from glpi_gateway.web.openapi import SWAGGER_UI_DIR, build_document

PING_TEXT = "App Flask está ativo!"
# Headers of a final answer that a replay for the same Idempotency-Key gives again.
STORED_HEADERS = ("Location",)
# What GET /chamados/<protocolo> tells of a ticket cancelled by the person on call.
CANCELLED_FIELDS = ("motivo", "cancelado_em")
# The `aviso` of a lookup whose ticket GLPI could not give now (down, slow, refusing).
COMPLEMENT_MAX_LENGTH = 5000
COMPLEMENT_AUTHOR_MAX_LENGTH = 100
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
        protocol, maybe_sent, replay = _claim_key(store, config, encode_request(ticket_request))
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
        if ticket_id is not None:
            current().ticket_id = ticket_id
            try:
                answer["chamado"] = gateway.follow_ticket(ticket_id)
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
        """The customer adds a message to their ticket: a public GLPI follow-up, refused once the
        ticket is closed. Idempotent like ticket creation, per protocol."""
        ctx = current()
        lookups.check_lookup(ctx.client_ip)  # guessing protocols here is limited like lookups
        message, author = _complement_body(_json_body())
        if not PROTOCOL_PATTERN.fullmatch(protocolo):
            raise ProtocolNotFound(protocolo)
        ticket_id = _ticket_of(store, protocolo)
        ctx.protocolo, ctx.ticket_id = protocolo, ticket_id
        canonical = json.dumps([protocolo, message, author], ensure_ascii=False)
        held = _key_to_hold(canonical, config, scope=f"complemento/{protocolo}/")
        if held is not None:
            claim = idempotency.claim(
                store, held.key, canonical, protocolo, idempotency.lock_seconds(config.glpi_timeout), held.ttl
            )
            if claim.outcome is ClaimOutcome.REPLAY:
                assert claim.record.answer is not None  # REPLAY means a final answer is stored (decide_claim)
                return _replay(claim.record.answer)
            ctx.held_key = held
        content = build_complement_content(message, author, ctx.api_key)
        followup_id = gateway.add_complement(ticket_id, content)
        return jsonify(protocolo=protocolo, ticket_id=ticket_id, acompanhamento_id=followup_id), 201

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
    limits = upload_limits(config, public_form=ctx.api_key is not None and ctx.api_key == config.form_api_key_name)
    request.max_content_length = limits.max_body_bytes  # before anything reads the body
    _refuse_if_a_bot(request.form.get(HONEYPOT_FIELD))
    ticket_request = replace(validate_ticket_request(request.form.to_dict()), origem=ctx.api_key)
    if ATTACHMENTS_FIELD in request.form:  # a text part, where a file was meant: refused, not ignored
        raise ValidationError(invalid={ATTACHMENTS_FIELD: "envie arquivos neste campo, não texto"})
    _count_ticket_attempt()
    # The files stay in Werkzeug's spools (memory up to 500 KB, then a temporary file): only
    # their first bytes are read to judge them, and all of them to hash them, in chunks.
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
    # Two requests are the same when their fields and their files' names and bytes are.
    canonical = json.dumps(
        [json.loads(encode_request(ticket_request)), [[queued.filename, queued.sha256] for queued, _ in files]],
        ensure_ascii=False,
    )
    protocol, maybe_sent, replay = _claim_key(store, config, canonical)
    if replay is not None:
        return replay
    ticket_request = notify.apply(ticket_request, ctx.api_key)
    ctx.ticket_id = _create_or_enqueue(gateway, store, config, ticket_request, protocol, maybe_sent, files)
    if ctx.ticket_id is None:
        return _queued(protocol)
    remember_protocol(store, protocol, ctx.ticket_id, config.protocol_ttl_days * 86400.0)
    marks = [document_mark(protocol, queued.number, len(files)) for queued, _ in files]
    report = gateway.attach_files(ctx.ticket_id, attachments, marks, adopt=maybe_sent)
    pending = _queue_pending_files(store, config, ticket_request, protocol, ctx.ticket_id, files, report)
    headers = {"Location": f"/chamados/{protocol}"}
    answer = jsonify(ticket_id=ctx.ticket_id, protocolo=protocol, anexos=attachments_answer(report, pending))
    return answer, 201, headers


def _queue_pending_files(
    store: Store,
    config: Config,
    ticket_request: TicketRequest,
    protocol: str,
    ticket_id: int,
    files: list[tuple[QueuedFile, IO[bytes]]],
    report: AttachmentReport,
) -> list[str]:
    """The names of the files left pending by GLPI's unavailability, queued for their ticket; [] when
    there are none or they cannot be queued (then the answer lists them among `falharam`)."""
    if not report.pending:
        return []
    names = [files[position][0].filename for position in report.pending]
    if config.queue_when_unavailable:
        try:
            enqueue_pending_files(
                store,
                ticket_request,
                protocol,
                ticket_id,
                files,
                report,
                config.glpi_timeout,
                config.queue_max_attachment_bytes,
            )
            return names
        except (QueueFull, StoreUnavailable) as error:
            log.error(
                "anexos do chamado %s não puderam ir para a fila: %s",
                ticket_id,
                type(error).__name__,
                extra={"event": "anexos_nao_enfileirados"},
            )
    report.failed.extend((name, UNAVAILABLE_REASON) for name in names)
    return []


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


def _claim_key(store: Store, config: Config, canonical: str) -> tuple[str, bool, Response | None]:
    """The request's protocol, after claiming its key (explicit, or implicit within the dedupe
    window): (protocol, whether an earlier attempt with the key may have sent it, the answer to
    replay when the key already has one)."""
    ctx = current()
    ctx.protocolo = new_protocol()
    held = _key_to_hold(canonical, config)
    if held is None:
        return ctx.protocolo, False, None
    claim = idempotency.claim(
        store, held.key, canonical, ctx.protocolo, idempotency.lock_seconds(config.glpi_timeout), held.ttl
    )
    ctx.protocolo = claim.record.protocol
    if claim.outcome is ClaimOutcome.REPLAY:
        assert claim.record.answer is not None  # REPLAY means a final answer is stored (decide_claim)
        return ctx.protocolo, False, _replay(claim.record.answer)
    ctx.held_key = held
    return ctx.protocolo, claim.outcome is ClaimOutcome.TAKEN_OVER, None


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


def _ticket_of(store: Store, protocol: str) -> int:
    """The ticket a protocol leads to; ProtocolNotFound, or TicketNotYetCreated while it is queued."""
    ticket_id = store.protocol_ticket(protocol)
    if ticket_id is not None:
        return ticket_id
    queued = store.ticket(protocol)
    if queued is None:
        raise ProtocolNotFound(protocol)
    if queued.state != CREATED or queued.ticket_id is None:
        raise TicketNotYetCreated(protocol)
    return queued.ticket_id


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
