"""The OpenAPI 3.1 document of the gateway's API, and the page of its interactive docs.

Built from what the server itself runs on: the body specification `validation.FIELDS`
and the error catalogue `app.ERROR_ANSWERS` (passed in, so this module does not
import the app). Where to add things: a route in `_operations`, a response header in
`HEADERS`, an error answer in app.py's catalogue.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import flask_swagger_ui

from validation import REQUIRED_FIELDS, ticket_request_example, ticket_request_schema

if TYPE_CHECKING:
    from app import ErrorAnswer

ANY_OPERATION = ("*",)
# An X-Request-ID the gateway keeps; any other is replaced by a new one.
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
# Swagger UI's own files, shipped inside the pinned flask-swagger-ui wheel: no CDN,
# since many helpdesk networks are closed.
SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).parent / "dist"
DOCS_PAGE = """<!doctype html>
<html lang="pt-BR">
<head>
  <meta charset="utf-8">
  <title>GLPI ticket gateway: documentação da API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    // validatorUrl null: never send the document to the public validator.
    SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null});
  </script>
</body>
</html>
"""
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
TAGS = [
    {"name": "chamados", "description": "Abertura de chamados no GLPI."},
    {"name": "operação", "description": "Verificações de funcionamento."},
    {"name": "documentação", "description": "Este documento e a página interativa."},
]
DESCRIPTION = """Abre chamados no GLPI a partir de um JSON simples: acha a entidade do cliente pelo CNPJ e
cria o chamado pela API REST do GLPI.

Toda resposta traz o cabeçalho `X-Request-ID`. Todo erro é JSON com `erro` (mensagem para pessoas),
`codigo` (estável, para programas; lista completa no esquema `Codigo`) e, quando útil, `detalhe`,
`campos` ou `entidades`. Em qualquer caminho, um método não aceito responde 405 `metodo_nao_permitido`
com o cabeçalho `Allow`, e um caminho inexistente responde 404 `rota_nao_encontrada`."""


def _operations(ping_text: str) -> dict[str, dict]:
    """Every route, keyed "METHOD /path", with its success answers; errors come from the catalogue."""
    example = ticket_request_example()
    return {
        "GET /ping": {
            "tags": ["operação"],
            "operationId": "ping",
            "summary": "Verificação de vida",
            "description": "Responde enquanto o processo está de pé, sem consultar o GLPI.",
            "responses": {"200": _content("O gateway está ativo.", "text/plain", {"type": "string"}, ping_text)},
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
            "chamado, com os dados do cliente na descrição.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Chamado"},
                        "examples": {
                            "minimo": {"summary": "Só os campos obrigatórios", "value": _required_only(example)},
                            "completo": {"summary": "Todos os campos", "value": example},
                        },
                    }
                },
            },
            "responses": {
                "201": _content(
                    "Chamado criado.", "application/json", {"$ref": "#/components/schemas/ChamadoCriado"},
                    {"ticket_id": 123},
                )
            },
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
                {"name": "arquivo", "in": "path", "required": True, "schema": {"type": "string"},
                 "example": "swagger-ui.css"}
            ],
            "responses": {"200": _content("O arquivo.", "*/*", {"type": "string"})},
        },
    }


def build_document(error_answers: Iterable[ErrorAnswer], ping_text: str) -> dict:
    """The OpenAPI 3.1 document, as a JSON-ready dict."""
    error_answers = tuple(error_answers)
    paths: dict[str, dict] = {}
    for key, operation in _operations(ping_text).items():
        method, path = key.split(" ", 1)
        responses = {**operation["responses"], **_error_responses(key, error_answers)}
        paths.setdefault(path, {})[method.lower()] = {
            **operation,
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
        "paths": paths,
        "components": {
            "parameters": {"X-Request-ID": REQUEST_ID_PARAMETER},
            "headers": HEADERS,
            "schemas": {
                "Chamado": ticket_request_schema(),
                "ChamadoCriado": {
                    "type": "object",
                    "required": ["ticket_id"],
                    "properties": {"ticket_id": {"type": "integer", "description": "Número do chamado no GLPI."}},
                },
                "Codigo": {
                    "type": "string",
                    "description": "Todos os valores de `codigo` nas respostas de erro.",
                    "enum": [answer.codigo for answer in error_answers],
                },
                **{_schema_name(answer): _error_schema(answer) for answer in error_answers},
            },
            "responses": {
                _schema_name(answer): _with_request_id(_error_response([answer]))
                for answer in error_answers
                if not answer.operations
            },
        },
    }


def _error_responses(operation: str, error_answers: tuple[ErrorAnswer, ...]) -> dict[str, dict]:
    by_status: dict[str, list[ErrorAnswer]] = {}
    for answer in error_answers:
        if operation in answer.operations or answer.operations == ANY_OPERATION:
            by_status.setdefault(str(answer.status), []).append(answer)
    # An exact status takes precedence over a range ("4XX"), so a ranged answer is listed under both.
    for status, answers in by_status.items():
        ranged = by_status.get(status[0] + "XX", []) if status.isdigit() else []
        answers.extend(ranged)
    return {status: _error_response(answers) for status, answers in sorted(by_status.items())}


def _error_response(answers: list[ErrorAnswer]) -> dict:
    refs = [{"$ref": f"#/components/schemas/{_schema_name(answer)}"} for answer in answers]
    return {
        "description": "\n\n".join(f"`{answer.codigo}`: {answer.quando}" for answer in answers),
        "headers": {name: _header(name) for answer in answers for name in answer.headers},
        "content": {
            "application/json": {
                "schema": refs[0] if len(refs) == 1 else {"oneOf": refs},
                "examples": {
                    answer.codigo: {
                        "summary": answer.erro,
                        "value": {"erro": answer.erro, "codigo": answer.codigo, **answer.example},
                    }
                    for answer in answers
                },
            }
        },
    }


def _error_schema(answer: ErrorAnswer) -> dict:
    return {
        "type": "object",
        "description": answer.quando,
        "required": ["erro", "codigo", *answer.extra],
        "properties": {
            "erro": {"type": "string", "const": answer.erro},
            "codigo": {"type": "string", "const": answer.codigo},
            **answer.extra,
        },
    }


def _required_only(body: dict) -> dict:
    return {name: value for name, value in body.items() if name in REQUIRED_FIELDS}


def _schema_name(answer: ErrorAnswer) -> str:
    return "Erro_" + answer.codigo


def _content(description: str, media_type: str, schema: dict, example: object = None) -> dict:
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {media_type: media}}


def _header(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def _with_request_id(response: dict) -> dict:
    return {**response, "headers": {"X-Request-ID": _header("X-Request-ID"), **response.get("headers", {})}}
