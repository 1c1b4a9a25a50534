"""HTTP face of the gateway: routes, request hooks, and which error answer (error_answers.py) each failure gets.

Run with `gunicorn "app:create_app()"` (configured by gunicorn.conf.py and env)
or `python app.py` for a local server; `python app.py doctor [--cnpj X]` diagnoses
the configuration and the GLPI behind it (doctor.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import uuid
from dataclasses import replace
from functools import partial
from pathlib import Path

from flask import Flask, Response, g, has_request_context, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, UnsupportedMediaType

import idempotency
from attachments import FIELD as ATTACHMENTS_FIELD
from attachments import read_attachments
from auth import ApiKeyRejected, ApiKeys, presented_key
from config import Config, ConfigError, load_config
from cors import CorsPolicy, is_preflight
from delivery import (
    PROTOCOL_LABEL,
    PROTOCOL_PATTERN,
    DeliveryWorker,
    create_or_enqueue,
    encode_request,
    new_protocol,
    queue_backlog,
    status_answer,
)
from doctor import main as doctor_main
from error_answers import (
    ARMAZENAMENTO_INDISPONIVEL,
    CAMPOS_OBRIGATORIOS_AUSENTES,
    CATEGORIA_DESCONHECIDA,
    CHAMADO_RECUSADO,
    CHAVE_API_INVALIDA,
    CHAVE_API_SEM_PERMISSAO,
    CONFIGURACAO_INVALIDA,
    CORPO_MUITO_GRANDE,
    DADOS_INVALIDOS,
    ENTIDADE_AMBIGUA,
    ENTIDADE_NAO_ENCONTRADA,
    ERRO_GLPI,
    ERRO_INTERNO,
    FALHA_SESSAO_GLPI,
    GLPI_INDISPONIVEL,
    IDEMPOTENCY_KEY_INVALIDA,
    IDEMPOTENCY_KEY_REUTILIZADA,
    LIMITE_DE_REQUISICOES,
    METODO_NAO_PERMITIDO,
    PEDIDO_EM_ANDAMENTO,
    PROTOCOLO_NAO_ENCONTRADO,
    REQUISICAO_INVALIDA,
    ROTA_NAO_ENCONTRADA,
    TIPO_DE_CONTEUDO_INVALIDO,
)
from gateway import (
    AmbiguousEntity,
    EntityNotFound,
    GatewaySetupError,
    TicketGateway,
    TicketRefused,
    UnknownCategory,
)
from glpi_client import GlpiAuthError, GlpiClient, GlpiError, GlpiUnavailable
from health import Readiness, describe_glpi_error
from idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey
from logging_setup import LOGGER_NAME, configure_logging
from metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from metrics import GatewayMetrics
from openapi import DOCS_PAGE, REQUEST_ID_PATTERN, SWAGGER_UI_DIR, build_document
from ratelimit import RateLimited, RateLimiter, client_ip
from store import CREATED, QUEUED, ClaimOutcome, Store, StoredAnswer, StoreUnavailable, open_store
from validation import ValidationError, validate_ticket_request

PING_TEXT = "App Flask está ativo!"
RETRY_AFTER_SECONDS = 30
# Answered without a key and never limited: liveness/readiness probes and the form's own files
# (the form itself posts to /criar-chamado like any client).
OPEN_PATHS = frozenset({"/ping", "/health", "/formulario", "/formulario.js", "/formulario.css", "/openapi.json", "/docs"})
OPEN_PATH_PREFIXES = ("/docs/",)  # the Swagger UI files
STORED_HEADERS = ("Location",)
_SANE_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Where formulario.js holds the form's key; the gateway writes the key of FORM_API_KEY_NAME there.
FORM_KEY_PLACEHOLDER = "/* FORM_API_KEY */ null"
# The page and the script depend on the configuration (frame-ancestors, the form's key): browsers
# revalidate them on every load (304 while unchanged) and shared caches do not keep them.
FORM_CACHE_CONTROL = "private, no-cache"
# The form page loads only its own script and stylesheet and talks only to this gateway.
FORM_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors {frame_ancestors}"
)
_HTTP_ERRORS = {answer.status: answer for answer in (
    ROTA_NAO_ENCONTRADA, METODO_NAO_PERMITIDO, CORPO_MUITO_GRANDE, TIPO_DE_CONTEUDO_INVALIDO)}

log = logging.getLogger(LOGGER_NAME)


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PATH_PREFIXES)


def api_document(metrics: bool = True) -> dict:
    """The OpenAPI document of this app; without `metrics` (METRICS_ENABLED=false) there is no /metrics."""
    return build_document(PING_TEXT, is_open_path, metrics)


class ProtocolNotFound(LookupError):
    """No queued request has this protocol (or it was finished longer than IDEMPOTENCY_TTL ago)."""


class FormKeyOutOfScope(Exception):
    """The form's key, public by nature, was used for something other than opening a ticket."""


