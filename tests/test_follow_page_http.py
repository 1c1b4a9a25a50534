"""The follow-up page (/acompanhar) and what it calls, from the app inside pytest: its headers, like the
form's; the form's public key following a ticket without a challenge, outside the key's quota, limited
per IP; and a protocol past PROTOCOL_TTL_DAYS answering exactly like one never given.

Its behaviour in a browser: tests/test_follow_browser.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from config import load_config
from glpi_gateway.store.sqlite import SqliteStore
from glpi_gateway.web import form
from glpi_gateway.web.form import follow_script
from tests.harness import ROOT
from tests.helpers import Clock, assert_error, body, solved_challenge

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"
KEYS = {"API_KEYS": f"formulario:{FORM_KEY},site:{SITE_KEY}", "FORM_API_KEY_NAME": "formulario"}
FORM = {"X-API-Key": FORM_KEY}
SITE = {"X-API-Key": SITE_KEY}
SCRIPT = (ROOT / "glpi_gateway" / "web" / "static" / "acompanhar.js").read_text(encoding="utf-8")
MINIMAL = {"GLPI_URL": "https://glpi.example.com/apirest.php", "GLPI_USER_TOKEN": "user-token-secret-123"}


def directives(response) -> set[str]:
    return {part.strip() for part in response.headers["Content-Security-Policy"].split(";")}


def created_protocol(client, headers: dict[str, str] | None = None) -> tuple[str, int]:
    answer = client.post("/criar-chamado", json=body(), headers=headers or {})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["protocolo"], answer.get_json()["ticket_id"]


# --- the page and its script ------------------------------------------------------------------


def test_the_page_is_pt_br_html_with_the_forms_csp_cache_and_headers(client):
    page, form_page = client.get("/acompanhar"), client.get("/formulario")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<html lang="pt-BR">' in page.text and '<script src="acompanhar.js" defer>' in page.text
    assert directives(page) == directives(form_page)
    assert {"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors *"} <= directives(page)
    for header in ("Cache-Control", "X-Content-Type-Options", "Referrer-Policy"):
        assert page.headers[header] == form_page.headers[header], header
    assert page.headers["Cache-Control"] == "private, no-cache" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in page.headers


def test_the_page_may_be_framed_only_by_form_frame_ancestors(make_client):
    sites = "https://www.exemplo.com.br https://*.exemplo.com.br"
    client = make_client(FORM_FRAME_ANCESTORS=sites)
    assert f"frame-ancestors {sites}" in directives(client.get("/acompanhar"))


def test_the_script_is_whole_revalidated_and_loads_nothing_from_elsewhere(client):
    script = client.get("/acompanhar.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert script.headers["Cache-Control"] == "private, no-cache"
    assert client.get("/acompanhar.js", headers={"If-None-Match": script.headers["ETag"]}).status_code == 304
    text = script.text
    assert form.SHARED_PLACEHOLDER not in text and "function solveChallenge" in text  # comum.js is written in
    assert "http:" not in text and "https:" not in text and "document.cookie" not in text


def test_with_api_keys_the_page_and_script_need_no_key_and_carry_the_form_key(make_client):
    client = make_client(**KEYS)
    assert client.get("/acompanhar").status_code == 200
    script = client.get("/acompanhar.js").text
    assert json.loads(re.search(r"var formKey = (null|\"[^\"]*\");", script).group(1)) == FORM_KEY
    assert SITE_KEY not in script


def test_the_script_template_holds_each_placeholder_once_and_a_missing_one_stops_the_gateway():
    for placeholder in (form.SHARED_PLACEHOLDER, form.FORM_KEY_PLACEHOLDER):
        assert SCRIPT.count(placeholder) == 1, placeholder
    with pytest.raises(RuntimeError, match="FORM_API_KEY"):
        follow_script(load_config(dict(MINIMAL), env_file=None), SCRIPT.replace(form.FORM_KEY_PLACEHOLDER, "null"))


# --- the form's public key on GET /chamados/<protocolo> ----------------------------------------


def test_the_form_key_follows_a_ticket_without_a_challenge(make_client):
    client = make_client(**KEYS)
    protocol, ticket_id = created_protocol(client, SITE)
    answer = client.get(f"/chamados/{protocol}", headers=FORM)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["ticket_id"] == ticket_id and answer.get_json()["chamado"]["status"] == "Novo"


def test_the_form_key_still_needs_a_solved_challenge_to_add_to_a_ticket(make_client):
    client = make_client(**KEYS)
    protocol, _ = created_protocol(client, SITE)
    refused = client.post(f"/chamados/{protocol}/complemento", json={"mensagem": "oi"}, headers=FORM)
    assert_error(refused, 403, "desafio_invalido")
    accepted = client.post(
        f"/chamados/{protocol}/complemento", json={"mensagem": "oi"}, headers={**FORM, **solved_challenge(client)}
    )
    assert accepted.status_code == 201, accepted.get_data(as_text=True)


def test_lookups_with_the_form_key_do_not_use_up_its_shared_quota(make_client):
    client = make_client(RATE_LIMIT_PER_KEY="2/minute", **KEYS)
    protocol, _ = created_protocol(client, SITE)
    assert [client.get(f"/chamados/{protocol}", headers=FORM).status_code for _ in range(5)] == [200] * 5
    statuses = [
        client.post("/criar-chamado", json=body(), headers={**FORM, **solved_challenge(client)}).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]


def test_lookups_with_the_form_key_are_limited_per_ip(make_client):
    client = make_client(RATE_LIMIT_LOOKUP_PER_IP="3/minute", **KEYS)
    protocol, _ = created_protocol(client, SITE)
    answers = [client.get(f"/chamados/{protocol}", headers=FORM) for _ in range(3)]
    answers.append(client.get(f"/chamados/{uuid.uuid4().hex}", headers=FORM))
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    limited = assert_error(answers[-1], 429, "limite_de_requisicoes")
    assert "consultas de protocolo" in limited["detalhe"] and int(answers[-1].headers["Retry-After"]) > 0
    elsewhere = client.get(f"/chamados/{protocol}", headers=FORM, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert elsewhere.status_code == 200  # another address has its own count


# --- expiry -------------------------------------------------------------------------------------


def test_a_protocol_past_protocol_ttl_days_answers_exactly_like_an_unknown_one(make_client, tmp_path):
    data_dir = tmp_path / "expira"
    client = make_client(PROTOCOL_TTL_DAYS="1", DATA_DIR=str(data_dir))
    protocol, ticket_id = created_protocol(client)
    assert client.get(f"/chamados/{protocol}").status_code == 200
    # The same protocol, as if the gateway had written it two days ago: its one day is over.
    two_days_ago = SqliteStore(str(data_dir), clock=Clock(time.time() - 2 * 86400))
    two_days_ago.remember_protocol(protocol, ticket_id, 1 * 86400.0)
    two_days_ago.close()

    expired, unknown = client.get(f"/chamados/{protocol}"), client.get(f"/chamados/{uuid.uuid4().hex}")
    assert (expired.status_code, expired.data) == (unknown.status_code, unknown.data) == (404, unknown.data)
    assert_error(expired, 404, "protocolo_nao_encontrado")

    def headers(response) -> dict[str, str]:
        return {name: value for name, value in response.headers.items() if name != "X-Request-ID"}

    assert headers(expired) == headers(unknown)
    message = {"mensagem": "ainda sem imprimir"}
    added, guessed = (client.post(f"/chamados/{p}/complemento", json=message) for p in (protocol, uuid.uuid4().hex))
    assert (added.status_code, added.data) == (guessed.status_code, guessed.data) == (404, guessed.data)
