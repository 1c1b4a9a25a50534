"""Bots kept out of the public form key, people never bothered: a submission with the form's key
needs a solved, unused challenge; the invisible honeypot field must stay empty. Refusals create
nothing in GLPI, answer a 4xx with their own codigo and are counted in /metrics. Private keys
need no challenge."""

from __future__ import annotations

import re

import pytest

from tests.harness import sandbox_settings, start_gateway
from tests.helpers import assert_error, body, solved_challenge

pytestmark = pytest.mark.slow

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
SITE_KEY = "site-key-0123456789abcdefghijklmnopqrst"
FORM = {"X-API-Key": FORM_KEY}
SITE = {"X-API-Key": SITE_KEY}


@pytest.fixture(scope="module")
def protected(sandbox, tmp_path_factory):

    settings = sandbox_settings(
        sandbox.url, API_KEYS=f"formulario:{FORM_KEY},site:{SITE_KEY}", FORM_API_KEY_NAME="formulario"
    )
    process = start_gateway(tmp_path_factory.mktemp("protected"), settings)
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def refused_count(process, codigo: str) -> float:
    text = process.get("/metrics", headers=SITE).text
    found = re.search(rf'^glpi_gateway_tickets_failed_total{{codigo="{codigo}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_challenge_is_open_fresh_and_never_cached(protected):
    first, second = protected.get("/formulario/desafio"), protected.get("/formulario/desafio")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert first.json()["desafio"] != second.json()["desafio"]
    assert first.json()["dificuldade"] == 16


def test_a_bot_post_with_the_public_key_and_no_solved_challenge_creates_nothing(protected, sandbox):
    tickets, refused = len(sandbox.tickets), refused_count(protected, "desafio_invalido")
    answer = assert_error(protected.post_ticket(body(), headers=FORM), 403, "desafio_invalido")
    assert answer["detalhe"] == "o envio não trouxe o desafio resolvido"
    unsolved = protected.get("/formulario/desafio").json()["desafio"]
    guessed = {**FORM, "X-Desafio": unsolved, "X-Desafio-Solucao": "0"}
    assert_error(protected.post_ticket(body(), headers=guessed), 403, "desafio_invalido")
    assert len(sandbox.tickets) == tickets
    assert refused_count(protected, "desafio_invalido") == refused + 2


def test_a_solved_challenge_opens_the_ticket_once_and_its_replay_is_refused(protected, sandbox):
    proof = solved_challenge(protected)
    created = protected.post_ticket(body(), headers={**FORM, **proof})
    assert created.status_code == 201, created.text
    tickets = len(sandbox.tickets)
    replay = assert_error(
        protected.post_ticket(body(descricao_problema="outro"), headers={**FORM, **proof}), 403, "desafio_invalido"
    )
    assert "já usado" in replay["detalhe"]
    assert len(sandbox.tickets) == tickets


def test_private_keys_need_no_challenge(protected):
    assert protected.post_ticket(body(), headers=SITE).status_code == 201


@pytest.mark.parametrize("headers", [SITE, None], ids=["chave-privada", "chave-do-formulario"])
def test_a_filled_honeypot_is_refused_and_creates_nothing(protected, sandbox, headers):
    headers = headers or {**FORM, **solved_challenge(protected)}
    tickets, refused = len(sandbox.tickets), refused_count(protected, "envio_automatico")
    assert_error(protected.post_ticket(body(website="http://spam.example"), headers=headers), 400, "envio_automatico")
    assert len(sandbox.tickets) == tickets
    assert refused_count(protected, "envio_automatico") == refused + 1


def test_an_empty_honeypot_is_what_people_send(protected):
    assert protected.post_ticket(body(website=""), headers=SITE).status_code == 201
