"""Attachments queued, never duplicated: multipart requests over HTTP with GLPI failing on purpose.

The gateway runs under gunicorn, GLPI is the sandbox; the store is SQLite in the gateway's DATA_DIR
or, where a test takes the `backend` parameter, Redis too.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from glpi_gateway.store.sqlite import FILES_DIR, SqliteStore
from tests.harness import sandbox_settings
from tests.helpers import (
    DELIVERY_DEADLINE,
    PDF,
    PNG,
    anexos,
    assert_error,
    body,
    queued,
    tickets_with_protocol,
    wait_for_final_state,
)

pytestmark = pytest.mark.slow  # gunicorn, SIGKILL, Redis

FILES = {"print.png": PNG, "relatorio.pdf": PDF}


def post_form(process, files=FILES, headers=None, **overrides) -> requests.Response:
    fields = body(descricao_problema=f"Impressora parada ({uuid.uuid4().hex})", **overrides)
    return process.session.post(
        f"{process.url}/criar-chamado", data=fields, files=anexos(*files.items()), headers=headers, timeout=30
    )


def documents_of(sandbox, ticket_id: int) -> list[dict]:
    return [
        sandbox.documents[link["documents_id"]]
        for link in sandbox.document_items
        if (link["itemtype"], link["items_id"]) == ("Ticket", ticket_id)
    ]


def assert_delivered_once_with_every_file(sandbox, protocol: str, final: dict) -> None:
    """One ticket for the protocol, and one document per file: its bytes, marked with the protocol."""
    assert final["status"] == "criado", final
    assert tickets_with_protocol(sandbox, protocol) == [final["ticket_id"]]
    documents = documents_of(sandbox, final["ticket_id"])
    assert sorted(document["filename"] for document in documents) == sorted(FILES)
    for document in documents:
        assert sandbox.document_files[document["id"]] == FILES[document["filename"]]
    assert sorted(document["comment"] for document in documents) == [
        f"Protocolo: {protocol} · anexo 1/2",
        f"Protocolo: {protocol} · anexo 2/2",
    ]
    assert sorted(sent["arquivo"] for sent in final["anexos"]["enviados"]) == sorted(FILES)
    assert final["anexos"]["falharam"] == []


def stored_files(data_dir) -> list[str]:
    """The queued files a SQLite gateway keeps under its DATA_DIR."""
    files_dir = data_dir / FILES_DIR
    return sorted(str(path.relative_to(files_dir)) for path in files_dir.rglob("*")) if files_dir.exists() else []


# --- queued, then delivered with every document ----------------------------------------------


def test_multipart_with_glpi_down_is_queued_and_delivered_with_all_its_documents(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, **backend))
    sandbox.fault = "http500"
    protocol = queued(post_form(process))
    assert process.get(f"/chamados/{protocol}").json()["status"] == "enfileirado"
    sandbox.fault = None
    assert_delivered_once_with_every_file(sandbox, protocol, wait_for_final_state(process, protocol))


def test_queued_files_are_kept_on_disk_until_delivered_then_deleted(sandbox, launch, tmp_path):
    data_dir = tmp_path / "files-data"
    process = launch(sandbox_settings(sandbox.url, DATA_DIR=str(data_dir)))
    sandbox.fault = "http500"
    protocol = queued(post_form(process))
    assert stored_files(data_dir) == [protocol, f"{protocol}/0", f"{protocol}/1"]
    sandbox.fault = None
    wait_for_final_state(process, protocol)
    assert stored_files(data_dir) == []


def test_sigkill_while_queued_then_restart_delivers_once_with_all_documents(sandbox, launch, tmp_path, backend):
    settings = sandbox_settings(sandbox.url, DATA_DIR=str(tmp_path / "kept-data"), **backend)
    first = launch(settings)
    sandbox.fault = "http500"
    protocol = queued(post_form(first))
    first.kill()
    sandbox.fault = None
    second = launch(settings)
    assert_delivered_once_with_every_file(sandbox, protocol, wait_for_final_state(second, protocol))


# --- never duplicated ------------------------------------------------------------------------


def test_a_document_whose_upload_answer_was_lost_is_adopted_not_uploaded_again(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, **backend))
    sandbox.fault = "http500"
    protocol = queued(post_form(process))
    sandbox.fault_endpoints = {"Document"}  # the ticket goes through; its documents wait
    sandbox.stall_seconds = 3  # past the gateway's GLPI_TIMEOUT of 2 s
    sandbox.fault = "stall_after_create"  # GLPI keeps a document, its answer never arrives in time
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while not (ticket_ids := tickets_with_protocol(sandbox, protocol)) or not documents_of(sandbox, ticket_ids[0]):
        assert time.monotonic() < deadline, process.logs()
        time.sleep(0.05)
    sandbox.fault = None
    final = wait_for_final_state(process, protocol)
    assert_delivered_once_with_every_file(sandbox, protocol, final)
    assert '"event": "documento_adotado"' in process.logs()


def test_glpi_lost_after_the_ticket_queues_the_remaining_files_for_that_ticket(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url))
    sandbox.fault_endpoints = {"Document"}
    sandbox.fault = "http500"
    response = post_form(process)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["anexos"] == {"enviados": [], "falharam": [], "pendentes": [{"arquivo": name} for name in FILES]}
    sandbox.fault = None
    final = wait_for_final_state(process, answer["protocolo"])
    assert final["ticket_id"] == answer["ticket_id"]
    assert_delivered_once_with_every_file(sandbox, answer["protocolo"], final)


# --- the bound on queued bytes ---------------------------------------------------------------


def test_attachments_past_the_queue_byte_bound_are_503_and_nothing_is_stored(sandbox, launch, tmp_path):
    data_dir = tmp_path / "bounded-data"
    bound = len(PNG) + len(PDF) - 1
    process = launch(sandbox_settings(sandbox.url, DATA_DIR=str(data_dir), QUEUE_MAX_ATTACHMENT_BYTES=str(bound)))
    sandbox.fault = "http500"
    refused = post_form(process)
    assert_error(refused, 503, "fila_de_anexos_cheia")
    assert int(refused.headers["Retry-After"]) > 0
    assert stored_files(data_dir) == []
    store = SqliteStore(str(data_dir))
    try:
        assert store.list_tickets() == []
    finally:
        store.close()
    queued(post_form(process, files={"print.png": PNG}))  # what fits is still queued


def test_a_refused_request_can_be_sent_again_with_the_same_key_once_there_is_room(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, QUEUE_MAX_ATTACHMENT_BYTES="0"))
    sandbox.fault = "http500"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    fields = body(descricao_problema=f"Sem rede ({uuid.uuid4().hex})")
    send = lambda: process.session.post(  # noqa: E731
        f"{process.url}/criar-chamado", data=fields, files=anexos(*FILES.items()), headers=key, timeout=30
    )
    assert_error(send(), 503, "fila_de_anexos_cheia")
    sandbox.fault = None
    assert send().status_code == 201  # the 503 did not bind the key to an answer


# --- the same request twice ------------------------------------------------------------------


@pytest.fixture
def deduping(sandbox, launch):
    return launch(sandbox_settings(sandbox.url, DEDUPE_WINDOW_SECONDS="600"))


def test_two_identical_keyless_multipart_posts_make_one_ticket_and_the_second_is_replayed(deduping, sandbox):
    fields = body(descricao_problema=f"Tela azul ({uuid.uuid4().hex})")
    first, repeat = (
        deduping.session.post(f"{deduping.url}/criar-chamado", data=fields, files=anexos(*FILES.items()), timeout=30)
        for _ in range(2)
    )
    assert first.status_code == 201, first.text
    assert repeat.status_code == 201 and repeat.json() == first.json()
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert tickets_with_protocol(sandbox, first.json()["protocolo"]) == [first.json()["ticket_id"]]
    assert len(documents_of(sandbox, first.json()["ticket_id"])) == 2


def test_identical_keyless_multipart_posts_while_glpi_is_down_queue_one_request(deduping, sandbox):
    fields = body(descricao_problema=f"Tela azul ({uuid.uuid4().hex})")
    sandbox.fault = "http500"
    first, repeat = (
        deduping.session.post(f"{deduping.url}/criar-chamado", data=fields, files=anexos(*FILES.items()), timeout=30)
        for _ in range(2)
    )
    protocol = queued(first)
    assert repeat.json() == first.json() and repeat.headers["Idempotent-Replayed"] == "true"
    sandbox.fault = None
    assert_delivered_once_with_every_file(sandbox, protocol, wait_for_final_state(deduping, protocol))


def test_keyless_multipart_posts_with_different_file_bytes_make_two_tickets(deduping):
    fields = body(descricao_problema=f"Tela azul ({uuid.uuid4().hex})")
    answers = [
        deduping.session.post(
            f"{deduping.url}/criar-chamado", data=fields, files=anexos(("print.png", content)), timeout=30
        )
        for content in (PNG, PNG + b"outro")
    ]
    assert [answer.status_code for answer in answers] == [201, 201]
    assert answers[0].json()["ticket_id"] != answers[1].json()["ticket_id"]
    assert "Idempotent-Replayed" not in answers[1].headers


def test_an_idempotency_key_reused_with_other_files_is_422(gateway):
    fields = body(descricao_problema=f"Tela azul ({uuid.uuid4().hex})")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = gateway.session.post(
        f"{gateway.url}/criar-chamado", data=fields, files=anexos(("a.png", PNG)), headers=key, timeout=30
    )
    assert first.status_code == 201, first.text
    other = gateway.session.post(
        f"{gateway.url}/criar-chamado", data=fields, files=anexos(("a.png", PNG + b"x")), headers=key, timeout=30
    )
    assert_error(other, 422, "idempotency_key_reutilizada")
