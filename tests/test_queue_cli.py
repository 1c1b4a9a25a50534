"""`python app.py fila`: the queue command, in-process over both stores, and as a subprocess beside
a gateway that is running and delivering (GLPI being the sandbox)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
import uuid

import pytest
import redis

from glpi_gateway import queue_cli
from glpi_gateway.delivery import Job, QueuedFile, encode_job, encode_request
from glpi_gateway.logging_setup import LOGGER_NAMES
from glpi_gateway.store import CANCELLED, CREATED, FAILED, QUEUED
from glpi_gateway.store.redis import RedisStore
from glpi_gateway.store.sqlite import SqliteStore
from glpi_gateway.validation import validate_ticket_request
from tests.harness import ROOT, gateway_environment, sandbox_settings

TTL = 3600.0
P1, P2, P3, P4 = (f"{digit}" * 32 for digit in "1234")
LATER_CNPJ = "60.701.190/0001-04"  # valid; the sandbox has no entity with it until a test adds one
DELIVERY_DEADLINE = 60.0


def ticket_body(**overrides) -> dict:
    return {
        "nome_cliente": "Maria Souza",
        "telefone_cliente": "(11) 99999-0000",
        "cnpj_cliente": "11.222.333/0001-81",
        "anydesk_cliente": "123 456 789",
        "descricao_problema": "A impressora não imprime.\nJá reiniciei.",
        **overrides,
    }


PAYLOAD = encode_request(validate_ticket_request(ticket_body()))


@pytest.fixture(autouse=True)
def restore_logging():
    """The command points the gateway's loggers at this test's stderr: put them back afterwards."""
    saved = [
        (logger, list(logger.handlers), logger.level, logger.propagate)
        for logger in map(logging.getLogger, LOGGER_NAMES)
    ]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.slow)])
def backend(request, tmp_path):
    """(the command's environment, a store on the same backend to set the scene)"""
    if request.param == "sqlite":
        environ = {"DATA_DIR": str(tmp_path / "data")}
        store = SqliteStore(environ["DATA_DIR"])
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        environ = {"REDIS_URL": url, "REDIS_KEY_PREFIX": prefix}
        store = RedisStore(redis.Redis.from_url(url), prefix)
    yield environ, store
    store.close()


@pytest.fixture
def scene(backend):
    """P1 waiting after 2 failed attempts, P2 refused by GLPI, P3 created, P4 waiting (maybe sent)."""
    environ, store = backend
    for protocol in (P1, P2, P3, P4):
        store.enqueue(protocol, PAYLOAD, maybe_sent=protocol == P4)
    store.reschedule(P1, 2, time.time() + 120, "CONNECTION_FAILED")
    store.finish_ticket(P2, FAILED, None, '{"codigo": "entidade_nao_encontrada", "motivo": "Sem entidade"}', TTL)
    store.finish_ticket(P3, CREATED, 77, None, TTL)
    return environ, store


def run(environ, *argv, answer: str | None = None) -> int:
    def ask(question: str) -> str:
        assert answer is not None, f"asked without an answer ready: {question}"
        print(question)
        return answer

    return queue_cli.main(list(argv), environ=environ, ask=ask)


# --- listar / mostrar / exportar -------------------------------------------------------------------


def test_list_shows_every_ticket_with_state_age_attempts_and_last_reason(scene, capsys):
    environ, _ = scene
    assert run(environ, "listar") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["PROTOCOLO", "ESTADO", "IDADE", "TENT.", "ÚLTIMO", "MOTIVO"]
    assert [line.split()[:2] for line in lines[1:5]] == [[P1, QUEUED], [P2, FAILED], [P3, CREATED], [P4, QUEUED]]
    assert "CONNECTION_FAILED (não foi possível conectar ao GLPI)" in lines[1]
    assert lines[1].split()[3:5] == ["s", "2"]  # age "0 s" or "1 s", then the attempts
    assert "entidade_nao_encontrada: Sem entidade" in lines[2]
    assert "chamado 77" in lines[3]
    assert lines[-1] == "4 pedidos: 2 enfileirados, 1 criado, 1 falhou"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--pendentes"], [P1, P4]),
        (["--falhos"], [P2]),
        (["--estado", "criado"], [P3]),
        (["--pendentes", "--falhos"], [P1, P2, P4]),
    ],
)
def test_list_filters_by_state(scene, capsys, arguments, expected):
    environ, _ = scene
    assert run(environ, "list", *arguments) == 0
    listed = [line[:32] for line in capsys.readouterr().out.splitlines() if line[:32] in (P1, P2, P3, P4)]
    assert listed == expected