def create_app(config: Config | None = None, glpi_client: GlpiClient | None = None) -> Flask:
    config = config or load_config()
    configure_logging(config.log_level, config.secrets(), context=_request_log_context)
    store = _open_store(config)
    backlog = partial(queue_backlog, store)
    metrics = GatewayMetrics(queue_backlog=backlog)
    client = glpi_client or GlpiClient(
        config.glpi_url,
        user_token=config.glpi_user_token,
        app_token=config.glpi_app_token,
        timeout=config.glpi_timeout,
        verify_tls=config.glpi_verify_tls,
        session_max_age=config.glpi_session_max_age,
        observer=partial(_count_glpi_call, metrics),
    )
    gateway = TicketGateway(config, client, entity_cache_observer=metrics.entity_cache_lookup)
    _run_startup_checks(gateway)
    readiness = Readiness(gateway, client, config.health_cache_ttl, backlog, config.health_queue_max_age)
    api_keys = ApiKeys(config.api_keys)
    _warn_about_access(config)
    limiter = None
    if config.rate_limit_per_ip or config.rate_limit_per_key:
        limiter = RateLimiter(store, config.rate_limit_per_ip, config.rate_limit_per_key)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["glpi_client"] = client
    app.extensions["ticket_gateway"] = gateway
    app.extensions["store"] = store
    app.extensions["openapi"] = api_document(metrics=config.metrics_enabled)
    # Started per worker process by gunicorn.conf.py (post_worker_init), stopped on its exit.
    app.extensions["delivery_worker"] = DeliveryWorker(
        store, gateway, retry_max_seconds=config.queue_retry_max_seconds, final_ttl=config.idempotency_ttl,
        observer=partial(_count_delivery, metrics),
    )
    _register_request_hooks(app, config.trusted_proxies)
    _register_access_hooks(app, CorsPolicy(config.cors_origins), api_keys, limiter, config.form_api_key_name)
    _register_idempotency_hook(app, store, config)
    _register_routes(app, gateway, readiness, store, config)
    _register_metrics(app, metrics, config.metrics_enabled)
    _register_form_routes(app, config)
    _register_error_answers(app)
    return app


def _warn_about_access(config: Config) -> None:
    if not config.api_keys:
        log.warning(
            "ATENÇÃO: API_KEYS vazio: qualquer um que alcance este gateway pode abrir chamados no GLPI. "
            "Defina API_KEYS (nome:chave,...) antes de expor o gateway."
        )
    elif config.form_api_key_name is None:
        log.info("FORM_API_KEY_NAME vazio: o formulário de contato (/formulario, formulario.js) recebe 401")
    elif config.rate_limit_per_ip is None:
        log.warning(
            "ATENÇÃO: a chave %r (FORM_API_KEY_NAME) é pública, vai no formulário; "
            "defina RATE_LIMIT_PER_IP para limitar quem a usa", config.form_api_key_name,
        )


def _open_store(config: Config) -> Store:
    try:
        return open_store(config.data_dir, config.redis_url, config.redis_key_prefix)
    except (StoreUnavailable, OSError) as error:
        variable = "REDIS_URL" if config.redis_url else "DATA_DIR"
        raise ConfigError(f"{variable}: não foi possível abrir o armazenamento (fila, chaves, limites) ({error})") from error


