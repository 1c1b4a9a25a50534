"""Every error answer the gateway gives and which failure gets which: plain data, no Flask.

The catalogue (`ERROR_ANSWERS`) feeds the OpenAPI document (web/openapi.py); the table
`answer_for` maps each exception to its answer, for the HTTP face (web/errors.py) and for
the delivery worker (the reason a queued ticket failed). An answer is
`{"erro": ..., "codigo": ..., **members}`: `codigo` is stable for programs, `erro` is for
people (pt-BR).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from glpi_client import GlpiAuthError, GlpiError, GlpiUnavailable
from glpi_gateway.attachments import UPLOADS_BUSY_RETRY_AFTER, UploadsBusy
from glpi_gateway.auth import ApiKeyRejected, FormKeyOutOfScope
from glpi_gateway.challenge import ChallengeRefused, HoneypotFilled
from glpi_gateway.cors import CrossSiteRefused
from glpi_gateway.idempotency import (
    IN_FLIGHT_RETRY_AFTER,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from glpi_gateway.ratelimit import RateLimited
from glpi_gateway.store import ProtocolNotFound, QueueFull, StoreUnavailable, TicketNotYetCreated
from glpi_gateway.tickets import (
    AmbiguousEntity,
    EntityNotFound,
    GatewaySetupError,
    TicketClosed,
    TicketGone,
    TicketRefused,
    UnknownCategory,
)
from glpi_gateway.validation import ValidationError

# Retry-After of the answers that say "unavailable, try later".
RETRY_AFTER_SECONDS = 30

# Stand-ins for operation names in `ErrorAnswer.operations`.
ANY_OPERATION = ("*",)
# Every operation outside app.py's open paths: those check the API key and the rate limits.
PROTECTED_OPERATIONS = ("protegidas",)
# The protected operations but the form's (FORM_OPERATIONS): where the form's public key may not go.
NON_TICKET_PROTECTED_OPERATIONS = ("protegidas, exceto as do formulário: abrir, consultar e complementar chamados",)

CRIAR_CHAMADO = "POST /criar-chamado"
CONSULTAR_CHAMADO = "GET /chamados/{protocolo}"
COMPLEMENTAR_CHAMADO = "POST /chamados/{protocolo}/complemento"
# The operations the form's public key may reach (the posts with a solved challenge).
FORM_OPERATIONS = (CRIAR_CHAMADO, CONSULTAR_CHAMADO, COMPLEMENTAR_CHAMADO)
_TEXT = {"type": "string"}
_NAMES = {"type": "array", "items": {"type": "string"}}
_FIELD_REASONS = {"type": "object", "additionalProperties": {"type": "string"}, "description": "campo -> motivo"}
_LOG_REFERENCE = {"detalhe": "Informe ao suporte o identificador 3f2c9a0e5b7d4c1e8a6f0b2d4c6e8a0f"}


@dataclass(frozen=True)
class ErrorAnswer:
    """One kind of error answer.

    `fixed` members are sent as they are in every answer; the other members are passed per
    answer. `quando` (pt-BR) and the rest only feed the OpenAPI document: the operations
    ("METHOD /path", or a stand-in above) it can come from, the JSON Schema of its variable
    members, the response headers it sets, an example of those members, and whether it is
    stored for the request's Idempotency-Key and given again to a repeat (`replayed`: the
    answers decided by GLPI's data, after the key was claimed; see idempotency.py).
    """

    status: int | str  # "4XX" when the status is GLPI's own
    erro: str
    codigo: str
    quando: str
    operations: tuple[str, ...]
    extra: dict[str, dict] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    example: Mapping[str, object] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    optional: tuple[str, ...] = ()  # members of `extra` that only some callers get

    def refusal(self, status: int | None = None, headers: dict[str, str] | None = None, **members: Any) -> Refusal:
        """This answer for one occurrence: its status (GLPI's own for "4XX"), headers and members."""
        return Refusal(self, status, headers or {}, members)


@dataclass(frozen=True)
class Refusal:
    """One error answer as given: the catalogue entry plus what this occurrence adds.

    `motivo` is the one-line reason a queued ticket shows when it fails for the same cause
    (GET /chamados/<protocolo>; `reason` falls back to `erro`); `log_level`, `event` and
    `log_message` say what the operator's log records, when it records anything.
    """

    answer: ErrorAnswer
    status: int | None
    headers: dict[str, str]
    members: dict[str, Any]
    motivo: str = ""
    log_level: int | None = None
    event: str = ""
    log_message: str = ""

    @property
    def reason(self) -> str:
        return self.motivo or self.answer.erro

    @property
    def status_code(self) -> int:
        status = self.status or self.answer.status
        if not isinstance(status, int):
            raise TypeError(f"{self.answer.codigo}: the status is the one GLPI gave; pass it")
        return status

    @property
    def body(self) -> dict[str, Any]:
        return {"erro": self.answer.erro, "codigo": self.answer.codigo, **self.answer.fixed, **self.members}

    def without_details(self) -> Refusal:
        """This answer for a caller who may not see the optional members (e.g. entity names)."""
        members = {name: value for name, value in self.members.items() if name not in self.answer.optional}
        return replace(self, members=members)


CAMPOS_OBRIGATORIOS_AUSENTES = ErrorAnswer(
    400,
    "Campos obrigatórios ausentes",
    "campos_obrigatorios_ausentes",
    "Faltam campos obrigatórios, ou estão em branco; `campos` lista todos, na ordem do contrato.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    extra={"campos": _NAMES},
    example={"campos": ["telefone_cliente", "anydesk_cliente"]},
)
DADOS_INVALIDOS = ErrorAnswer(
    400,
    "Dados inválidos",
    "dados_invalidos",
    "JSON malformado, corpo que não é objeto, tipo errado, CNPJ ou e-mail inválido, texto longo demais, "
    "anexo recusado; `campos` diz o motivo de cada campo (`corpo` quando o problema é o corpo inteiro, "
    "`anexos` nomeando cada arquivo recusado).",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    extra={"campos": _FIELD_REASONS},
    example={"campos": {"cnpj_cliente": "CNPJ inválido (verifique os dígitos)"}},
)
CATEGORIA_DESCONHECIDA = ErrorAnswer(
    400,
    "Dados inválidos",
    "categoria_desconhecida",
    "A `categoria` informada não existe no GLPI.",
    (CRIAR_CHAMADO,),
    extra={"campos": _FIELD_REASONS},
    example={"campos": {"categoria": "a categoria 99 não existe no GLPI"}},
    replayed=True,
)
IDEMPOTENCY_KEY_INVALIDA = ErrorAnswer(
    400,
    "Idempotency-Key inválida",
    "idempotency_key_invalida",
    "`Idempotency-Key` vazia, longa demais ou com caracteres não permitidos.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    fixed={"detalhe": "use de 1 a 255 caracteres entre letras, dígitos e ._:+/=~- (ex. um UUID)"},
)
REQUISICAO_INVALIDA = ErrorAnswer(
    400,
    "Requisição inválida",
    "requisicao_invalida",
    "Pedido HTTP que o servidor não consegue interpretar.",
    (CRIAR_CHAMADO,),
)
CHAVE_API_INVALIDA = ErrorAnswer(
    401,
    "Chave de API ausente ou inválida",
    "chave_api_invalida",
    "Com `API_KEYS` configurada: a chave não veio, ou não é uma das configuradas. `WWW-Authenticate` diz o "
    "esquema (`Bearer`).",
    PROTECTED_OPERATIONS,
    headers=("WWW-Authenticate",),
    fixed={"detalhe": "Envie a chave no cabeçalho Authorization: Bearer <chave> ou X-API-Key"},
)
CHAVE_API_SEM_PERMISSAO = ErrorAnswer(
    403,
    "Esta chave de API só pode abrir, consultar e complementar chamados",
    "chave_api_sem_permissao",
    "A chave do formulário (`FORM_API_KEY_NAME`) é pública e só vale para `POST /criar-chamado`, "
    "`GET /chamados/{protocolo}` e `POST /chamados/{protocolo}/complemento`.",
    NON_TICKET_PROTECTED_OPERATIONS,
    fixed={
        "detalhe": "A chave do formulário (FORM_API_KEY_NAME) é pública e só vale para POST /criar-chamado, "
        "GET /chamados/{protocolo} e POST /chamados/{protocolo}/complemento"
    },
)
DESAFIO_INVALIDO = ErrorAnswer(
    403,
    "Envio do formulário não verificado",
    "desafio_invalido",
    "Com a chave pública do formulário (`FORM_API_KEY_NAME`): o pedido não trouxe o desafio resolvido "
    "(`X-Desafio` e `X-Desafio-Solucao`), ou ele expirou, foi adulterado ou já foi usado; `detalhe` diz qual. "
    "O formulário pede um novo em `GET /formulario/desafio` e o resolve sozinho.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    extra={"detalhe": _TEXT},
    example={"detalhe": "desafio expirado"},
)
ENVIO_AUTOMATICO = ErrorAnswer(
    400,
    "Envio recusado",
    "envio_automatico",
    "O campo `website`, invisível no formulário, veio preenchido: só robôs o preenchem. Nada é criado no GLPI.",
    (CRIAR_CHAMADO,),
)
ORIGEM_NAO_PERMITIDA = ErrorAnswer(
    403,
    "Origem não permitida",
    "origem_nao_permitida",
    "Sem `API_KEYS` (modo aberto): um navegador enviou o pedido a partir de outro site (`Origin` ou "
    "`Sec-Fetch-Site`) que não está em `CORS_ORIGINS`. Impede que qualquer página abra chamados pelos "
    "navegadores de quem a visita.",
    (CRIAR_CHAMADO,),
    fixed={"detalhe": "Pedidos de navegador vindos de outro site precisam que a origem esteja em CORS_ORIGINS"},
)
FALHA_SESSAO_GLPI = ErrorAnswer(
    401,
    "Falha ao iniciar sessão",
    "falha_sessao_glpi",
    "O GLPI recusou o App-Token ou o token do usuário; `detalhe` traz o código de erro do GLPI.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    extra={"detalhe": _TEXT},
    example={"detalhe": "ERROR_GLPI_LOGIN_USER_TOKEN"},
)
ENTIDADE_NAO_ENCONTRADA = ErrorAnswer(
    404,
    "Entidade não encontrada para o CNPJ informado",
    "entidade_nao_encontrada",
    "Nenhuma entidade do GLPI tem esse CNPJ.",
    (CRIAR_CHAMADO,),
    replayed=True,
)
PROTOCOLO_NAO_ENCONTRADO = ErrorAnswer(
    404,
    "Protocolo não encontrado",
    "protocolo_nao_encontrado",
    "Protocolo desconhecido, malformado ou expirado (chamado criado há mais de `PROTOCOL_TTL_DAYS` dias, pedido "
    "da fila finalizado há mais de `IDEMPOTENCY_TTL` segundos), ou chamado apagado do GLPI: a resposta é a "
    "mesma em todos os casos, para não revelar quais protocolos existem.",
    (CONSULTAR_CHAMADO, COMPLEMENTAR_CHAMADO),
)
ROTA_NAO_ENCONTRADA = ErrorAnswer(
    404, "Rota não encontrada", "rota_nao_encontrada", "Caminho inexistente.", ("GET /docs/{arquivo}",)
)
METODO_NAO_PERMITIDO = ErrorAnswer(
    405,
    "Método não permitido",
    "metodo_nao_permitido",
    "Método HTTP que o caminho não aceita; o cabeçalho `Allow` lista os aceitos.",
    (),
    headers=("Allow",),
)
ENTIDADE_AMBIGUA = ErrorAnswer(
    409,
    "Mais de uma entidade tem o CNPJ informado",
    "entidade_ambigua",
    "O CNPJ está em mais de uma entidade; `entidades` lista os nomes delas, só para chaves privadas (e no "
    "modo aberto): a chave pública do formulário recebe a resposta sem os nomes.",
    (CRIAR_CHAMADO,),
    extra={"entidades": _NAMES},
    optional=("entidades",),
    example={"entidades": ["Root entity > Cliente Matriz", "Root entity > Cliente Cópia"]},
    fixed={"detalhe": "Corrija o cadastro no GLPI para que o CNPJ fique em uma só entidade"},
    replayed=True,
)
PEDIDO_EM_ANDAMENTO = ErrorAnswer(
    409,
    "Um pedido com a mesma Idempotency-Key ainda está em andamento",
    "pedido_em_andamento",
    "Outro pedido com a mesma `Idempotency-Key` (ou, sem ela, um pedido idêntico) ainda não terminou; repita "
    "depois do `Retry-After`. Em `POST /criar-chamado` (JSON), se o chamado do primeiro já existe, a "
    "repetição recebe o 201 dele em vez deste 409.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    headers=("Retry-After",),
)
CORPO_MUITO_GRANDE = ErrorAnswer(
    413,
    "Requisição muito grande",
    "corpo_muito_grande",
    "Corpo acima de `MAX_BODY_BYTES` (JSON) ou de `MAX_MULTIPART_BODY_BYTES` (com anexos).",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
)
TIPO_DE_CONTEUDO_INVALIDO = ErrorAnswer(
    415,
    "Envie o corpo como JSON (Content-Type: application/json) ou multipart/form-data",
    "tipo_de_conteudo_invalido",
    "`Content-Type` não é JSON nem `multipart/form-data`.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
)
IDEMPOTENCY_KEY_REUTILIZADA = ErrorAnswer(
    422,
    "Idempotency-Key já usada com outro corpo",
    "idempotency_key_reutilizada",
    "A `Idempotency-Key` já foi usada com outro pedido.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    fixed={"detalhe": "use uma chave nova para cada chamado diferente"},
)
LIMITE_DE_REQUISICOES = ErrorAnswer(
    429,
    "Muitas requisições",
    "limite_de_requisicoes",
    "Acima de `RATE_LIMIT_PER_IP` ou de `RATE_LIMIT_PER_KEY` (ou, nas consultas de `GET /chamados/{protocolo}`, "
    "de `RATE_LIMIT_LOOKUP_PER_IP`); tente de novo depois do `Retry-After`.",
    PROTECTED_OPERATIONS,
    extra={"detalhe": _TEXT},
    headers=("Retry-After",),
    example={"detalhe": "Limite de 20/hour para este IP; tente de novo em 1740 s"},
)
CHAMADO_RECUSADO = ErrorAnswer(
    "4XX",
    "Erro ao criar chamado",
    "chamado_recusado",
    "O GLPI recusou o chamado; o status e o `detalhe` são os do GLPI (ex. 400, falta de permissão na entidade).",
    (CRIAR_CHAMADO,),
    extra={"detalhe": _TEXT},
    example={"detalhe": "You don't have permission to perform this action."},
    replayed=True,
)
CONFIGURACAO_INVALIDA = ErrorAnswer(
    500,
    "Erro interno",
    "configuracao_invalida",
    "A configuração do gateway não confere com o GLPI (ex. categoria padrão apagada); o motivo fica no log.",
    (CRIAR_CHAMADO,),
    extra={"detalhe": _TEXT},
    example=_LOG_REFERENCE,
)
ERRO_INTERNO = ErrorAnswer(
    500,
    "Erro interno",
    "erro_interno",
    "Qualquer outra falha; o detalhe fica só no log, achado pelo identificador do pedido.",
    ANY_OPERATION,
    extra={"detalhe": _TEXT},
    example=_LOG_REFERENCE,
)
ERRO_GLPI = ErrorAnswer(
    502,
    "Erro ao consultar o GLPI",
    "erro_glpi",
    "O GLPI recusou uma consulta (ex. direitos do usuário); `detalhe` traz o código de erro do GLPI.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    extra={"detalhe": _TEXT},
    example={"detalhe": "ERROR_RIGHT_MISSING"},
)
GLPI_INDISPONIVEL = ErrorAnswer(
    503,
    "GLPI indisponível",
    "glpi_indisponivel",
    "GLPI fora do ar, lento demais, com erro 5xx ou respondendo algo que não é a API, com "
    "`QUEUE_WHEN_UNAVAILABLE=false`; tente de novo depois do tempo em `Retry-After`.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    extra={"detalhe": _TEXT},
    headers=("Retry-After",),
    example={"detalhe": "não foi possível conectar ao GLPI"},
)
ARMAZENAMENTO_INDISPONIVEL = ErrorAnswer(
    503,
    "Armazenamento indisponível",
    "armazenamento_indisponivel",
    "O SQLite ou o Redis falhou (ex. disco cheio): nada foi guardado; repita depois do `Retry-After`.",
    (CRIAR_CHAMADO, CONSULTAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    headers=("Retry-After",),
)
FILA_DE_ANEXOS_CHEIA = ErrorAnswer(
    503,
    "Fila de anexos cheia",
    "fila_de_anexos_cheia",
    "O GLPI está indisponível e a fila já guarda `QUEUE_MAX_ATTACHMENT_BYTES` de anexos: este pedido "
    "com anexos não foi guardado (nada ficou pela metade); repita depois do `Retry-After`.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    headers=("Retry-After",),
)
ANEXOS_OCUPADO = ErrorAnswer(
    503,
    "Muitos envios com anexos em andamento",
    "anexos_ocupado",
    "Este processo já atende `MULTIPART_MAX_IN_FLIGHT` pedidos com anexos; nada foi criado, "
    "repita depois do `Retry-After`.",
    (CRIAR_CHAMADO, COMPLEMENTAR_CHAMADO),
    headers=("Retry-After",),
)
CHAMADO_FECHADO = ErrorAnswer(
    409,
    "Chamado fechado",
    "chamado_fechado",
    "O chamado está fechado no GLPI e não recebe mais mensagens; abra um novo chamado.",
    (COMPLEMENTAR_CHAMADO,),
    fixed={"detalhe": "Abra um novo chamado em POST /criar-chamado"},
    replayed=True,
)
CHAMADO_AINDA_NA_FILA = ErrorAnswer(
    409,
    "Chamado ainda não criado",
    "chamado_ainda_na_fila",
    "O pedido não virou chamado (o GLPI o recusou, ou a equipe de operação o cancelou): não há chamado "
    "para complementar; veja o motivo em `GET /chamados/{protocolo}`. (Enquanto o pedido espera na fila, o "
    "complemento é aceito com 202 e entregue depois do chamado.)",
    (COMPLEMENTAR_CHAMADO,),
)
ERROR_ANSWERS = (
    CAMPOS_OBRIGATORIOS_AUSENTES,
    DADOS_INVALIDOS,
    CATEGORIA_DESCONHECIDA,
    IDEMPOTENCY_KEY_INVALIDA,
    REQUISICAO_INVALIDA,
    CHAVE_API_INVALIDA,
    CHAVE_API_SEM_PERMISSAO,
    DESAFIO_INVALIDO,
    ENVIO_AUTOMATICO,
    ORIGEM_NAO_PERMITIDA,
    FALHA_SESSAO_GLPI,
    ENTIDADE_NAO_ENCONTRADA,
    PROTOCOLO_NAO_ENCONTRADO,
    ROTA_NAO_ENCONTRADA,
    METODO_NAO_PERMITIDO,
    ENTIDADE_AMBIGUA,
    PEDIDO_EM_ANDAMENTO,
    CORPO_MUITO_GRANDE,
    TIPO_DE_CONTEUDO_INVALIDO,
    IDEMPOTENCY_KEY_REUTILIZADA,
    LIMITE_DE_REQUISICOES,
    CHAMADO_RECUSADO,
    CONFIGURACAO_INVALIDA,
    ERRO_INTERNO,
    ERRO_GLPI,
    GLPI_INDISPONIVEL,
    ARMAZENAMENTO_INDISPONIVEL,
    FILA_DE_ANEXOS_CHEIA,
    ANEXOS_OCUPADO,
    CHAMADO_FECHADO,
    CHAMADO_AINDA_NA_FILA,
)


UNAVAILABLE_DETAILS = {
    "TIMEOUT": "o GLPI não respondeu a tempo",
    "CONNECTION_FAILED": "não foi possível conectar ao GLPI",
    "TLS_ERROR": "o certificado TLS do GLPI não foi aceito",
    "SERVER_ERROR": "o GLPI respondeu com erro interno",
    "NOT_JSON": "o GLPI respondeu algo que não é a API REST (verifique GLPI_URL)",
    "REDIRECTED": "o GLPI redirecionou a chamada (verifique GLPI_URL)",
}


def describe_glpi_error(error: GlpiError) -> str:
    if isinstance(error, GlpiUnavailable):
        return UNAVAILABLE_DETAILS.get(error.code, "resposta inesperada do GLPI")
    if isinstance(error, GlpiAuthError):
        return f"o GLPI recusou as credenciais ({error.code})"
    return f"o GLPI recusou a consulta ({error.code})"


def log_reference(request_id: str) -> str:
    """The `detalhe` of an answer whose reason is only in the log."""
    return f"Informe ao suporte o identificador {request_id}"


def _validation(error: ValidationError, request_id: str) -> Refusal:
    if error.missing:
        return CAMPOS_OBRIGATORIOS_AUSENTES.refusal(campos=error.missing)
    return DADOS_INVALIDOS.refusal(campos=error.invalid)


def _api_key(error: ApiKeyRejected, request_id: str) -> Refusal:
    challenge = 'Bearer realm="glpi-gateway"' + (', error="invalid_token"' if error.presented else "")
    return CHAVE_API_INVALIDA.refusal(headers={"WWW-Authenticate": challenge})


def _challenge_refused(error: ChallengeRefused, request_id: str) -> Refusal:
    return DESAFIO_INVALIDO.refusal(detalhe=error.reason)


def _rate_limited(error: RateLimited, request_id: str) -> Refusal:
    scope = {"ip": "este IP", "lookup": "as consultas de protocolo deste IP"}.get(error.scope, "esta chave de API")
    return LIMITE_DE_REQUISICOES.refusal(
        headers={"Retry-After": str(error.retry_after)},
        detalhe=f"Limite de {error.rate} para {scope}; tente de novo em {error.retry_after} s",
    )


def _unknown_category(error: UnknownCategory, request_id: str) -> Refusal:
    reason = f"a categoria {error.args[0]} não existe no GLPI"
    return replace(CATEGORIA_DESCONHECIDA.refusal(campos={"categoria": reason}), motivo=reason)


def _ambiguous_entity(error: AmbiguousEntity, request_id: str) -> Refusal:
    return ENTIDADE_AMBIGUA.refusal(entidades=error.names)


def _ticket_refused(error: TicketRefused, request_id: str) -> Refusal:
    refusal = CHAMADO_RECUSADO.refusal(status=error.status, detalhe=error.message)
    return replace(refusal, motivo=f"o GLPI recusou o chamado: {error.message}")


def _store_unavailable(error: StoreUnavailable, request_id: str) -> Refusal:
    refusal = ARMAZENAMENTO_INDISPONIVEL.refusal(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return _logged(refusal, logging.ERROR, "armazenamento_indisponivel", f"armazenamento indisponível: {error}")


def _queue_full(error: QueueFull, request_id: str) -> Refusal:
    refusal = FILA_DE_ANEXOS_CHEIA.refusal(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    message = "GLPI indisponível e fila de anexos cheia (QUEUE_MAX_ATTACHMENT_BYTES): pedido com anexos recusado"
    return _logged(refusal, logging.WARNING, "fila_de_anexos_cheia", message)


def _glpi_auth(error: GlpiAuthError, request_id: str) -> Refusal:
    refusal = FALHA_SESSAO_GLPI.refusal(detalhe=error.code)
    message = f"GLPI recusou as credenciais: {error.code} {error.message}"
    return _logged(refusal, logging.ERROR, "glpi_credenciais_recusadas", message)


def _glpi_unavailable(error: GlpiUnavailable, request_id: str) -> Refusal:
    refusal = GLPI_INDISPONIVEL.refusal(
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, detalhe=describe_glpi_error(error)
    )
    return _logged(refusal, logging.WARNING, "glpi_indisponivel", f"GLPI indisponível: {error}")


def _glpi_refused(error: GlpiError, request_id: str) -> Refusal:
    refusal = ERRO_GLPI.refusal(detalhe=error.code)
    message = f"GLPI recusou uma consulta: {error.code} {error.message}"
    return _logged(refusal, logging.ERROR, "glpi_consulta_recusada", message)


def _setup_failed(error: GatewaySetupError, request_id: str) -> Refusal:
    refusal = CONFIGURACAO_INVALIDA.refusal(detalhe=log_reference(request_id))
    return _logged(
        refusal, logging.ERROR, "configuracao_incompativel", f"configuração incompatível com o GLPI: {error}"
    )


def _logged(refusal: Refusal, level: int, event: str, message: str) -> Refusal:
    return replace(refusal, log_level=level, event=event, log_message=message)


def _simple(answer: ErrorAnswer, **headers: str) -> Callable[[Exception, str], Refusal]:
    return lambda error, request_id: answer.refusal(headers=headers or None)


# Which answer each failure gets. A subclass not listed takes its closest listed ancestor's
# (GlpiUnavailable and GlpiAuthError before GlpiError). Unlisted failures are a 500 (web/errors.py).
EXCEPTION_ANSWERS: dict[type[Exception], Callable[[Any, str], Refusal]] = {
    ValidationError: _validation,
    ApiKeyRejected: _api_key,
    FormKeyOutOfScope: _simple(CHAVE_API_SEM_PERMISSAO),
    ChallengeRefused: _challenge_refused,
    HoneypotFilled: _simple(ENVIO_AUTOMATICO),
    CrossSiteRefused: _simple(ORIGEM_NAO_PERMITIDA),
    RateLimited: _rate_limited,
    InvalidIdempotencyKey: _simple(IDEMPOTENCY_KEY_INVALIDA),
    IdempotencyKeyReused: _simple(IDEMPOTENCY_KEY_REUTILIZADA),
    IdempotencyKeyInFlight: _simple(PEDIDO_EM_ANDAMENTO, **{"Retry-After": str(IN_FLIGHT_RETRY_AFTER)}),
    ProtocolNotFound: _simple(PROTOCOLO_NAO_ENCONTRADO),
    TicketGone: _simple(PROTOCOLO_NAO_ENCONTRADO),  # a deleted ticket: answered like an unknown protocol
    TicketClosed: _simple(CHAMADO_FECHADO),
    TicketNotYetCreated: _simple(CHAMADO_AINDA_NA_FILA),
    StoreUnavailable: _store_unavailable,
    QueueFull: _queue_full,
    UnknownCategory: _unknown_category,
    EntityNotFound: _simple(ENTIDADE_NAO_ENCONTRADA),
    AmbiguousEntity: _ambiguous_entity,
    TicketRefused: _ticket_refused,
    GlpiAuthError: _glpi_auth,
    GlpiUnavailable: _glpi_unavailable,
    GlpiError: _glpi_refused,
    GatewaySetupError: _setup_failed,
    UploadsBusy: _simple(ANEXOS_OCUPADO, **{"Retry-After": str(UPLOADS_BUSY_RETRY_AFTER)}),
}


def answer_for(error: Exception, request_id: str = "") -> Refusal | None:
    """The answer `error` gets, or None when it is not an expected failure (a 500)."""
    for kind in type(error).__mro__:
        build = EXCEPTION_ANSWERS.get(kind)
        if build is not None:
            return build(error, request_id)
    return None
