"""The OpenAPI 3.1 document of the gateway's API (its interactive page is static/docs.html).

Built from what the server itself runs on: the body specification `validation.FIELDS`, the
error catalogue `errors.ERROR_ANSWERS`, the queue's states and the idempotency header.
Where to add things: a route in `_operations`, a response header in `HEADERS`, an error answer
in glpi_gateway/errors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import flask_swagger_ui

from glpi_gateway.attachments import FIELD as ATTACHMENTS_FIELD
from glpi_gateway.challenge import CHALLENGE_HEADER, HONEYPOT_FIELD, SOLUTION_HEADER, TOKEN_PATTERN
from glpi_gateway.delivery import (
    COMPLEMENT_REFUSAL_CODIGOS,
    PROTOCOL_PATTERN,
    REFUSAL_CODIGOS,
    UNREADABLE_CODIGO,
)
from glpi_gateway.errors import (
    ANY_OPERATION,
    ERROR_ANSWERS,
    FORM_OPERATIONS,
    NON_TICKET_PROTECTED_OPERATIONS,
    PROTECTED_OPERATIONS,
    ErrorAnswer,
)
from glpi_gateway.follow import CUSTOMER, STATUS_LABELS, SUPPORT_TEAM
from glpi_gateway.idempotency import IDEMPOTENCY_HEADER, KEY_PATTERN, REPLAYED_HEADER
from glpi_gateway.store import CANCELLED, CREATED, FAILED, QUEUED
from glpi_gateway.ticket_format import COMPLEMENT_ID_PATTERN
from glpi_gateway.validation import (
    COMPLEMENT_AUTHOR_MAX_LENGTH,
    COMPLEMENT_MAX_LENGTH,
    REQUIRED_FIELDS,
    ticket_request_example,
    ticket_request_schema,
)
from glpi_gateway.web.context import REQUEST_ID_PATTERN

CHALLENGE_PARAMETERS = [
    {
        "name": CHALLENGE_HEADER,
        "in": "header",
        "required": False,
        "description": "Com a chave pública do formulário (`FORM_API_KEY_NAME`), obrigatório: um desafio de "
        "`GET /formulario/desafio`, ainda não usado. Outras chaves não precisam, e o gateway o ignora.",
        "schema": {"type": "string"},
    },
    {
        "name": SOLUTION_HEADER,
        "in": "header",
        "required": False,
        "description": f"A solução do desafio de `{CHALLENGE_HEADER}`: um número de até 16 dígitos.",
        "schema": {"type": "string"},
    },
]
# Swagger UI's own files, shipped inside the pinned flask-swagger-ui wheel: no CDN,
# since many helpdesk networks are closed.
SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).parent / "dist"
HEADERS = {
    "X-Request-ID": {
        "description": "Identificador do pedido: o enviado pelo cliente, se tiver só letras, números e `._:-` "
        "(até 128), ou um novo. O mesmo aparece na linha de log do pedido.",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{REQUEST_ID_PATTERN}$"},
    },
    "Retry-After": {
        "description": "Segundos a esperar antes de tentar de novo.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "example": "30",
    },
    "Allow": {
        "description": "Métodos que o caminho aceita.",
        "required": True,
        "schema": {"type": "string"},
        "example": "POST",
    },
    "WWW-Authenticate": {
        "description": 'O esquema de autenticação esperado: `Bearer`, com `error="invalid_token"` quando '
        "uma chave veio e foi recusada.",
        "required": True,
        "schema": {"type": "string", "pattern": "^Bearer "},
        "example": 'Bearer realm="glpi-gateway"',
    },
    "Location": {
        "description": "Onde acompanhar o chamado (201) ou o pedido enfileirado (202): `/chamados/{protocolo}`.",
        "required": True,
        "schema": {"type": "string", "pattern": f"^/chamados/{PROTOCOL_PATTERN.pattern}$"},
        "example": "/chamados/9f1c2b3a4d5e6f708192a3b4c5d6e7f8",
    },
    REPLAYED_HEADER: {
        "description": f"`true` quando a resposta é a guardada para a mesma `{IDEMPOTENCY_HEADER}` (repetição "
        "de um pedido já respondido) ou, sem ela, para um pedido idêntico dentro de `DEDUPE_WINDOW_SECONDS`; "
        "ausente numa resposta nova.",
        "required": False,
        "schema": {"type": "string", "const": "true"},
    },
    "Cache-Control": {
        "description": "`no-store`: o estado é sempre consultado de novo.",
        "required": True,
        "schema": {"type": "string", "const": "no-store"},
    },
}
REQUEST_ID_PARAMETER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Opcional: um identificador seu para achar o pedido nos logs; é devolvido na resposta. "
    "Um valor fora do formato (letras, números e `._:-`, até 128) é trocado por um novo.",
    "schema": {"type": "string"},
    "example": "formulario-site-42",
}
IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Opcional: uma chave sua por chamado (ex. um UUID). Com anexos, o corpo inclui os arquivos, "
    "comparados pelo nome e pelo conteúdo (SHA-256). "
    "Repetir o pedido com a mesma chave e o mesmo corpo devolve a resposta guardada (201, 202 ou o 4xx "
    f"decidido pelos dados do GLPI) com `{REPLAYED_HEADER}: true`, sem criar outro chamado; com outro corpo, "
    "422 `idempotency_key_reutilizada`; enquanto o primeiro pedido não terminou, 409 `pedido_em_andamento` "
    "(num pedido JSON cujo chamado já foi criado, o 201 dele). "
    "Sem a chave, um pedido idêntico (mesma chave de API, mesmo corpo) dentro de `DEDUPE_WINDOW_SECONDS` "
    f"recebe o 201 ou 202 do primeiro, com `{REPLAYED_HEADER}: true`.",
    "schema": {"type": "string", "pattern": f"^{KEY_PATTERN}$"},
    "example": "3b241101-e2bb-4255-8caf-4136c566a962",
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "Uma das chaves de `API_KEYS`, em `Authorization: Bearer <chave>`.",
    },
    "chaveApi": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Uma das chaves de `API_KEYS`, em `X-API-Key`.",
    },
}
# Either header; none at all when API_KEYS is empty (then the gateway is open to anyone who reaches it).
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"chaveApi": []}, {}]
TAGS = [
    {"name": "chamados", "description": "Abertura de chamados no GLPI e acompanhamento pelo protocolo."},
    {
        "name": "formulário",
        "description": "As páginas prontas para o cliente, servidas pelo gateway: o formulário de contato e o "
        "acompanhamento do chamado.",
    },
    {"name": "operação", "description": "Verificações de funcionamento e métricas."},
    {"name": "documentação", "description": "Este documento e a página interativa."},
]
DESCRIPTION = """Abre chamados no GLPI a partir de um JSON simples (ou de um formulário com anexos): acha a
entidade do cliente pelo CNPJ e cria o chamado pela API REST do GLPI.

