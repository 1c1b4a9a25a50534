"""Who may call, from which browser origin and how often, over HTTP: gunicorn in front, the sandbox behind.

Answers that need no real process (status, headers, body) are checked in-process, faster, in
test_http_answers.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import uuid

import pytest
import requests

from tests.harness import sandbox_settings, start_gateway
from tests.helpers import assert_error, body, solved_challenge, stored_ticket

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn

SITE_KEY = "site-key-0123456789abcdefghijklmnopqrstuv"
ZABBIX_KEY = "zabbix-key-0123456789abcdefghijklmnopqrs"
API_KEYS = f"site-principal:{SITE_KEY},zabbix:{ZABBIX_KEY}"
SITE = "https://www.exemplo.com.br"
OTHER_SITE = "http://localhost:8080"


@pytest.fixture(scope="module")
def secured(sandbox, tmp_path_factory):
    process = start_gateway(
        tmp_path_factory.mktemp("secured"),
        sandbox_settings(sandbox.url, API_KEYS=API_KEYS, CORS_ORIGINS=f"{SITE},{OTHER_SITE}"),
    )
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def bearer(key: str = SITE_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def request_line(process, request_id: str) -> dict:
    """The request's own log line (other lines written during the request carry its id too)."""
    return next(line for line in process.records() if line.get("request_id") == request_id and "status" in line)


