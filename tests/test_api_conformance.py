"""Server and OpenAPI document agree: schemathesis generates requests from the document and
checks every answer of the gateway (under gunicorn, the GLPI sandbox behind it) against it."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import ERROR_ANSWERS, PING_TEXT
from openapi import build_document

# Loaded at collection time from the code that serves /openapi.json (the test below proves the
# served document is this one): schemathesis' lazy fixture loader does not work with pytest 9.
DOCUMENT = build_document(ERROR_ANSWERS, PING_TEXT)
# A body over MAX_BODY_BYTES is refused with 413 before validation: a rejection like the default ones.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5XX"]
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}),
)


def test_the_served_document_is_the_one_tested(gateway):
    assert gateway.get("/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_no_request_makes_a_server_error(case, gateway):
    # A body can match the schema and still be refused by a rule the schema cannot state (CNPJ check
    # digits, a category that must exist in GLPI): those refusals are documented 4xx answers.
    excluded = [positive_data_acceptance]
    if case.path == "/debug":  # answers 500 on purpose; the answer must still be the documented one
        excluded.append(not_a_server_error)
    case.call_and_validate(base_url=gateway.url, session=gateway.session, excluded_checks=excluded)


VALID_BODY = DOCUMENT["paths"]["/criar-chamado"]["post"]["requestBody"]["content"]["application/json"]["examples"]
VALID_BODY = VALID_BODY["minimo"]["value"]
CONFORMANCE = [status_code_conformance, content_type_conformance, response_headers_conformance,
               response_schema_conformance]


@pytest.mark.parametrize(
    "changes, fault, status, codigo",
    [
        ({"cnpj_cliente": "45.723.174/0001-10"}, None, 404, "entidade_nao_encontrada"),
        ({"cnpj_cliente": "19.131.100/0001-85"}, None, 409, "entidade_ambigua"),
        ({"categoria": 999}, None, 400, "categoria_desconhecida"),
        ({"cnpj_cliente": "11444777000161"}, "http500", 503, "glpi_indisponivel"),
    ],
)
def test_answers_that_depend_on_glpi_are_the_documented_ones(gateway, sandbox, changes, fault, status, codigo):
    """Random bodies seldom reach these: each is provoked once and checked against the document."""
    sandbox.fault = fault
    case = schema["/criar-chamado"]["POST"].Case(body={**VALID_BODY, **changes}, media_type="application/json")
    response = case.call(base_url=gateway.url, session=gateway.session)
    assert (response.status_code, response.json()["codigo"]) == (status, codigo)
    case.validate_response(response, checks=CONFORMANCE)
