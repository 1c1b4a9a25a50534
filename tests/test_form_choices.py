"""What the public form key may choose (security review, finding 14): anyone can send it, so it names
only the categories in FORM_CATEGORIES and urgencies up to FORM_MAX_URGENCY; the other keys choose freely."""

from __future__ import annotations

import contextlib

import pytest

from config import ConfigError, load_config
from tests.harness import sandbox_settings
from tests.helpers import assert_error, body, in_process_app

FORM = "f" * 40
SYSTEM = "s" * 40
KEYS = {
    "API_KEYS": f"formulario:{FORM},sistema:{SYSTEM}",
    "FORM_API_KEY_NAME": "formulario",
    "FORM_CHALLENGE_DIFFICULTY": "0",  # this file is about the fields, not the form's challenge
}


@pytest.fixture
def client_with(sandbox, tmp_path):
    """The test client of an in-process gateway with the two keys and `overrides`."""
    with contextlib.ExitStack() as apps:

        def client_with(**overrides: str):
            settings = sandbox_settings(sandbox.url, DATA_DIR=str(tmp_path), **KEYS, **overrides)
            return apps.enter_context(in_process_app(settings)).test_client()

        yield client_with


def post(client, key: str, **fields):
    return client.post("/criar-chamado", json=body(**fields), headers={"X-API-Key": key})


def test_the_public_form_key_names_no_category_unless_configured(client_with, sandbox):
    client = client_with()
    before = len(sandbox.tickets)
    refused = post(client, FORM, categoria=3)
    assert_error(refused, 400, "dados_invalidos")
    assert refused.get_json()["campos"] == {"categoria": "categoria não permitida para o formulário público"}
    assert len(sandbox.tickets) == before
    # Without `categoria` the ticket takes GLPI_DEFAULT_CATEGORY_ID, as always.
    created = post(client, FORM)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert sandbox.tickets[created.get_json()["ticket_id"]]["itilcategories_id"] == 1


def test_the_public_form_key_may_name_the_categories_in_FORM_CATEGORIES(client_with, sandbox):
    client = client_with(FORM_CATEGORIES="2, 3")
    created = post(client, FORM, categoria="3")
    assert created.status_code == 201, created.get_data(as_text=True)
    assert sandbox.tickets[created.get_json()["ticket_id"]]["itilcategories_id"] == 3
    assert_error(post(client, FORM, categoria=1), 400, "dados_invalidos")


def test_the_public_form_key_sends_urgencies_up_to_FORM_MAX_URGENCY(client_with, sandbox):
    client = client_with()
    refused = post(client, FORM, urgencia=4)
    assert_error(refused, 400, "dados_invalidos")
    assert refused.get_json()["campos"] == {"urgencia": "o formulário público aceita urgência até 3"}
    assert post(client, FORM, urgencia=2).status_code == 201
    raised = client_with(FORM_MAX_URGENCY="5")
    created = post(raised, FORM, urgencia=5)
    assert sandbox.tickets[created.get_json()["ticket_id"]]["urgency"] == 5


def test_a_multipart_request_with_the_public_form_key_is_held_to_the_same_choices(client_with):
    client = client_with()
    refused = client.post(
        "/criar-chamado",
        data=body(categoria="2", urgencia="5"),
        headers={"X-API-Key": FORM},
        content_type="multipart/form-data",
    )
    assert_error(refused, 400, "dados_invalidos")
    assert set(refused.get_json()["campos"]) == {"categoria", "urgencia"}


def test_the_other_keys_choose_any_category_and_urgency(client_with, sandbox):
    created = post(client_with(), SYSTEM, categoria=2, urgencia=5)
    assert created.status_code == 201, created.get_data(as_text=True)
    ticket = sandbox.tickets[created.get_json()["ticket_id"]]
    assert (ticket["itilcategories_id"], ticket["urgency"]) == (2, 5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FORM_CATEGORIES", "3,impressoras"),
        ("FORM_CATEGORIES", "0"),
        ("FORM_MAX_URGENCY", "2"),
        ("FORM_MAX_URGENCY", "6"),
    ],
)
def test_a_bad_form_choice_setting_stops_the_start_naming_the_variable(sandbox, variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_config(sandbox_settings(sandbox.url, **KEYS, **{variable: value}), env_file=None)
