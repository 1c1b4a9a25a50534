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
from dataclasses import dataclass, field

from flask import Flask, Response, g, has_request_context, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, UnsupportedMediaType

from config import Config, load_config
from gateway import (
    AmbiguousEntity,
    EntityNotFound,
    GatewaySetupError,
    TicketGateway,
    TicketRefused,
    UnknownCategory,
)
from glpi_client import GlpiAuthError, GlpiClient, GlpiError, GlpiUnavailable
from logging_setup import LOGGER_NAME, configure_logging
from openapi import ANY_OPERATION, DOCS_PAGE, REQUEST_ID_PATTERN, SWAGGER_UI_DIR, build_document
from validation import ValidationError, validate_ticket_request

PING_TEXT = "App Flask está ativo!"
RETRY_AFTER_SECONDS = 30
_SANE_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
UNAVAILABLE_DETAILS = {
    "TIMEOUT": "o GLPI não respondeu a tempo",
    "CONNECTION_FAILED": "não foi possível conectar ao GLPI",
    "TLS_ERROR": "o certificado TLS do GLPI não foi aceito",
    "SERVER_ERROR": "o GLPI respondeu com erro interno",
    "NOT_JSON": "o GLPI respondeu algo que não é a API REST (verifique GLPI_URL)",
}


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
CORPO_MUITO_GRANDE = ErrorAnswer(413, "Requisição muito grande", "corpo_muito_grande",
                                 "Corpo acima de `MAX_BODY_BYTES`.", (CRIAR_CHAMADO,))
TIPO_DE_CONTEUDO_INVALIDO = ErrorAnswer(
    415, "Envie o corpo como JSON (Content-Type: application/json)", "tipo_de_conteudo_invalido",
    "`Content-Type` não é JSON.", (CRIAR_CHAMADO,),
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

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False
    app.extensions["glpi_client"] = client
    app.extensions["ticket_gateway"] = gateway
    app.extensions["openapi"] = build_document(ERROR_ANSWERS, PING_TEXT)
    _register_request_hooks(app)
    _register_routes(app, gateway)
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
                "codigo": g.get("codigo"),
            },
        )
        return response


def _register_routes(app: Flask, gateway: TicketGateway) -> None:
    @app.get("/ping")
    def ping() -> Response:
        return Response(PING_TEXT, mimetype="text/plain")

    @app.get("/debug")
    def debug() -> Response:
        raise RuntimeError("/debug: erro proposital para testar o tratamento de erros")

    @app.post("/criar-chamado")
    def criar_chamado() -> tuple[Response, int]:
        ticket_request = validate_ticket_request(_json_body())
        g.ticket_id = gateway.create_ticket(ticket_request)
        return jsonify(ticket_id=g.ticket_id), 201

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
            detalhe=UNAVAILABLE_DETAILS.get(error.code, "resposta inesperada do GLPI"),
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
    application = create_app()
    try:
        application.run(
            host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), threaded=True
        )
    finally:
        application.extensions["glpi_client"].close()
