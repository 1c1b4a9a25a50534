"""A customer's complement queued when it cannot reach GLPI now, delivered once: over HTTP, the gateway
under gunicorn, GLPI the sandbox failing on purpose; the store is SQLite or, where a test takes the
`backend` parameter, Redis too."""

from __future__ import annotations

import time
import uuid

import pytest

from glpi_gateway.ticket_format import content_has_line
from tests.harness import sandbox_settings
from tests.helpers import DELIVERY_DEADLINE, PDF, PNG, anexos, body, queued, wait_for_final_state

pytestmark = pytest.mark.slow  # gunicorn, SIGKILL, Redis

FILES = {"print.png": PNG, "relatorio.pdf": PDF}


def create_ticket(process) -> tuple[int, str]:
    answer = process.post_ticket(body(descricao_problema=f"Impressora parada ({uuid.uuid4().hex})"))
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket_id"], answer.json()["protocolo"]


def complement(process, protocol: str, message: str, headers=None, files=None):
    url = f"{process.url}/chamados/{protocol}/complemento"
    if files is None:
        return process.session.post(url, json={"mensagem": message, "nome": "Maria"}, headers=headers, timeout=30)
    fields = {"mensagem": message, "nome": "Maria"}
    return process.session.post(url, data=fields, files=anexos(*files.items()), headers=headers, timeout=30)


def queued_complement(response, protocol: str) -> str:
    """The complement's id from its 202, after checking the answer's shape."""
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "enfileirado" and answer["protocolo"] == protocol
    assert response.headers["Location"] == f"/chamados/{protocol}"
    return answer["complemento"]


def followups_with(sandbox, ticket_id: int, complement_id: str) -> list[dict]:
    """The ticket's follow-ups carrying the complement's id (GLPI 10 stores the content encoded)."""
    return [
        row
        for row in sandbox.followups.values()
        if row["items_id"] == ticket_id and content_has_line(row["content"], "Protocolo do complemento", complement_id)
    ]


def documents_of(sandbox, ticket_id: int) -> list[dict]:
    return [
        sandbox.documents[link["documents_id"]]
        for link in sandbox.document_items
        if (link["itemtype"], link["items_id"]) == ("Ticket", ticket_id)
    ]


