"""HTTP face of the gateway: routes, request ids, request logs and every error answer.

Run with `gunicorn "app:create_app()"` (configured by gunicorn.conf.py and env)
or `python app.py` for a local server.
"""
from __future__ import annotations

import logging
import os
import re
import time
import uuid

from flask import Flask, Response, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, UnsupportedMediaType

import idempotency
from config import Config, ConfigError, load_config
from delivery import PROTOCOL_PATTERN, DeliveryWorker, create_or_enqueue, encode_request, new_protocol, status_answer
from gateway import (
    AmbiguousEntity,
    EntityNotFound,
    GatewaySetupError,
    TicketGateway,
    TicketRefused,
    UnknownCategory,
)
from glpi_client import GlpiAuthError, GlpiClient, GlpiError, GlpiUnavailable
from idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey
from logging_setup import LOGGER_NAME, configure_logging
from store import ClaimOutcome, Store, StoredAnswer, StoreUnavailable, open_store
from validation import ValidationError, validate_ticket_request

PING_TEXT = "App Flask está ativo!"
RETRY_AFTER_SECONDS = 30
STORED_HEADERS = ("Location",)
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNAVAILABLE_DETAILS = {
    "TIMEOUT": "o GLPI não respondeu a tempo",
    "CONNECTION_FAILED": "não foi possível conectar ao GLPI",
    "TLS_ERROR": "o certificado TLS do GLPI não foi aceito",
    "SERVER_ERROR": "o GLPI respondeu com erro interno",
    "NOT_JSON": "o GLPI respondeu algo que não é a API REST (verifique GLPI_URL)",
}

log = logging.getLogger(LOGGER_NAME)


class ProtocolNotFound(LookupError):
    """No queued request has this protocol (or it was finished longer than IDEMPOTENCY_TTL ago)."""


def create_app(config: Config | None = None, glpi_client: GlpiClient | None = None) -> Flask:
    config = config or load_config()
    configure_logging(config.log_level, config.secrets())
    client = glpi_client or GlpiClient(
        config.glpi_url,
        user_token=config.glpi_user_token,
        app_token=config.glpi_app_token,
        timeout=config.glpi_timeout,
        verify_tls=config.glpi_verify_tls,
        session_max_age=config.glpi_session_max_age,
        observer=_count_glpi_call,
    )
    gateway = TicketGateway(config, client)
    _run_startup_checks(gateway)
    store = _open_store(config)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False
    app.extensions["glpi_client"] = client
    app.extensions["ticket_gateway"] = gateway
    app.extensions["store"] = store
    # Started per worker process by gunicorn.conf.py (post_worker_init), stopped on its exit.
    app.extensions["delivery_worker"] = DeliveryWorker(
        store, gateway, retry_max_seconds=config.queue_retry_max_seconds, final_ttl=config.idempotency_ttl
    )
    _register_request_hooks(app)
    _register_idempotency_hook(app, store, config)
    _register_routes(app, gateway, store, config)
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


def _count_glpi_call(method: str, endpoint: str, status: int, elapsed: float) -> None:
    if has_request_context():
        g.glpi_calls = g.get("glpi_calls", 0) + 1


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

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


def _register_routes(app: Flask, gateway: TicketGateway, store: Store, config: Config) -> None:
    @app.get("/ping")
    def ping() -> Response:
        return Response(PING_TEXT, mimetype="text/plain")

    @app.get("/debug")
    def debug() -> Response:
        raise RuntimeError("/debug: erro proposital para testar o tratamento de erros")

    @app.post("/criar-chamado")
    def criar_chamado() -> Response | tuple:
        ticket_request = validate_ticket_request(_json_body())
        key = idempotency.idempotency_key(request.headers.get(idempotency.IDEMPOTENCY_HEADER))
        canonical_body = encode_request(ticket_request)
        g.protocolo = new_protocol()
        maybe_sent = False
        if key is not None:
            claim = idempotency.claim(
                store, key, canonical_body, g.protocolo,
                idempotency.lock_seconds(config.glpi_timeout), config.idempotency_ttl,
            )
            g.protocolo = claim.record.protocol
            if claim.outcome is ClaimOutcome.REPLAY:
                return _replay(claim.record.answer)
            g.idempotency_key = key
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


def _replay(answer: StoredAnswer) -> Response:
    response = Response(answer.body, status=answer.status, mimetype="application/json", headers=answer.headers)
    response.headers[idempotency.REPLAYED_HEADER] = "true"
    return response


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
            detalhe=UNAVAILABLE_DETAILS.get(error.code, "resposta inesperada do GLPI"),
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
            415: ("Envie o corpo como JSON (Content-Type: application/json)", "tipo_de_conteudo_invalido"),
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
    application = create_app()
    application.extensions["delivery_worker"].start()
    try:
        application.run(
            host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threaded=True
        )
    finally:
        application.extensions["delivery_worker"].stop(timeout=30)
        application.extensions["glpi_client"].close()
