"""HTTP answers that need no real process, from the app inside pytest (Flask's test client), the GLPI
sandbox behind it: liveness, the JSON error answers, refused input, the contact form's files, request
ids, API keys and CORS.

What needs gunicorn (the 413 that closes the connection, the log, signals, several workers) stays in
test_http_contract.py, test_attachments_http.py and test_access_http.py.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from tests.harness import sandbox_settings
from tests.helpers import ALFA, EXE, PNG, anexos, assert_error, body, in_process_app

SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"
ZABBIX_KEY = "zabbix-key-0123456789abcdefghijklmnopqrs"
API_KEYS = f"site-principal:{SITE_KEY},zabbix:{ZABBIX_KEY}"
SITE = "https://www.exemplo.com.br"
OTHER_SITE = "http://localhost:8080"


def post_ticket(client, payload, **kwargs):
    return client.post("/criar-chamado", json=payload, **kwargs)


# --- liveness and the error path -------------------------------------------------


def test_ping_answers_that_the_app_is_alive(client):
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.text == "App Flask está ativo!"


def test_debug_answers_like_any_unexpected_error_without_traceback_or_exception_text(client):
    response = client.get("/debug", headers={"X-Request-ID": "debug-123"})
    answer = assert_error(response, 500, "erro_interno")
    assert answer["erro"] == "Erro interno"
    assert "debug-123" in answer["detalhe"]
    assert "proposital" not in response.text and "RuntimeError" not in response.text


def test_unknown_route_and_wrong_method_are_json_errors(client):
    assert_error(client.get("/nao-existe"), 404, "rota_nao_encontrada")
    wrong_method = client.get("/criar-chamado")
    assert_error(wrong_method, 405, "metodo_nao_permitido")
    assert "POST" in wrong_method.headers["Allow"]


@pytest.mark.parametrize("path", ["/chamados//" + "a" * 32, "/docs//index.html", "//ping"])
def test_a_doubled_slash_is_an_unknown_route_not_a_redirect_to_the_clients_host(client, path):
    response = client.get(path, headers={"Host": "outro.example"})
    assert_error(response, 404, "rota_nao_encontrada")
    assert "Location" not in response.headers


# --- bad input: 4xx, never 5xx ---------------------------------------------------


def test_missing_or_blank_required_fields_are_all_listed(client, sandbox):
    calls = sandbox.call_count()
    response = post_ticket(client, {"nome_cliente": "  ", "cnpj_cliente": ALFA})
    answer = assert_error(response, 400, "campos_obrigatorios_ausentes")
    assert answer["erro"] == "Campos obrigatórios ausentes"
    assert answer["campos"] == ["nome_cliente", "telefone_cliente", "anydesk_cliente", "descricao_problema"]
    assert sandbox.call_count() == calls


@pytest.mark.parametrize(
    "raw, why",
    [
        (b'{"nome_cliente": ', "malformed"),
        (b"[1, 2]", "a list"),
        (b'"texto"', "a string"),
        (b"null", "null"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_invalid_data(client, raw, why):
    response = client.post("/criar-chamado", data=raw, headers={"Content-Type": "application/json"})
    answer = assert_error(response, 400, "dados_invalidos")
    assert answer["erro"] == "Dados inválidos"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"nome_cliente": 123}, "nome_cliente"),
        ({"cnpj_cliente": "11.222.333/0001-82"}, "cnpj_cliente"),
        ({"cnpj_cliente": "1122233300018"}, "cnpj_cliente"),
        ({"email_cliente": "maria@"}, "email_cliente"),
        ({"categoria": "abc"}, "categoria"),
        ({"urgencia": 9}, "urgencia"),
        ({"nome_cliente": "x" * 256}, "nome_cliente"),
        ({"descricao_problema": "x" * 10_001}, "descricao_problema"),
    ],
)
def test_invalid_fields_are_refused_with_the_field_named(client, sandbox, overrides, field):
    calls = sandbox.call_count()
    answer = assert_error(post_ticket(client, body(**overrides)), 400, "dados_invalidos")
    assert field in answer["campos"]
    assert sandbox.call_count() == calls


def test_unknown_category_is_refused_as_invalid_data(client, sandbox):
    tickets = len(sandbox.tickets)
    answer = assert_error(post_ticket(client, body(categoria=9999)), 400, "categoria_desconhecida")
    assert answer["erro"] == "Dados inválidos" and "categoria" in answer["campos"]
    assert len(sandbox.tickets) == tickets


def chunked_post(client, raw: bytes):
    """A body without Content-Length, as gunicorn passes a chunked one (the stream ends by itself)."""
    return client.post(
        "/criar-chamado",
        input_stream=io.BytesIO(raw),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_size_limit_is_413_not_malformed_json(client, sandbox):
    tickets = len(sandbox.tickets)
    assert_error(
        chunked_post(client, json.dumps(body(descricao_problema="x" * 70_000)).encode()), 413, "corpo_muito_grande"
    )
    assert len(sandbox.tickets) == tickets


def test_a_chunked_body_up_to_the_size_limit_is_read_whole(client):
    raw = json.dumps(body()).encode()
    exactly = raw[:-1] + b" " * (64 * 1024 - len(raw)) + b"}"  # MAX_BODY_BYTES to the byte
    assert chunked_post(client, raw).status_code == 201
    assert chunked_post(client, exactly).status_code == 201


def test_non_json_content_type_is_415(client):
    response = client.post("/criar-chamado", data={"nome_cliente": "x"})
    assert_error(response, 415, "tipo_de_conteudo_invalido")


# --- attachments refused before anything is created --------------------------------


def post_form(client, files, **overrides):
    """The form's fields as multipart fields, `files` as (field, (name, bytes, type)) parts."""
    data = dict(body(**overrides))
    for field, (name, content, content_type) in files:
        data.setdefault(field, []).append((io.BytesIO(content), name, content_type))
    return client.post("/criar-chamado", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("print.png", EXE, "print.png: programas executáveis não são aceitos"),
        ("leia-me.txt", b"\x7fELF\x02\x01\x01" + bytes(64), "leia-me.txt: programas executáveis não são aceitos"),
        ("contrato.pdf", PNG, "contrato.pdf: o conteúdo é PNG, mas a extensão é .pdf"),
        ("fotos.docx", b"PK\x03\x04" + bytes(40), "fotos.docx: arquivos ZIP só são aceitos como documentos do Office"),
    ],
)
def test_content_that_is_not_what_it_claims_is_400_naming_the_file(client, sandbox, name, content, reason):
    calls, tickets = sandbox.call_count(), len(sandbox.tickets)
    answer = assert_error(post_form(client, anexos(("ok.png", PNG), (name, content))), 400, "dados_invalidos")
    assert answer["erro"] == "Dados inválidos"
    assert answer["campos"]["anexos"].startswith(reason)
    assert sandbox.call_count() == calls and len(sandbox.tickets) == tickets


