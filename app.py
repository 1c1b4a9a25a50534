"""HTTP face of the gateway: routes, request ids, request logs and every error answer.

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
from ratelimit import RateLimited, RateLimiter, client_ip
from store import CREATED, ClaimOutcome, Store, StoredAnswer, StoreUnavailable, open_store
from validation import ValidationError, validate_ticket_request

PING_TEXT = "App Flask está ativo!"
RETRY_AFTER_SECONDS = 30
# Answered without a key and never limited: liveness/readiness probes and the form's own files
# (the form itself posts to /criar-chamado like any client).
OPEN_PATHS = frozenset({"/ping", "/health", "/formulario", "/formulario.js", "/formulario.css"})
STORED_HEADERS = ("Location",)
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

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

log = logging.getLogger(LOGGER_NAME)


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
        if request.path in OPEN_PATHS:
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
            return jsonify(status="enfileirado", protocolo=g.protocolo), 202, {"Location": f"/chamados/{g.protocolo}"}
        return jsonify(ticket_id=g.ticket_id), 201

    @app.get("/chamados/<protocolo>")
    def chamado(protocolo: str) -> Response:
        queued = store.ticket(protocolo) if PROTOCOL_PATTERN.fullmatch(protocolo) else None
        if queued is None:
            raise ProtocolNotFound(protocolo)
        g.protocolo = protocolo
        return jsonify(status_answer(queued))


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


def error_answer(status: int, erro: str, codigo: str, headers: dict[str, str] | None = None, **extra) -> Response:
    g.codigo = codigo
    response = jsonify({"erro": erro, "codigo": codigo, **extra})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _register_error_answers(app: Flask) -> None:
    """Every failure becomes a JSON answer here, and only here."""

    @app.errorhandler(ValidationError)
    def invalid_request(error: ValidationError) -> Response:
        if error.missing:
            return error_answer(400, "Campos obrigatórios ausentes", "campos_obrigatorios_ausentes", campos=error.missing)
        return error_answer(400, "Dados inválidos", "dados_invalidos", campos=error.invalid)

    @app.errorhandler(ApiKeyRejected)
    def api_key_rejected(error: ApiKeyRejected) -> Response:
        challenge = 'Bearer realm="glpi-gateway"' + (', error="invalid_token"' if error.presented else "")
        return error_answer(
            401, "Chave de API ausente ou inválida", "chave_api_invalida",
            headers={"WWW-Authenticate": challenge},
            detalhe="Envie a chave no cabeçalho Authorization: Bearer <chave> ou X-API-Key",
        )

    @app.errorhandler(FormKeyOutOfScope)
    def form_key_out_of_scope(error: FormKeyOutOfScope) -> Response:
        return error_answer(
            403, "Esta chave de API só pode abrir chamados", "chave_api_sem_permissao",
            detalhe="A chave do formulário (FORM_API_KEY_NAME) é pública e só vale para POST /criar-chamado",
        )

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited) -> Response:
        scope = "este IP" if error.scope == "ip" else "esta chave de API"
        return error_answer(
            429, "Muitas requisições", "limite_de_requisicoes",
            headers={"Retry-After": str(error.retry_after)},
            detalhe=f"Limite de {error.rate} para {scope}; tente de novo em {error.retry_after} s",
        )

    @app.errorhandler(InvalidIdempotencyKey)
    def invalid_idempotency_key(error: InvalidIdempotencyKey) -> Response:
        return error_answer(
            400, "Idempotency-Key inválida", "idempotency_key_invalida",
            detalhe="use de 1 a 255 caracteres entre letras, dígitos e ._:+/=~- (ex. um UUID)",
        )

    @app.errorhandler(IdempotencyKeyReused)
    def idempotency_key_reused(error: IdempotencyKeyReused) -> Response:
        return error_answer(
            422, "Idempotency-Key já usada com outro corpo", "idempotency_key_reutilizada",
            detalhe="use uma chave nova para cada chamado diferente",
        )

    @app.errorhandler(IdempotencyKeyInFlight)
    def idempotency_key_in_flight(error: IdempotencyKeyInFlight) -> Response:
        return error_answer(
            409, "Um pedido com a mesma Idempotency-Key ainda está em andamento", "pedido_em_andamento",
            headers={"Retry-After": str(idempotency.IN_FLIGHT_RETRY_AFTER)},
        )

    @app.errorhandler(ProtocolNotFound)
    def protocol_not_found(error: ProtocolNotFound) -> Response:
        return error_answer(404, "Protocolo não encontrado", "protocolo_nao_encontrado")

    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error: StoreUnavailable) -> Response:
        log.error("armazenamento indisponível: %s", error)
        return error_answer(
            503, "Armazenamento indisponível", "armazenamento_indisponivel",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.errorhandler(UnknownCategory)
    def unknown_category(error: UnknownCategory) -> Response:
        return error_answer(
            400, "Dados inválidos", "categoria_desconhecida",
            campos={"categoria": f"a categoria {error.args[0]} não existe no GLPI"},
        )

    @app.errorhandler(EntityNotFound)
    def entity_not_found(error: EntityNotFound) -> Response:
        return error_answer(404, "Entidade não encontrada para o CNPJ informado", "entidade_nao_encontrada")

    @app.errorhandler(AmbiguousEntity)
    def ambiguous_entity(error: AmbiguousEntity) -> Response:
        return error_answer(
            409, "Mais de uma entidade tem o CNPJ informado", "entidade_ambigua",
            detalhe="Corrija o cadastro no GLPI para que o CNPJ fique em uma só entidade",
            entidades=error.names,
        )

    @app.errorhandler(TicketRefused)
    def ticket_refused(error: TicketRefused) -> Response:
        return error_answer(error.status, "Erro ao criar chamado", "chamado_recusado", detalhe=error.message)

    @app.errorhandler(GlpiAuthError)
    def glpi_auth_failed(error: GlpiAuthError) -> Response:
        log.error("GLPI recusou as credenciais: %s %s", error.code, error.message)
        return error_answer(401, "Falha ao iniciar sessão", "falha_sessao_glpi", detalhe=error.code)

    @app.errorhandler(GlpiUnavailable)
    def glpi_unavailable(error: GlpiUnavailable) -> Response:
        log.warning("GLPI indisponível: %s", error)
        return error_answer(
            503, "GLPI indisponível", "glpi_indisponivel",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            detalhe=describe_glpi_error(error),
        )

    @app.errorhandler(GlpiError)
    def glpi_failed(error: GlpiError) -> Response:
        log.error("GLPI recusou uma consulta: %s %s", error.code, error.message)
        return error_answer(502, "Erro ao consultar o GLPI", "erro_glpi", detalhe=error.code)

    @app.errorhandler(GatewaySetupError)
    def setup_failed(error: GatewaySetupError) -> Response:
        log.error("configuração incompatível com o GLPI: %s", error)
        return error_answer(500, "Erro interno", "configuracao_invalida", detalhe=_log_reference())

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        answers = {
            404: ("Rota não encontrada", "rota_nao_encontrada"),
            405: ("Método não permitido", "metodo_nao_permitido"),
            413: ("Requisição muito grande", "corpo_muito_grande"),
            415: ("Envie o corpo como JSON (Content-Type: application/json) ou multipart/form-data",
                  "tipo_de_conteudo_invalido"),
        }
        erro, codigo = answers.get(error.code, ("Requisição inválida", "requisicao_invalida"))
        response = error_answer(error.code or 400, erro, codigo)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(InternalServerError)
    def unexpected_error(error: InternalServerError) -> Response:
        log.error("erro inesperado", exc_info=error.original_exception or error)
        return error_answer(500, "Erro interno", "erro_interno", detalhe=_log_reference())


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