Com `API_KEYS` configurada, toda rota exige uma chave (`Authorization: Bearer <chave>` ou `X-API-Key`),
menos `/ping`, `/health`, as páginas do formulário e do acompanhamento e esta documentação; sem chave
válida, 401 `chave_api_invalida`.
Com `RATE_LIMIT_PER_IP` ou `RATE_LIMIT_PER_KEY`, as mesmas rotas respondem 429 `limite_de_requisicoes` com
`Retry-After` acima do limite. Com `CORS_ORIGINS`, um navegador numa das origens listadas recebe os
cabeçalhos CORS, e a pré-verificação (`OPTIONS` com `Origin` e `Access-Control-Request-Method`) responde 204
sem chave.

Toda resposta traz o cabeçalho `X-Request-ID`. Todo erro é JSON com `erro` (mensagem para pessoas),
`codigo` (estável, para programas; lista completa no esquema `Codigo`) e, quando útil, `detalhe`,
`campos` ou `entidades`. Em qualquer caminho, um método não aceito responde 405 `metodo_nao_permitido`
com o cabeçalho `Allow`, e um caminho inexistente responde 404 `rota_nao_encontrada`."""
PROTOCOL_EXAMPLE = "9f1c2b3a4d5e6f708192a3b4c5d6e7f8"
COMPLEMENT_EXAMPLE = "c-5b7d4c1e8a6f0b2d4c6e8a0f3f2c9a0e"
PROTOCOL_PARAMETER = {
    "name": "protocolo",
    "in": "path",
    "required": True,
    "description": "O `protocolo` da resposta 201 ou 202.",
    "schema": {"type": "string", "pattern": f"^{PROTOCOL_PATTERN.pattern}$"},
    "example": PROTOCOL_EXAMPLE,
}


def _operations(ping_text: str, metrics: bool) -> dict[str, dict]:
    """Every route, keyed "METHOD /path", with its success answers; errors come from the catalogue."""
    example = ticket_request_example()
    operations: dict[str, dict] = {
        "GET /ping": {
            "tags": ["operação"],
            "operationId": "ping",
            "summary": "Verificação de vida",
            "description": "Responde enquanto o processo está de pé, sem consultar o GLPI.",
            "responses": {"200": _content("O gateway está ativo.", "text/plain", {"type": "string"}, ping_text)},
        },
        "GET /health": {
            "tags": ["operação"],
            "operationId": "health",
            "summary": "Prontidão",
            "description": "Este processo consegue criar chamados agora? Confere a sessão no GLPI e as verificações "
            "de partida; o resultado fica em cache por `HEALTH_CACHE_TTL` segundos.",
            "responses": {
                "200": _health_answer("Pronto.", "ok", {"ok": True}),
                "503": _health_answer(
                    "Não pronto; `detalhe` diz o motivo de cada verificação que falhou.",
                    "indisponivel",
                    {"ok": False, "detalhe": "não foi possível conectar ao GLPI"},
                ),
            },
        },
        "GET /debug": {
            "tags": ["operação"],
            "operationId": "debug",
            "summary": "Erro proposital",
            "description": "Gera um erro inesperado de propósito, para provar o tratamento de erros: "
            "responde sempre 500 `erro_interno`, como qualquer falha imprevista, sem traceback.",
            "responses": {},
        },
        "POST /criar-chamado": {
            "tags": ["chamados"],
            "operationId": "criarChamado",
            "summary": "Abrir chamado",
            "description": "Valida o corpo, acha a entidade do GLPI que tem o CNPJ informado e cria nela o "
            "chamado, com os dados do cliente na descrição. Com o GLPI indisponível e "
            "`QUEUE_WHEN_UNAVAILABLE=true` (o padrão), guarda o pedido (com os anexos, até "
            "`QUEUE_MAX_ATTACHMENT_BYTES` na fila) e responde 202 com o protocolo; o gateway entrega o chamado, "
            "e depois os anexos, quando o GLPI voltar. Em `multipart/form-data`, os mesmos campos e "
            f"arquivos no campo `{ATTACHMENTS_FIELD}`, que viram documentos do chamado, cada um marcado no "
            "comentário com o protocolo e o número do anexo (nunca enviado duas vezes). O campo "
            f"`{HONEYPOT_FIELD}`, invisível no formulário, deve vir vazio ou ausente.",
            "parameters": [
                {"$ref": f"#/components/parameters/{IDEMPOTENCY_HEADER}"},
                *CHALLENGE_PARAMETERS,
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Chamado"},
                        "examples": {
                            "minimo": {"summary": "Só os campos obrigatórios", "value": _required_only(example)},
                            "completo": {"summary": "Todos os campos", "value": example},
                        },
                    },
                    "multipart/form-data": {
                        "schema": {"$ref": "#/components/schemas/ChamadoComAnexos"},
                        "encoding": {ATTACHMENTS_FIELD: {"contentType": "application/octet-stream"}},
                    },
                },
            },
            "responses": {
                "201": {
                    "description": "`criado`: Chamado criado.\n\n`criado_com_anexos`: Chamado criado com anexos; "
                    "`anexos` diz quais arquivos o GLPI aceitou (o chamado existe mesmo que ele recuse algum) e "
                    "quais ficaram `pendentes`: o GLPI ficou indisponível depois de criar o chamado, e eles foram "
                    "para a fila, entregues a este chamado quando o GLPI voltar (`GET /chamados/{protocolo}`).",
                    "headers": {"Location": _header("Location"), REPLAYED_HEADER: _header(REPLAYED_HEADER)},
                    "content": {
                        "application/json": {
                            "schema": {
                                "anyOf": [
                                    {"$ref": "#/components/schemas/ChamadoCriado"},
                                    {"$ref": "#/components/schemas/ChamadoCriadoComAnexos"},
                                ]
                            },
                            "examples": {
                                "criado": {
                                    "summary": "Chamado criado",
                                    "value": {"ticket_id": 123, "protocolo": PROTOCOL_EXAMPLE},
                                },
                                "criado_com_anexos": {
                                    "summary": "Chamado criado com anexos",
                                    "value": {
                                        "ticket_id": 124,
                                        "protocolo": PROTOCOL_EXAMPLE,
                                        "anexos": {
                                            "enviados": [{"arquivo": "print.png", "documento_id": 7}],
                                            "falharam": [
                                                {
                                                    "arquivo": "erro.log",
                                                    "motivo": "o GLPI recusou o arquivo: File erro.log not found.",
                                                }
                                            ],
                                            "pendentes": [{"arquivo": "planilha.xlsx"}],
                                        },
                                    },
                                },
                            },
                        }
                    },
                },
                "202": {
                    **_content(
                        "GLPI indisponível e `QUEUE_WHEN_UNAVAILABLE=true` (o padrão): o pedido foi guardado e "
                        "será entregue; acompanhe em `Location` (`GET /chamados/{protocolo}`).",
                        "application/json",
                        {"$ref": "#/components/schemas/ChamadoEnfileirado"},
                        {"status": QUEUED, "protocolo": PROTOCOL_EXAMPLE},
                    ),
                    "headers": {"Location": _header("Location"), REPLAYED_HEADER: _header(REPLAYED_HEADER)},
                },
            },
        },
        "GET /chamados/{protocolo}": {
            "tags": ["chamados"],
            "operationId": "consultarChamado",
            "summary": "Acompanhar chamado",
            "description": "O `Location` de uma resposta 201 ou 202. Com o chamado criado, o estado dele lido do "
            "GLPI agora (reaproveitado por até `GLPI_FOLLOW_CACHE_TTL` segundos) em `chamado`: número, status, "
            "datas e a conversa pública (acompanhamentos públicos e soluções, em texto simples; nunca os "
            f'privados, as tarefas, nem nomes ou e-mails da equipe: o autor é sempre "{SUPPORT_TEAM}"). '
            "Com o pedido na fila, o estado da entrega. O protocolo é a credencial: desconhecido, expirado "
            "(`PROTOCOL_TTL_DAYS`) ou de chamado apagado respondem o mesmo 404, e as consultas têm limite "
            "próprio por IP (`RATE_LIMIT_LOOKUP_PER_IP`). A chave pública do formulário pode consultar, sem "
            "desafio e sem contar no limite da chave (a página `/acompanhar` faz isso).",
            "parameters": [
                PROTOCOL_PARAMETER,
            ],
            "responses": {
                "200": {
                    "headers": {"Cache-Control": _header("Cache-Control")},
                    "description": f"`{QUEUED}`: aguardando o GLPI; `{CREATED}`: o chamado existe, e `chamado` traz "
                    f"o estado dele no GLPI (`recebido_em` só quando ele passou pela fila); `{FAILED}`: o "
                    "GLPI respondeu que o pedido não pode virar chamado (não há nova tentativa); "
                    f"`{CANCELLED}`: a equipe de operação tirou o pedido da fila (não será entregue).",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/EstadoDoPedido"},
                            "examples": {
                                QUEUED: {
                                    "summary": "Aguardando o GLPI",
                                    "value": {
                                        "protocolo": PROTOCOL_EXAMPLE,
                                        "status": QUEUED,
                                        "recebido_em": "2026-11-28T10:00:00Z",
                                        "tentativas": 2,
                                        "ultimo_erro": "CONNECTION_FAILED",
                                        "proxima_tentativa_em": "2026-11-28T10:00:04Z",
                                    },
                                },
                                CREATED: {
                                    "summary": "Chamado criado",
                                    "value": {
                                        "protocolo": PROTOCOL_EXAMPLE,
                                        "status": CREATED,
                                        "ticket_id": 123,
                                        "chamado": TICKET_VIEW_EXAMPLE,
                                    },
                                },
                                FAILED: {
                                    "summary": "Recusado pelo GLPI",
                                    "value": {
                                        "protocolo": PROTOCOL_EXAMPLE,
                                        "status": FAILED,
                                        "recebido_em": "2026-11-28T10:00:00Z",
                                        "codigo": "entidade_nao_encontrada",
                                        "motivo": "Entidade não encontrada para o CNPJ informado",
                                    },
                                },
                                CANCELLED: {
                                    "summary": "Cancelado pela operação",
                                    "value": {
                                        "protocolo": PROTOCOL_EXAMPLE,
                                        "status": CANCELLED,
                                        "recebido_em": "2026-11-28T10:00:00Z",
                                        "motivo": "cancelado pela equipe de operação",
                                        "cancelado_em": "2026-11-28T10:20:00Z",
                                    },
                                },
                            },
                        }
                    },
                },
            },
        },
        "POST /chamados/{protocolo}/complemento": {
            "tags": ["chamados"],
            "operationId": "complementarChamado",
            "summary": "Complementar chamado",
            "description": "Acrescenta uma mensagem do cliente ao chamado, como acompanhamento público no GLPI "
            "(os técnicos veem quem escreveu, `nome`, a origem e o código do complemento; o texto vai escapado "
            "como no chamado). Recusado com 409 `chamado_fechado` quando o chamado está fechado (o GLPI "
            "aceitaria; o gateway não). Em `multipart/form-data`, `mensagem` e `nome` como campos e arquivos em "
            f"`{ATTACHMENTS_FIELD}`, conferidos como em `POST /criar-chamado` (a chave do formulário tem os "
            "limites e tipos menores), que viram documentos do chamado marcados com o código do complemento. "
            "Com o GLPI indisponível (e `QUEUE_WHEN_UNAVAILABLE=true`, o padrão), ou com o próprio chamado "
            "ainda na fila, o complemento (com os anexos, até `QUEUE_MAX_ATTACHMENT_BYTES` na fila) é "
            "guardado e respondido com 202; o gateway o entrega depois do chamado e dos complementos "
            "anteriores, na ordem, nunca duas vezes, e `GET /chamados/{protocolo}` o mostra em `complementos` "
            "até a entrega (ou com `codigo` `chamado_fechado` se o chamado fechar antes). Idempotente como a "
            "abertura (`Idempotency-Key`, por protocolo; com anexos, comparados pelo nome e pelo conteúdo), "
            "com o mesmo limite por IP das consultas (`RATE_LIMIT_LOOKUP_PER_IP`); a chave pública do "
            "formulário pode usá-la, com o desafio resolvido.",
            "parameters": [
                PROTOCOL_PARAMETER,
                {"$ref": f"#/components/parameters/{IDEMPOTENCY_HEADER}"},
                *CHALLENGE_PARAMETERS,
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _complement_schema(),
                        "examples": {
                            "complemento": {
                                "summary": "Uma mensagem do cliente",
                                "value": {
                                    "mensagem": "Reiniciei a impressora e continua sem imprimir.",
                                    "nome": "Maria",
                                },
                            }
                        },
                    },
                    "multipart/form-data": {
                        "schema": _complement_multipart_schema(),
                        "encoding": {ATTACHMENTS_FIELD: {"contentType": "application/octet-stream"}},
                    },
                },
            },
            "responses": {
                "201": {
                    **_content(
                        "Mensagem acrescentada ao chamado; com anexos, `anexos` diz quais viraram documentos do "
                        "chamado, quais o GLPI recusou e quais ficaram `pendentes` (na fila: o GLPI ficou "
                        "indisponível depois da mensagem).",
                        "application/json",
                        {
                            "type": "object",
                            "required": ["protocolo", "ticket_id", "acompanhamento_id", "complemento"],
                            "properties": {
                                "protocolo": _protocol_schema(),
                                "ticket_id": {"type": "integer"},
                                "acompanhamento_id": {
                                    "type": "integer",
                                    "description": "O acompanhamento criado no GLPI.",
                                },
                                "complemento": _complement_id_schema(),
                                "anexos": _attachments_report_schema(),
                            },
                        },
                        {
                            "protocolo": PROTOCOL_EXAMPLE,
                            "ticket_id": 123,
                            "acompanhamento_id": 45,
                            "complemento": COMPLEMENT_EXAMPLE,
                        },
                    ),
                    "headers": {REPLAYED_HEADER: _header(REPLAYED_HEADER)},
                },
                "202": {
                    **_content(
                        "GLPI indisponível (com `QUEUE_WHEN_UNAVAILABLE=true`, o padrão), ou o chamado ainda na "
                        "fila: o complemento foi guardado e será entregue ao chamado; acompanhe em `Location` "
                        "(`GET /chamados/{protocolo}`, em `complementos` até a entrega).",
                        "application/json",
                        {
                            "type": "object",
                            "required": ["status", "protocolo", "complemento"],
                            "properties": {
                                "status": {"type": "string", "const": QUEUED},
                                "protocolo": _protocol_schema(),
                                "complemento": _complement_id_schema(),
                            },
                        },
                        {"status": QUEUED, "protocolo": PROTOCOL_EXAMPLE, "complemento": COMPLEMENT_EXAMPLE},
                    ),
                    "headers": {"Location": _header("Location"), REPLAYED_HEADER: _header(REPLAYED_HEADER)},
                },
            },
        },
        "GET /formulario": {
            "tags": ["formulário"],
            "operationId": "formulario",
            "summary": "Formulário de contato",
            "description": "A página do formulário, para link direto ou iframe; envia para `/criar-chamado`, e a "
            "mensagem de sucesso leva a `/acompanhar?protocolo=...`.",
            "responses": {"200": _content("Página HTML.", "text/html", {"type": "string"})},
        },
        "GET /formulario.js": {
            "tags": ["formulário"],
            "operationId": "formularioJs",
            "summary": "Script do formulário",
            "description": "Também serve para injetar o formulário em outra página.",
            "responses": {"200": _content("JavaScript.", "text/javascript", {"type": "string"})},
        },
        "GET /formulario.css": {
            "tags": ["formulário"],
            "operationId": "formularioCss",
            "summary": "Estilo do formulário",
            "responses": {"200": _content("CSS.", "text/css", {"type": "string"})},
        },
        "GET /acompanhar": {
            "tags": ["formulário"],
            "operationId": "acompanhar",
            "summary": "Acompanhamento do chamado",
            "description": "A página em que o cliente acompanha o chamado pelo protocolo (o link da mensagem de "
            "sucesso do formulário), para link direto ou iframe: o andamento lido de `GET /chamados/{protocolo}` "
            "e o campo para acrescentar informação (`POST /chamados/{protocolo}/complemento`).",
            "parameters": [
                {
                    **PROTOCOL_PARAMETER,
                    "in": "query",
                    "required": False,
                    "description": "Opcional: o protocolo a consultar assim que a página abre.",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {"200": _content("Página HTML.", "text/html", {"type": "string"})},
        },
        "GET /acompanhar.js": {
            "tags": ["formulário"],
            "operationId": "acompanharJs",
            "summary": "Script do acompanhamento",
            "description": "Também serve para injetar o acompanhamento em outra página.",
            "responses": {"200": _content("JavaScript.", "text/javascript", {"type": "string"})},
        },
        "GET /formulario/desafio": {
            "tags": ["formulário"],
            "operationId": "formularioDesafio",
            "summary": "Um desafio (prova de trabalho) para o formulário",
            "description": "Um desafio assinado, que expira e vale uma vez: ache um número `n` tal que o SHA-256 de "
            "`<desafio>:<n>` comece com `dificuldade` bits zero, e mande os dois em `X-Desafio` e "
            "`X-Desafio-Solucao`. Exigido só nos envios com a chave pública do formulário; o formulário o "
            "resolve sozinho enquanto a pessoa digita. Nunca guardado em cache.",
            "responses": {
                "200": _content(
                    "O desafio.",
                    "application/json",
                    {
                        "type": "object",
                        "required": ["desafio", "dificuldade", "expira_em"],
                        "properties": {
                            "desafio": {"type": "string", "pattern": f"^{TOKEN_PATTERN.pattern}$"},
                            "dificuldade": {"type": "integer", "minimum": 0, "maximum": 28},
                            "expira_em": {"type": "string", "format": "date-time"},
                        },
                    },
                    {
                        "desafio": "9f1c2b3a4d5e6f708192a3b4c5d6e7f8.1796000000.16."
                        "5d41402abc4b2a76b9719d911017c592a1b2c3d4e5f60718293a4b5c6d7e8f90",
                        "dificuldade": 16,
                        "expira_em": "2026-12-03T12:00:00Z",
                    },
                )
            },
        },
        "GET /formulario-desafio.js": {
            "tags": ["formulário"],
            "operationId": "formularioDesafioJs",
            "summary": "Web Worker que resolve o desafio",
            "description": "Usado pelo script do formulário; roda fora da página para não travá-la.",
            "responses": {"200": _content("JavaScript.", "text/javascript", {"type": "string"})},
        },
        "GET /openapi.json": {
            "tags": ["documentação"],
            "operationId": "openapi",
            "summary": "Este documento OpenAPI",
            "responses": {"200": _content("O documento OpenAPI 3.1.", "application/json", {"type": "object"})},
        },
        "GET /docs": {
            "tags": ["documentação"],
            "operationId": "docs",
            "summary": "Documentação interativa",
            "description": "Página do Swagger UI, servida pelo próprio gateway (sem CDN).",
            "responses": {"200": _content("Página HTML.", "text/html", {"type": "string"})},
        },
        "GET /docs/{arquivo}": {
            "tags": ["documentação"],
            "operationId": "docsArquivo",
            "summary": "Arquivos da página de documentação",
            "description": "JavaScript, CSS e imagens do Swagger UI usados por `/docs`.",
            "parameters": [
                {
                    "name": "arquivo",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "example": "swagger-ui.css",
                }
            ],
            "responses": {"200": _content("O arquivo.", "*/*", {"type": "string"})},
        },
    }
    if metrics:
        operations["GET /metrics"] = {
            "tags": ["operação"],
            "operationId": "metrics",
            "summary": "Métricas",
            "description": "As métricas do gateway inteiro (todos os workers) no formato de texto do Prometheus. "
            "Só com `METRICS_ENABLED=true` (o padrão).",
            "responses": {"200": _content("Métricas do Prometheus.", "text/plain", {"type": "string"})},
        }
    return operations


def build_document(ping_text: str, is_open_path: Callable[[str], bool], metrics: bool = True) -> dict:
    """The OpenAPI 3.1 document, as a JSON-ready dict. `is_open_path` says which paths need no
    API key and have no rate limit; `metrics` whether GET /metrics exists."""
    paths: dict[str, dict] = {}
    for key, operation in _operations(ping_text, metrics).items():
        method, path = key.split(" ", 1)
        protected = not is_open_path(path)
        answers = [answer for answer in ERROR_ANSWERS if _can_answer(answer, key, protected)]
        responses = {**operation["responses"], **_error_responses(answers)}
        paths.setdefault(path, {})[method.lower()] = {
            **operation,
            **({} if protected else {"security": []}),
            "parameters": [*operation.get("parameters", ()), {"$ref": "#/components/parameters/X-Request-ID"}],
            "responses": {status: _with_request_id(response) for status, response in responses.items()},
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GLPI ticket gateway",
            "version": "1.0.0",
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": TAGS,
        "security": SECURITY,
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "parameters": {"X-Request-ID": REQUEST_ID_PARAMETER, IDEMPOTENCY_HEADER: IDEMPOTENCY_KEY_PARAMETER},
            "headers": HEADERS,
            "schemas": {
                "Chamado": ticket_request_schema(),
                "ChamadoComAnexos": _multipart_schema(),
                "ChamadoCriado": {
                    "type": "object",
                    "required": ["ticket_id", "protocolo"],
                    "properties": {
                        "ticket_id": {"type": "integer", "description": "Número do chamado no GLPI."},
                        "protocolo": {
                            **_protocol_schema(),
                            "description": "Para acompanhar o chamado em `GET /chamados/{protocolo}`; guarde-o.",
                        },
                    },
                },
                "EstadoNoGlpi": _ticket_view_schema(),
                "ChamadoCriadoComAnexos": _created_with_attachments_schema(),
                "ChamadoEnfileirado": {
                    "type": "object",
                    "required": ["status", "protocolo"],
                    "properties": {
                        "status": {"type": "string", "const": QUEUED},
                        "protocolo": _protocol_schema(),
                    },
                },
                "EstadoDoPedido": _queued_state_schema(),
                "ComplementosPendentes": _pending_complements_schema(),
                "Saude": _health_schema(),
                "Codigo": {
                    "type": "string",
                    "description": "Todos os valores de `codigo` nas respostas de erro.",
                    "enum": [answer.codigo for answer in ERROR_ANSWERS],
                },
                **{_schema_name(answer): _error_schema(answer) for answer in ERROR_ANSWERS},
            },
            "responses": {
                _schema_name(answer): _with_request_id(_error_response([answer]))
                for answer in ERROR_ANSWERS
                if not answer.operations
            },
        },
    }


def _can_answer(answer: ErrorAnswer, operation: str, protected: bool) -> bool:
    if answer.operations == ANY_OPERATION:
        return True
    if answer.operations == PROTECTED_OPERATIONS:
        return protected
    if answer.operations == NON_TICKET_PROTECTED_OPERATIONS:
        return protected and operation not in FORM_OPERATIONS
    return operation in answer.operations


def _error_responses(answers: list[ErrorAnswer]) -> dict[str, dict]:
    by_status: dict[str, list[ErrorAnswer]] = {}
    for answer in answers:
        by_status.setdefault(str(answer.status), []).append(answer)
    # An exact status takes precedence over a range ("4XX"), so a ranged answer is listed under both.
    for status, grouped in by_status.items():
        ranged = by_status.get(status[0] + "XX", []) if status.isdigit() else []
        grouped.extend(ranged)
    return {status: _error_response(grouped) for status, grouped in sorted(by_status.items())}


def _error_response(answers: list[ErrorAnswer]) -> dict:
    refs = [{"$ref": f"#/components/schemas/{_schema_name(answer)}"} for answer in answers]
    headers = {}
    for name in dict.fromkeys(name for answer in answers for name in _headers_of(answer)):
        setting = [answer.codigo for answer in answers if name in _headers_of(answer)]
        if len(setting) == len(answers):
            headers[name] = _header(name)
        else:  # only some of the answers under this status set it
            headers[name] = _only_in(name, setting)
    return {
        "description": "\n\n".join(f"`{answer.codigo}`: {answer.quando}" for answer in answers),
        "headers": headers,
        "content": {
            "application/json": {
                "schema": refs[0] if len(refs) == 1 else {"oneOf": refs},
                "examples": {
                    answer.codigo: {
                        "summary": answer.erro,
                        "value": {"erro": answer.erro, "codigo": answer.codigo, **answer.fixed, **answer.example},
                    }
                    for answer in answers
                },
            }
        },
    }


def _headers_of(answer: ErrorAnswer) -> tuple[str, ...]:
    return (*answer.headers, REPLAYED_HEADER) if answer.replayed else answer.headers


def _error_schema(answer: ErrorAnswer) -> dict:
    return {
        "type": "object",
        "description": answer.quando,
        "required": ["erro", "codigo", *answer.fixed, *(name for name in answer.extra if name not in answer.optional)],
        "properties": {
            "erro": {"type": "string", "const": answer.erro},
            "codigo": {"type": "string", "const": answer.codigo},
            **{name: {"type": "string", "const": value} for name, value in answer.fixed.items()},
            **answer.extra,
        },
    }


def _multipart_schema() -> dict:
    schema = ticket_request_schema()
    return {
        **schema,
        "description": schema["description"] + f" Arquivos no campo `{ATTACHMENTS_FIELD}` (até "
        "`ATTACHMENTS_MAX_COUNT`, cada um até `ATTACHMENTS_MAX_BYTES`), conferidos pelo conteúdo; um arquivo "
        "recusado, ou em outro campo, dá 400 `dados_invalidos` nomeando o arquivo.",
        "properties": {
            **schema["properties"],
            ATTACHMENTS_FIELD: {
                "type": "array",
                "description": "Imagens (PNG, JPEG, GIF, WebP), PDF, texto e documentos do Office ou OpenDocument.",
                "items": {"type": "string", "format": "binary"},
            },
        },
    }


def _complement_schema() -> dict:
    return {
        "type": "object",
        "required": ["mensagem"],
        "properties": {
            "mensagem": {
                "type": "string",
                "minLength": 1,
                "maxLength": COMPLEMENT_MAX_LENGTH,
                "pattern": "\\S",
                "description": "O texto do cliente, como digitado (texto simples).",
            },
            "nome": {
                "type": "string",
                "maxLength": COMPLEMENT_AUTHOR_MAX_LENGTH,
                "description": "Quem escreve; padrão `cliente`.",
            },
        },
    }


def _complement_multipart_schema() -> dict:
    schema = _complement_schema()
    return {
        **schema,
        "description": f"Os mesmos campos, e arquivos no campo `{ATTACHMENTS_FIELD}`, com os limites de "
        "`POST /criar-chamado`; um arquivo recusado dá 400 `dados_invalidos` nomeando o arquivo.",
        "properties": {
            **schema["properties"],
            ATTACHMENTS_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }


def _complement_id_schema() -> dict:
    return {
        "type": "string",
        "pattern": f"^{COMPLEMENT_ID_PATTERN.pattern}$",
        "description": "Código do complemento: aparece no acompanhamento do GLPI e em `complementos`.",
    }


def _pending_complements_schema() -> dict:
    return {
        "type": "array",
        "description": "Só quando há: os complementos deste chamado ainda não entregues (`enfileirado`), "
        f"recusados (`{FAILED}`, com `codigo` e `motivo`) ou cancelados pela operação, na ordem em que chegaram. "
        "Os entregues aparecem em `chamado.conversa`.",
        "items": {
            "type": "object",
            "required": ["complemento", "status", "recebido_em", "texto", "anexos", "mensagem_entregue"],
            "properties": {
                "complemento": _complement_id_schema(),
                "status": {"type": "string", "enum": [QUEUED, FAILED, CANCELLED]},
                "recebido_em": {"type": "string", "format": "date-time", "description": "Em UTC."},
                "texto": {"type": "string", "description": "A mensagem, como o cliente a escreveu."},
                "anexos": {"type": "array", "items": {"type": "string"}, "description": "Os nomes dos arquivos."},
                "mensagem_entregue": {
                    "type": "boolean",
                    "description": "A mensagem já está no GLPI (em `chamado.conversa`); só os anexos esperam.",
                },
                "tentativas": {"type": "integer", "minimum": 0},
                "ultimo_erro": {"type": "string"},
                "proxima_tentativa_em": {"type": "string", "format": "date-time"},
                "codigo": {"type": "string", "enum": list(COMPLEMENT_REFUSAL_CODIGOS)},
                "motivo": {"type": "string"},
                "cancelado_em": {"type": "string", "format": "date-time"},
            },
        },
    }


def _created_with_attachments_schema() -> dict:
    return {
        "type": "object",
        "required": ["ticket_id", "protocolo", "anexos"],
        "properties": {
            "ticket_id": {"type": "integer", "description": "Número do chamado no GLPI."},
            "protocolo": _protocol_schema(),
            "anexos": _attachments_report_schema(),
        },
    }


def _attachments_report_schema() -> dict:
    def files(member: str | None = None, member_schema: dict | None = None) -> dict:
        properties = {"arquivo": {"type": "string"}, **({member: member_schema} if member else {})}
        return {
            "type": "array",
            "items": {"type": "object", "required": list(properties), "properties": properties},
        }

    return {
        "type": "object",
        "required": ["enviados", "falharam", "pendentes"],
        "properties": {
            "enviados": files("documento_id", {"type": "integer"}),
            "falharam": files("motivo", {"type": "string"}),
            "pendentes": {
                **files(),
                "description": "Na fila, para este chamado: o GLPI ficou indisponível depois de criá-lo.",
            },
        },
    }


def _queued_state_schema() -> dict:
    def state(name: str, required: list[str], properties: dict, received: bool = True) -> dict:
        return {
            "type": "object",
            "required": ["protocolo", "status", *(["recebido_em"] if received else []), *required],
            "properties": {
                "protocolo": _protocol_schema(),
                "status": {"type": "string", "const": name},
                "recebido_em": {"type": "string", "format": "date-time", "description": "Em UTC."},
                **properties,
                "complementos": {"$ref": "#/components/schemas/ComplementosPendentes"},
            },
        }

    ticket_unread = {
        "type": "string",
        "description": "Em vez de `chamado`, quando o GLPI não pôde ser lido agora (fora do ar, lento, recusando).",
    }
    return {
        "oneOf": [
            state(
                QUEUED,
                ["tentativas"],
                {
                    "tentativas": {"type": "integer", "minimum": 0},
                    "ultimo_erro": {"type": "string", "description": "Código do erro do GLPI na última tentativa."},
                    "proxima_tentativa_em": {"type": "string", "format": "date-time"},
                    "chamado": {"$ref": "#/components/schemas/EstadoNoGlpi"},  # when only files wait
                    "aviso": ticket_unread,
                },
            ),
            state(
                CREATED,
                ["ticket_id"],
                {
                    "ticket_id": {"type": "integer"},
                    "chamado": {"$ref": "#/components/schemas/EstadoNoGlpi"},
                    "aviso": ticket_unread,
                    "anexos": {
                        **_attachments_report_schema(),
                        "description": "Num pedido com anexos que passou pela fila: o que virou documento do "
                        "chamado e o que o GLPI recusou (`pendentes` sempre vazio).",
                    },
                },
                received=False,
            ),
            state(
                FAILED,
                ["codigo", "motivo"],
                {
                    "codigo": {
                        "type": "string",
                        "enum": list(REFUSAL_CODIGOS),
                        "description": f"O erro que o pedido teria recebido com o GLPI no ar; `{UNREADABLE_CODIGO}` "
                        "quando o pedido guardado não pôde ser lido.",
                    },
                    "motivo": {"type": "string"},
                },
            ),
            state(
                CANCELLED,
                ["motivo", "cancelado_em"],
                {
                    "motivo": {"type": "string", "description": "Por que a equipe de operação cancelou o pedido."},
                    "cancelado_em": {"type": "string", "format": "date-time", "description": "Em UTC."},
                },
            ),
        ]
    }


TICKET_VIEW_EXAMPLE = {
    "numero": 123,
    "status": STATUS_LABELS[2],
    "status_codigo": 2,
    "aberto_em": "2026-11-28T10:00:00",
    "atualizado_em": "2026-11-28T10:35:00",
    "solucionado_em": None,
    "fechado_em": None,
    "conversa": [
        {
            "tipo": "acompanhamento",
            "autor": SUPPORT_TEAM,
            "data": "2026-11-28T10:35:00",
            "texto": "Olá Maria, pode reiniciar a impressora e testar de novo?",
        }
    ],
}


def _ticket_view_schema() -> dict:
    date = {"type": ["string", "null"], "description": "Data e hora do GLPI (fuso do servidor do GLPI)."}
    return {
        "type": "object",
        "description": "O chamado como o cliente pode vê-lo, lido do GLPI.",
        "required": ["numero", "status", "status_codigo", "aberto_em", "atualizado_em", "conversa"],
        "properties": {
            "numero": {"type": "integer", "description": "Número do chamado no GLPI."},
            "status": {"type": "string", "enum": [*STATUS_LABELS.values(), "Desconhecido"]},
            "status_codigo": {
                "type": "integer",
                "description": "O status no GLPI: "
                + ", ".join(f"{code} {label}" for code, label in STATUS_LABELS.items()),
            },
            "aberto_em": date,
            "atualizado_em": date,
            "solucionado_em": date,
            "fechado_em": date,
            "conversa": {
                "type": "array",
                "description": "Acompanhamentos públicos e soluções, do mais antigo ao mais novo.",
                "items": {
                    "type": "object",
                    "required": ["tipo", "autor", "data", "texto"],
                    "properties": {
                        "tipo": {"type": "string", "enum": ["acompanhamento", "solucao"]},
                        "autor": {
                            "type": "string",
                            "enum": [SUPPORT_TEAM, CUSTOMER],
                            "description": f"`{CUSTOMER}` nas mensagens enviadas pelo complemento; "
                            f"`{SUPPORT_TEAM}` em todas as da equipe.",
                        },
                        "data": date,
                        "texto": {
                            "type": "string",
                            "description": "Texto simples (o HTML do GLPI já convertido): mostre como texto.",
                        },
                        "complemento": {
                            **_complement_id_schema(),
                            "description": "Nas mensagens do cliente que passaram pela fila: o código do complemento.",
                        },
                    },
                },
            },
        },
    }


def _health_schema() -> dict:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "indisponivel"]},
            "checks": {
                "type": "object",
                "description": "Uma entrada por verificação: `configuracao`, `sessao_glpi`, `verificacoes_partida`, "
                "`fila`. Só com uma chave privada (ou no modo aberto, sem `API_KEYS`): sem chave ou com a chave "
                "pública do formulário, só `status`.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["ok"],
                    "properties": {"ok": {"type": "boolean"}, "detalhe": {"type": "string"}},
                },
            },
        },
    }


def _health_answer(description: str, status: str, glpi_check: dict) -> dict:
    example = {
        "status": status,
        "checks": {"configuracao": {"ok": True}, "sessao_glpi": glpi_check, "verificacoes_partida": {"ok": True}},
    }
    response = _content(description, "application/json", {"$ref": "#/components/schemas/Saude"}, example)
    return {**response, "headers": {"Cache-Control": _header("Cache-Control")}}


def _protocol_schema() -> dict:
    return {"type": "string", "pattern": f"^{PROTOCOL_PATTERN.pattern}$", "description": "Protocolo do pedido."}


def _required_only(body: dict) -> dict:
    return {name: value for name, value in body.items() if name in REQUIRED_FIELDS}


def _schema_name(answer: ErrorAnswer) -> str:
    return "Erro_" + answer.codigo


def _content(description: str, media_type: str, schema: dict, example: object = None) -> dict:
    media: dict[str, object] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {media_type: media}}


def _only_in(name: str, answers: list[str]) -> dict:
    """A header that only the named answers (codigos or example names) under a status set."""
    only = ", ".join(f"`{answer}`" for answer in answers)
    return {**HEADERS[name], "required": False, "description": f"Só em {only}. {HEADERS[name]['description']}"}


def _header(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def _with_request_id(response: dict) -> dict:
    return {**response, "headers": {"X-Request-ID": _header("X-Request-ID"), **response.get("headers", {})}}