def _run_startup_checks(gateway: TicketGateway) -> None:
    """A definite misconfiguration stops start-up (GatewaySetupError propagates); an
    unreachable GLPI or refused tokens do not: the checks run again on first contact."""
    try:
        gateway.check_setup()
    except GlpiAuthError as error:
        log.warning("GLPI recusou as credenciais na partida (%s); verificações adiadas", error.code)
    except GlpiUnavailable as error:
        log.warning("GLPI indisponível na partida (%s); verificações adiadas", error)


def _request_log_context() -> dict:
    return {"request_id": g.get("request_id")} if has_request_context() else {}


def _count_glpi_call(metrics: GatewayMetrics, method: str, endpoint: str, status: int, elapsed: float) -> None:
    metrics.glpi_call(method, endpoint, elapsed)
    if has_request_context():
        g.glpi_calls = g.get("glpi_calls", 0) + 1


def _count_delivery(metrics: GatewayMetrics, state: str, codigo: str | None) -> None:
    """A queued ticket delivered later counts like one answered at once: created, or failed by codigo."""
    if state == CREATED:
        metrics.ticket_created()
    else:
        metrics.ticket_failed(codigo)


def _register_request_hooks(app: Flask, trusted_proxies: tuple) -> None:
    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        g.client_ip = client_ip(
            request.remote_addr, ",".join(request.headers.getlist("X-Forwarded-For")), trusted_proxies
        )

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        log.info(
            "%s %s -> %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "request_id": g.get("request_id"),
                "api_key": g.get("api_key"),
                "client_ip": g.get("client_ip"),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
                "glpi_calls": g.get("glpi_calls", 0),
                "ticket_id": g.get("ticket_id"),
                "protocolo": g.get("protocolo"),
                "codigo": g.get("codigo"),
            },
        )
        return response


def _register_access_hooks(
    app: Flask, cors: CorsPolicy, api_keys: ApiKeys, limiter: RateLimiter | None, form_key_name: str | None
) -> None:
    """Who may call, from which browser origin and how often; OPEN_PATHS stay open.

    Order matters: an allowed preflight is answered before anything else (browsers
    send no key with it), and the per-IP limit counts before the key check so that
    guessing keys is limited too. The form's key only opens tickets.
    """

    @app.before_request
    def answer_preflight() -> Response | None:
        if is_preflight(request.method, request.headers) and cors.allows(request.headers.get("Origin")):
            return Response(status=204, headers=cors.preflight_headers(request.headers.get("Origin")))
        return None

    @app.before_request
    def check_access() -> None:
        if is_open_path(request.path):
            return
        if limiter is not None:
            limiter.check_ip(g.client_ip)
        if api_keys.enabled:
            g.api_key = api_keys.identify(presented_key(request.headers))
            if limiter is not None:
                limiter.check_key(g.api_key)
            if g.api_key == form_key_name and request.endpoint != "criar_chamado":
                raise FormKeyOutOfScope()

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        if cors.enabled:
            response.headers.update(cors.response_headers(request.headers.get("Origin")))
            response.vary.add("Origin")
        return response


def _register_idempotency_hook(app: Flask, store: Store, config: Config) -> None:
    @app.after_request
    def settle_idempotency_key(response: Response) -> Response:
        """Store a final answer for the request's Idempotency-Key, or free the key for a retry."""
        key = g.pop("idempotency_key", None)
        if key is None:
            return response
        try:
            if idempotency.is_final(response.status_code):
                headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
                answer = StoredAnswer(response.status_code, response.get_data(as_text=True), headers)
                store.finish_key(key, answer, config.idempotency_ttl)
            else:
                store.release_key(key)
        except StoreUnavailable as error:
            # The answer stands. The key stays locked until its lock expires; then a repeat
            # takes over and finds this request's ticket by its protocol before sending.
            log.error("could not settle the Idempotency-Key: %s", error)
        return response


