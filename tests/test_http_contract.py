"""The public contract of the gateway, over HTTP: gunicorn in front, the GLPI sandbox behind.

Answers that need no real process (status, headers, body) are checked in-process, faster, in
test_http_answers.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness import SANDBOX_APP_TOKEN, SANDBOX_USER_TOKEN, free_port, sandbox_settings, start_gateway
from tests.helpers import ALFA, BETA, DELTA, DUPLICATED, GAMA, UNKNOWN, assert_error, body, stored_ticket

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn

# --- creating tickets ------------------------------------------------------------


@pytest.mark.parametrize(
    "cnpj, entity_id",
    [(ALFA, 1), ("11222333000181", 1), (BETA, 2), ("11.444.777/0001-61", 2), (GAMA, 3), (DELTA, 6)],
)
def test_ticket_is_created_in_the_entity_carrying_the_cnpj_however_it_is_typed_or_stored(
    gateway, sandbox, cnpj, entity_id
):
    response = gateway.post_ticket(body(cnpj_cliente=cnpj))
    assert response.status_code == 201, response.text
    ticket_id = response.json()["ticket_id"]
    protocol = response.json()["protocolo"]
    assert response.json() == {"ticket_id": ticket_id, "protocolo": protocol}
    assert response.headers["Location"] == f"/chamados/{protocol}"
    assert sandbox.tickets[ticket_id]["entities_id"] == entity_id


def test_ticket_carries_the_customer_fields_and_configured_category_and_request_type(gateway, sandbox):
    response = gateway.post_ticket(body(email_cliente="maria@example.com"))
    ticket = stored_ticket(sandbox, response.json()["ticket_id"])
    assert ticket["name"] == "Maria Souza - A impressora não imprime."
    assert ticket["itilcategories_id"] == 1 and ticket["requesttypes_id"] == 7 and ticket["urgency"] == 3
    for shown in (
        "<strong>Nome:</strong> Maria Souza",
        "<strong>Telefone:</strong> (11) 99999-0000",
        "<strong>CNPJ:</strong> 11.222.333/0001-81",
        "<strong>AnyDesk:</strong> 123 456 789",
        "<strong>E-mail:</strong> maria@example.com",
        "A impressora não imprime.<br>Já reiniciei.",
    ):
        assert shown in ticket["content"]


def test_customer_text_reaches_the_technician_exactly_as_typed(gateway, sandbox):
    typed = "Erro <b>grave</b> & urgente\n<script>alert(1)</script>"
    response = gateway.post_ticket(body(nome_cliente="A & B <Ltda>", descricao_problema=typed))
    ticket = stored_ticket(sandbox, response.json()["ticket_id"])
    assert ticket["name"] == "A & B <Ltda> - Erro <b>grave</b> & urgente"  # titles are plain text
    assert "Erro &lt;b&gt;grave&lt;/b&gt; &amp; urgente<br>&lt;script&gt;alert(1)&lt;/script&gt;" in ticket["content"]
    assert ticket["content"].startswith("<p>") and ticket["content"].endswith("</p>")


def test_optional_category_and_urgency_are_used(gateway, sandbox):
    response = gateway.post_ticket(body(categoria="2", urgencia=5))
    ticket = sandbox.tickets[response.json()["ticket_id"]]
    assert ticket["itilcategories_id"] == 2 and ticket["urgency"] == 5


def test_email_makes_glpi_notify_that_address_as_requester(gateway, sandbox):
    response = gateway.post_ticket(body(email_cliente="cliente@example.com"))
    ticket_id = response.json()["ticket_id"]
    requesters = [link for link in sandbox.ticket_users if link["tickets_id"] == ticket_id and link["type"] == 1]
    assert [link["alternative_email"] for link in requesters] == ["cliente@example.com"]


# --- bad input: 4xx, never 5xx (those that need no process: test_http_answers.py) ---


def test_body_over_the_size_limit_is_413(gateway):
    # gunicorn drains at most 64 KiB of an unread body, then closes the connection after the
    # answer; "Connection: close" keeps the shared test session from reusing that dead connection.
    response = gateway.post_ticket(body(descricao_problema="x" * 70_000), headers={"Connection": "close"})
    assert_error(response, 413, "corpo_muito_grande")


def test_a_chunked_body_over_the_size_limit_is_413_too(gateway):
    raw = json.dumps(body(descricao_problema="x" * 70_000)).encode()
    response = gateway.session.post(  # a generator: requests sends it chunked, without Content-Length
        f"{gateway.url}/criar-chamado",
        data=(raw[i : i + 8192] for i in range(0, len(raw), 8192)),
        headers={"Content-Type": "application/json", "Connection": "close"},
        timeout=30,
    )
    assert_error(response, 413, "corpo_muito_grande")


# --- what GLPI says -------------------------------------------------------------


def test_cnpj_of_no_entity_is_404(gateway):
    answer = assert_error(gateway.post_ticket(body(cnpj_cliente=UNKNOWN)), 404, "entidade_nao_encontrada")
    assert answer["erro"] == "Entidade não encontrada para o CNPJ informado"


def test_filial_cnpj_does_not_open_a_ticket_for_the_matriz(gateway, sandbox):
    response = gateway.post_ticket(body(cnpj_cliente="11.222.333/0002-62"))
    assert sandbox.tickets[response.json()["ticket_id"]]["entities_id"] == 4


def test_cnpj_carried_by_two_entities_is_409_naming_them(gateway):
    answer = assert_error(gateway.post_ticket(body(cnpj_cliente=DUPLICATED)), 409, "entidade_ambigua")
    assert sorted(answer["entidades"]) == [
        "Root entity > Cliente Duplicado Cópia",
        "Root entity > Cliente Duplicado Matriz",
    ]


def test_customer_entity_created_after_the_session_was_opened_still_gets_its_ticket(gateway, sandbox):
    assert gateway.post_ticket(body()).status_code == 201  # the worker's session is now open
    entity_id = sandbox.add_entity("Cliente Novo", "47.960.950/0001-21")
    response = gateway.post_ticket(body(cnpj_cliente="47960950000121"))
    assert response.status_code == 201, response.text
    assert sandbox.tickets[response.json()["ticket_id"]]["entities_id"] == entity_id


def test_expired_glpi_sessions_are_renewed_without_failing_a_request(gateway, sandbox):
    assert gateway.post_ticket(body()).status_code == 201
    sandbox.expire_sessions()
    assert gateway.post_ticket(body()).status_code == 201


def test_glpi_refusing_the_tokens_is_401(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, GLPI_USER_TOKEN="wrong-token-0123456789"))
    assert process.exit_code is None
    answer = assert_error(process.post_ticket(body()), 401, "falha_sessao_glpi")
    assert answer["erro"] == "Falha ao iniciar sessão"


@pytest.fixture(scope="module")
def gateway_without_queue(sandbox, tmp_path_factory):
    """The gateway with QUEUE_WHEN_UNAVAILABLE=false: GLPI unavailable is a 503."""
    process = start_gateway(
        tmp_path_factory.mktemp("no-queue"), sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false")
    )
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def test_glpi_unreachable_is_503_with_retry_after_when_queueing_is_off(launch):
    process = launch(sandbox_settings(f"http://127.0.0.1:{free_port()}/apirest.php", QUEUE_WHEN_UNAVAILABLE="false"))
    response = process.post_ticket(body())
    answer = assert_error(response, 503, "glpi_indisponivel")
    assert answer["erro"] == "GLPI indisponível" and int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("fault", ["http500", "html", "stall"])
def test_glpi_failing_slow_or_answering_html_is_503_when_queueing_is_off(gateway_without_queue, sandbox, fault):
    sandbox.stall_seconds = 3  # the gateway's GLPI_TIMEOUT is 2 s
    sandbox.fault = fault
    response = gateway_without_queue.post_ticket(body(cnpj_cliente="11.222.333/0002-62"))
    assert_error(response, 503, "glpi_indisponivel")
    assert "Retry-After" in response.headers


# --- the contact form (its behaviour in a browser: test_form_browser.py) ---------


def test_form_frame_ancestors_come_from_the_configuration(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, FORM_FRAME_ANCESTORS="'self', https://www.exemplo.com.br"))
    csp = process.get("/formulario").headers["Content-Security-Policy"]
    assert csp.endswith("frame-ancestors 'self' https://www.exemplo.com.br")


# --- request ids and secrets ---------------------------------------------------


def test_request_log_is_one_json_line_with_request_id_status_and_ticket(gateway):
    response = gateway.post_ticket(body(), headers={"X-Request-ID": "log-check-1"})
    lines = gateway.records()
    about_request = [line for line in lines if line.get("request_id") == "log-check-1"]
    assert len(about_request) >= 2  # the gateway's own lines carry the request id too
    line = next(line for line in about_request if "status" in line)
    assert line["status"] == 201 and line["ticket_id"] == response.json()["ticket_id"]
    assert line["glpi_calls"] >= 1


def test_no_answer_or_log_line_contains_a_token(gateway, sandbox, launch):
    answers = [
        gateway.post_ticket(body()),
        gateway.post_ticket({}),
        gateway.get("/debug"),
        gateway.post_ticket(body(cnpj_cliente=UNKNOWN)),
    ]
    refused = launch(sandbox_settings(sandbox.url, GLPI_USER_TOKEN="wrong-token-0123456789"))
    answers.append(refused.post_ticket(body()))
    session_tokens = list(sandbox.session_tokens())
    assert session_tokens
    texts = [a.text + json.dumps(dict(a.headers)) for a in answers] + [gateway.logs(), refused.logs()]
    for secret in (SANDBOX_APP_TOKEN, SANDBOX_USER_TOKEN, "wrong-token-0123456789", *session_tokens):
        assert all(secret not in text for text in texts)


# --- start-up -------------------------------------------------------------------


def test_invalid_local_setting_stops_start_up_naming_the_variable(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, GLPI_TIMEOUT="soon"))
    assert process.exit_code not in (None, 0)
    assert "GLPI_TIMEOUT" in process.logs()


def test_default_category_missing_in_glpi_stops_start_up(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, GLPI_DEFAULT_CATEGORY_ID="999"))
    assert process.exit_code not in (None, 0)
    assert "GLPI_DEFAULT_CATEGORY_ID" in process.logs()


def test_start_up_survives_glpi_down_and_checks_again_on_first_contact(sandbox, launch):
    sandbox.fault = "http500"
    process = launch(sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false"))
    assert process.exit_code is None and process.get("/ping").status_code == 200
    assert process.post_ticket(body()).status_code == 503
    sandbox.fault = None
    assert process.post_ticket(body()).status_code == 201


# --- cost -------------------------------------------------------------------------


def test_a_warm_gateway_spends_one_glpi_call_per_ticket(sandbox, launch):
    # A gateway of its own: the module's may hold sessions that an earlier test expired in GLPI, and
    # whichever thread takes a request replays it once with a new session (an eleventh POST Ticket).
    gateway = launch(sandbox_settings(sandbox.url))
    for _ in range(3):  # warm every thread's session and the entity cache
        gateway.post_ticket(body(cnpj_cliente=BETA))
    sandbox.reset_calls()
    for _ in range(10):
        assert gateway.post_ticket(body(cnpj_cliente=BETA)).status_code == 201
    assert sandbox.call_count(endpoint="Ticket") == 10
    assert sandbox.call_count() - sandbox.call_count(endpoint="initSession") == 10
    assert sandbox.call_count(endpoint="initSession") <= 4  # a thread not yet warmed opens its session


def test_a_fresh_gateway_spends_at_most_three_glpi_calls_on_its_first_ticket(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url))  # /ping answers once the start-up checks are done
    sandbox.reset_calls()
    assert process.post_ticket(body(cnpj_cliente=GAMA)).status_code == 201
    assert sandbox.call_count(endpoint="Ticket") == 1
    assert sandbox.call_count() <= 3  # this thread's session, the CNPJ search, the ticket


def burst(process, cnpj: str, size: int) -> list[int]:
    """`size` tickets for `cnpj` sent at once, each on its own connection; their status codes."""

    def send(_) -> int:
        return requests.post(f"{process.url}/criar-chamado", json=body(cnpj_cliente=cnpj), timeout=30).status_code

    with ThreadPoolExecutor(size) as pool:
        return list(pool.map(send, range(size)))


def stall_cnpj_searches(sandbox) -> None:
    """Hold every CNPJ search for a second, so the whole burst arrives while the first one is in flight."""
    sandbox.stall_seconds = 1  # the gateway's GLPI_TIMEOUT is 2 s
    sandbox.fault_endpoints = {"search/Entity"}
    sandbox.fault = "stall"


def test_a_burst_of_tickets_for_one_uncached_cnpj_searches_glpi_once(sandbox, launch):
    cnpj = "33.445.566/0001-86"
    entity_id = sandbox.add_entity("Cliente Rajada", cnpj)
    process = launch(sandbox_settings(sandbox.url))  # four threads: the burst is served at once
    stall_cnpj_searches(sandbox)
    sandbox.reset_calls()
    assert burst(process, cnpj, 4) == [201] * 4
    assert sandbox.call_count(endpoint="search/Entity") == 1
    assert sandbox.call_count(endpoint="Ticket") == 4
    assert sandbox.call_count(endpoint="initSession") <= 4  # one per thread, never one per request
    assert [t["entities_id"] for t in sandbox.tickets.values()].count(entity_id) == 4


def test_a_burst_with_one_bogus_cnpj_costs_one_search(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url))
    stall_cnpj_searches(sandbox)
    sandbox.reset_calls()
    assert burst(process, "77.889.911/0001-46", 4) == [404] * 4
    sandbox.fault = None
    assert burst(process, "77889911000146", 4) == [404] * 4  # later requests hit the negative cache
    assert sandbox.call_count(endpoint="search/Entity") == 1
    assert sandbox.call_count(endpoint="Ticket") == 0
