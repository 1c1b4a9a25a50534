"""Server and OpenAPI document agree: schemathesis generates requests from the document and
checks every answer of the gateway (under gunicorn, the GLPI sandbox behind it) against it."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
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
from schemathesis.core.transport import Response

from glpi_gateway.web.routes import api_document
from tests.harness import sandbox_settings
from tests.helpers import EXE, PNG, wait_for_final_state

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn

# Loaded at collection time from the code that serves /openapi.json (the test below proves the
# served document is this one): schemathesis' lazy fixture loader does not work with pytest 9.
DOCUMENT = api_document()
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
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


API_KEY = "chave-de-teste-0123456789abcdefghijklmn"


def conforms(
    response: requests.Response, path: str = "/criar-chamado", method: str = "POST", **case
) -> requests.Response:
    """Check `response` against what the document says `method path` answers; return it."""
    schema[path][method].Case(**case).validate_response(response, checks=CONFORMANCE)
    return response


def post(gateway, changes: dict | None = None, headers: dict | None = None) -> Response:
    """POST /criar-chamado with the documented minimal body, built and checked by schemathesis."""
    case = schema["/criar-chamado"]["POST"].Case(
        body={**VALID_BODY, **(changes or {})}, media_type="application/json", headers=headers or {}
    )
    response = case.call(base_url=gateway.url, session=gateway.session)
    case.validate_response(response, checks=CONFORMANCE)
    return response


def header(response, name: str) -> str:
    """A header of a response from `case.call` (schemathesis keeps them lowercase, as lists)."""
    return response.headers[name.lower()][0]


def get_state(gateway, location: str) -> requests.Response:
    protocol = location.rsplit("/", 1)[1]
    return conforms(gateway.get(location), "/chamados/{protocolo}", "GET", path_parameters={"protocolo": protocol})


@pytest.mark.parametrize(
    "changes, fault, status, codigo",
    [
        ({"cnpj_cliente": "45.723.174/0001-10"}, None, 404, "entidade_nao_encontrada"),
        ({"cnpj_cliente": "19.131.100/0001-85"}, None, 409, "entidade_ambigua"),
        ({"categoria": 999}, None, 400, "categoria_desconhecida"),
        ({"cnpj_cliente": "11444777000161"}, "http500", 202, None),  # QUEUE_WHEN_UNAVAILABLE defaults on
    ],
)
def test_answers_that_depend_on_glpi_are_the_documented_ones(gateway, sandbox, changes, fault, status, codigo):
    """Random bodies seldom reach these: each is provoked once and checked against the document."""
    sandbox.fault = fault
    response = post(gateway, changes)
    assert (response.status_code, response.json().get("codigo")) == (status, codigo)


def test_each_state_of_a_queued_request_is_the_documented_one(gateway, sandbox):
    sandbox.fault = "http500"
    accepted = post(gateway, {"cnpj_cliente": "11.222.333/0002-62"})
    refused = post(gateway, {"cnpj_cliente": "98.765.432/0001-98"})  # valid, on no entity, never looked up yet
    assert (accepted.status_code, refused.status_code) == (202, 202)
    assert get_state(gateway, header(accepted, "Location")).json()["status"] == "enfileirado"
    sandbox.fault = None
    wait_for_final_state(gateway, accepted.json()["protocolo"])
    wait_for_final_state(gateway, refused.json()["protocolo"])
    assert get_state(gateway, header(accepted, "Location")).json()["status"] == "criado"
    assert get_state(gateway, header(refused, "Location")).json()["codigo"] == "entidade_nao_encontrada"


def test_glpi_down_without_the_queue_is_the_documented_503_and_health_says_so(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false"))
    assert process.exit_code is None, process.logs()
    sandbox.fault = "http500"
    response = post(process, {"cnpj_cliente": "11.222.333/0002-62"})
    assert (response.status_code, response.json()["codigo"]) == (503, "glpi_indisponivel")
    assert conforms(process.get("/health"), "/health", "GET").status_code == 503


def test_idempotency_answers_are_the_documented_ones(gateway, sandbox):
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = post(gateway, headers=key)
    replay = post(gateway, headers=key)
    assert replay.json() == first.json() and header(replay, "Idempotent-Replayed") == "true"
    reused = post(gateway, {"nome_cliente": "Outra Pessoa"}, headers=key)
    assert (reused.status_code, reused.json()["codigo"]) == (422, "idempotency_key_reutilizada")
    invalid = post(gateway, headers={"Idempotency-Key": "com espaço"})
    assert (invalid.status_code, invalid.json()["codigo"]) == (400, "idempotency_key_invalida")


def test_a_repeat_while_the_first_request_runs_is_the_documented_409(gateway, sandbox):
    key = {"Idempotency-Key": uuid.uuid4().hex}
    calls = sandbox.call_count()
    sandbox.latency_ms = 1500  # each GLPI call; GLPI_TIMEOUT is 2 s
    first = threading.Thread(target=post, args=(gateway, {"cnpj_cliente": "12.ABC.345/01DE-35"}, key))
    first.start()
    try:
        while sandbox.call_count() == calls:  # the first request holds the key once it reaches GLPI
            time.sleep(0.01)
        repeat = post(gateway, {"cnpj_cliente": "12.ABC.345/01DE-35"}, key)
    finally:
        first.join()
    assert (repeat.status_code, repeat.json()["codigo"]) == (409, "pedido_em_andamento")


def test_key_and_rate_limit_refusals_are_the_documented_ones(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, API_KEYS=f"site:{API_KEY}", RATE_LIMIT_PER_IP="3/hour"))
    assert process.exit_code is None, process.logs()
    assert conforms(process.get("/health"), "/health", "GET").status_code == 200  # open: no key, not counted
    missing = post(process)
    assert (missing.status_code, missing.json()["codigo"]) == (401, "chave_api_invalida")
    wrong = conforms(process.get("/metrics", headers={"X-API-Key": "errada"}), "/metrics", "GET")
    assert (wrong.status_code, wrong.json()["codigo"]) == (401, "chave_api_invalida")
    assert post(process, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 201
    limited = post(process, headers={"Authorization": f"Bearer {API_KEY}"})
    assert (limited.status_code, limited.json()["codigo"]) == (429, "limite_de_requisicoes")


def test_a_failing_store_is_the_documented_503(sandbox, launch, own_redis):
    server, url = own_redis
    process = launch(sandbox_settings(sandbox.url, REDIS_URL=url))
    assert process.exit_code is None, process.logs()
    server.kill()
    server.wait()
    sandbox.fault = "http500"
    lost = post(process)
    assert (lost.status_code, lost.json()["codigo"]) == (503, "armazenamento_indisponivel")
    state = get_state(process, f"/chamados/{uuid.uuid4().hex}")
    assert (state.status_code, state.json()["codigo"]) == (503, "armazenamento_indisponivel")


@pytest.mark.parametrize("content, status", [(PNG, 201), (EXE, 400)])
def test_a_request_with_attachments_is_answered_as_documented(gateway, content, status):
    response = gateway.session.post(
        f"{gateway.url}/criar-chamado",
        data=VALID_BODY,
        timeout=30,
        files=[("anexos", ("arquivo.png", content, "application/octet-stream"))],
    )
    assert conforms(response).status_code == status
    assert "anexos" in (response.json() if status == 201 else response.json()["campos"])