def _register_routes(
    app: Flask, gateway: TicketGateway, readiness: Readiness, store: Store, config: Config
) -> None:
    @app.get("/ping")
    def ping() -> Response:
        return Response(PING_TEXT, mimetype="text/plain")

    @app.get("/health")
    def health() -> Response:
        checks = readiness.checks()
        ready = all(check["ok"] for check in checks.values())
        response = jsonify(status="ok" if ready else "indisponivel", checks=checks)
        response.status_code = 200 if ready else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/debug")
    def debug() -> Response:
        raise RuntimeError("/debug: erro proposital para testar o tratamento de erros")

    @app.post("/criar-chamado")
    def criar_chamado() -> Response | tuple:
        if request.mimetype == "multipart/form-data":
            return _criar_chamado_com_anexos(gateway, config)
        ticket_request = replace(validate_ticket_request(_json_body()), origem=g.get("api_key"))
        key = idempotency.idempotency_key(request.headers.get(idempotency.IDEMPOTENCY_HEADER))
        g.protocolo = new_protocol()
        maybe_sent = False
        if key is not None:
            claim = idempotency.claim(
                store, _scoped_key(key), encode_request(ticket_request), g.protocolo,
                idempotency.lock_seconds(config.glpi_timeout), config.idempotency_ttl,
            )
            g.protocolo = claim.record.protocol
            if claim.outcome is ClaimOutcome.REPLAY:
                return _replay(claim.record.answer)
            g.idempotency_key = _scoped_key(key)
            maybe_sent = claim.outcome is ClaimOutcome.TAKEN_OVER
        g.ticket_id = create_or_enqueue(
            gateway, store, ticket_request, g.protocolo, maybe_sent, config.queue_when_unavailable,
            resend_delay=config.glpi_timeout,
        )
        if g.ticket_id is None:
            g.queued = True
            return jsonify(status=QUEUED, protocolo=g.protocolo), 202, {"Location": f"/chamados/{g.protocolo}"}
        return jsonify(ticket_id=g.ticket_id), 201

    @app.get("/chamados/<protocolo>")
    def chamado(protocolo: str) -> Response:
        queued = store.ticket(protocolo) if PROTOCOL_PATTERN.fullmatch(protocolo) else None
        if queued is None:
            raise ProtocolNotFound(protocolo)
        g.protocolo = protocolo
        return jsonify(status_answer(queued))


    @app.get("/openapi.json")
    def openapi_document() -> Response:
        # Unsorted keys: the document lists fields and answers in contract order.
        return Response(app.json.dumps(app.extensions["openapi"], sort_keys=False), mimetype="application/json")

    @app.get("/docs")
    def docs() -> Response:
        return Response(DOCS_PAGE, mimetype="text/html")

    @app.get("/docs/<path:arquivo>")
    def docs_asset(arquivo: str) -> Response:
        return send_from_directory(SWAGGER_UI_DIR, arquivo)


