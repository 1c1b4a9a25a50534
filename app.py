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
from dataclasses import dataclass, field, replace
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
from openapi import ANY_OPERATION, DOCS_PAGE, REQUEST_ID_PATTERN, SWAGGER_UI_DIR, build_document
from ratelimit import RateLimited, RateLimiter, client_ip, open_counters
from store import ClaimOutcome, Store, StoredAnswer, StoreUnavailable, open_store
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
# The form page loads only its own script and stylesheet and talks only to this gateway.
FORM_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors {frame_ancestors}"
)


@dataclass(frozen=True)
class ErrorAnswer:
    """One kind of error answer: `codigo` is stable for programs, `erro` is for people.

    `quando` (pt-BR) and the rest only feed the OpenAPI document: the operations
    ("METHOD /path") it can come from, the JSON Schema of its extra members, the
    response headers it sets and an example of those members.
    """

    status: int | str  # "4XX" when the status is GLPI's own
    erro: str
    codigo: str
    quando: str
    operations: tuple[str, ...]
    extra: dict[str, dict] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    example: dict[str, object] = field(default_factory=dict)

    def answer(self, status: int | None = None, headers: dict[str, str] | None = None, **extra) -> Response:
        return error_answer(status or self.status, self.erro, self.codigo, headers, **extra)


CRIAR_CHAMADO = "POST /criar-chamado"
_TEXT = {"type": "string"}
_NAMES = {"type": "array", "items": {"type": "string"}}
_FIELD_REASONS = {"type": "object", "additionalProperties": {"type": "string"}, "description": "campo -> motivo"}

# Every error answer the gateway gives, in one place: the handlers in `_register_error_answers`
# answer with these, and the OpenAPI document (openapi.py) lists them per operation.
CAMPOS_OBRIGATORIOS_AUSENTES = ErrorAnswer(
    400, "Campos obrigatórios ausentes", "campos_obrigatorios_ausentes",
    "Faltam campos obrigatórios, ou estão em branco; `campos` lista todos, na ordem do contrato.",
    (CRIAR_CHAMADO,), extra={"campos": _NAMES}, example={"campos": ["telefone_cliente", "anydesk_cliente"]},
)
DADOS_INVALIDOS = ErrorAnswer(
    400, "Dados inválidos", "dados_invalidos",
    "JSON malformado, corpo que não é objeto, tipo errado, CNPJ ou e-mail inválido, texto longo demais; "
    "`campos` diz o motivo de cada campo (`corpo` quando o problema é o corpo inteiro).",
    (CRIAR_CHAMADO,), extra={"campos": _FIELD_REASONS},
    example={"campos": {"cnpj_cliente": "CNPJ inválido (verifique os dígitos)"}},
)
CATEGORIA_DESCONHECIDA = ErrorAnswer(
    400, "Dados inválidos", "categoria_desconhecida", "A `categoria` informada não existe no GLPI.",
    (CRIAR_CHAMADO,), extra={"campos": _FIELD_REASONS},
    example={"campos": {"categoria": "a categoria 99 não existe no GLPI"}},
)
REQUISICAO_INVALIDA = ErrorAnswer(
    400, "Requisição inválida", "requisicao_invalida", "Pedido HTTP que o servidor não consegue interpretar.",
    (CRIAR_CHAMADO,),
)
FALHA_SESSAO_GLPI = ErrorAnswer(
    401, "Falha ao iniciar sessão", "falha_sessao_glpi",
    "O GLPI recusou o App-Token ou o token do usuário; `detalhe` traz o código de erro do GLPI.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, example={"detalhe": "ERROR_GLPI_LOGIN_USER_TOKEN"},
)
ENTIDADE_NAO_ENCONTRADA = ErrorAnswer(
    404, "Entidade não encontrada para o CNPJ informado", "entidade_nao_encontrada",
    "Nenhuma entidade do GLPI tem esse CNPJ.", (CRIAR_CHAMADO,),
)
ROTA_NAO_ENCONTRADA = ErrorAnswer(404, "Rota não encontrada", "rota_nao_encontrada", "Caminho inexistente.",
                                  ("GET /docs/{arquivo}",))
