"""A request sent again without an Idempotency-Key (a retried POST, a double click, a script that
retries on timeout) opens one ticket: within DEDUPE_WINDOW_SECONDS the repeat gets the first one's
answer, marked replayed, and GLPI gets nothing. Different requests never merge."""

from __future__ import annotations

import uuid

import pytest

from tests.harness import sandbox_settings, start_gateway
from tests.helpers import BETA, UNKNOWN, assert_error, body

pytestmark = pytest.mark.slow

API_KEYS = "site:site-key-0123456789abcdefghijklmnop,zabbix:zabbix-key-0123456789abcdefghijkl"


@pytest.fixture(scope="module")
def deduping(sandbox, tmp_path_factory):
    process = start_gateway(
        tmp_path_factory.mktemp("dedupe"), sandbox_settings(sandbox.url, DEDUPE_WINDOW_SECONDS="600")
    )
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def unique_body(**overrides: str) -> dict:
    return body(descricao_problema=f"Sem rede desde cedo ({uuid.uuid4().hex})", **overrides)


def test_an_identical_keyless_repeat_gets_the_first_ticket_and_glpi_gets_nothing(deduping, sandbox):
    sent = unique_body()
    first = deduping.post_ticket(sent)
    assert first.status_code == 201, first.text
    calls_before, tickets_before = sandbox.call_count(), len(sandbox.tickets)
    repeat = deduping.post_ticket(sent)
    assert repeat.status_code == 201
    assert repeat.json() == first.json()
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert sandbox.call_count() == calls_before and len(sandbox.tickets) == tickets_before


@pytest.mark.parametrize(
    "change",
    [
        {"nome_cliente": "Outra Pessoa"},
        {"cnpj_cliente": BETA},
        {"descricao_problema": "Outra descrição"},
        {"telefone_cliente": "(21) 98888-0000"},
        {"email_cliente": "outra@example.com"},
        {"urgencia": 5},
    ],
    ids=lambda change: next(iter(change)),
)
def test_requests_that_differ_in_any_field_open_their_own_tickets(deduping, change):
    sent = unique_body()
    first = deduping.post_ticket(sent)
    other = deduping.post_ticket({**sent, **change})
    assert first.status_code == other.status_code == 201, other.text
    assert other.json()["ticket_id"] != first.json()["ticket_id"]
    assert "Idempotent-Replayed" not in other.headers


def test_the_same_body_from_two_api_keys_opens_two_tickets(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, DEDUPE_WINDOW_SECONDS="600", API_KEYS=API_KEYS))
    sent = unique_body()
    site = process.post_ticket(sent, headers={"X-API-Key": "site-key-0123456789abcdefghijklmnop"})
    zabbix = process.post_ticket(sent, headers={"X-API-Key": "zabbix-key-0123456789abcdefghijkl"})
    assert site.status_code == zabbix.status_code == 201
    assert site.json()["ticket_id"] != zabbix.json()["ticket_id"]


def test_a_refusal_is_answered_afresh_since_glpi_may_have_been_fixed_meanwhile(deduping):
    sent = unique_body(cnpj_cliente=UNKNOWN)
    assert_error(deduping.post_ticket(sent), 404, "entidade_nao_encontrada")
    repeat = deduping.post_ticket(sent)
    assert_error(repeat, 404, "entidade_nao_encontrada")
    assert "Idempotent-Replayed" not in repeat.headers


def test_a_queued_request_repeated_gets_the_same_protocol(deduping, sandbox):
    sent = unique_body()
    sandbox.fault = "http500"
    queued = deduping.post_ticket(sent)
    repeat = deduping.post_ticket(sent)
    sandbox.fault = None
    assert queued.status_code == repeat.status_code == 202, queued.text
    assert repeat.json()["protocolo"] == queued.json()["protocolo"]
    assert repeat.headers["Location"] == queued.headers["Location"]
    assert repeat.headers["Idempotent-Replayed"] == "true"


def test_an_explicit_idempotency_key_still_decides_for_itself(deduping):
    sent = unique_body()
    first = deduping.post_ticket(sent, headers={"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    second = deduping.post_ticket(sent, headers={"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    assert first.status_code == second.status_code == 201
    assert first.json()["ticket_id"] != second.json()["ticket_id"]


def test_with_a_zero_window_identical_requests_open_two_tickets(gateway):
    sent = unique_body()
    first, second = gateway.post_ticket(sent), gateway.post_ticket(sent)
    assert first.status_code == second.status_code == 201
    assert first.json()["ticket_id"] != second.json()["ticket_id"]
