"""Following a ticket by its protocol (GET /chamados/<protocolo>): the 201 that gives the protocol,
GLPI's live state as the customer may read it, on GLPI 10 and 11, and what stays hidden."""

from __future__ import annotations

import uuid

import pytest

from glpi_gateway.ticket_format import content_has_line
from tests.harness import sandbox_settings
from tests.helpers import solved_challenge

pytestmark = pytest.mark.slow  # the gateway under gunicorn, against a sandbox server

TICKET = {
    "nome_cliente": "Maria & Filhos",
    "telefone_cliente": "11 4004-0000",
    "cnpj_cliente": "11444777000161",
    "anydesk_cliente": "987654321",
    "descricao_problema": "Impressora não imprime",
}
TECHNICIAN_ANSWER = "<p>Olá Maria, pode reiniciar a impressora &amp; testar <b>de novo</b>?</p><p>Linha 2</p>"
PRIVATE_NOTE = "<p>Nota interna: cliente inadimplente</p>"


@pytest.fixture(params=[10, 11], ids=["glpi10", "glpi11"])
def glpi(request, new_sandbox, launch):
    """(sandbox, gateway) for each GLPI version, the follow cache off so that changes show at once."""
    box = new_sandbox(version=request.param)
    box.url = box.start()
    return box, launch(sandbox_settings(box.url, GLPI_FOLLOW_CACHE_TTL="0"))


def create(gateway) -> tuple[int, str, str]:
    answer = gateway.post_ticket(TICKET)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["ticket_id"], body["protocolo"], answer.headers["Location"]


def test_the_201_gives_the_protocol_and_where_to_follow_the_ticket(gateway, sandbox):
    ticket_id, protocol, location = create(gateway)
    assert location == f"/chamados/{protocol}"
    assert content_has_line(sandbox.tickets[ticket_id]["content"], "Protocolo", protocol)
    answer = gateway.get(location)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["protocolo"] == protocol and body["status"] == "criado" and body["ticket_id"] == ticket_id
    chamado = body["chamado"]
    assert chamado["numero"] == ticket_id
    assert chamado["status"] == "Novo" and chamado["status_codigo"] == 1
    assert chamado["aberto_em"] and chamado["atualizado_em"]
    assert chamado["solucionado_em"] is None and chamado["fechado_em"] is None
    assert chamado["conversa"] == []


def test_a_replayed_201_carries_the_same_protocol_and_location(gateway):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = gateway.post_ticket(TICKET, headers=key)
    again = gateway.post_ticket(TICKET, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"] == f"/chamados/{first.json()['protocolo']}"


def test_status_changes_in_glpi_show_up_in_portuguese(glpi):
    box, gateway = glpi
    ticket_id, _, location = create(gateway)
    box.add_actor(ticket_id)
    assert gateway.get(location).json()["chamado"]["status"] == "Em atendimento (atribuído)"
    box.set_ticket_status(ticket_id, 4)
    assert gateway.get(location).json()["chamado"]["status"] == "Pendente"
    box.add_solution(ticket_id, "<p>Driver reinstalado; impressora ok.</p>")
    chamado = gateway.get(location).json()["chamado"]
    assert chamado["status"] == "Solucionado" and chamado["solucionado_em"]
    assert chamado["conversa"][-1]["tipo"] == "solucao"
    assert chamado["conversa"][-1]["texto"] == "Driver reinstalado; impressora ok."
    box.set_ticket_status(ticket_id, 6)
    chamado = gateway.get(location).json()["chamado"]
    assert chamado["status"] == "Fechado" and chamado["status_codigo"] == 6 and chamado["fechado_em"]


def test_the_public_conversation_is_plain_text_and_private_follow_ups_never_appear(glpi):
    box, gateway = glpi
    ticket_id, _, location = create(gateway)
    box.add_followup(ticket_id, TECHNICIAN_ANSWER)
    box.add_followup(ticket_id, PRIVATE_NOTE, is_private=True)
    body = gateway.get(location)
    assert "inadimplente" not in body.text
    conversa = body.json()["chamado"]["conversa"]
    assert conversa == [
        {
            "tipo": "acompanhamento",
            "autor": "Equipe de suporte",
            "data": conversa[0]["data"],
            "texto": "Olá Maria, pode reiniciar a impressora & testar de novo?\n\nLinha 2",
        }
    ]
    assert "tecnico" not in body.text.lower() and "@" not in body.text


def test_unknown_malformed_and_expired_protocols_answer_alike(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, PROTOCOL_TTL_DAYS="1"))
    _, protocol, _ = create(gateway)
    answers = [gateway.get(f"/chamados/{uuid.uuid4().hex}"), gateway.get("/chamados/nao-e-um-protocolo")]
    for answer in answers:
        assert answer.status_code == 404
        assert answer.json() == {"erro": "Protocolo não encontrado", "codigo": "protocolo_nao_encontrado"}
    assert gateway.get(f"/chamados/{protocol}").status_code == 200


def test_a_deleted_ticket_answers_like_an_unknown_protocol(gateway, sandbox):
    ticket_id, _, location = create(gateway)
    del sandbox.tickets[ticket_id]
    answer = gateway.get(location)
    assert answer.status_code == 404
    assert answer.json() == {"erro": "Protocolo não encontrado", "codigo": "protocolo_nao_encontrado"}