def test_form_fields_are_validated_as_in_the_json_variant(client, sandbox):
    calls = sandbox.call_count()
    answer = assert_error(
        post_form(client, anexos(("print.png", PNG)), nome_cliente="", telefone_cliente=None),
        400,
        "campos_obrigatorios_ausentes",
    )
    assert answer["campos"] == ["nome_cliente", "telefone_cliente"]
    answer = assert_error(
        post_form(client, anexos(("print.png", PNG)), cnpj_cliente="11.222.333/0001-82"), 400, "dados_invalidos"
    )
    assert "cnpj_cliente" in answer["campos"]
    assert sandbox.call_count() == calls


def test_a_file_in_another_field_is_400_naming_that_field(client):
    answer = assert_error(post_form(client, [("anexo", ("print.png", PNG, "image/png"))]), 400, "dados_invalidos")
    assert answer["campos"] == {"anexo": "arquivos só são aceitos no campo anexos"}


@pytest.mark.parametrize(
    "content_type, data",
    [
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=XX", b'--XX\r\nContent-Disposition: form-data; name="nome_cliente"\r\n\r\ncut'),
        ("multipart/form-data; boundary=XX", b"\xff\xfe--XX--"),
    ],
    ids=["no-boundary", "truncated", "garbage"],
)
def test_a_malformed_multipart_body_is_a_clear_400(client, content_type, data):
    response = client.post("/criar-chamado", data=data, headers={"Content-Type": content_type})
    assert_error(response, 400, "campos_obrigatorios_ausentes")


def test_a_url_encoded_form_is_still_415(client):
    response = client.post("/criar-chamado", data=body())
    answer = assert_error(response, 415, "tipo_de_conteudo_invalido")
    assert "multipart/form-data" in answer["erro"]


# --- the contact form (its behaviour in a browser: test_form_browser.py) ---------


def test_form_page_is_pt_br_html_whose_csp_allows_only_the_gateway_and_any_frame_parent(client):
    response = client.get("/formulario")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<html lang="pt-BR">' in response.text
    csp = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "form-action 'none'",
        "frame-ancestors *",
    ):
        assert directive in csp


def test_form_script_and_stylesheet_are_served_and_nothing_is_loaded_from_elsewhere(client):
    types = {"/formulario.js": "text/javascript", "/formulario.css": "text/css", "/formulario": "text/html"}
    for path, content_type in types.items():
        response = client.get(path)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(content_type)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "http:" not in response.text and "https:" not in response.text and "@import" not in response.text


# --- request ids -------------------------------------------------------------------


