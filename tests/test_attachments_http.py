"""The multipart variant of POST /criar-chamado, over HTTP: gunicorn in front, the GLPI sandbox behind.

Answers that need no real process (status, headers, body) are checked in-process, faster, in
test_http_answers.py.
"""

from __future__ import annotations

import pytest
import requests

from tests.harness import sandbox_settings, start_gateway
from tests.helpers import BETA, LOG, PDF, PNG, anexos, assert_error, body, docx

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn


def post_form(gateway, files, http=None, **overrides) -> requests.Response:
    """The form's fields as multipart fields, `files` as (field, (name, bytes, type)) parts.

    An answer sent before the body is read (413) closes the connection: such a request must not
    use the gateway's shared session (`http=requests`), or the next test sends on a dead connection.
    """
    http = http or gateway.session
    return http.post(f"{gateway.url}/criar-chamado", data=body(**overrides), files=files, timeout=30)


def documents_of(sandbox, ticket_id: int) -> list[dict]:
    return [
        sandbox.documents[link["documents_id"]]
        for link in sandbox.document_items
        if (link["itemtype"], link["items_id"]) == ("Ticket", ticket_id)
    ]


# --- attachments reach GLPI ------------------------------------------------------------


def test_attachments_become_documents_of_the_ticket_in_its_entity_with_their_bytes(gateway, sandbox):
    files = {"print.png": PNG, "relatório de erro.pdf": PDF, "orçamento.docx": docx()}
    response = post_form(gateway, anexos(*files.items()), cnpj_cliente=BETA)
    assert response.status_code == 201, response.text
    answer = response.json()
    ticket_id = answer["ticket_id"]
    assert sandbox.tickets[ticket_id]["entities_id"] == 2
    assert [sent["arquivo"] for sent in answer["anexos"]["enviados"]] == list(files)
    assert answer["anexos"]["falharam"] == []
    documents = documents_of(sandbox, ticket_id)
    assert [document["id"] for document in documents] == [sent["documento_id"] for sent in answer["anexos"]["enviados"]]
    for document in documents:  # in the customer's entity, not the root where its technicians cannot see it
        assert document["entities_id"] == 2
        assert sandbox.document_files[document["id"]] == files[document["filename"]]
    assert all(link["entities_id"] == 2 for link in sandbox.document_items if link["items_id"] == ticket_id)


def test_the_ticket_carries_the_form_fields_as_the_json_variant_does(gateway, sandbox):
    response = post_form(
        gateway, anexos(("print.png", PNG)), categoria="2", urgencia="5", descricao_problema="Linha 1\nLinha 2"
    )
    ticket = sandbox.tickets[response.json()["ticket_id"]]
    assert (ticket["itilcategories_id"], ticket["urgency"]) == (2, 5)
    assert "Linha 1&#60;br&#62;Linha 2" in ticket["content"]


def test_a_form_without_files_creates_the_ticket_with_an_empty_report(gateway, sandbox):
    documents = len(sandbox.documents)
    response = post_form(gateway, [("anexos", ("", b"", "application/octet-stream"))])  # an empty file input
    assert response.status_code == 201, response.text
    created = {"ticket_id": response.json()["ticket_id"], "protocolo": response.json()["protocolo"]}
    assert response.json() == {**created, "anexos": {"enviados": [], "falharam": [], "pendentes": []}}
    assert response.headers["Location"] == f"/chamados/{created['protocolo']}"
    assert len(sandbox.documents) == documents


def test_file_names_reach_glpi_without_client_paths_and_with_the_extension_of_their_content(gateway, sandbox):
    response = post_form(gateway, anexos(("fotos/tela.png", PNG), ("captura", PNG)))
    assert [sent["arquivo"] for sent in response.json()["anexos"]["enviados"]] == ["tela.png", "captura.png"]
    assert [document["filename"] for document in documents_of(sandbox, response.json()["ticket_id"])] == [
        "tela.png",
        "captura.png",
    ]


# --- limits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_limits(sandbox, tmp_path_factory):
    """A gateway taking at most 2 files of 2000 bytes, in a body of at most 8000 bytes."""
    process = start_gateway(
        tmp_path_factory.mktemp("small"),
        sandbox_settings(
            sandbox.url, ATTACHMENTS_MAX_COUNT="2", ATTACHMENTS_MAX_BYTES="2000", MAX_MULTIPART_BODY_BYTES="8000"
        ),
    )
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def test_more_files_than_attachments_max_count_is_400(small_limits, sandbox):
    tickets = len(sandbox.tickets)
    answer = assert_error(post_form(small_limits, anexos(*[("a.png", PNG)] * 3)), 400, "dados_invalidos")
    assert answer["campos"] == {"anexos": "envie no máximo 2 arquivos (foram 3)"}
    assert len(sandbox.tickets) == tickets