def test_list_of_an_empty_queue_says_so(backend, capsys):
    environ, _ = backend
    assert run(environ, "listar", "--falhos") == 0
    assert capsys.readouterr().out == "Nenhum pedido falhou na fila.\n"


def squeezed(text: str) -> list[str]:
    """The lines of `text` with their runs of spaces squeezed to one."""
    return [" ".join(line.split()) for line in text.splitlines()]


def test_show_gives_the_whole_ticket_and_the_request(scene, capsys):
    environ, _ = scene
    assert run(environ, "mostrar", P1) == 0
    out = capsys.readouterr().out
    lines = squeezed(out)
    assert lines[:2] == [f"Protocolo: {P1}", f"Estado: {QUEUED}"]
    assert "Tentativas: 2" in lines
    assert "Último motivo: CONNECTION_FAILED (não foi possível conectar ao GLPI)" in lines
    assert any(line.startswith("Próxima tentativa:") and "(em 1 min" in line for line in lines)
    assert "nome_cliente: Maria Souza" in lines and "cnpj: 11222333000181" in lines
    description = lines.index("descricao_problema: A impressora não imprime.")
    assert lines[description + 1] == "Já reiniciei."  # a multi-line field stays under its first line
    assert "Pode estar no GLPI" not in out


def test_show_and_export_name_a_requests_queued_files_but_never_their_bytes(backend, capsys):
    environ, store = backend
    request = validate_ticket_request(ticket_body())
    job = Job(request, (QueuedFile("print.png", "image/png", 12, "0" * 64, 1),), 1)
    store.enqueue(P1, encode_job(job), False, files=[io.BytesIO(b"segredo-png!")], max_file_bytes=100)
    assert run(environ, "mostrar", P1) == 0
    shown = capsys.readouterr().out
    assert "print.png (12 bytes, image/png)" in shown and "segredo" not in shown
    assert run(environ, "exportar") == 0
    exported = capsys.readouterr().out
    assert json.loads(exported)["pedido"]["anexos"] == ["print.png (12 bytes, image/png)"]
    assert "segredo" not in exported


def test_show_accepts_the_location_path_and_warns_of_a_maybe_sent_ticket(scene, capsys):
    environ, _ = scene
    assert run(environ, "show", f"/chamados/{P4.upper()}") == 0
    assert any(line.startswith("Pode estar no GLPI: sim") for line in squeezed(capsys.readouterr().out))


@pytest.mark.parametrize("command", ["mostrar", "reenviar", "cancelar"])
def test_an_unknown_protocol_is_an_error_in_portuguese(backend, capsys, command):
    environ, _ = backend
    unknown = uuid.uuid4().hex
    assert run(environ, command, unknown, "--sim" if command == "cancelar" else "--") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"Erro: protocolo desconhecido: {unknown} (nunca passou pela fila")


def test_a_malformed_protocol_is_an_error_in_portuguese(backend, capsys):
    environ, _ = backend
    assert run(environ, "mostrar", "abc") == 1
    assert "Erro: protocolo inválido: 'abc' (são 32 caracteres hexadecimais" in capsys.readouterr().err


def test_export_writes_one_json_object_per_ticket_with_its_request(scene, capsys):
    environ, _ = scene
    assert run(environ, "exportar") == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(record["protocolo"], record["status"]) for record in records] == [
        (P1, QUEUED),
        (P2, FAILED),
        (P3, CREATED),
        (P4, QUEUED),
    ]
    first, failed, created, maybe_sent = records
    assert first["tentativas"] == 2 and first["ultimo_erro"] == "CONNECTION_FAILED"
    assert first["pedido"]["nome_cliente"] == "Maria Souza" and first["pedido"]["cnpj"] == "11222333000181"
    assert failed["codigo"] == "entidade_nao_encontrada" and failed["proxima_tentativa_em"] is None
    assert created["ticket_id"] == 77
    assert maybe_sent["pode_estar_no_glpi"] is True
    assert run(environ, "export", "--falhos") == 0
    assert [json.loads(line)["protocolo"] for line in capsys.readouterr().out.splitlines()] == [P2]


# --- reenviar -------------------------------------------------------------------------------------


def test_retry_puts_a_failed_ticket_back_in_line_and_logs_who(scene, capsys):
    environ, store = scene
    assert run(environ, "reenviar", P2) == 0
    captured = capsys.readouterr()
    assert f"Pedido {P2} de volta à fila (estava falhou)." in captured.out
    assert "1 pedido à frente dele" in captured.out  # P1 arrived before it
    retried = store.ticket(P2)
    assert (retried.state, retried.attempts, retried.reason) == (QUEUED, 0, None)
    assert retried.next_attempt_at <= time.time()
    [line] = [json.loads(line) for line in captured.err.splitlines()]
    assert line["event"] == "fila_reenviado" and line["protocolo"] == P2 and line["usuario"]
    assert line["usuario"] in line["msg"] and line["ts"]


