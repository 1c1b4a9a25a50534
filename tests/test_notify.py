"""No mail relay: GLPI notifies an e-mail typed by a caller only within a per-recipient limit."""

from __future__ import annotations

import pytest

from app import create_app
from config import ConfigError, load_config
from glpi_gateway.web import services
from tests.harness import sandbox_settings
from tests.helpers import body

FORM = "f" * 40
SYSTEM = "s" * 40


def _notified(sandbox, ticket_id: int) -> list[str]:
    return [
        row["alternative_email"]
        for row in sandbox.ticket_users
        if row["tickets_id"] == ticket_id and row["use_notification"] and row["alternative_email"]
    ]


@pytest.fixture
def client(sandbox, tmp_path):
    settings = sandbox_settings(
        sandbox.url,
        DATA_DIR=str(tmp_path),
        API_KEYS=f"formulario:{FORM},sistema:{SYSTEM}",
        FORM_API_KEY_NAME="formulario",
        FORM_CHALLENGE_DIFFICULTY="0",  # this file is about notifications, not the form's challenge
        EMAIL_NOTIFY_LIMIT="2/day",
        EMAIL_NOTIFY_UNLIMITED_KEYS="sistema",
    )
    app = create_app(load_config(settings, env_file=None))
    yield app.test_client()
    services(app).glpi_client.close()
    services(app).store.close()


def test_form_key_notifies_a_recipient_only_up_to_the_limit_then_keeps_the_email_in_the_content(client, sandbox):
    notified = []
    for _ in range(4):
        answer = client.post("/criar-chamado", json=body(email_cliente="Vitima@x.com"), headers={"X-API-Key": FORM})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        ticket_id = answer.get_json()["ticket_id"]
        notified.append(bool(_notified(sandbox, ticket_id)))
        assert "Vitima@x.com" in sandbox.tickets[ticket_id]["content"]
    assert notified == [True, True, False, False]
    # The count is per recipient (case-insensitive): another address starts its own.
    other = client.post("/criar-chamado", json=body(email_cliente="outra@x.com"), headers={"X-API-Key": FORM})
    assert _notified(sandbox, other.get_json()["ticket_id"]) == ["outra@x.com"]
    again = client.post("/criar-chamado", json=body(email_cliente="vitima@X.com"), headers={"X-API-Key": FORM})
    assert _notified(sandbox, again.get_json()["ticket_id"]) == []


def test_a_private_key_listed_as_unlimited_always_notifies(client, sandbox):
    for _ in range(3):
        answer = client.post("/criar-chamado", json=body(email_cliente="c@x.com"), headers={"X-API-Key": SYSTEM})
        assert _notified(sandbox, answer.get_json()["ticket_id"]) == ["c@x.com"]


def test_the_form_key_cannot_be_made_unlimited(sandbox):
    settings = sandbox_settings(
        sandbox.url,
        API_KEYS=f"formulario:{FORM}",
        FORM_API_KEY_NAME="formulario",
        FORM_CHALLENGE_DIFFICULTY="0",  # this file is about notifications, not the form's challenge
        EMAIL_NOTIFY_UNLIMITED_KEYS="formulario",
    )
    with pytest.raises(ConfigError, match="EMAIL_NOTIFY_UNLIMITED_KEYS"):
        load_config(settings, env_file=None)


def test_notifications_can_be_switched_off(sandbox):
    assert (
        load_config(sandbox_settings(sandbox.url, EMAIL_NOTIFY_LIMIT="off"), env_file=None).email_notify_limit is None
    )
