"""Every error answer the gateway gives, in one place: app.py's error mapping answers with these,
and the OpenAPI document (openapi.py) lists them per operation.

An answer is `{"erro": ..., "codigo": ..., **members}`: `codigo` is stable for programs, `erro`
is for people (pt-BR).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import Response, g, jsonify

# Stand-ins for operation names in `ErrorAnswer.operations`.
ANY_OPERATION = ("*",)
# Every operation outside app.py's open paths: those check the API key and the rate limits.
PROTECTED_OPERATIONS = ("protegidas",)
# The protected operations but POST /criar-chamado: where the form's public key may not go.
NON_TICKET_PROTECTED_OPERATIONS = ("protegidas, exceto POST /criar-chamado",)

CRIAR_CHAMADO = "POST /criar-chamado"
CONSULTAR_CHAMADO = "GET /chamados/{protocolo}"
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
    example: dict[str, object] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def answer(self, status: int | None = None, headers: dict[str, str] | None = None, **extra) -> Response:
        g.codigo = self.codigo
        response = jsonify({"erro": self.erro, "codigo": self.codigo, **self.fixed, **extra})
        response.status_code = status or self.status
        response.headers.update(headers or {})
        return response


CAMPOS_OBRIGATORIOS_AUSENTES = ErrorAnswer(
    400, "Campos obrigatórios ausentes", "campos_obrigatorios_ausentes",
    "Faltam campos obrigatórios, ou estão em branco; `campos` lista todos, na ordem do contrato.",
    (CRIAR_CHAMADO,), extra={"campos": _NAMES}, example={"campos": ["telefone_cliente", "anydesk_cliente"]},
)
DADOS_INVALIDOS = ErrorAnswer(
    400, "Dados inválidos", "dados_invalidos",
    "JSON malformado, corpo que não é objeto, tipo errado, CNPJ ou e-mail inválido, texto longo demais, "
    "anexo recusado; `campos` diz o motivo de cada campo (`corpo` quando o problema é o corpo inteiro, "
    "`anexos` nomeando cada arquivo recusado).",
    (CRIAR_CHAMADO,), extra={"campos": _FIELD_REASONS},
    example={"campos": {"cnpj_cliente": "CNPJ inválido (verifique os dígitos)"}},
)
CATEGORIA_DESCONHECIDA = ErrorAnswer(
    400, "Dados inválidos", "categoria_desconhecida", "A `categoria` informada não existe no GLPI.",
    (CRIAR_CHAMADO,), extra={"campos": _FIELD_REASONS},
    example={"campos": {"categoria": "a categoria 99 não existe no GLPI"}}, replayed=True,
)
IDEMPOTENCY_KEY_INVALIDA = ErrorAnswer(
    400, "Idempotency-Key inválida", "idempotency_key_invalida",
    "`Idempotency-Key` vazia, longa demais ou com caracteres não permitidos.",
    (CRIAR_CHAMADO,), fixed={"detalhe": "use de 1 a 255 caracteres entre letras, dígitos e ._:+/=~- (ex. um UUID)"},
)
REQUISICAO_INVALIDA = ErrorAnswer(
    400, "Requisição inválida", "requisicao_invalida", "Pedido HTTP que o servidor não consegue interpretar.",
    (CRIAR_CHAMADO,),
)
CHAVE_API_INVALIDA = ErrorAnswer(
    401, "Chave de API ausente ou inválida", "chave_api_invalida",
    "Com `API_KEYS` configurada: a chave não veio, ou não é uma das configuradas. `WWW-Authenticate` diz o "
    "esquema (`Bearer`).",
    PROTECTED_OPERATIONS, headers=("WWW-Authenticate",),
    fixed={"detalhe": "Envie a chave no cabeçalho Authorization: Bearer <chave> ou X-API-Key"},
)
CHAVE_API_SEM_PERMISSAO = ErrorAnswer(
    403, "Esta chave de API só pode abrir chamados", "chave_api_sem_permissao",
    "A chave do formulário (`FORM_API_KEY_NAME`) é pública e só vale para `POST /criar-chamado`.",
    NON_TICKET_PROTECTED_OPERATIONS,
    fixed={"detalhe": "A chave do formulário (FORM_API_KEY_NAME) é pública e só vale para POST /criar-chamado"},
)
FALHA_SESSAO_GLPI = ErrorAnswer(
    401, "Falha ao iniciar sessão", "falha_sessao_glpi",
    "O GLPI recusou o App-Token ou o token do usuário; `detalhe` traz o código de erro do GLPI.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, example={"detalhe": "ERROR_GLPI_LOGIN_USER_TOKEN"},
)
ENTIDADE_NAO_ENCONTRADA = ErrorAnswer(
    404, "Entidade não encontrada para o CNPJ informado", "entidade_nao_encontrada",
    "Nenhuma entidade do GLPI tem esse CNPJ.", (CRIAR_CHAMADO,), replayed=True,
)
PROTOCOLO_NAO_ENCONTRADO = ErrorAnswer(
    404, "Protocolo não encontrado", "protocolo_nao_encontrado",
    "Protocolo desconhecido, malformado, ou finalizado há mais de `IDEMPOTENCY_TTL` segundos.", (CONSULTAR_CHAMADO,),
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
    (CRIAR_CHAMADO,), extra={"entidades": _NAMES},
    example={"entidades": ["Root entity > Cliente Matriz", "Root entity > Cliente Cópia"]},
    fixed={"detalhe": "Corrija o cadastro no GLPI para que o CNPJ fique em uma só entidade"}, replayed=True,
)
PEDIDO_EM_ANDAMENTO = ErrorAnswer(
    409, "Um pedido com a mesma Idempotency-Key ainda está em andamento", "pedido_em_andamento",
    "Outro pedido com a mesma `Idempotency-Key` ainda não terminou; repita depois do `Retry-After`.",
    (CRIAR_CHAMADO,), headers=("Retry-After",),
)
CORPO_MUITO_GRANDE = ErrorAnswer(
    413, "Requisição muito grande", "corpo_muito_grande",
    "Corpo acima de `MAX_BODY_BYTES` (JSON) ou de `MAX_MULTIPART_BODY_BYTES` (com anexos).", (CRIAR_CHAMADO,),
)
TIPO_DE_CONTEUDO_INVALIDO = ErrorAnswer(
    415, "Envie o corpo como JSON (Content-Type: application/json) ou multipart/form-data",
    "tipo_de_conteudo_invalido", "`Content-Type` não é JSON nem `multipart/form-data`.", (CRIAR_CHAMADO,),
)
IDEMPOTENCY_KEY_REUTILIZADA = ErrorAnswer(
    422, "Idempotency-Key já usada com outro corpo", "idempotency_key_reutilizada",
    "A `Idempotency-Key` já foi usada com outro pedido.",
    (CRIAR_CHAMADO,), fixed={"detalhe": "use uma chave nova para cada chamado diferente"},
)
LIMITE_DE_REQUISICOES = ErrorAnswer(
    429, "Muitas requisições", "limite_de_requisicoes",
    "Acima de `RATE_LIMIT_PER_IP` ou de `RATE_LIMIT_PER_KEY`; tente de novo depois do `Retry-After`.",
    PROTECTED_OPERATIONS, extra={"detalhe": _TEXT}, headers=("Retry-After",),
    example={"detalhe": "Limite de 20/hour para este IP; tente de novo em 1740 s"},
)
CHAMADO_RECUSADO = ErrorAnswer(
    "4XX", "Erro ao criar chamado", "chamado_recusado",
    "O GLPI recusou o chamado; o status e o `detalhe` são os do GLPI (ex. 400, falta de permissão na entidade).",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT},
    example={"detalhe": "You don't have permission to perform this action."}, replayed=True,
)
CONFIGURACAO_INVALIDA = ErrorAnswer(
    500, "Erro interno", "configuracao_invalida",
    "A configuração do gateway não confere com o GLPI (ex. categoria padrão apagada); o motivo fica no log.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, example=_LOG_REFERENCE,
)
ERRO_INTERNO = ErrorAnswer(
    500, "Erro interno", "erro_interno",
    "Qualquer outra falha; o detalhe fica só no log, achado pelo identificador do pedido.",
    ANY_OPERATION, extra={"detalhe": _TEXT}, example=_LOG_REFERENCE,
)
ERRO_GLPI = ErrorAnswer(
    502, "Erro ao consultar o GLPI", "erro_glpi",
    "O GLPI recusou uma consulta (ex. direitos do usuário); `detalhe` traz o código de erro do GLPI.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, example={"detalhe": "ERROR_RIGHT_MISSING"},
)
GLPI_INDISPONIVEL = ErrorAnswer(
    503, "GLPI indisponível", "glpi_indisponivel",
    "GLPI fora do ar, lento demais, com erro 5xx ou respondendo algo que não é a API, com "
    "`QUEUE_WHEN_UNAVAILABLE=false` ou num pedido com anexos (que não vai para a fila); tente de novo "
    "depois do tempo em `Retry-After`.",
    (CRIAR_CHAMADO,), extra={"detalhe": _TEXT}, headers=("Retry-After",),
    example={"detalhe": "não foi possível conectar ao GLPI"},
)
ARMAZENAMENTO_INDISPONIVEL = ErrorAnswer(
    503, "Armazenamento indisponível", "armazenamento_indisponivel",
    "O SQLite ou o Redis falhou (ex. disco cheio): nada foi guardado; repita depois do `Retry-After`.",
    (CRIAR_CHAMADO, CONSULTAR_CHAMADO), headers=("Retry-After",),
)
ERROR_ANSWERS = (
    CAMPOS_OBRIGATORIOS_AUSENTES, DADOS_INVALIDOS, CATEGORIA_DESCONHECIDA, IDEMPOTENCY_KEY_INVALIDA,
    REQUISICAO_INVALIDA, CHAVE_API_INVALIDA, CHAVE_API_SEM_PERMISSAO, FALHA_SESSAO_GLPI, ENTIDADE_NAO_ENCONTRADA, PROTOCOLO_NAO_ENCONTRADO,
    ROTA_NAO_ENCONTRADA, METODO_NAO_PERMITIDO, ENTIDADE_AMBIGUA, PEDIDO_EM_ANDAMENTO, CORPO_MUITO_GRANDE,
    TIPO_DE_CONTEUDO_INVALIDO, IDEMPOTENCY_KEY_REUTILIZADA, LIMITE_DE_REQUISICOES, CHAMADO_RECUSADO,
    CONFIGURACAO_INVALIDA, ERRO_INTERNO, ERRO_GLPI, GLPI_INDISPONIVEL, ARMAZENAMENTO_INDISPONIVEL,
)
