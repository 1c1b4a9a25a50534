"""Readiness (`GET /health`) over HTTP: the gateway under gunicorn, a sandbox of its own behind it."""

from __future__ import annotations

import time

import pytest

from config import load_config
from glpi_client import GlpiClient
from glpi_gateway.health import Readiness
from glpi_gateway.store import StoreUnavailable
from glpi_gateway.tickets import TicketGateway
from tests.harness import free_port, sandbox_settings
from tests.helpers import body

EMPTY_QUEUE = {"ok": True, "enfileirados": 0, "mais_antigo_segundos": 0}
READY = {
    "status": "ok",
    "checks": {
        "configuracao": {"ok": True},
        "sessao_glpi": {"ok": True},
        "verificacoes_partida": {"ok": True},
        "fila": EMPTY_QUEUE,
    },
}
QUEUE_DEADLINE = 60.0  # generous: a state never reached fails the test, a slow one does not


def wait_for_health(gateway, status: int, attempts: int = 50):
    """/health until it answers `status` (the gateway may still be finishing a GLPI call)."""
    for _ in range(attempts):
        response = gateway.get("/health")
        if response.status_code == status:
            return response
        time.sleep(0.1)
    return response


@pytest.mark.slow
def test_health_follows_glpi_going_down_and_coming_back_while_ping_stays_alive(new_sandbox, launch):
    box = new_sandbox()
    port = free_port()
    url = box.start(port=port)
    gateway = launch(sandbox_settings(url, HEALTH_CACHE_TTL="0"))

    ready = gateway.get("/health")
    assert ready.status_code == 200 and ready.json() == READY
    assert ready.headers["Cache-Control"] == "no-store"

    box.stop()
    down = gateway.get("/health")
    assert down.status_code == 503
    assert down.json() == {
        "status": "indisponivel",
        "checks": {
            "configuracao": {"ok": True},
            "sessao_glpi": {"ok": False, "detalhe": "não foi possível conectar ao GLPI"},
            "verificacoes_partida": {"ok": True},  # they passed at start-up
            "fila": EMPTY_QUEUE,
        },
    }
    assert gateway.get("/ping").status_code == 200

    box.start(port=port)
    back = wait_for_health(gateway, 200)
    assert back.status_code == 200 and back.json() == READY


@pytest.mark.slow
def test_health_polls_share_one_cached_glpi_call(new_sandbox, launch):
    box = new_sandbox()
    gateway = launch(sandbox_settings(box.start(), HEALTH_CACHE_TTL="60"))
    box.reset_calls()
    answers = [gateway.get("/health").status_code for _ in range(5)]
    assert answers == [200] * 5
    assert box.call_count("search/Entity") == 1
    assert box.call_count() - box.call_count("initSession") == 1  # and a session for the serving thread


@pytest.mark.slow
def test_health_is_unavailable_when_glpi_refuses_the_tokens(new_sandbox, launch):
    box = new_sandbox()
    gateway = launch(sandbox_settings(box.start(), GLPI_USER_TOKEN="not-the-user-token-0123", HEALTH_CACHE_TTL="0"))
    assert gateway.exit_code is None, gateway.logs()
    answer = gateway.get("/health")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "configuracao": {"ok": True},
        "sessao_glpi": {"ok": False, "detalhe": "o GLPI recusou as credenciais (ERROR_GLPI_LOGIN_USER_TOKEN)"},
        "verificacoes_partida": {"ok": False, "detalhe": "pendentes: dependem de uma sessão no GLPI"},
        "fila": EMPTY_QUEUE,
    }
    assert "not-the-user-token-0123" not in answer.text + gateway.logs()


@pytest.mark.slow
def test_health_reports_startup_checks_that_fail_once_glpi_answers(new_sandbox, launch):
    port = free_port()  # GLPI is down while the gateway starts: its checks are postponed
    gateway = launch(
        sandbox_settings(f"http://127.0.0.1:{port}/apirest.php", GLPI_DEFAULT_CATEGORY_ID="99", HEALTH_CACHE_TTL="0")
    )
    assert gateway.exit_code is None, gateway.logs()
    assert gateway.get("/health").json()["checks"]["verificacoes_partida"] == {
        "ok": False,
        "detalhe": "pendentes: dependem de uma sessão no GLPI",
    }

    new_sandbox().start(port=port)
    answer = gateway.get("/health")
    assert answer.status_code == 503
    assert answer.json()["checks"]["sessao_glpi"] == {"ok": True}
    assert answer.json()["checks"]["verificacoes_partida"] == {
        "ok": False,
        "detalhe": "configuração incompatível com o GLPI; rode python app.py doctor",
    }
    assert "GLPI_DEFAULT_CATEGORY_ID=99: não existe ITILCategory 99 no GLPI" in gateway.logs()