METODO_NAO_PERMITIDO = ErrorAnswer(
    405, "Método não permitido", "metodo_nao_permitido",
    "Método HTTP que o caminho não aceita; o cabeçalho `Allow` lista os aceitos.", (), headers=("Allow",),
)
ENTIDADE_AMBIGUA = ErrorAnswer(
    409, "Mais de uma entidade tem o CNPJ informado", "entidade_ambigua",
    "O CNPJ está em mais de uma entidade; `entidades` lista os nomes delas.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT, "entidades": _NAMES},
    example={"detalhe": "Corrija o cadastro no GLPI para que o CNPJ fique em uma só entidade",
             "entidades": ["Root entity > Cliente Matriz", "Root entity > Cliente Cópia"]},
)
CORPO_MUITO_GRANDE = ErrorAnswer(
    413, "Requisição muito grande", "corpo_muito_grande",
    "Corpo acima de `MAX_BODY_BYTES` (JSON) ou de `MAX_MULTIPART_BODY_BYTES` (com anexos).", (CRIAR_CHAMADO,),
)
TIPO_DE_CONTEUDO_INVALIDO = ErrorAnswer(
    415, "Envie o corpo como JSON (Content-Type: application/json) ou multipart/form-data",
    "tipo_de_conteudo_invalido", "`Content-Type` não é JSON nem `multipart/form-data`.", (CRIAR_CHAMADO,),
)
CHAMADO_RECUSADO = ErrorAnswer(
    "4XX", "Erro ao criar chamado", "chamado_recusado",
    "O GLPI recusou o chamado; o status e o `detalhe` são os do GLPI (ex. 400, falta de permissão na entidade).",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT},
    example={"detalhe": "You don't have permission to perform this action."},
)
ERRO_GLPI = ErrorAnswer(
    502, "Erro ao consultar o GLPI", "erro_glpi",
    "O GLPI recusou uma consulta (ex. direitos do usuário); `detalhe` traz o código de erro do GLPI.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, example={"detalhe": "ERROR_RIGHT_MISSING"},
)
GLPI_INDISPONIVEL = ErrorAnswer(
    503, "GLPI indisponível", "glpi_indisponivel",
    "GLPI fora do ar, lento demais, com erro 5xx ou respondendo algo que não é a API; tente de novo "
    "depois do tempo em `Retry-After`.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, headers=("Retry-After",),
    example={"detalhe": "não foi possível conectar ao GLPI"},
)
CONFIGURACAO_INVALIDA = ErrorAnswer(
    500, "Erro interno", "configuracao_invalida",
    "A configuração do gateway não confere com o GLPI (ex. categoria padrão apagada); o motivo fica no log.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT},
    example={"detalhe": "Informe ao suporte o identificador 3f2c9a0e5b7d4c1e8a6f0b2d4c6e8a0f"},
)
ERRO_INTERNO = ErrorAnswer(
    500, "Erro interno", "erro_interno",
    "Qualquer outra falha; o detalhe fica só no log, achado pelo identificador do pedido.",
    ANY_OPERATION, extra={"detalhe": _TEXT},
    example={"detalhe": "Informe ao suporte o identificador 3f2c9a0e5b7d4c1e8a6f0b2d4c6e8a0f"},
)
ERROR_ANSWERS = (
    CAMPOS_OBRIGATORIOS_AUSENTES, DADOS_INVALIDOS, CATEGORIA_DESCONHECIDA, REQUISICAO_INVALIDA, FALHA_SESSAO_GLPI,
    ENTIDADE_NAO_ENCONTRADA, ROTA_NAO_ENCONTRADA, METODO_NAO_PERMITIDO, ENTIDADE_AMBIGUA, CORPO_MUITO_GRANDE,
    TIPO_DE_CONTEUDO_INVALIDO, CHAMADO_RECUSADO, ERRO_GLPI, GLPI_INDISPONIVEL, CONFIGURACAO_INVALIDA, ERRO_INTERNO,
)
_HTTP_ERRORS = {answer.status: answer for answer in (
    ROTA_NAO_ENCONTRADA, METODO_NAO_PERMITIDO, CORPO_MUITO_GRANDE, TIPO_DE_CONTEUDO_INVALIDO)}

log = logging.getLogger(LOGGER_NAME)


class ProtocolNotFound(LookupError):
    """No queued request has this protocol (or it was finished longer than IDEMPOTENCY_TTL ago)."""


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
    store = _open_store(config)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["glpi_client"] = client
    app.extensions["ticket_gateway"] = gateway
    app.extensions["store"] = store
    app.extensions["openapi"] = build_document(ERROR_ANSWERS, PING_TEXT)
    # Started per worker process by gunicorn.conf.py (post_worker_init), stopped on its exit.
    app.extensions["delivery_worker"] = DeliveryWorker(
        store, gateway, retry_max_seconds=config.queue_retry_max_seconds, final_ttl=config.idempotency_ttl
    )
    _register_request_hooks(app, config.trusted_proxies)
    _register_access_hooks(app, CorsPolicy(config.cors_origins), api_keys, limiter)
    _register_idempotency_hook(app, store, config)
    _register_routes(app, gateway, readiness, store, config)
    _register_metrics(app, metrics, config.metrics_enabled)
    _register_form_routes(app, config)
    _register_error_answers(app)
    return app


def _open_store(config: Config) -> Store:
    try:
        return open_store(config.data_dir, config.redis_url, config.redis_key_prefix)
    except (StoreUnavailable, OSError) as error:
        variable = "REDIS_URL" if config.redis_url else "DATA_DIR"
        raise ConfigError(f"{variable}: não foi possível abrir o armazenamento da fila ({error})") from error


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
                "protocolo": g.get("protocolo"),
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
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PATH_PREFIXES):
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
            return jsonify(status="enfileirado", protocolo=g.protocolo), 202, {"Location": f"/chamados/{g.protocolo}"}
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
            return CAMPOS_OBRIGATORIOS_AUSENTES.answer(campos=error.missing)
        return DADOS_INVALIDOS.answer(campos=error.invalid)

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
        return CATEGORIA_DESCONHECIDA.answer(campos={"categoria": f"a categoria {error.args[0]} não existe no GLPI"})

    @app.errorhandler(EntityNotFound)
    def entity_not_found(error: EntityNotFound) -> Response:
        return ENTIDADE_NAO_ENCONTRADA.answer()

    @app.errorhandler(AmbiguousEntity)
    def ambiguous_entity(error: AmbiguousEntity) -> Response:
        return ENTIDADE_AMBIGUA.answer(
            detalhe="Corrija o cadastro no GLPI para que o CNPJ fique em uma só entidade", entidades=error.names
        )

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
