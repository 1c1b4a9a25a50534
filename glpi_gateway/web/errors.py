"""Every failure becomes a JSON answer here, and only here: the exceptions of the table
`errors.EXCEPTION_ANSWERS`, Werkzeug's HTTP errors, and anything unexpected (500)."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from glpi_gateway.errors import (
    CORPO_MUITO_GRANDE,
    ERRO_INTERNO,
    EXCEPTION_ANSWERS,
    METODO_NAO_PERMITIDO,
    REQUISICAO_INVALIDA,
    ROTA_NAO_ENCONTRADA,
    TIPO_DE_CONTEUDO_INVALIDO,
    Refusal,
    answer_for,
    log_reference,
)
from glpi_gateway.web.context import current

_HTTP_ERRORS = {
    answer.status: answer
    for answer in (ROTA_NAO_ENCONTRADA, METODO_NAO_PERMITIDO, CORPO_MUITO_GRANDE, TIPO_DE_CONTEUDO_INVALIDO)
}

log = logging.getLogger(__name__)


def respond(refusal: Refusal) -> Response:
    """The Flask answer for `refusal`; its `codigo` goes to the request's log line and metrics."""
    if refusal.log_level is not None:
        log.log(refusal.log_level, "%s", refusal.log_message, extra={"event": refusal.event})
    current().codigo = refusal.answer.codigo
    response = jsonify(refusal.body)
    response.status_code = refusal.status_code
    response.headers.update(refusal.headers)
    return response


def register_error_answers(app: Flask) -> None:
    # Flask logs every unhandled exception itself (plain text, unmasked, no event) before calling
    # the 500 handler below, which logs it once, as JSON, with the secrets masked.
    app.log_exception = lambda exc_info: None  # type: ignore[method-assign]

    def expected_failure(error: Exception) -> Response:
        refusal = answer_for(error, current().request_id)
        if refusal is None:  # not reachable: only the table's exceptions are registered here
            raise error
        return respond(refusal if current().sees_details else refusal.without_details())

    for kind in EXCEPTION_ANSWERS:
        app.register_error_handler(kind, expected_failure)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        answer = _HTTP_ERRORS.get(error.code or 400, REQUISICAO_INVALIDA)
        response = respond(answer.refusal(status=error.code or 400))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(InternalServerError)
    def unexpected_error(error: InternalServerError) -> Response:
        log.error("erro inesperado", exc_info=error.original_exception or error, extra={"event": "erro_inesperado"})
        return respond(ERRO_INTERNO.refusal(detalhe=log_reference(current().request_id)))
