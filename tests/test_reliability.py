"""No ticket lost, none duplicated: the gateway under gunicorn, over HTTP, with GLPI failing on purpose.

GLPI is the sandbox (a real HTTP server) with its fault switches; the store is SQLite in a
temporary DATA_DIR or, where a test takes the `backend` parameter, Redis too.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from tests.harness import sandbox_settings
from tests.helpers import (
    DELIVERY_DEADLINE,
    UNKNOWN,
    assert_error,
    body,
    queued,
    tickets_with_protocol,
    wait_for_final_state,
)

pytestmark = pytest.mark.slow  # gunicorn, SIGKILL and SIGTERM, Redis


# --- nothing lost -----------------------------------------------------------------------------


def test_glpi_down_queues_the_request_and_delivers_it_once_glpi_is_back(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url))
    port = int(sandbox.url.split(":")[2].split("/")[0])
    sandbox.stop()  # connection refused
    try:
        protocol = queued(process.post_ticket(body()))
        status = process.get(f"/chamados/{protocol}")
        assert status.status_code == 200 and status.json()["status"] == "enfileirado"
    finally:
        assert sandbox.start(port=port) == sandbox.url
    final = wait_for_final_state(process, protocol)
    assert final["status"] == "criado"
    assert tickets_with_protocol(sandbox, protocol) == [final["ticket_id"]]


@pytest.mark.parametrize("fault", ["http500", "html", "stall"])
def test_glpi_failing_slow_or_answering_html_queues_the_request(gateway, sandbox, fault):
    sandbox.stall_seconds = 3  # the gateway's GLPI_TIMEOUT is 2 s
    sandbox.fault = fault
    protocol = queued(gateway.post_ticket(body(cnpj_cliente="11.222.333/0002-62")))
    sandbox.fault = None
    final = wait_for_final_state(gateway, protocol)
    assert final["status"] == "criado"
    assert tickets_with_protocol(sandbox, protocol) == [final["ticket_id"]]


def test_queued_request_waits_as_long_as_glpis_retry_after_asks(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url))  # its own queue: this head waits two minutes
    sandbox.retry_after_seconds = 120  # the gateway's own backoff here is at most 1 s
    sandbox.fault = "http503"
    protocol = queued(process.post_ticket(body()))
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while (status := process.get(f"/chamados/{protocol}").json())["tentativas"] == 0:
        assert time.monotonic() < deadline, "the delivery worker never tried"
        time.sleep(0.2)
    sandbox.fault = None
    received = datetime.fromisoformat(status["recebido_em"].replace("Z", "+00:00"))
    next_attempt = datetime.fromisoformat(status["proxima_tentativa_em"].replace("Z", "+00:00"))
    assert (next_attempt - received).total_seconds() >= 110
    assert status["ultimo_erro"] == "SERVER_ERROR"


def test_queued_request_for_an_unknown_cnpj_ends_failed_with_the_reason(gateway, sandbox):
    sandbox.fault = "http500"
    protocol = queued(gateway.post_ticket(body(cnpj_cliente=UNKNOWN)))
    sandbox.fault = None
    final = wait_for_final_state(gateway, protocol)
    assert final["status"] == "falhou"
    assert final["codigo"] == "entidade_nao_encontrada" and final["motivo"]
    assert tickets_with_protocol(sandbox, protocol) == []


def test_invalid_requests_are_refused_not_queued_while_glpi_is_down(gateway, sandbox):
    sandbox.fault = "http500"
    assert_error(gateway.post_ticket(body(cnpj_cliente="11.111.111/1111-11")), 400, "dados_invalidos")
    assert_error(gateway.post_ticket({}), 400, "campos_obrigatorios_ausentes")


def test_unknown_or_malformed_protocol_is_404_json(gateway):
    assert_error(gateway.get(f"/chamados/{uuid.uuid4().hex}"), 404, "protocolo_nao_encontrado")
    assert_error(gateway.get("/chamados/nao-e-um-protocolo"), 404, "protocolo_nao_encontrado")


def test_a_request_is_never_answered_202_when_the_store_cannot_keep_it(sandbox, launch, own_redis):
    server, url = own_redis
    process = launch(sandbox_settings(sandbox.url, REDIS_URL=url))
    assert process.post_ticket(body()).status_code == 201
    server.kill()
    server.wait()
    sandbox.fault = "http500"
    lost = process.post_ticket(body())
    assert_error(lost, 503, "armazenamento_indisponivel")
    assert int(lost.headers["Retry-After"]) > 0
    keyed = process.post_ticket(body(), headers={"Idempotency-Key": uuid.uuid4().hex})
    assert_error(keyed, 503, "armazenamento_indisponivel")


def test_sigkill_with_five_requests_queued_loses_none_and_duplicates_none(sandbox, launch, tmp_path, backend):
    settings = sandbox_settings(sandbox.url, DATA_DIR=str(tmp_path / "kept-data"), GLPI_TIMEOUT="1", **backend)
    first = launch(settings)
    sandbox.fault = "http500"  # GLPI down: nothing reaches it
    protocols = [queued(first.post_ticket(body(descricao_problema=f"fila {n}"))) for n in range(3)]
    # GLPI creates these two but its answers never arrive in time.
    sandbox.stall_seconds = 3
    sandbox.fault_endpoints = {"Ticket"}
    sandbox.fault = "stall_after_create"
    protocols += [queued(first.post_ticket(body(descricao_problema=f"fila {n}"))) for n in range(3, 5)]
    first.kill()
    sandbox.fault = None
    sandbox.fault_endpoints = None

    second = launch(settings)
    for protocol in protocols:
        final = wait_for_final_state(second, protocol)
        assert final["status"] == "criado"
        assert tickets_with_protocol(sandbox, protocol) == [final["ticket_id"]]


def test_one_drainer_across_worker_processes(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, WEB_CONCURRENCY="2", **backend))
    sandbox.fault = "http500"
    protocols = [queued(process.post_ticket(body(descricao_problema=f"lote {n}"))) for n in range(4)]
    sandbox.fault = None
    for protocol in protocols:
        final = wait_for_final_state(process, protocol)
        assert tickets_with_protocol(sandbox, protocol) == [final["ticket_id"]]
    lines = process.records()
    taken = [line["owner"] for line in lines if line.get("event") == "vez_assumida"]
    delivered_by = {line["owner"] for line in lines if line.get("event") == "entregue"}
    booted = [line for line in process.logs().splitlines() if "Booting worker" in line]
    assert len(booted) == 2
    assert len(taken) == 1 and len(delivered_by) == 1
    assert taken[0] == next(iter(delivered_by))


def test_sigterm_finishes_the_request_in_flight_and_stops_cleanly(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url))
    assert process.post_ticket(body()).status_code == 201  # warm: the next request is one GLPI call
    sandbox.latency_ms = 1500
    calls_before = sandbox.call_count()
    answers = []
    client = threading.Thread(target=lambda: answers.append(process.post_ticket(body())))
    client.start()
    while sandbox.call_count() == calls_before:  # the request is now waiting on GLPI
        time.sleep(0.02)
    process.process.terminate()
    client.join()
    assert answers[0].status_code == 201, answers[0].text
    assert process.process.wait(timeout=30) == 0
    assert "Traceback" not in process.logs()


# --- none duplicated ----------------------------------------------------------------------------


def test_ticket_created_but_answered_after_the_timeout_is_adopted_not_sent_again(gateway, sandbox):
    posts_before = sandbox.call_count(endpoint="Ticket", method="POST")
    sandbox.stall_seconds = 4  # past the gateway's GLPI_TIMEOUT of 2 s
    sandbox.fault_endpoints = {"Ticket"}
    sandbox.fault = "stall_after_create"
    key = uuid.uuid4().hex
    response = gateway.post_ticket(body(), headers={"Idempotency-Key": key})
    protocol = queued(response)
    final = wait_for_final_state(gateway, protocol)  # the fault is still on: only adoption can succeed
    assert final["status"] == "criado"
    assert tickets_with_protocol(sandbox, protocol) == [final["ticket_id"]]
    assert sandbox.call_count(endpoint="Ticket", method="POST") == posts_before + 1
    replay = gateway.post_ticket(body(), headers={"Idempotency-Key": key})
    assert replay.status_code == 202 and replay.json() == response.json()
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_ten_concurrent_requests_with_one_key_make_one_ticket(sandbox, launch, backend):
    process = launch(sandbox_settings(sandbox.url, WEB_CONCURRENCY="2", **backend))
    assert process.post_ticket(body()).status_code == 201  # warm
    tickets_before = len(sandbox.tickets)
    sandbox.latency_ms = 200  # the requests overlap
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: process.post_ticket(body(), headers={"Idempotency-Key": key}), range(10)))
    sandbox.latency_ms = 0
    assert len(sandbox.tickets) == tickets_before + 1
    created = [answer for answer in answers if answer.status_code == 201]
    retry = [answer for answer in answers if answer.status_code != 201]
    assert created and len({answer.json()["ticket_id"] for answer in created}) == 1
    for answer in retry:
        assert_error(answer, 409, "pedido_em_andamento")
        assert int(answer.headers["Retry-After"]) > 0
    again = process.post_ticket(body(), headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.json() == created[0].json()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_another_body_is_422(gateway):
    key = uuid.uuid4().hex
    assert gateway.post_ticket(body(), headers={"Idempotency-Key": key}).status_code == 201
    other = gateway.post_ticket(body(descricao_problema="outro problema"), headers={"Idempotency-Key": key})
    assert_error(other, 422, "idempotency_key_reutilizada")


def test_same_key_and_same_validated_body_written_differently_replays(gateway):
    key = uuid.uuid4().hex
    first = gateway.post_ticket(body(), headers={"Idempotency-Key": key})
    again = gateway.post_ticket(
        body(cnpj_cliente="11222333000181", nome_cliente="  Maria Souza "), headers={"Idempotency-Key": key}
    )
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "tem espaço", "x" * 256, "ção"])
def test_insane_idempotency_key_is_400(gateway, key):
    response = gateway.session.post(
        f"{gateway.url}/criar-chamado", json=body(), timeout=30, headers={"Idempotency-Key": key.encode("utf-8")}
    )
    assert_error(response, 400, "idempotency_key_invalida")


def test_answers_decided_by_glpi_data_are_replayed(gateway):
    key = uuid.uuid4().hex
    first = gateway.post_ticket(body(cnpj_cliente=UNKNOWN), headers={"Idempotency-Key": key})
    assert_error(first, 404, "entidade_nao_encontrada")
    again = gateway.post_ticket(body(cnpj_cliente=UNKNOWN), headers={"Idempotency-Key": key})
    assert again.status_code == 404 and again.headers["Idempotent-Replayed"] == "true"


def test_a_503_is_not_stored_so_the_same_key_can_retry(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false"))
    key = uuid.uuid4().hex
    sandbox.fault = "http500"
    assert_error(process.post_ticket(body(), headers={"Idempotency-Key": key}), 503, "glpi_indisponivel")
    sandbox.fault = None
    retry = process.post_ticket(body(), headers={"Idempotency-Key": key})
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers


def test_retry_with_the_key_after_a_lost_answer_adopts_the_ticket_without_queueing(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false"))
    assert process.post_ticket(body()).status_code == 201  # warm
    posts_before = sandbox.call_count(endpoint="Ticket", method="POST")
    tickets_before = len(sandbox.tickets)
    sandbox.stall_seconds = 4  # past the gateway's GLPI_TIMEOUT of 2 s
    sandbox.fault_endpoints = {"Ticket"}
    sandbox.fault = "stall_after_create"
    key = uuid.uuid4().hex
    assert_error(process.post_ticket(body(), headers={"Idempotency-Key": key}), 503, "glpi_indisponivel")
    retry = process.post_ticket(body(), headers={"Idempotency-Key": key})
    assert retry.status_code == 201, retry.text
    assert len(sandbox.tickets) == tickets_before + 1
    assert retry.json()["ticket_id"] == max(sandbox.tickets)
    assert sandbox.call_count(endpoint="Ticket", method="POST") == posts_before + 1


def test_glpi_sessions_wiped_mid_load_fail_no_request(gateway, sandbox):
    sandbox.latency_ms = 20
    posts_before = sandbox.call_count(endpoint="Ticket", method="POST")
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(gateway.post_ticket, body(descricao_problema=f"carga {n}")) for n in range(30)]
        while sandbox.call_count(endpoint="Ticket", method="POST") < posts_before + 10:
            time.sleep(0.01)
        assert sandbox.expire_sessions() > 0  # PHP's garbage collector, in the middle of the load
        answers = [future.result() for future in futures]
    assert [answer.status_code for answer in answers] == [201] * 30


# --- start-up ------------------------------------------------------------------------------------


def test_unusable_data_dir_stops_start_up_naming_it(sandbox, launch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    process = launch(sandbox_settings(sandbox.url, DATA_DIR=str(blocker / "data")))
    assert process.exit_code not in (None, 0)
    assert "DATA_DIR" in process.logs()


def test_unreachable_redis_stops_start_up_naming_it_without_its_password(sandbox, launch):
    process = launch(sandbox_settings(sandbox.url, REDIS_URL="redis://:senha-do-redis-123@127.0.0.1:1/0"))
    assert process.exit_code not in (None, 0)
    assert "REDIS_URL" in process.logs() and "senha-do-redis-123" not in process.logs()
