"""Small defences from the security review (REVIEW.md #5, #6, #9, #13, #15), the app in-process."""

from __future__ import annotations

import pytest

from config import load_config
from tests.harness import sandbox_settings
from tests.helpers import DUPLICATED, body, solved_challenge


@pytest.mark.parametrize("payload", ["[" * 30000 + "]" * 30000, '{"a":' * 10000 + "1" + "}" * 10000])
def test_deeply_nested_json_is_a_400_not_a_500(make_client, payload):
    answer = make_client().post("/criar-chamado", data=payload, content_type="application/json")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["codigo"] == "dados_invalidos"


@pytest.mark.parametrize("variable", ["GLPI_USER_TOKEN", "GLPI_APP_TOKEN"])
@pytest.mark.parametrize("value", ["abc\nSUPERSECRET-123", "abc SUPERSECRET-123", "abc\x00SUPERSECRET-123"])
def test_a_token_with_control_characters_is_refused_naming_only_the_variable(sandbox, variable, value):
    from config import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_config(sandbox_settings(sandbox.url, **{variable: value}), env_file=None)
    assert variable in str(refused.value) and "SUPERSECRET" not in str(refused.value)


def test_a_locked_store_does_not_hold_requests_and_the_unchecked_limit_is_logged_and_counted(make_client, tmp_path):
    import sqlite3
    import time

    client = make_client(RATE_LIMIT_PER_IP="2/minute")
    data_dir = tmp_path / "d0"
    blocker = sqlite3.connect(data_dir / "gateway.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        # An answer that needs nothing else from the store (a ticket writes its protocol there
        # too, under the store's own busy timeout): the time measured is the limiter's.
        answer = client.post("/criar-chamado", json={})
        elapsed = time.monotonic() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert elapsed < 2, f"the limiter held the request {elapsed:.1f} s"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'glpi_gateway_rate_limit_unchecked_total{scope="ip"} 1.0' in metrics


FORM_KEY = "f" * 40


def test_the_form_keys_quota_counts_only_ticket_attempts_not_cheap_refusals(make_client):

    client = make_client(
        API_KEYS=f"formulario:{FORM_KEY}", FORM_API_KEY_NAME="formulario", RATE_LIMIT_PER_KEY="2/minute"
    )
    headers = {"X-API-Key": FORM_KEY}

    def solved() -> dict[str, str]:
        return {**headers, **solved_challenge(client)}

    for _ in range(5):
        assert client.get("/metrics", headers=headers).status_code == 403
        assert client.post("/criar-chamado", json=body(), headers=headers).status_code == 403  # no challenge
        assert client.post("/criar-chamado", json={}, headers=solved()).status_code == 400
    assert [client.post("/criar-chamado", json=body(), headers=solved()).status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]


def test_ipv6_clients_share_the_per_ip_limit_within_the_configured_prefix(make_client):
    client = make_client(RATE_LIMIT_PER_IP="2/minute", RATE_LIMIT_IPV6_PREFIX="48", TRUSTED_PROXIES="127.0.0.1")
    statuses = [
        client.get("/chamados/zz", headers={"X-Forwarded-For": f"2001:db8:1:{subnet:x}::1"}).status_code
        for subnet in range(3)
    ]
    assert statuses == [404, 404, 429]


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Origin": "https://atacante.example", "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "https://atacante.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Origin": "https://www.exemplo.com.br", "Sec-Fetch-Site": "cross-site"}, 201),  # in CORS_ORIGINS
        ({"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}, 201),  # the gateway's own form
        ({"Origin": "http://localhost"}, 201),
        ({}, 201),  # not a browser: curl, integrations
    ],
)
def test_open_mode_refuses_cross_site_browser_posts_unless_the_origin_is_allowed(make_client, headers, status):

    client = make_client(CORS_ORIGINS="https://www.exemplo.com.br")
    answer = client.post("/criar-chamado", data=body(), headers=headers, content_type="multipart/form-data")
    assert answer.status_code == status, answer.get_data(as_text=True)
    if status == 403:
        assert answer.get_json()["codigo"] == "origem_nao_permitida"


PRIVATE_KEY = "p" * 40


def test_health_details_only_for_private_keys(make_client):
    client = make_client(API_KEYS=f"formulario:{FORM_KEY},sistema:{PRIVATE_KEY}", FORM_API_KEY_NAME="formulario")
    anonymous = client.get("/health").get_json()
    public = client.get("/health", headers={"X-API-Key": FORM_KEY}).get_json()
    wrong = client.get("/health", headers={"X-API-Key": "x" * 40}).get_json()
    private = client.get("/health", headers={"X-API-Key": PRIVATE_KEY}).get_json()
    assert anonymous == public == wrong == {"status": "ok"}
    assert private["status"] == "ok" and private["checks"]["sessao_glpi"] == {"ok": True}


def test_the_409_names_entities_only_for_private_keys(make_client):

    client = make_client(API_KEYS=f"formulario:{FORM_KEY},sistema:{PRIVATE_KEY}", FORM_API_KEY_NAME="formulario")
    public = client.post(
        "/criar-chamado",
        json=body(cnpj_cliente=DUPLICATED),
        headers={"X-API-Key": FORM_KEY, **solved_challenge(client)},
    )
    private = client.post("/criar-chamado", json=body(cnpj_cliente=DUPLICATED), headers={"X-API-Key": PRIVATE_KEY})
    assert public.status_code == private.status_code == 409
    assert "entidades" not in public.get_json() and public.get_json()["codigo"] == "entidade_ambigua"
    assert private.get_json()["entidades"]


@pytest.mark.parametrize("path", ["/docs", "/docs/swagger-ui.css"])
def test_the_api_docs_cannot_be_framed_nor_sniffed(make_client, path):
    answer = make_client().get(path)
    answer.close()  # a static file's answer holds the file open until closed
    assert answer.status_code == 200
    assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