def test_lookups_are_limited_per_ip_apart_from_the_other_limits(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, RATE_LIMIT_LOOKUP_PER_IP="3/minute"))
    _, _, location = create(gateway)
    answers = [gateway.get(location) for _ in range(3)] + [gateway.get(f"/chamados/{uuid.uuid4().hex}")]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["codigo"] == "limite_de_requisicoes"
    assert "consultas de protocolo" in answers[-1].json()["detalhe"]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert gateway.post_ticket(TICKET).status_code == 201  # creating tickets is not counted with lookups


def test_glpi_is_asked_once_within_the_follow_cache(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, GLPI_FOLLOW_CACHE_TTL="60"))
    ticket_id, _, location = create(gateway)
    assert gateway.get(location).json()["chamado"]["status"] == "Novo"
    sandbox.set_ticket_status(ticket_id, 4)
    assert gateway.get(location).json()["chamado"]["status"] == "Novo"  # GLPI not asked again yet


def test_glpi_down_during_a_lookup_still_answers_what_the_gateway_knows(gateway, sandbox):
    ticket_id, protocol, location = create(gateway)
    sandbox.fault = "http503"
    answer = gateway.get(location)
    sandbox.fault = None
    assert answer.status_code == 200
    body = answer.json()
    assert body["protocolo"] == protocol and body["status"] == "criado" and body["ticket_id"] == ticket_id
    assert "chamado" not in body and "GLPI" in body["aviso"]


# --- POST /chamados/<protocolo>/complemento ------------------------------------------------------

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
SITE_KEY = "site-key-0123456789abcdefghijklmnopqrst"


def complement(gateway, location: str, body: dict, headers: dict | None = None):
    return gateway.session.post(f"{gateway.url}{location}/complemento", json=body, headers=headers or {}, timeout=10)


def followups_of(box, ticket_id: int) -> list[dict]:
    return [row for row in box.followups.values() if row["items_id"] == ticket_id]


def test_a_complement_reaches_glpi_escaped_public_and_shows_as_the_customers(glpi):
    box, gateway = glpi
    ticket_id, protocol, location = create(gateway)
    answer = complement(gateway, location, {"mensagem": "Ainda falha <b>\nLinha 2 & fim", "nome": "Maria <ME>"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["protocolo"] == protocol and answer.json()["ticket_id"] == ticket_id
    [row] = followups_of(box, ticket_id)
    assert row["is_private"] == 0 and row["id"] == answer.json()["acompanhamento_id"]
    sent = (
        "<p><strong>Complemento do cliente:</strong> Maria &lt;ME&gt;<br>"
        f"<strong>Protocolo do complemento:</strong> {answer.json()['complemento']}</p>"
        "<p>Ainda falha &lt;b&gt;<br>Linha 2 &amp; fim</p>"
    )
    stored = sent if box.version == 11 else sent.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")
    assert row["content"] == stored
    conversa = gateway.get(location).json()["chamado"]["conversa"]
    assert [(item["autor"], item["texto"]) for item in conversa] == [("Cliente", "Ainda falha <b>\nLinha 2 & fim")]


def test_a_closed_ticket_takes_no_complement(gateway, sandbox):
    ticket_id, _, location = create(gateway)
    sandbox.set_ticket_status(ticket_id, 6)
    answer = complement(gateway, location, {"mensagem": "reabram, por favor"})
    assert answer.status_code == 409
    assert answer.json()["codigo"] == "chamado_fechado"
    assert followups_of(sandbox, ticket_id) == []


def test_a_complement_is_idempotent_by_key_and_checked(gateway, sandbox):
    ticket_id, _, location = create(gateway)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = complement(gateway, location, {"mensagem": "uma vez"}, key)
    again = complement(gateway, location, {"mensagem": "uma vez"}, key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert len(followups_of(sandbox, ticket_id)) == 1
    assert complement(gateway, location, {"mensagem": "  "}).json()["codigo"] == "campos_obrigatorios_ausentes"
    unknown = complement(gateway, f"/chamados/{uuid.uuid4().hex}", {"mensagem": "oi"})
    assert unknown.status_code == 404 and unknown.json()["codigo"] == "protocolo_nao_encontrado"


def test_the_form_key_adds_to_a_ticket_only_with_a_solved_challenge(sandbox, launch):
    gateway = launch(
        sandbox_settings(sandbox.url, API_KEYS=f"formulario:{FORM_KEY},site:{SITE_KEY}", FORM_API_KEY_NAME="formulario")
    )
    created = gateway.post_ticket(TICKET, headers={"X-API-Key": SITE_KEY})
    location = created.headers["Location"]
    form = {"X-API-Key": FORM_KEY}
    refused = complement(gateway, location, {"mensagem": "oi"}, form)
    assert refused.status_code == 403 and refused.json()["codigo"] == "desafio_invalido"
    accepted = complement(gateway, location, {"mensagem": "oi"}, {**form, **solved_challenge(gateway)})
    assert accepted.status_code == 201, accepted.text
    [row] = followups_of(sandbox, created.json()["ticket_id"])
    assert "<strong>Origem:</strong> formulario" in row["content"].replace("&#60;", "<").replace("&#62;", ">")
