"""The OpenAPI document and the docs page: one source of truth with the server, served without a CDN."""

from __future__ import annotations

import re
from importlib import import_module

import pytest

from glpi_gateway import errors
from glpi_gateway.errors import (
    ANY_OPERATION,
    ERROR_ANSWERS,
    FORM_OPERATIONS,
    NON_TICKET_PROTECTED_OPERATIONS,
    PROTECTED_OPERATIONS,
    ErrorAnswer,
)
from glpi_gateway.idempotency import is_final
from glpi_gateway.validation import (
    FIELDS,
    MAX_LENGTHS,
    REQUIRED_FIELDS,
    ticket_request_example,
    validate_ticket_request,
)
from glpi_gateway.web import access, routes
from tests.harness import ROOT, sandbox_settings
from tests.helpers import in_process_app

WEB_DIR = ROOT / "glpi_gateway" / "web"


@pytest.fixture(scope="module")
def flask_app(sandbox, tmp_path_factory):
    # Its own DATA_DIR: the default (./data) would put a store in the repository, shared by parallel runs.
    with in_process_app(sandbox_settings(sandbox.url, DATA_DIR=str(tmp_path_factory.mktemp("openapi-data")))) as app:
        yield app


@pytest.fixture(scope="module")
def document(flask_app):
    """The document as the app serves it (test_api_conformance.py checks gunicorn serves the same)."""
    response = flask_app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return response.get_json()


def operations(document):
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def test_the_document_is_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]


def test_every_route_of_the_app_is_documented_and_nothing_else(flask_app, document):
    routes = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes |= {f"{method} {path}" for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == set(operations(document))


def test_the_documented_body_schema_is_the_one_validation_uses(document):
    schema = document["components"]["schemas"]["Chamado"]
    assert schema["required"] == list(REQUIRED_FIELDS)
    assert list(schema["properties"]) == [field.name for field in FIELDS]
    texts = {name: prop.get("anyOf", [prop])[0] for name, prop in schema["properties"].items()}  # optional: anyOf
    assert {name: text["maxLength"] for name, text in texts.items() if "maxLength" in text} == MAX_LENGTHS
    assert schema["properties"]["urgencia"]["maximum"] == 5 and schema["properties"]["urgencia"]["default"] == 3
    assert schema["properties"]["email_cliente"]["anyOf"][0] == {"type": "string", "maxLength": 254, "format": "email"}
    assert all(prop["description"] for prop in schema["properties"].values())


def test_the_documented_request_example_is_accepted_by_validation(document):
    media = document["paths"]["/criar-chamado"]["post"]["requestBody"]["content"]["application/json"]
    assert media["examples"]["completo"]["value"] == ticket_request_example()
    for example in media["examples"].values():
        assert validate_ticket_request(example["value"]).cnpj == "11222333000181"


def test_every_error_answer_defined_is_in_the_catalogue():
    web_modules = [import_module(f"glpi_gateway.web.{path.stem}") for path in WEB_DIR.glob("*.py")]
    defined = {
        value.codigo
        for module in (errors, *web_modules)
        for value in vars(module).values()
        if isinstance(value, ErrorAnswer)
    }
    assert defined == {a.codigo for a in ERROR_ANSWERS}


def test_the_app_answers_errors_only_with_catalogue_entries():
    """An ad-hoc `{"erro": ..., "codigo": ...}` built in the HTTP face would be missing from the document."""
    answering = [path for path in WEB_DIR.glob("*.py") if path.name != "openapi.py"]  # openapi.py documents them
    for path in [ROOT / "app.py", *answering]:
        source = path.read_text(encoding="utf-8")
        assert "ErrorAnswer(" not in source and "erro=" not in source and '"erro"' not in source, path


def test_every_codigo_is_listed_once_and_matches_the_catalogue(document):
    codigos = [answer.codigo for answer in ERROR_ANSWERS]
    assert len(codigos) == len(set(codigos))
    assert document["components"]["schemas"]["Codigo"]["enum"] == codigos


def test_every_codigo_is_documented_under_each_operation_that_can_answer_it(document):
    documented = operations(document)
    protected = [name for name, operation in documented.items() if operation.get("security") != []]
    for answer in ERROR_ANSWERS:
        names = {
            ANY_OPERATION: list(documented),
            PROTECTED_OPERATIONS: protected,
            NON_TICKET_PROTECTED_OPERATIONS: [name for name in protected if name not in FORM_OPERATIONS],
        }.get(answer.operations, answer.operations)
        for name in names:
            response = documented[name]["responses"][str(answer.status)]
            examples = response["content"]["application/json"]["examples"]
            assert examples[answer.codigo]["value"]["erro"] == answer.erro, (name, answer.codigo)
            assert answer.codigo in response["description"]
            for header in answer.headers:
                assert header in response["headers"]
        if not answer.operations:  # answers of any path, e.g. a wrong method
            assert f"Erro_{answer.codigo}" in document["components"]["responses"]
            assert answer.codigo in document["info"]["description"]


def test_an_answer_whose_status_is_glpis_is_documented_under_each_exact_status_of_its_range(document):
    responses = document["paths"]["/criar-chamado"]["post"]["responses"]
    glpi_statuses = [status for status in responses if status.startswith("4")]
    assert "4XX" in glpi_statuses and "400" in glpi_statuses and "409" in glpi_statuses
    for status in glpi_statuses:
        assert "chamado_recusado" in responses[status]["content"]["application/json"]["examples"], status


def test_every_response_documents_the_request_id_header(document):
    for name, operation in operations(document).items():
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}, (name, status)