def wait_for_workers(process, count: int) -> None:
    """Returns once `count` workers have answered (start-up returns when the first one does)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        requests.get(f"{process.url}/ping", timeout=10)  # a new connection each time
        if len({line["pid"] for line in process.records() if line.get("path") == "/ping"}) >= count:
            return
    raise AssertionError(f"fewer than {count} workers answered:\n{process.logs()}")


def unique_ip() -> str:
    """An address no earlier run used, so counters kept in Redis never carry over."""
    digits = uuid.uuid4().hex
    return str(ipaddress.ip_address(f"2001:db8:{digits[:4]}:{digits[4:8]}::1"))


# --- API keys -----------------------------------------------------------------------


def test_gateway_key_401_is_told_apart_from_glpi_refusing_its_tokens(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, API_KEYS=API_KEYS, GLPI_USER_TOKEN="wrong-token-0123456789"))
    glpi_side = assert_error(process.post_ticket(body(), headers=bearer()), 401, "falha_sessao_glpi")
    key_side = assert_error(process.post_ticket(body()), 401, "chave_api_invalida")
    assert glpi_side["erro"] != key_side["erro"]


@pytest.mark.parametrize("headers", [bearer(SITE_KEY), {"X-API-Key": SITE_KEY}], ids=["bearer", "x-api-key"])
def test_valid_key_creates_the_ticket_marked_with_the_key_name_never_the_key(secured, sandbox, headers):
    response = secured.post_ticket(body(), headers={**headers, "X-Request-ID": f"key-{uuid.uuid4().hex}"})
    assert response.status_code == 201, response.text
    content = stored_ticket(sandbox, response.json()["ticket_id"])["content"]
    assert "<strong>Origem:</strong> site-principal" in content
    assert SITE_KEY not in content
    line = request_line(secured, response.headers["X-Request-ID"])
    assert line["api_key"] == "site-principal" and line["status"] == 201
    assert line["ticket_id"] == response.json()["ticket_id"] and line["glpi_calls"] >= 1
    assert line["duration_ms"] >= 0 and line["client_ip"] == "127.0.0.1"
    assert SITE_KEY not in secured.logs()


def test_each_key_is_logged_and_marked_under_its_own_name(secured, sandbox):
    response = secured.post_ticket(body(), headers={"X-API-Key": ZABBIX_KEY})
    assert "<strong>Origem:</strong> zabbix" in stored_ticket(sandbox, response.json()["ticket_id"])["content"]
    assert request_line(secured, response.headers["X-Request-ID"])["api_key"] == "zabbix"


def test_a_key_in_the_path_is_masked_in_the_log(secured):
    response = secured.get(f"/{SITE_KEY}", headers=bearer())
    assert response.status_code == 404
    assert SITE_KEY not in secured.logs()
    assert request_line(secured, response.headers["X-Request-ID"])["path"] == "/***"


def test_without_keys_the_gateway_is_open_and_warns_loudly_at_start_up(gateway):
    assert gateway.post_ticket(body()).status_code == 201
    warnings = [line for line in gateway.records() if line["level"] == "WARNING" and "API_KEYS" in line["msg"]]
    assert warnings and warnings[0]["event"] == "acesso_aberto"


def test_secured_gateway_does_not_warn_about_missing_keys(secured):
    assert not [line for line in secured.records() if line.get("event") == "acesso_aberto"]


@pytest.mark.parametrize("value", [f"site:{'k' * 31}", f"Site:{SITE_KEY}", SITE_KEY, f"a:{SITE_KEY},b:{SITE_KEY}"])
def test_bad_api_keys_stop_start_up_naming_the_variable_without_echoing_the_key(sandbox, launch, value):
    process = launch(sandbox_settings(sandbox.url, API_KEYS=value))
    assert process.exit_code not in (None, 0)
    logs = process.logs()
    assert "API_KEYS" in logs
    assert SITE_KEY not in logs and "k" * 31 not in logs


# --- the contact form's public key --------------------------------------------------

FORM_KEY = "form-key-0123456789abcdefghijklmnopqrstu"
FORM_KEY_IN_SCRIPT = re.compile(r'var formKey = (null|"[^"]*");')


def published_key(process) -> str | None:
    """The key /formulario.js carries, read the way any visitor of the page can read it."""
    return json.loads(FORM_KEY_IN_SCRIPT.search(process.get("/formulario.js").text).group(1))


def test_form_posts_are_limited_and_marked_under_the_form_key_name(sandbox, launch, tmp_path):
    form_name = "formulario"
    process = launch(
        sandbox_settings(
            sandbox.url,
            API_KEYS=f"{form_name}:{FORM_KEY},site-principal:{SITE_KEY}",
            FORM_API_KEY_NAME=form_name,
            RATE_LIMIT_PER_KEY="2/hour",
            DATA_DIR=str(tmp_path / "d"),
        )
    )
    key = published_key(process)
    assert key == FORM_KEY
    statuses = [process.post_ticket(body(), headers={"X-API-Key": key, **solved_challenge(process)}) for _ in range(3)]
    assert [response.status_code for response in statuses] == [201, 201, 429]
    assert "chave" in statuses[2].json()["detalhe"]
    content = stored_ticket(sandbox, statuses[0].json()["ticket_id"])["content"]
    assert f"<strong>Origem:</strong> {form_name}" in content and FORM_KEY not in content
    assert request_line(process, statuses[2].headers["X-Request-ID"])["api_key"] == form_name
    assert process.post_ticket(body(), headers=bearer(SITE_KEY)).status_code == 201  # other keys keep their own count
    assert FORM_KEY not in process.logs()  # public in the script, still masked in the log
    assert any(
        line.get("event") == "chave_publica_sem_limite" for line in process.records() if line["level"] == "WARNING"
    )


def test_the_form_key_reaches_its_tickets_and_nothing_else(sandbox, launch):
    process = launch(
        sandbox_settings(
            sandbox.url, API_KEYS=f"formulario:{FORM_KEY},site-principal:{SITE_KEY}", FORM_API_KEY_NAME="formulario"
        )
    )
    form_key = {"X-API-Key": FORM_KEY}
    for path in ("/debug", "/metrics", "/nao-existe"):
        answer = assert_error(process.get(path, headers=form_key), 403, "chave_api_sem_permissao")
        assert "FORM_API_KEY_NAME" in answer["detalhe"]
    assert process.post_ticket(body(), headers={**form_key, **solved_challenge(process)}).status_code == 201
    assert_error(process.get("/debug", headers=bearer(SITE_KEY)), 500, "erro_interno")
    assert FORM_KEY not in process.logs()


def test_form_page_and_script_are_revalidated_and_kept_out_of_shared_caches(sandbox, launch):
    first = launch(sandbox_settings(sandbox.url, API_KEYS=f"formulario:{FORM_KEY}", FORM_API_KEY_NAME="formulario"))
    rotated = launch(sandbox_settings(sandbox.url, API_KEYS=f"formulario:{SITE_KEY}", FORM_API_KEY_NAME="formulario"))
    for path in ("/formulario", "/formulario.js"):
        response = first.get(path)
        cache_control = {part.strip() for part in response.headers["Cache-Control"].split(",")}
        assert {"private", "no-cache"} <= cache_control and "public" not in cache_control
        again = first.get(path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304
        assert first.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200
    # After a key change the old copy no longer validates: the next load gets the new key.
    old_etag = first.get("/formulario.js").headers["ETag"]
    assert rotated.get("/formulario.js", headers={"If-None-Match": old_etag}).status_code == 200
    assert published_key(rotated) == SITE_KEY


def test_an_unknown_form_api_key_name_stops_start_up_naming_the_variable(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, API_KEYS=API_KEYS, FORM_API_KEY_NAME="formulario"))
    assert process.exit_code not in (None, 0)
    assert "FORM_API_KEY_NAME" in process.logs() and SITE_KEY not in process.logs()


# --- CORS (the answers themselves: test_http_answers.py) ---------------------------


def test_a_wildcard_cors_origin_stops_start_up(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, CORS_ORIGINS="*"))
    assert process.exit_code not in (None, 0)
    assert "CORS_ORIGINS" in process.logs()


# --- abuse limits -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def counter_settings(request, tmp_path):
    """Where the counters live: SQLite under DATA_DIR, or Redis."""
    if request.param == "redis":
        return {"REDIS_URL": request.getfixturevalue("redis_url")}
    return {"DATA_DIR": str(tmp_path / "data")}


def test_per_ip_limit_answers_429_with_retry_after_and_its_own_codigo(sandbox, launch, counter_settings):
    process = launch(
        sandbox_settings(sandbox.url, RATE_LIMIT_PER_IP="3/hour", TRUSTED_PROXIES="127.0.0.1", **counter_settings)
    )
    client = {"X-Forwarded-For": unique_ip()}
    statuses = [process.post_ticket(body(), headers=client).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]
    response = process.post_ticket(body(), headers=client)
    answer = assert_error(response, 429, "limite_de_requisicoes")
    assert answer["erro"] == "Muitas requisições" and "3/hour" in answer["detalhe"]
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert process.post_ticket(body(), headers={"X-Forwarded-For": unique_ip()}).status_code == 201
    assert all(process.get("/ping", headers=client).status_code == 200 for _ in range(5))


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(sandbox, launch, tmp_path):
    process = launch(sandbox_settings(sandbox.url, RATE_LIMIT_PER_IP="2/hour", DATA_DIR=str(tmp_path / "d")))
    statuses = [process.post_ticket(body(), headers={"X-Forwarded-For": unique_ip()}).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert request_line(process, process.get("/ping").headers["X-Request-ID"])["client_ip"] == "127.0.0.1"


def test_the_client_cannot_dodge_the_limit_by_prepending_addresses(sandbox, launch, tmp_path):
    process = launch(
        sandbox_settings(
            sandbox.url, RATE_LIMIT_PER_IP="2/hour", TRUSTED_PROXIES="127.0.0.1", DATA_DIR=str(tmp_path / "d")
        )
    )
    real = unique_ip()
    statuses = [
        process.post_ticket(body(), headers={"X-Forwarded-For": f"{unique_ip()}, {real}"}).status_code for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    response = process.post_ticket(body(), headers={"X-Forwarded-For": real})
    assert request_line(process, response.headers["X-Request-ID"])["client_ip"] == real


def test_per_ip_limit_counts_key_guesses_before_checking_the_key(sandbox, launch, tmp_path):
    process = launch(
        sandbox_settings(sandbox.url, API_KEYS=API_KEYS, RATE_LIMIT_PER_IP="3/minute", DATA_DIR=str(tmp_path / "d"))
    )
    guesses = [process.post_ticket(body(), headers=bearer("g" * 40)).status_code for _ in range(3)]
    assert guesses == [401, 401, 401]
    assert_error(process.post_ticket(body(), headers=bearer()), 429, "limite_de_requisicoes")


def test_per_key_limit_counts_each_key_apart(sandbox, launch, counter_settings):
    site, zabbix = f"site-{uuid.uuid4().hex[:8]}", f"zabbix-{uuid.uuid4().hex[:8]}"
    process = launch(
        sandbox_settings(
            sandbox.url,
            API_KEYS=f"{site}:{SITE_KEY},{zabbix}:{ZABBIX_KEY}",
            RATE_LIMIT_PER_KEY="2/hour",
            **counter_settings,
        )
    )
    statuses = [process.post_ticket(body(), headers=bearer(SITE_KEY)).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    response = process.post_ticket(body(), headers=bearer(SITE_KEY))
    answer = assert_error(response, 429, "limite_de_requisicoes")
    assert "chave" in answer["detalhe"] and int(response.headers["Retry-After"]) > 0
    assert process.post_ticket(body(), headers={"X-API-Key": ZABBIX_KEY}).status_code == 201
    assert request_line(process, response.headers["X-Request-ID"])["api_key"] == site


def test_limits_are_shared_by_all_gunicorn_workers(sandbox, launch, counter_settings):
    key_name = f"site-{uuid.uuid4().hex[:8]}"
    process = launch(
        sandbox_settings(
            sandbox.url,
            API_KEYS=f"{key_name}:{SITE_KEY}",
            RATE_LIMIT_PER_KEY="6/hour",
            WEB_CONCURRENCY="2",
            **counter_settings,
        )
    )
    wait_for_workers(process, 2)
    statuses, workers = [], set()
    while len(statuses) < 20 or len(workers) < 2:  # until both workers have answered some of them
        assert len(statuses) < 200, "one worker took every request"
        response = requests.post(f"{process.url}/criar-chamado", json=body(), headers=bearer(), timeout=30)
        statuses.append(response.status_code)
        workers.add(request_line(process, response.headers["X-Request-ID"])["pid"])
    assert statuses.count(201) == 6 and statuses.count(429) == len(statuses) - 6


def test_limits_are_shared_by_gateway_instances_using_the_same_store(sandbox, launch, counter_settings, tmp_path):
    settings = sandbox_settings(
        sandbox.url, RATE_LIMIT_PER_IP="4/hour", TRUSTED_PROXIES="127.0.0.1", **counter_settings
    )
    first, second = launch(settings), launch(settings)
    client = {"X-Forwarded-For": unique_ip()}
    statuses = [process.post_ticket(body(), headers=client).status_code for process in (first, second) * 3]
    assert statuses == [201, 201, 201, 201, 429, 429]


def test_a_counter_store_lost_after_start_up_lets_requests_through_and_warns(sandbox, launch, own_redis):
    redis_server, url = own_redis
    process = launch(sandbox_settings(sandbox.url, RATE_LIMIT_PER_IP="1/hour", REDIS_URL=url))
    assert process.post_ticket(body()).status_code == 201
    redis_server.kill()
    redis_server.wait()
    assert [process.post_ticket(body()).status_code for _ in range(2)] == [201, 201]
    assert any(line.get("event") == "limite_nao_verificado" for line in process.records())


@pytest.mark.parametrize(
    "name, value",
    [
        ("RATE_LIMIT_PER_IP", "20/fortnight"),
        ("RATE_LIMIT_PER_IP", "0/hour"),
        ("RATE_LIMIT_PER_KEY", "5/minute"),
        ("TRUSTED_PROXIES", "proxy.local"),
    ],
)
def test_bad_limit_settings_stop_start_up_naming_the_variable(sandbox, launch, name, value):
    process = launch(sandbox_settings(sandbox.url, **{name: value}))
    assert process.exit_code not in (None, 0)
    assert name in process.logs()