@pytest.mark.slow
def test_health_turns_unavailable_when_the_oldest_queued_ticket_waits_too_long(new_sandbox, launch):
    box = new_sandbox()
    gateway = launch(sandbox_settings(box.start(), HEALTH_CACHE_TTL="0", HEALTH_QUEUE_MAX_AGE="1"))
    box.fault_endpoints = {"Ticket"}  # GLPI answers the health probe but takes no ticket
    box.fault = "http500"
    assert gateway.post_ticket(body()).status_code == 202

    late = wait_for_health(gateway, 503, attempts=int(QUEUE_DEADLINE / 0.1))
    assert late.status_code == 503
    checks = late.json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == {
        "configuracao": True,
        "sessao_glpi": True,
        "verificacoes_partida": True,
        "fila": False,
    }
    assert checks["fila"]["enfileirados"] == 1 and checks["fila"]["mais_antigo_segundos"] >= 1
    assert checks["fila"]["detalhe"].startswith("o pedido mais antigo da fila espera há ")
    assert checks["fila"]["detalhe"].endswith(" s, mais que HEALTH_QUEUE_MAX_AGE (1 s)")

    box.fault = None
    back = wait_for_health(gateway, 200, attempts=int(QUEUE_DEADLINE / 0.1))
    assert back.status_code == 200 and back.json() == READY


@pytest.mark.slow
def test_health_fails_the_queue_check_when_the_store_does_not_answer(sandbox, launch, own_redis):
    server, url = own_redis
    gateway = launch(sandbox_settings(sandbox.url, REDIS_URL=url, HEALTH_CACHE_TTL="0"))
    assert gateway.get("/health").json()["checks"]["fila"] == EMPTY_QUEUE
    server.kill()
    server.wait()
    answer = gateway.get("/health")
    assert answer.status_code == 503
    assert answer.json()["checks"]["fila"] == {
        "ok": False,
        "detalhe": "o armazenamento da fila (DATA_DIR ou REDIS_URL) não respondeu",
    }
    assert answer.json()["checks"]["sessao_glpi"] == {"ok": True}


def readiness_for(box, queue_backlog, queue_max_age=900.0, now=None):
    """A Readiness over a real GLPI client talking to `box`, with the queue read from `queue_backlog`."""
    config = load_config(sandbox_settings(box.start()), env_file=None)
    client = GlpiClient(config.glpi_url, user_token=config.glpi_user_token, app_token=config.glpi_app_token)
    now = now or [1000.0]
    readiness = Readiness(
        TicketGateway(config, client),
        client,
        cache_ttl=5,
        queue_backlog=queue_backlog,
        queue_max_age=queue_max_age,
        clock=lambda: now[0],
    )
    return readiness, client


@pytest.mark.parametrize(
    "backlog, fila",
    [
        ((0, 0.0), EMPTY_QUEUE),
        ((3, 12.34), {"ok": True, "enfileirados": 3, "mais_antigo_segundos": 12.3}),
        ((3, 900.0), {"ok": True, "enfileirados": 3, "mais_antigo_segundos": 900.0}),
        (
            (3, 900.2),
            {
                "ok": False,
                "detalhe": "o pedido mais antigo da fila espera há 900 s, mais que HEALTH_QUEUE_MAX_AGE (900 s)",
                "enfileirados": 3,
                "mais_antigo_segundos": 900.2,
            },
        ),
    ],
)
def test_the_queue_check_fails_only_past_the_maximum_age(new_sandbox, backlog, fila):
    readiness, client = readiness_for(new_sandbox(), lambda: backlog)
    try:
        assert readiness.checks()["fila"] == fila
    finally:
        client.close()


def test_the_queue_check_is_cached_like_the_glpi_probe(new_sandbox):
    calls = []

    def backlog():
        calls.append(1)
        if len(calls) > 1:
            raise StoreUnavailable("Redis: ConnectionError: connection refused")
        return 2, 5.0

    now = [1000.0]
    readiness, client = readiness_for(new_sandbox(), backlog, now=now)
    try:
        assert readiness.checks()["fila"]["enfileirados"] == 2
        now[0] += 4.9
        assert readiness.checks()["fila"]["enfileirados"] == 2
        assert len(calls) == 1
        now[0] += 0.2
        assert readiness.checks()["fila"] == {
            "ok": False,
            "detalhe": "o armazenamento da fila (DATA_DIR ou REDIS_URL) não respondeu",
        }
        assert len(calls) == 2
    finally:
        client.close()


def test_the_glpi_probe_is_cached_for_the_configured_seconds_then_repeated(new_sandbox):
    box = new_sandbox()
    now = [1000.0]
    readiness, client = readiness_for(box, lambda: (0, 0.0), now=now)
    try:
        assert readiness.checks()["sessao_glpi"] == {"ok": True}
        box.fault = "http500"
        now[0] += 4.9
        assert readiness.checks()["sessao_glpi"] == {"ok": True}  # still the cached answer
        assert box.call_count("search/Entity") == 1
        now[0] += 0.2
        assert readiness.checks()["sessao_glpi"] == {"ok": False, "detalhe": "o GLPI respondeu com erro interno"}
        assert box.call_count("search/Entity") == 2
    finally:
        client.close()