def _replay(answer: StoredAnswer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json", headers=answer.headers)
    response.headers[idempotency.REPLAYED_HEADER] = "true"
    return response


def _register_metrics(app: Flask, metrics: GatewayMetrics, expose: bool) -> None:
    @app.after_request
    def count_ticket_outcome(response: Response) -> Response:
        # request.endpoint is None when routing failed (404/405): not a ticket attempt.
        if request.endpoint == "criar_chamado":
            if g.get("ticket_id") is not None:
                metrics.ticket_created()
            elif g.get("queued"):
                metrics.ticket_queued()
            elif g.get("codigo"):
                metrics.ticket_failed(g.codigo)
        return response

    if expose:
        @app.get("/metrics")
        def prometheus_metrics() -> Response:
            return Response(metrics.exposition(), content_type=METRICS_CONTENT_TYPE)


def _register_form_routes(app: Flask, config: Config) -> None:
    """The contact form: a page for direct links and iframes, and its script and stylesheet,
    which another site can also load to inject the form (README, "Formulário de contato")."""
    page_csp = FORM_PAGE_CSP.format(frame_ancestors=config.form_frame_ancestors)
    script = (STATIC_DIR / "formulario.js").read_text(encoding="utf-8")
    script = script.replace(FORM_KEY_PLACEHOLDER, json.dumps(config.form_api_key)).encode("utf-8")
    script_etag = hashlib.sha256(script).hexdigest()

    def asset(name: str, max_age: int | None = None) -> Response:
        response = send_from_directory(STATIC_DIR, name, max_age=max_age)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/formulario")
    def formulario() -> Response:
        response = asset("formulario.html")
        response.headers["Cache-Control"] = FORM_CACHE_CONTROL
        response.headers["Content-Security-Policy"] = page_csp
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/formulario.js")
    def formulario_js() -> Response:
        response = Response(script, mimetype="text/javascript")
        response.set_etag(script_etag)
        response.headers["Cache-Control"] = FORM_CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response.make_conditional(request)

    @app.get("/formulario.css")
    def formulario_css() -> Response:
        return asset("formulario.css", max_age=300)


def _criar_chamado_com_anexos(gateway: TicketGateway, config: Config) -> tuple[Response, int]:
    """The multipart variant: the same fields as form fields, plus files in `anexos`.

    Every file is checked before the ticket is created; the ticket then exists whatever
    GLPI does with each file, and the answer says which ones it took.
    """
    request.max_content_length = config.max_multipart_body_bytes  # before anything reads the body
    ticket_request = replace(validate_ticket_request(request.form.to_dict()), origem=g.get("api_key"))
    if ATTACHMENTS_FIELD in request.form:  # a text part, where a file was meant: refused, not ignored
        raise ValidationError(invalid={ATTACHMENTS_FIELD: "envie arquivos neste campo, não texto"})
    attachments = read_attachments(
        ((field, upload.filename, upload.stream) for field, upload in request.files.items(multi=True)),
        config.attachments_max_count,
        config.attachments_max_bytes,
    )
    g.protocolo = new_protocol()
    g.ticket_id = gateway.create_ticket(ticket_request, extra_lines=((PROTOCOL_LABEL, g.protocolo),))
    report = gateway.attach_files(g.ticket_id, attachments)
    anexos = {
        "enviados": [{"arquivo": name, "documento_id": document_id} for name, document_id in report.sent],
        "falharam": [{"arquivo": name, "motivo": reason} for name, reason in report.failed],
    }
    return jsonify(ticket_id=g.ticket_id, anexos=anexos), 201


def _scoped_key(idempotency_key: str) -> str:
    """Idempotency-Keys belong to the API key that sent them: two clients cannot collide."""
    return f"{g.get('api_key') or ''}/{idempotency_key}"


def _json_body() -> object:
    if not request.is_json:
        raise UnsupportedMediaType()
    body = request.get_json(silent=True)
    if body is None:
        raise ValidationError(invalid={"corpo": "JSON malformado ou vazio"})
    return body


def _register_error_answers(app: Flask) -> None:
    """Every failure becomes a JSON answer here, and only here."""

    @app.errorhandler(ValidationError)
    def invalid_request(error: ValidationError) -> Response:
        if error.missing:
            return CAMPOS_OBRIGATORIOS_AUSENTES.answer(campos=error.missing)
        return DADOS_INVALIDOS.answer(campos=error.invalid)

    @app.errorhandler(ApiKeyRejected)
    def api_key_rejected(error: ApiKeyRejected) -> Response:
        challenge = 'Bearer realm="glpi-gateway"' + (', error="invalid_token"' if error.presented else "")
        return CHAVE_API_INVALIDA.answer(headers={"WWW-Authenticate": challenge})

    @app.errorhandler(FormKeyOutOfScope)
    def form_key_out_of_scope(error: FormKeyOutOfScope) -> Response:
        return CHAVE_API_SEM_PERMISSAO.answer()

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited) -> Response:
        scope = "este IP" if error.scope == "ip" else "esta chave de API"
        return LIMITE_DE_REQUISICOES.answer(
            headers={"Retry-After": str(error.retry_after)},
            detalhe=f"Limite de {error.rate} para {scope}; tente de novo em {error.retry_after} s",
        )

    @app.errorhandler(InvalidIdempotencyKey)
    def invalid_idempotency_key(error: InvalidIdempotencyKey) -> Response:
        return IDEMPOTENCY_KEY_INVALIDA.answer()

    @app.errorhandler(IdempotencyKeyReused)
    def idempotency_key_reused(error: IdempotencyKeyReused) -> Response:
        return IDEMPOTENCY_KEY_REUTILIZADA.answer()

    @app.errorhandler(IdempotencyKeyInFlight)
    def idempotency_key_in_flight(error: IdempotencyKeyInFlight) -> Response:
        return PEDIDO_EM_ANDAMENTO.answer(headers={"Retry-After": str(idempotency.IN_FLIGHT_RETRY_AFTER)})

    @app.errorhandler(ProtocolNotFound)
    def protocol_not_found(error: ProtocolNotFound) -> Response:
        return PROTOCOLO_NAO_ENCONTRADO.answer()

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error: StoreUnavailable) -> Response:
        log.error("armazenamento indisponível: %s", error)
        return ARMAZENAMENTO_INDISPONIVEL.answer(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.errorhandler(UnknownCategory)
    def unknown_category(error: UnknownCategory) -> Response:
        return CATEGORIA_DESCONHECIDA.answer(campos={"categoria": f"a categoria {error.args[0]} não existe no GLPI"})

    @app.errorhandler(EntityNotFound)
    def entity_not_found(error: EntityNotFound) -> Response:
        return ENTIDADE_NAO_ENCONTRADA.answer()

    @app.errorhandler(AmbiguousEntity)
    def ambiguous_entity(error: AmbiguousEntity) -> Response:
        return ENTIDADE_AMBIGUA.answer(entidades=error.names)

    @app.errorhandler(TicketRefused)
    def ticket_refused(error: TicketRefused) -> Response:
        return CHAMADO_RECUSADO.answer(status=error.status, detalhe=error.message)

    @app.errorhandler(GlpiAuthError)
    def glpi_auth_failed(error: GlpiAuthError) -> Response:
        log.error("GLPI recusou as credenciais: %s %s", error.code, error.message)
        return FALHA_SESSAO_GLPI.answer(detalhe=error.code)

    @app.errorhandler(GlpiUnavailable)
    def glpi_unavailable(error: GlpiUnavailable) -> Response:
        log.warning("GLPI indisponível: %s", error)
        return GLPI_INDISPONIVEL.answer(
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            detalhe=describe_glpi_error(error),
        )

    @app.errorhandler(GlpiError)
    def glpi_failed(error: GlpiError) -> Response:
        log.error("GLPI recusou uma consulta: %s %s", error.code, error.message)
        return ERRO_GLPI.answer(detalhe=error.code)

    @app.errorhandler(GatewaySetupError)
    def setup_failed(error: GatewaySetupError) -> Response:
        log.error("configuração incompatível com o GLPI: %s", error)
        return CONFIGURACAO_INVALIDA.answer(detalhe=_log_reference())

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        response = _HTTP_ERRORS.get(error.code, REQUISICAO_INVALIDA).answer(status=error.code or 400)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(InternalServerError)
    def unexpected_error(error: InternalServerError) -> Response:
        log.error("erro inesperado", exc_info=error.original_exception or error)
        return ERRO_INTERNO.answer(detalhe=_log_reference())


def _log_reference() -> str:
    return f"Informe ao suporte o identificador {g.get('request_id', '')}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["doctor"]:
        sys.exit(doctor_main(sys.argv[2:]))
    application = create_app()
    application.extensions["delivery_worker"].start()
    try:
        application.run(
            host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threaded=True
        )
    finally:
        application.extensions["delivery_worker"].stop(timeout=30)
        application.extensions["glpi_client"].close()