def test_retry_of_a_waiting_ticket_brings_its_next_attempt_to_now(scene, capsys):
    environ, store = scene
    assert run(environ, "retry", P1) == 0
    assert "a próxima tentativa foi adiantada para agora" in capsys.readouterr().out
    assert store.ticket(P1).next_attempt_at <= time.time() and store.ticket(P1).attempts == 2


def test_retry_of_a_created_ticket_is_refused(scene, capsys):
    environ, store = scene
    assert run(environ, "reenviar", P3) == 1
    assert "Erro: o pedido 3333" in capsys.readouterr().err
    assert store.ticket(P3).state == CREATED


# --- cancelar -------------------------------------------------------------------------------------


def test_cancel_asks_first_and_a_no_changes_nothing(scene, capsys):
    environ, store = scene
    assert run(environ, "cancelar", P1, answer="n") == 1
    captured = capsys.readouterr()
    assert f"Cancelar o pedido {P1} de Maria Souza, recebido há" in captured.out
    assert "Erro: nada cancelado" in captured.err
    assert store.ticket(P1).state == QUEUED


def test_cancel_confirmed_takes_it_out_of_the_queue_and_logs_who_and_when(scene, capsys):
    environ, store = scene
    assert run(environ, "cancelar", P1, "--motivo", "cliente pediu por telefone", answer="sim") == 0
    captured = capsys.readouterr()
    assert f"Pedido {P1} cancelado: não será entregue ao GLPI." in captured.out
    cancelled = store.ticket(P1)
    assert cancelled.state == CANCELLED
    reason = json.loads(cancelled.reason)
    assert reason["motivo"] == "cliente pediu por telefone" and reason["cancelado_por"] and reason["cancelado_em"]
    assert store.next_queued().protocol == P4
    [line] = [json.loads(line) for line in captured.err.splitlines()]
    assert line["level"] == "WARNING" and line["event"] == "fila_cancelado" and line["protocolo"] == P1
    assert line["usuario"] == reason["cancelado_por"] and f"cancelado por {line['usuario']}" in line["msg"]
    assert line["ts"].startswith(reason["cancelado_em"][:10])


@pytest.mark.parametrize("flag", ["--sim", "--yes", "-y"])
def test_cancel_with_sim_does_not_ask(scene, capsys, flag):
    environ, store = scene
    assert run(environ, "cancel", P1, flag) == 0
    assert store.ticket(P1).state == CANCELLED


def test_cancel_of_a_maybe_sent_ticket_says_to_look_in_glpi(scene, capsys):
    environ, _ = scene
    assert run(environ, "cancelar", P4, "--sim") == 0
    assert f"Procure no GLPI um chamado com a linha «Protocolo: {P4}»" in capsys.readouterr().out


@pytest.mark.parametrize("protocol", [P2, P3])
def test_only_a_waiting_ticket_can_be_cancelled(scene, capsys, protocol):
    environ, store = scene
    before = store.ticket(protocol)
    assert run(environ, "cancelar", protocol, "--sim") == 1
    assert "não está enfileirado" in capsys.readouterr().err
    assert store.ticket(protocol) == before


def test_a_cancelled_ticket_can_be_sent_again(scene, capsys):
    environ, store = scene
    assert run(environ, "cancelar", P1, "--sim") == 0
    assert run(environ, "reenviar", P1) == 0
    assert "(estava cancelado)" in capsys.readouterr().out
    assert store.next_queued().protocol == P1


# --- opening the store ------------------------------------------------------------------------------


def test_a_data_dir_without_a_queue_is_an_error_not_an_empty_list(tmp_path, capsys):
    assert run({"DATA_DIR": str(tmp_path / "nada")}, "listar") == 3
    assert "Erro: não há fila em DATA_DIR=" in capsys.readouterr().err
    assert not (tmp_path / "nada").exists()  # nothing created by looking


def test_an_unreachable_redis_is_an_error_without_its_password(capsys):
    assert run({"REDIS_URL": "redis://:senha-secreta-123@127.0.0.1:1/0"}, "listar") == 3
    err = capsys.readouterr().err
    assert err.startswith("Erro: REDIS_URL: não foi possível abrir o armazenamento")
    assert "senha-secreta-123" not in err


