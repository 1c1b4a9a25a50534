"""Opening a ticket: POST /criar-chamado (JSON or multipart) with its Idempotency-Key, and the
request helpers complements share (the key's claim and replay, the JSON body, the uploaded files).

Where to change things: the creation route in `register_ticket_routes`, what a repeated request
gets in `claim_key` and `register_idempotency_hook`, how files are taken and sent in
`uploaded_files` and `send_files`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import IO, Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from config import Config
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
    ComplementJob,
    Job,
    QueuedFile,
    attachments_answer,
    create_or_enqueue,
    document_mark,
    encode_request,
    enqueue_pending_files,
    new_protocol,
    remember_protocol,
)
from glpi_gateway.idempotency import HeldKey
from glpi_gateway.notify import EmailNotifyPolicy
from glpi_gateway.store import QUEUED, ClaimOutcome, QueueFull, Store, StoredAnswer, StoreUnavailable
from glpi_gateway.tickets import UNAVAILABLE_REASON, TicketGateway
from glpi_gateway.validation import TicketRequest, ValidationError, validate_ticket_request
from glpi_gateway.web.access import CREATE_TICKET_ENDPOINT
from glpi_gateway.web.context import current

# Headers of a final answer that a replay for the same Idempotency-Key gives again.
STORED_HEADERS = ("Location",)

log = logging.getLogger(__name__)


def register_ticket_routes(
    app: Flask, gateway: TicketGateway, store: Store, config: Config, upload_slots: UploadSlots
) -> None:
    notify = EmailNotifyPolicy(store, config.email_notify_limit, config.email_notify_unlimited_keys)

    @app.post("/criar-chamado", endpoint=CREATE_TICKET_ENDPOINT)
    def create_ticket() -> Response | tuple:
        if request.mimetype == "multipart/form-data":
            with upload_slots:
                return _create_ticket_with_attachments(gateway, store, config, notify)
        ctx = current()
        sent = json_body()
        _refuse_if_a_bot(sent.get(HONEYPOT_FIELD) if isinstance(sent, dict) else None)
        ticket_request = replace(validate_ticket_request(sent), origem=ctx.api_key)
        _refuse_public_form_choices(ticket_request, config)
        _count_ticket_attempt()
        protocol, maybe_sent, replay = claim_key(
            store, config, encode_request(ticket_request), new_protocol(), created_answer=_created_answer
        )
        ctx.protocolo = protocol
        if replay is not None:
            return replay
        # After the claim: a replay sends no new ticket, so it must not count a notification.
        ticket_request = notify.apply(ticket_request, ctx.api_key)
        ctx.ticket_id = _create_or_enqueue(gateway, store, config, ticket_request, protocol, maybe_sent)
        if ctx.ticket_id is None:
            return _queued(protocol)
        return _created(store, config, protocol, ctx.ticket_id)


def register_idempotency_hook(app: Flask, store: Store, config: Config) -> None:
    @app.after_request
    def settle_idempotency_key(response: Response) -> Response:
        """Store a final answer for the request's Idempotency-Key, or free the key for a retry."""
        ctx = current()
        held, ctx.held_key = ctx.held_key, None
        if held is None or (ctx.answer_in_protocol and response.status_code == 201):
            return response  # no key, or its ticket's protocol answers a repeat (claim_key)
        try:
            if held.keeps(response.status_code):
                store.finish_key(held.key, _stored(response), held.ttl)
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
    limit_multipart_body(config)
    _refuse_if_a_bot(request.form.get(HONEYPOT_FIELD))
    ticket_request = replace(validate_ticket_request(request.form.to_dict()), origem=ctx.api_key)
    _refuse_public_form_choices(ticket_request, config)
    refuse_text_for_files()
    _count_ticket_attempt()
    attachments, files = uploaded_files(config)
    # Two requests are the same when their fields and their files' names and bytes are.
    canonical = json.dumps([encode_request(ticket_request), fingerprints(files)], ensure_ascii=False)
    protocol, maybe_sent, replay = claim_key(store, config, canonical, new_protocol())
    ctx.protocolo = protocol
    if replay is not None:
        return replay
    ticket_request = notify.apply(ticket_request, ctx.api_key)
    ticket_id = ctx.ticket_id = _create_or_enqueue(gateway, store, config, ticket_request, protocol, maybe_sent, files)
    if ticket_id is None:
        return _queued(protocol)
    remember_protocol(store, protocol, ticket_id, config.protocol_ttl_seconds)
    job = Job(ticket_request, file_count=len(files), ticket_id=ticket_id)
    sent = send_files(gateway, store, config, ticket_id, protocol, job, attachments, files, maybe_sent)
    headers = {"Location": f"/chamados/{protocol}"}
    answer = jsonify(ticket_id=ticket_id, protocolo=protocol, anexos=sent)
    return answer, 201, headers


def limit_multipart_body(config: Config) -> None:
    """The public form key's smaller body limit, or everybody else's: set before anything reads the body."""
    request.max_content_length = _upload_limits(config).max_body_bytes


def _upload_limits(config: Config) -> UploadLimits:
    return upload_limits(config, public_form=_from_public_form(config))


