"""Server and OpenAPI document agree: schemathesis generates requests from the document and
checks every answer of the gateway (under gunicorn, the GLPI sandbox behind it) against it."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from app import ERROR_ANSWERS, PING_TEXT
from openapi import build_document

# Loaded at collection time from the code that serves /openapi.json (the test below proves the
# served document is this one): schemathesis' lazy fixture loader does not work with pytest 9.
DOCUMENT = build_document(ERROR_ANSWERS, PING_TEXT)
schema = schemathesis.openapi.from_dict(DOCUMENT)


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