def test_a_bad_store_variable_is_a_configuration_error(tmp_path, capsys):
    assert run({"DATA_DIR": str(tmp_path), "IDEMPOTENCY_TTL": "nunca"}, "listar") == 3
    assert "Erro: configuração inválida: IDEMPOTENCY_TTL" in capsys.readouterr().err


def test_the_rest_of_the_gateway_configuration_is_not_needed(backend, capsys):
    environ, _ = backend
    assert run({**environ, "GLPI_URL": "isto não é uma URL"}, "listar") == 0


def test_wrong_usage_is_explained_in_portuguese(capsys):
    with pytest.raises(SystemExit) as stopped:
        run({}, "cancelar")
    assert stopped.value.code == 2
    assert "Erro: falta informar: protocolo" in capsys.readouterr().err


# --- the command line, beside a running gateway ----------------------------------------------------


def fila(settings: dict[str, str], *arguments: str, answer: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "app.py", "fila", *arguments],
        cwd=ROOT,
        env=gateway_environment(settings),
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
    )


def final_state(gateway, protocol: str) -> dict:
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while time.monotonic() < deadline:
        answer = gateway.get(f"/chamados/{protocol}").json()
        if answer["status"] != QUEUED:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"{protocol} still queued:\n{gateway.logs()}")


def tickets_with_protocol(sandbox, protocol: str) -> list[int]:
    line = f"&#60;strong&#62;Protocolo:&#60;/strong&#62; {protocol}"
    return sorted(ticket_id for ticket_id, ticket in sandbox.tickets.items() if line in ticket["content"])


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_the_command_works_on_the_queue_of_a_running_gateway(new_sandbox, launch, tmp_path, request, store):
    glpi = new_sandbox()
    glpi.url = glpi.start()
    settings = sandbox_settings(glpi.url, GLPI_ENTITY_NEGATIVE_CACHE_TTL="0", DATA_DIR=str(tmp_path / "data"))
    if store == "redis":
        settings.update(REDIS_URL=request.getfixturevalue("redis_url"), REDIS_KEY_PREFIX=f"test-{uuid.uuid4().hex}:")
    gateway = launch(settings)
    glpi.fault = "http500"  # GLPI down: every request is queued
    answers = [gateway.post_ticket(ticket_body(descricao_problema=f"fila {n}")) for n in range(3)]
    answers.append(gateway.post_ticket(ticket_body(cnpj_cliente=LATER_CNPJ)))
    assert [answer.status_code for answer in answers] == [202] * 4
    first, second, third, refused = (answer.json()["protocolo"] for answer in answers)

    listed = fila(settings, "listar", "--pendentes")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:5]] == [first, second, third, refused]

    cancelled = fila(settings, "cancelar", second, answer="s\n")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelado por" in cancelled.stderr
    status = gateway.get(f"/chamados/{second}").json()
    assert status["status"] == CANCELLED and status["motivo"] == "cancelado pela equipe de operação"
    assert "cancelado_por" not in status  # the OS user stays out of the API

    glpi.fault = None  # GLPI back: the gateway delivers the rest, and GLPI refuses the unknown CNPJ
    assert final_state(gateway, first)["status"] == CREATED
    assert final_state(gateway, third)["status"] == CREATED
    assert final_state(gateway, refused)["codigo"] == "entidade_nao_encontrada"
    assert gateway.get(f"/chamados/{second}").json()["status"] == CANCELLED
    assert tickets_with_protocol(glpi, second) == []

    glpi.add_entity("Cliente Novo", LATER_CNPJ)  # the data fixed in GLPI: send the refused one again
    retried = fila(settings, "reenviar", refused)
    assert retried.returncode == 0, retried.stderr
    delivered = final_state(gateway, refused)
    assert delivered["status"] == CREATED
    assert tickets_with_protocol(glpi, refused) == [delivered["ticket_id"]]
    for protocol in (first, third):
        assert len(tickets_with_protocol(glpi, protocol)) == 1

    shown = fila(settings, "mostrar", refused)
    assert shown.returncode == 0 and f"chamado {delivered['ticket_id']}" in shown.stdout
    exported = [json.loads(line) for line in fila(settings, "exportar").stdout.splitlines()]
    assert {record["protocolo"]: record["status"] for record in exported} == {
        first: CREATED,
        second: CANCELLED,
        third: CREATED,
        refused: CREATED,
    }
    unknown = fila(settings, "mostrar", uuid.uuid4().hex)
    assert unknown.returncode == 1 and unknown.stderr.startswith("Erro: protocolo desconhecido")