def test_every_answer_carries_a_request_id_taken_from_the_request_when_sane(client):
    assert client.get("/ping", headers={"X-Request-ID": "form-42.a"}).headers["X-Request-ID"] == "form-42.a"
    generated = client.get("/ping", headers={"X-Request-ID": "bad id\twith spaces"}).headers["X-Request-ID"]
    assert generated and " " not in generated
    assert post_ticket(client, {}).headers["X-Request-ID"]


# --- API keys ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(sandbox, tmp_path_factory):
    """The gateway with API keys and a CORS allowlist, inside this process."""
    settings = sandbox_settings(
        sandbox.url,
        API_KEYS=API_KEYS,
        CORS_ORIGINS=f"{SITE},{OTHER_SITE}",
        DATA_DIR=str(tmp_path_factory.mktemp("secured-data")),
    )
    with in_process_app(settings) as app:
        yield app.test_client()


def bearer(key: str = SITE_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_key_is_401_with_its_own_codigo_and_a_bearer_challenge(secured, sandbox):
    calls = sandbox.call_count()
    response = post_ticket(secured, body())
    answer = assert_error(response, 401, "chave_api_invalida")
    assert answer["erro"] == "Chave de API ausente ou inválida"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert sandbox.call_count() == calls


@pytest.mark.parametrize(
    "headers",
    [
        bearer("x" * 40),
        {"X-API-Key": SITE_KEY[:-1]},
        {"Authorization": f"Basic {SITE_KEY}"},
        {"Authorization": f"Bearer {SITE_KEY} extra"},
        {"X-API-Key": "site-principal"},
    ],
)
def test_wrong_key_is_401_and_says_the_token_is_invalid(secured, headers):
    response = post_ticket(secured, body(), headers=headers)
    assert_error(response, 401, "chave_api_invalida")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    if "Basic" not in headers.get("Authorization", ""):
        assert 'error="invalid_token"' in challenge


def test_ping_stays_open_and_debug_needs_a_key(secured):
    assert secured.get("/ping").status_code == 200
    assert_error(secured.get("/debug"), 401, "chave_api_invalida")
    assert_error(secured.get("/debug", headers=bearer()), 500, "erro_interno")


def test_unknown_routes_need_a_key_before_saying_they_do_not_exist(secured):
    assert_error(secured.get("/nao-existe"), 401, "chave_api_invalida")
    assert_error(secured.get("/nao-existe", headers=bearer()), 404, "rota_nao_encontrada")


FORM_KEY_IN_SCRIPT = re.compile(r'var formKey = (null|"[^"]*");')


def test_without_form_api_key_name_the_script_carries_no_key(secured, client):
    for app_client in (secured, client):
        script = app_client.get("/formulario.js").text
        assert json.loads(FORM_KEY_IN_SCRIPT.search(script).group(1)) is None
        assert SITE_KEY not in script and ZABBIX_KEY not in script


# --- CORS ---------------------------------------------------------------------------


def preflight(app_client, origin: str, path: str = "/criar-chamado"):
    return app_client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization,idempotency-key",
        },
    )


def cors_headers(response) -> list[str]:
    return [name for name in response.headers.keys() if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("origin", [SITE, OTHER_SITE])
def test_preflight_from_an_allowed_origin_is_204_echoing_it_without_a_key(secured, origin):
    response = preflight(secured, origin)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization", "x-api-key", "idempotency-key", "x-request-id"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://www.exemplo.com.br.evil.example",
        "null",
        "https://WWW.exemplo.com.br.evil",
        "http://www.exemplo.com.br",
    ],
)
def test_preflight_from_another_origin_gets_no_cors_headers(secured, origin):
    response = preflight(secured, origin)
    assert response.status_code != 204
    assert not cors_headers(response)


def test_answers_to_an_allowed_origin_carry_cors_headers_even_errors(secured):
    created = post_ticket(secured, body(), headers={**bearer(), "Origin": SITE})
    refused = post_ticket(secured, body(), headers={"Origin": SITE})
    for response in (created, refused):
        assert response.headers["Access-Control-Allow-Origin"] == SITE
        exposed = {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"X-Request-ID", "Retry-After", "Location"} <= exposed
        assert "Origin" in response.headers["Vary"]
    assert created.status_code == 201 and refused.status_code == 401


def test_answers_to_other_origins_carry_no_cors_headers_but_vary_on_origin(secured):
    for headers in ({"Origin": "https://evil.example"}, {}):
        response = post_ticket(secured, body(), headers={**bearer(), **headers})
        assert response.status_code == 201
        assert not cors_headers(response)
        assert "Origin" in response.headers["Vary"]


def test_without_cors_origins_no_cors_headers_are_sent(client):
    response = preflight(client, SITE)
    assert not cors_headers(response)
    answer = post_ticket(client, body(), headers={"Origin": SITE})
    assert not cors_headers(answer)