def test_the_catalogue_names_only_existing_operations(document):
    documented = set(operations(document))
    for answer in ERROR_ANSWERS:
        stand_ins = {*ANY_OPERATION, *PROTECTED_OPERATIONS, *NON_TICKET_PROTECTED_OPERATIONS}
        assert set(answer.operations) - stand_ins <= documented, answer.codigo


def test_open_paths_are_documented_without_a_key_and_the_others_with_one(document):
    for name, operation in operations(document).items():
        path = name.split(" ", 1)[1]
        assert (operation.get("security") == []) == access.is_open_path(path.replace("{arquivo}", "x")), name
    assert {"bearer", "chaveApi"} <= set(document["components"]["securitySchemes"])
    assert {} in document["security"]  # without API_KEYS no key is needed


def test_a_header_only_some_answers_of_a_status_set_is_not_required(document):
    conflict = document["paths"]["/criar-chamado"]["post"]["responses"]["409"]
    assert conflict["headers"]["Retry-After"]["required"] is False
    assert "pedido_em_andamento" in conflict["headers"]["Retry-After"]["description"]
    assert document["paths"]["/criar-chamado"]["post"]["responses"]["202"]["headers"]["Location"] == {
        "$ref": "#/components/headers/Location"
    }


def test_answers_documented_as_replayed_are_the_ones_idempotency_stores(document):
    replayed = [answer for answer in ERROR_ANSWERS if answer.replayed]
    assert {answer.codigo for answer in replayed} == {
        "categoria_desconhecida",
        "entidade_nao_encontrada",
        "entidade_ambigua",
        "chamado_recusado",
        "chamado_fechado",  # POST /chamados/{protocolo}/complemento: decided by GLPI's state after the claim
    }
    assert all(is_final(int(str(answer.status).replace("XX", "00"))) for answer in replayed)
    responses = document["paths"]["/criar-chamado"]["post"]["responses"]
    only = responses["409"]["headers"]["Idempotent-Replayed"]["description"]
    assert "entidade_ambigua" in only and "pedido_em_andamento" not in only
    assert "idempotency_key_reutilizada" not in responses["422"]["headers"]["Idempotent-Replayed"]["description"]
    assert "Idempotent-Replayed" not in responses["503"]["headers"]


def test_without_metrics_there_is_no_metrics_operation():
    assert "/metrics" in routes.api_document()["paths"]
    assert "/metrics" not in routes.api_document(metrics=False)["paths"]


# --- the interactive docs -------------------------------------------------------


def test_docs_page_is_html_in_portuguese_with_only_local_assets(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<html lang="pt-BR">' in response.text
    assert "http" not in response.text  # no CDN, no absolute URL: works behind a path prefix too
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sorted(assets) == ["docs/swagger-ui-bundle.js", "docs/swagger-ui.css"]
    for asset in assets:
        served = client.get(f"/{asset}")
        assert served.status_code == 200 and len(served.data) > 10_000, asset
    assert 'url: "openapi.json"' in response.text and "validatorUrl: null" in response.text


@pytest.mark.parametrize("path", ["/docs/nao-existe.js", "/docs/..%2Fapp.py", "/docs/%2E%2E/config.py"])
def test_docs_assets_outside_the_bundle_are_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["codigo"] == "rota_nao_encontrada"