def test_a_file_over_attachments_max_bytes_is_400_naming_it(small_limits, sandbox):
    tickets = len(sandbox.tickets)
    big = PNG[:100] + bytes(2000 - 100 + 1)
    answer = assert_error(
        post_form(small_limits, anexos(("ok.png", PNG[:100]), ("grande.png", big))), 400, "dados_invalidos"
    )
    assert answer["campos"] == {"anexos": "grande.png: maior que o limite de 1,9 KB por arquivo"}
    assert len(sandbox.tickets) == tickets


def test_files_at_the_limits_are_taken(small_limits):
    exact = PNG[:100] + bytes(2000 - 100)
    response = post_form(small_limits, anexos(("a.png", exact), ("b.png", exact)))
    assert response.status_code == 201, response.text
    assert len(response.json()["anexos"]["enviados"]) == 2


def test_a_body_over_max_multipart_body_bytes_is_413(small_limits, sandbox):
    tickets = len(sandbox.tickets)
    response = post_form(small_limits, anexos(("a.txt", b"x" * 9000)), http=requests)
    assert_error(response, 413, "corpo_muito_grande")
    assert len(sandbox.tickets) == tickets


def test_the_json_body_limit_still_applies_to_json(small_limits):
    response = requests.post(
        f"{small_limits.url}/criar-chamado", json=body(descricao_problema="x" * 70_000), timeout=10
    )
    assert_error(response, 413, "corpo_muito_grande")


# --- GLPI refusing or failing --------------------------------------------------------------


def test_glpi_refusing_one_upload_still_creates_the_ticket_and_lists_the_file(gateway, sandbox):
    # A default GLPI has no "log" document type: it drops the file (LAB#229).
    response = post_form(gateway, anexos(("print.png", PNG), ("erro.log", LOG), ("orçamento.pdf", PDF)))
    assert response.status_code == 201, response.text
    ticket_id = response.json()["ticket_id"]
    assert ticket_id in sandbox.tickets
    assert [sent["arquivo"] for sent in response.json()["anexos"]["enviados"]] == ["print.png", "orçamento.pdf"]
    assert response.json()["anexos"]["falharam"] == [
        {"arquivo": "erro.log", "motivo": "o GLPI recusou o arquivo: File erro.log not found."}
    ]
    assert [document["filename"] for document in documents_of(sandbox, ticket_id)] == ["print.png", "orçamento.pdf"]


def test_glpi_taking_the_type_once_configured_takes_the_file(gateway, sandbox):
    sandbox.document_extensions.add("log")
    try:
        response = post_form(gateway, anexos(("erro.log", LOG)))
    finally:
        sandbox.document_extensions.discard("log")
    assert [sent["arquivo"] for sent in response.json()["anexos"]["enviados"]] == ["erro.log"]


@pytest.fixture(scope="module")
def not_queueing(sandbox, tmp_path_factory):
    """A gateway with QUEUE_WHEN_UNAVAILABLE=false: GLPI's failures are answered, nothing waits."""
    process = start_gateway(
        tmp_path_factory.mktemp("not-queueing"), sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false")
    )
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def test_glpi_failing_during_the_uploads_lists_every_file_and_stops_trying(not_queueing, sandbox):
    sandbox.fault, sandbox.fault_endpoints = "http500", {"Document"}
    sandbox.reset_calls()
    response = post_form(not_queueing, anexos(("a.png", PNG), ("b.pdf", PDF)))
    assert response.status_code == 201, response.text
    assert response.json()["ticket_id"] in sandbox.tickets
    assert response.json()["anexos"] == {
        "enviados": [],
        "falharam": [
            {"arquivo": "a.png", "motivo": "GLPI indisponível"},
            {"arquivo": "b.pdf", "motivo": "GLPI indisponível"},
        ],
        "pendentes": [],
    }
    assert sandbox.call_count(endpoint="Document") == 1


def test_glpi_down_before_the_ticket_is_503_as_in_the_json_variant_when_not_queueing(not_queueing, sandbox):
    sandbox.fault = "http500"
    assert_error(post_form(not_queueing, anexos(("a.png", PNG))), 503, "glpi_indisponivel")


# --- the JSON variant -------------------------------------------------------------------


def test_the_json_variant_answers_the_ticket_id_and_protocol_without_a_report(gateway, sandbox):
    documents = len(sandbox.documents)
    response = gateway.post_ticket(body())
    assert response.status_code == 201
    assert response.json() == {"ticket_id": response.json()["ticket_id"], "protocolo": response.json()["protocolo"]}
    assert len(sandbox.documents) == documents
