"""The gateway against differently set-up GLPIs: version 11, no App-Token, several CNPJ fields, shutdown."""

from __future__ import annotations

import pytest

from glpi_sandbox import GlpiSandbox
from tests.harness import SANDBOX_USER_TOKEN, sandbox_settings

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn

TICKET = {
    "nome_cliente": "João & Filhos <ME>",
    "telefone_cliente": "11 4004-0000",
    "cnpj_cliente": "11444777000161",
    "anydesk_cliente": "987654321",
    "descricao_problema": "Linha 1 <b>\nLinha 2 & fim",
}


@pytest.fixture
def make_sandbox():
    started = []

    def _make(**options) -> GlpiSandbox:
        box = GlpiSandbox(**options)
        box.url = box.start()
        started.append(box)
        return box

    yield _make
    for box in started:
        box.stop()


def test_glpi_11_stores_our_html_as_sent(make_sandbox, launch):
    box = make_sandbox(app_token=None, user_tokens={SANDBOX_USER_TOKEN: 7}, version=11)
    gateway = launch(sandbox_settings(box.url, GLPI_APP_TOKEN=""))
    ticket = box.tickets[gateway.post_ticket(TICKET).json()["ticket_id"]]
    assert ticket["name"] == "João & Filhos <ME> - Linha 1 <b>"
    assert "<strong>Nome:</strong> João &amp; Filhos &lt;ME&gt;" in ticket["content"]
    assert "Linha 1 &lt;b&gt;<br>Linha 2 &amp; fim" in ticket["content"]


def test_glpi_api_client_without_app_token_works_when_none_is_configured(make_sandbox, launch):
    box = make_sandbox(app_token=None, user_tokens={SANDBOX_USER_TOKEN: 7})
    gateway = launch(sandbox_settings(box.url, GLPI_APP_TOKEN=""))
    assert gateway.post_ticket(TICKET).status_code == 201


def test_several_fields_options_labelled_cnpj_stop_start_up_listing_their_ids(make_sandbox, launch):
    second = {
        "name": "Outros Dados - CNPJ",
        "table": "glpi_plugin_fields_entityoutrosdados",
        "field": "cnpjfield",
        "datatype": "string",
        "available_searchtypes": ["contains", "notcontains"],
    }
    box = make_sandbox(user_tokens={SANDBOX_USER_TOKEN: 7}, app_token=None, extra_search_options={"76674": second})
    gateway = launch(sandbox_settings(box.url, GLPI_APP_TOKEN=""))
    assert gateway.exit_code not in (None, 0)
    assert "76666" in gateway.logs() and "76674" in gateway.logs()


def test_configured_cnpj_field_id_chooses_among_several(make_sandbox, launch):
    second = {
        "name": "Outros Dados - CNPJ",
        "table": "glpi_plugin_fields_entityoutrosdados",
        "field": "cnpjfield",
        "datatype": "string",
        "available_searchtypes": ["contains", "notcontains"],
    }
    box = make_sandbox(user_tokens={SANDBOX_USER_TOKEN: 7}, app_token=None, extra_search_options={"76674": second})
    gateway = launch(sandbox_settings(box.url, GLPI_APP_TOKEN="", GLPI_CNPJ_FIELD_ID="76666"))
    assert gateway.post_ticket(TICKET).status_code == 201


def test_stopping_the_gateway_kills_its_glpi_sessions(make_sandbox, launch):
    box = make_sandbox(user_tokens={SANDBOX_USER_TOKEN: 7}, app_token=None)
    gateway = launch(sandbox_settings(box.url, GLPI_APP_TOKEN=""))
    assert gateway.post_ticket(TICKET).status_code == 201
    assert box.session_tokens()
    gateway.stop()
    assert box.session_tokens() == []
    assert box.call_count(endpoint="killSession") >= 1