def _from_public_form(config: Config) -> bool:
    api_key = current().api_key
    return api_key is not None and api_key == config.form_api_key_name


def _refuse_public_form_choices(ticket_request: TicketRequest, config: Config) -> None:
    """Anyone may send the public form key: it names only the categories in FORM_CATEGORIES and
    urgencies up to FORM_MAX_URGENCY, so that a stranger cannot file "muito alta" tickets in any
    category GLPI escalates."""
    if not _from_public_form(config):
        return
    invalid = {}
    if ticket_request.categoria is not None and ticket_request.categoria not in config.form_categories:
        invalid["categoria"] = "categoria não permitida para o formulário público"
    if ticket_request.urgencia > config.form_max_urgency:
        invalid["urgencia"] = f"o formulário público aceita urgência até {config.form_max_urgency}"
    if invalid:
        raise ValidationError(invalid=invalid)


def refuse_text_for_files() -> None:
    if ATTACHMENTS_FIELD in request.form:  # a text part, where a file was meant: refused, not ignored
        raise ValidationError(invalid={ATTACHMENTS_FIELD: "envie arquivos neste campo, não texto"})


def uploaded_files(config: Config) -> tuple[list[Attachment], list[tuple[QueuedFile, IO[bytes]]]]:
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


def fingerprints(files: list[tuple[QueuedFile, IO[bytes]]]) -> list[list[str]]:
    """What makes two requests' files the same: their names and bytes."""
    return [[queued.filename, queued.sha256] for queued, _ in files]


def send_files(
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


def claim_key(
    store: Store,
    config: Config,
    canonical: str,
    fresh_id: str,
    scope: str = "",
    created_answer: Callable[[str, int], StoredAnswer] | None = None,
) -> tuple[str, bool, Response | None]:
    """The request's id (`fresh_id`, or the one an earlier attempt with the same key got), after
    claiming its key (explicit, or implicit within the dedupe window): (id, whether an earlier
    attempt with the key may have sent it, the answer to replay when the key already has one).
    `created_answer` is for requests that store no answer once their ticket exists
    (idempotency.claim)."""
    held = _key_to_hold(canonical, config, scope)
    if held is None:
        return fresh_id, False, None
    claim = idempotency.claim(
        store,
        held.key,
        canonical,
        fresh_id,
        idempotency.lock_seconds(config.glpi_timeout),
        held.ttl,
        created_answer,
    )
    if claim.outcome is ClaimOutcome.REPLAY:
        assert claim.record.answer is not None  # REPLAY carries its answer: stored, or rebuilt from the protocol
        return claim.record.protocol, False, _replay(claim.record.answer)
    current().held_key = held
    return claim.record.protocol, claim.outcome is ClaimOutcome.TAKEN_OVER, None


def _created(store: Store, config: Config, protocol: str, ticket_id: int) -> Response:
    """The 201 of a ticket just created (or adopted): its number, and where to follow it. The
    protocol is remembered for PROTOCOL_TTL_DAYS with one store write; once it is, it is also what
    a repeat gets (`_created_answer`), and the request's key stores no answer."""
    current().answer_in_protocol = remember_protocol(store, protocol, ticket_id, config.protocol_ttl_seconds)
    return _created_response(protocol, ticket_id)


def _created_response(protocol: str, ticket_id: int) -> Response:
    response = jsonify(ticket_id=ticket_id, protocolo=protocol)
    response.status_code = 201
    response.headers["Location"] = f"/chamados/{protocol}"
    return response


def _created_answer(protocol: str, ticket_id: int) -> StoredAnswer:
    """The 201 of a created ticket, for a repeat of its request: rebuilt from its protocol."""
    return _stored(_created_response(protocol, ticket_id))


def _stored(response: Response) -> StoredAnswer:
    """An answer as a key keeps it for a repeat."""
    headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
    return StoredAnswer(response.status_code, response.get_data(as_text=True), headers)


def _refuse_if_a_bot(honeypot: object) -> None:
    if honeypot not in (None, ""):
        raise HoneypotFilled()


def _count_ticket_attempt() -> None:
    """A valid request is a ticket attempt: now it counts against its key's limit, when deferred."""
    count = current().count_ticket_attempt
    if count is not None:
        count()


def _replay(answer: StoredAnswer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json", headers=answer.headers)
    response.headers[idempotency.REPLAYED_HEADER] = "true"
    return response


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


def json_body() -> object:
    if not request.is_json:
        raise UnsupportedMediaType()
    _refuse_cut_body()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # deep nesting ([[[[...): the decoder gives up, the client gets a 400
        body = None
    if body is None:
        raise ValidationError(invalid={"corpo": "JSON malformado ou vazio"})
    return body


def _refuse_cut_body() -> None:
    """A body sent without Content-Length (chunked) is cut at MAX_BODY_BYTES by Werkzeug, and the
    cut JSON would be answered as malformed: past the limit it is a 413, as with Content-Length."""
    limit = request.max_content_length
    if request.content_length is not None or limit is None or len(request.get_data()) < limit:
        return
    if request.environ["wsgi.input"].read(1):  # the stream goes on past what Werkzeug let through
        raise RequestEntityTooLarge()
