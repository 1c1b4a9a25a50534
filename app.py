"""HTTP face of the gateway: routes, request ids, request logs and every error answer.

Run with `gunicorn "app:create_app()"` (configured by gunicorn.conf.py and env)
or `python app.py` for a local server; `python app.py doctor [--cnpj X]` diagnoses
the configuration and the GLPI behind it (doctor.py).
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from functools import partial
from pathlib import Path

from flask import Flask, Response, g, has_request_context, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, UnsupportedMediaType

from attachments import read_attachments
from auth import ApiKeyRejected, ApiKeys, presented_key
from config import Config, load_config
from cors import CorsPolicy, is_preflight
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
from logging_setup import LOGGER_NAME, configure_logging
from metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from metrics import GatewayMetrics
from ratelimit import RateLimited, RateLimiter, client_ip, open_counters
from validation import ValidationError, validate_ticket_request

PING_TEXT = "App Flask está ativo!"
RETRY_AFTER_SECONDS = 30
# Answered without a key and never limited: liveness/readiness probes and the form's own files
# (the form itself posts to /criar-chamado like any client).
OPEN_PATHS = frozenset({"/ping", "/health", "/formulario", "/formulario.js", "/formulario.css"})
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The form page loads only its own script and stylesheet and talks only to this gateway.
FORM_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors {frame_ancestors}"
)

log = logging.getLogger(LOGGER_NAME)


def create_app(config: Config | None = None, glpi_client: GlpiClient | None = None) -> Flask:
    config = config or load_config()
    configure_logging(config.log_level, config.secrets(), context=_request_log_context)
    metrics = GatewayMetrics()
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
    readiness = Readiness(gateway, client, config.health_cache_ttl)
    api_keys = ApiKeys(config.api_keys)
    if not api_keys.enabled:
        log.warning(
            "ATENÇÃO: API_KEYS vazio: qualquer um que alcance este gateway pode abrir chamados no GLPI. "
            "Defina API_KEYS (nome:chave,...) antes de expor o gateway."
        )
    limiter = None
    if config.rate_limit_per_ip or config.rate_limit_per_key:
        limiter = RateLimiter(open_counters(config), config.rate_limit_per_ip, config.rate_limit_per_key)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["glpi_client"] = client
    app.extensions["ticket_gateway"] = gateway
    _register_request_hooks(app, config.trusted_proxies)
    _register_access_hooks(app, CorsPolicy(config.cors_origins), api_keys, limiter)
    _register_routes(app, gateway, readiness, config)
    _register_metrics(app, metrics, config.metrics_enabled)
    _register_form_routes(app, config)
    _register_error_answers(app)
    return app


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
                "codigo": g.get("codigo"),
            },
        )
        return response


def _register_access_hooks(app: Flask, cors: CorsPolicy, api_keys: ApiKeys, limiter: RateLimiter | None) -> None:
    """Who may call, from which browser origin and how often; `/ping` stays open.

    Order matters: an allowed preflight is answered before anything else (browsers
    send no key with it), and the per-IP limit counts before the key check so that
    guessing keys is limited too.
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

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        if cors.enabled:
            response.headers.update(cors.response_headers(request.headers.get("Origin")))
            response.vary.add("Origin")
        return response


def _register_routes(app: Flask, gateway: TicketGateway, readiness: Readiness, config: Config) -> None:
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
    def criar_chamado() -> tuple[Response, int]:
        if request.mimetype == "multipart/form-data":
            return _criar_chamado_com_anexos(gateway, config)
        ticket_request = validate_ticket_request(_json_body())
        g.ticket_id = gateway.create_ticket(ticket_request, extra_lines=_origin_line())
        return jsonify(ticket_id=g.ticket_id), 201


def _register_metrics(app: Flask, metrics: GatewayMetrics, expose: bool) -> None:
    @app.after_request
    def count_ticket_outcome(response: Response) -> Response:
        # request.endpoint is None when routing failed (404/405): not a ticket attempt.
        if request.endpoint == "criar_chamado":
            if g.get("ticket_id") is not None:
                metrics.ticket_created()
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

    def asset(name: str) -> Response:
        response = send_from_directory(STATIC_DIR, name, max_age=300)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/formulario")
    def formulario() -> Response:
        response = asset("formulario.html")
        response.headers["Content-Security-Policy"] = page_csp
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/formulario.js")
    def formulario_js() -> Response:
        return asset("formulario.js")

    @app.get("/formulario.css")
    def formulario_css() -> Response:
        return asset("formulario.css")


def _criar_chamado_com_anexos(gateway: TicketGateway, config: Config) -> tuple[Response, int]:
    """The multipart variant: the same fields as form fields, plus files in `anexos`.

    Every file is checked before the ticket is created; the ticket then exists whatever
    GLPI does with each file, and the answer says which ones it took.
    """
    request.max_content_length = config.max_multipart_body_bytes  # before anything reads the body
    ticket_request = validate_ticket_request(request.form.to_dict())
    attachments = read_attachments(
        ((field, upload.filename, upload.stream) for field, upload in request.files.items(multi=True)),
        config.attachments_max_count,
        config.attachments_max_bytes,
    )
    g.ticket_id = gateway.create_ticket(ticket_request, extra_lines=_origin_line())
    report = gateway.attach_files(g.ticket_id, attachments)
    anexos = {
        "enviados": [{"arquivo": name, "documento_id": document_id} for name, document_id in report.sent],
        "falharam": [{"arquivo": name, "motivo": reason} for name, reason in report.failed],
    }
    return jsonify(ticket_id=g.ticket_id, anexos=anexos), 201


def _origin_line() -> tuple[tuple[str, str], ...]:
    """The ticket says which API key's owner sent it (the key's name, never the key)."""
    return (("Origem", g.api_key),) if g.get("api_key") else ()


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

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited) -> Response:
        scope = "este IP" if error.scope == "ip" else "esta chave de API"
        return error_answer(
            429, "Muitas requisições", "limite_de_requisicoes",
            headers={"Retry-After": str(error.retry_after)},
            detalhe=f"Limite de {error.rate} para {scope}; tente de novo em {error.retry_after} s",
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
    try:
        application.run(
            host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threaded=True
        )
    finally:
        application.extensions["glpi_client"].close()