def wait_until_no_complement_waits(process, protocol: str) -> dict:
    """GET /chamados/<protocol> until none of its complements is queued any more."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while time.monotonic() < deadline:
        answer = process.get(f"/chamados/{protocol}").json()
        if all(waiting["status"] != "enfileirado" for waiting in answer.get("complementos", [])):
            return answer
        time.sleep(0.2)
    raise AssertionError(f"a complement of {protocol} still queued after {DELIVERY_DEADLINE} s:\n{process.logs()}")


def assert_delivered_once(process, sandbox, protocol: str, ticket_id: int, complement_id: str, message: str) -> None:
    final = wait_until_no_complement_waits(process, protocol)
    assert "complementos" not in final, final
    assert len(followups_with(sandbox, ticket_id, complement_id)) == 1
    conversa = final["chamado"]["conversa"]
    assert [(item["autor"], item["texto"]) for item in conversa] == [("Cliente", message)]


# --- queued, then delivered once -------------------------------------------------------------


def test_a_complement_sent_while_glpi_is_down_is_queued_shown_as_waiting_then_delivered_once(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="0", **backend))
    ticket_id, protocol = create_ticket(process)
    sandbox.fault = "http500"
    complement_id = queued_complement(complement(process, protocol, "Continua sem imprimir <b>"), protocol)
    [waiting] = process.get(f"/chamados/{protocol}").json()["complementos"]
    assert waiting["complemento"] == complement_id and waiting["status"] == "enfileirado"
    assert waiting["texto"] == "Continua sem imprimir <b>" and waiting["anexos"] == []
    sandbox.fault = None
    assert_delivered_once(process, sandbox, protocol, ticket_id, complement_id, "Continua sem imprimir <b>")


def test_sigkill_while_a_complement_is_queued_then_restart_delivers_it_once(sandbox, launch, tmp_path, backend):
    settings = sandbox_settings(sandbox.url, DATA_DIR=str(tmp_path / "kept-data"), GLPI_FOLLOW_CACHE_TTL="0", **backend)
    first = launch(settings)
    ticket_id, protocol = create_ticket(first)
    sandbox.fault = "http500"
    complement_id = queued_complement(complement(first, protocol, "Reiniciei o roteador"), protocol)
    first.kill()
    sandbox.fault = None
    second = launch(settings)
    assert_delivered_once(second, sandbox, protocol, ticket_id, complement_id, "Reiniciei o roteador")


def test_a_complement_whose_answer_was_lost_is_adopted_not_posted_twice(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="0", **backend))
    ticket_id, protocol = create_ticket(process)
    sandbox.fault_endpoints = {"ITILFollowup"}
    sandbox.stall_seconds = 3  # past the gateway's GLPI_TIMEOUT of 2 s
    sandbox.fault = "stall_after_create"  # GLPI keeps the follow-up, its answer never arrives in time
    complement_id = queued_complement(complement(process, protocol, "Troquei o cabo"), protocol)
    sandbox.fault = None
    assert_delivered_once(process, sandbox, protocol, ticket_id, complement_id, "Troquei o cabo")
    assert '"event": "complemento_adotado"' in process.logs()


def test_a_ticket_closed_while_its_complement_waits_fails_it_and_the_lookup_says_so(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="0"))
    ticket_id, protocol = create_ticket(process)
    sandbox.fault = "http500"
    complement_id = queued_complement(complement(process, protocol, "Ainda preciso de ajuda"), protocol)
    sandbox.set_ticket_status(ticket_id, 6)
    sandbox.fault = None
    [failed] = wait_until_no_complement_waits(process, protocol)["complementos"]
    assert failed["complemento"] == complement_id and failed["status"] == "falhou"
    assert failed["codigo"] == "chamado_fechado" and failed["texto"] == "Ainda preciso de ajuda"
    assert followups_with(sandbox, ticket_id, complement_id) == []


def test_a_complement_to_a_ticket_still_in_the_queue_is_delivered_after_it_on_it(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="0", **backend))
    sandbox.fault = "http500"
    protocol = queued(process.post_ticket(body(descricao_problema=f"Sem rede ({uuid.uuid4().hex})")))
    complement_id = queued_complement(complement(process, protocol, "O cabo está conectado"), protocol)
    sandbox.fault = None
    ticket_id = wait_for_final_state(process, protocol)["ticket_id"]
    assert_delivered_once(process, sandbox, protocol, ticket_id, complement_id, "O cabo está conectado")


# --- with attachments ------------------------------------------------------------------------


def assert_documents_marked(sandbox, ticket_id: int, complement_id: str) -> None:
    documents = documents_of(sandbox, ticket_id)
    assert sorted(document["filename"] for document in documents) == sorted(FILES)
    for document in documents:
        assert sandbox.document_files[document["id"]] == FILES[document["filename"]]
    assert sorted(document["comment"] for document in documents) == [
        f"Protocolo do complemento: {complement_id} · anexo 1/2",
        f"Protocolo do complemento: {complement_id} · anexo 2/2",
    ]


def test_a_multipart_complement_adds_the_message_and_its_files_as_documents_of_the_ticket(gateway, sandbox):
    ticket_id, protocol = create_ticket(gateway)
    answer = complement(gateway, protocol, "Seguem os prints", files=FILES)
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    assert sent["ticket_id"] == ticket_id and sent["anexos"]["falharam"] == [] and sent["anexos"]["pendentes"] == []
    assert sorted(item["arquivo"] for item in sent["anexos"]["enviados"]) == sorted(FILES)
    assert len(followups_with(sandbox, ticket_id, sent["complemento"])) == 1
    assert_documents_marked(sandbox, ticket_id, sent["complemento"])


def test_a_multipart_complement_with_glpi_down_is_queued_with_its_files_and_delivered(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="0", **backend))
    ticket_id, protocol = create_ticket(process)
    sandbox.fault = "http500"
    complement_id = queued_complement(complement(process, protocol, "Seguem os prints", files=FILES), protocol)
    [waiting] = process.get(f"/chamados/{protocol}").json()["complementos"]
    assert waiting["anexos"] == list(FILES)
    sandbox.fault = None
    assert_delivered_once(process, sandbox, protocol, ticket_id, complement_id, "Seguem os prints")
    assert_documents_marked(sandbox, ticket_id, complement_id)


def test_a_complement_file_of_a_refused_type_is_400_and_nothing_is_sent(gateway, sandbox):
    ticket_id, protocol = create_ticket(gateway)
    answer = complement(gateway, protocol, "Segue o programa", files={"setup.exe": b"MZ\x90\x00programa"})
    assert answer.status_code == 400 and "setup.exe" in answer.json()["campos"]["anexos"]
    assert [row for row in sandbox.followups.values() if row["items_id"] == ticket_id] == []


# --- the same complement twice ---------------------------------------------------------------


def test_keyless_and_keyed_repeats_of_a_queued_complement_get_the_same_answer_and_one_follow_up(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, DEDUPE_WINDOW_SECONDS="600", GLPI_FOLLOW_CACHE_TTL="0"))
    ticket_id, protocol = create_ticket(process)
    sandbox.fault = "http500"
    keyless = [complement(process, protocol, "Sem chave", files=FILES) for _ in range(2)]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    keyed = [complement(process, protocol, "Com chave", headers=key) for _ in range(2)]
    for first, repeat in (keyless, keyed):
        queued_complement(first, protocol)
        assert repeat.status_code == 202 and repeat.json() == first.json()
        assert repeat.headers["Idempotent-Replayed"] == "true"
    sandbox.fault = None
    wait_until_no_complement_waits(process, protocol)
    for first, _ in (keyless, keyed):
        assert len(followups_with(sandbox, ticket_id, first.json()["complemento"])) == 1
    assert len(documents_of(sandbox, ticket_id)) == 2
