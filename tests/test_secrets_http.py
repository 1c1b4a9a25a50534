"""No secret ever leaves the gateway: every kind of answer is driven over HTTP with known secret
values configured, and none of them may appear in any answer (body or headers) or in the output
of gunicorn."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.harness import SANDBOX_APP_TOKEN, SANDBOX_USER_TOKEN, sandbox_settings
from tests.helpers import ALFA, DUPLICATED, UNKNOWN, body

pytestmark = pytest.mark.slow  # every test runs the gateway under gunicorn

SITE_KEY = "site-key-secret-0123456789abcdefghijklmn"
ZABBIX_KEY = "zabbix-key-secret-0123456789abcdefghijk"
WRONG_GLPI_TOKEN = "wrong-glpi-token-secret-0123456789"
GUESSED_KEY = "guessed-key-secret-0123456789abcdefghij"
SITE = "https://www.exemplo.com.br"


def test_no_answer_or_log_line_of_any_kind_contains_a_secret(sandbox, launch, tmp_path):
    keys = f"site-principal:{SITE_KEY},zabbix:{ZABBIX_KEY}"
    main = launch(
        sandbox_settings(sandbox.url, API_KEYS=keys, CORS_ORIGINS=SITE, LOG_LEVEL="DEBUG", MAX_BODY_BYTES="4096")
    )
    limited = launch(
        sandbox_settings(
            sandbox.url, API_KEYS=keys, RATE_LIMIT_PER_KEY="1/hour", DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="DEBUG"
        )
    )
    refused = launch(sandbox_settings(sandbox.url, API_KEYS=keys, GLPI_USER_TOKEN=WRONG_GLPI_TOKEN))
    unqueued = launch(sandbox_settings(sandbox.url, API_KEYS=keys, QUEUE_WHEN_UNAVAILABLE="false"))
    key = {"Authorization": f"Bearer {SITE_KEY}", "Origin": SITE}
    url = f"{main.url}/criar-chamado"

    answers = {
        201: main.post_ticket(body(), headers=key),
        "201 x-api-key": main.post_ticket(body(cnpj_cliente=ALFA), headers={"X-API-Key": ZABBIX_KEY}),
        "400 missing": main.post_ticket({}, headers=key),
        "400 invalid": main.post_ticket(body(cnpj_cliente="11.222.333/0001-82"), headers=key),
        "400 malformed": requests.post(url, data=b"{", headers={**key, "Content-Type": "application/json"}, timeout=30),
        "400 category": main.post_ticket(body(categoria=9999), headers=key),
        "401 no key": main.post_ticket(body()),
        "401 wrong key": main.post_ticket(body(), headers={"Authorization": f"Bearer {GUESSED_KEY}"}),
        "401 wrong x-api-key": main.post_ticket(body(), headers={"X-API-Key": GUESSED_KEY}),
        "401 glpi": refused.post_ticket(body(), headers=key),
        "404 entity": main.post_ticket(body(cnpj_cliente=UNKNOWN), headers=key),
        "404 route": main.get("/nao-existe", headers=key),
        "405": main.get("/criar-chamado", headers=key),
        "409": main.post_ticket(body(cnpj_cliente=DUPLICATED), headers=key),
        "413": main.post_ticket(body(descricao_problema="x" * 5000), headers=key),
        "415": requests.post(url, data="nome_cliente=x", headers=key, timeout=30),
        "204 preflight": requests.options(
            url, headers={"Origin": SITE, "Access-Control-Request-Method": "POST"}, timeout=30
        ),
        "500 debug": main.get("/debug", headers=key),
        "201 limited": limited.post_ticket(body(), headers=key),
        "429": limited.post_ticket(body(), headers=key),
        "201 idempotent": main.post_ticket(body(), headers={**key, "Idempotency-Key": "chave-1"}),
        "201 replayed": main.post_ticket(body(), headers={**key, "Idempotency-Key": "chave-1"}),
        "422": main.post_ticket(body(descricao_problema="outro"), headers={**key, "Idempotency-Key": "chave-1"}),
    }
    sandbox.fault = "http500"
    answers["503"] = unqueued.post_ticket(body(cnpj_cliente="11.222.333/0002-62"), headers=key)
    answers["202"] = main.post_ticket(body(cnpj_cliente="11.222.333/0002-62"), headers=key)
    sandbox.fault = None
    answers["200 status"] = main.get(answers["202"].headers["Location"], headers=key)
    sandbox.expire_sessions()  # a renewed session: its old and new tokens are both known secrets
    answers["201 renewed session"] = main.post_ticket(body(), headers=key)

    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {name: int(str(name).split()[0]) for name in answers}, statuses
    session_tokens = sandbox.session_tokens()
    assert session_tokens
    secrets = [
        SANDBOX_APP_TOKEN,
        SANDBOX_USER_TOKEN,
        SITE_KEY,
        ZABBIX_KEY,
        WRONG_GLPI_TOKEN,
        GUESSED_KEY,
        *session_tokens,
    ]
    texts = {f"answer {name}": response.text + json.dumps(dict(response.headers)) for name, response in answers.items()}
    texts.update({f"log of {process.url}": process.logs() for process in (main, limited, refused)})
    leaks = [(where, secret[:8]) for where, text in texts.items() for secret in secrets if secret in text]
    assert leaks == []
    # The logs did record the work, with key names in place of keys.
    lines = main.records()
    assert {line.get("api_key") for line in lines} >= {"site-principal", "zabbix"}
    assert any(line.get("exc") for line in lines)  # the /debug traceback went through the filter too


def test_a_secret_sent_as_path_or_request_id_is_masked_in_the_log(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, API_KEYS=f"site-principal:{SITE_KEY}"))
    request_id = f"id-{uuid.uuid4().hex}"
    process.get(f"/{SANDBOX_USER_TOKEN}", headers={"X-Request-ID": request_id})
    process.get("/ping", headers={"X-Request-ID": SITE_KEY})
    logs = process.logs()
    assert SANDBOX_USER_TOKEN not in logs and SITE_KEY not in logs
    assert request_id in logs
