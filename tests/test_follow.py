"""GLPI's rich text as the customer reads it, and what of a ticket goes out (follow.py)."""

from __future__ import annotations

import pytest

from glpi_gateway.follow import SUPPORT_TEAM, glpi_text, mark_delivered_messages, ticket_view
from glpi_gateway.ticket_format import build_complement_content

GLPI11 = "<p>Reinicie &amp; teste <b>de novo</b>: 1 &lt; 2</p><p>Fim</p>"
GLPI10 = GLPI11.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")  # how GLPI 10 returns it


@pytest.mark.parametrize("stored", [GLPI11, GLPI10], ids=["glpi11", "glpi10"])
def test_glpi_html_becomes_the_text_the_technician_wrote(stored):
    assert glpi_text(stored) == "Reinicie & teste de novo: 1 < 2\n\nFim"


def test_line_breaks_are_kept_and_scripts_dropped():
    assert glpi_text("<p>a<br>b</p><script>alert(1)</script><style>p{}</style>") == "a\nb"


def test_text_is_read_as_glpi_renders_it():
    # GLPI 10's encoding is undone once, then the HTML is read as GLPI's renderer reads it.
    assert glpi_text("a &#38;amp; b") == "a & b"
    assert glpi_text(None) == ""


def test_only_public_follow_ups_and_unrefused_solutions_go_out_without_authors():
    ticket = {"id": 5, "status": 5, "date": "2026-12-01 10:00:00", "date_mod": "2026-12-02 10:00:00"}
    followups = [
        {"content": "<p>pública</p>", "is_private": 0, "users_id": 10, "date": "2026-12-01 11:00:00"},
        {"content": "<p>privada</p>", "is_private": 1, "users_id": 10, "date": "2026-12-01 12:00:00"},
    ]
    solutions = [
        {"content": "<p>recusada</p>", "status": 4, "date_creation": "2026-12-01 13:00:00"},
        {"content": "<p>solução</p>", "status": 2, "date_creation": "2026-12-01 14:00:00"},
    ]
    view = ticket_view(ticket, followups, solutions)
    assert view["status"] == "Solucionado" and view["aberto_em"] == "2026-12-01T10:00:00"
    assert [(item["tipo"], item["texto"], item["autor"]) for item in view["conversa"]] == [
        ("acompanhamento", "pública", SUPPORT_TEAM),
        ("solucao", "solução", SUPPORT_TEAM),
    ]


def test_a_queued_complements_follow_up_carries_its_id_and_a_direct_one_none():
    queued = build_complement_content("Ainda falha", "Maria", None, "c-" + "b" * 32)
    direct = build_complement_content("Ainda falha", "Maria")
    conversation = ticket_view(
        {"id": 1, "status": 2}, [{"content": queued, "is_private": 0}, {"content": direct, "is_private": 0}], []
    )["conversa"]
    assert [message.get("complemento") for message in conversation] == ["c-" + "b" * 32, None]


def test_a_waiting_complement_whose_follow_up_glpi_shows_is_marked_delivered_and_the_others_are_not():
    content = build_complement_content("Segue o print", "Maria", None, "c-" + "b" * 32)
    view = ticket_view({"id": 1, "status": 2}, [{"content": content, "is_private": 0}], [])
    complements = [
        {"complemento": "c-" + "b" * 32, "mensagem_entregue": False},
        {"complemento": "c-" + "c" * 32, "mensagem_entregue": False},
    ]
    mark_delivered_messages(complements, view)
    assert [complement["mensagem_entregue"] for complement in complements] == [True, False]


def test_a_complements_header_and_its_id_stay_out_of_the_customers_text():
    content = build_complement_content("Ainda falha\nLinha 2", "Maria", "site", "c-" + "a" * 32)
    [message] = ticket_view({"id": 1, "status": 2}, [{"content": content, "is_private": 0}], [])["conversa"]
    assert (message["autor"], message["texto"]) == ("Cliente", "Ainda falha\nLinha 2")
