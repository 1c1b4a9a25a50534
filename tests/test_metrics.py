"""GET /metrics over HTTP: gunicorn with two workers in front, the GLPI sandbox behind.

Every test reads the exposition with prometheus_client's own parser and compares
values before and after what it does, so the tests do not depend on their order.
"""

from __future__ import annotations

import glob
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from glpi_gateway.metrics import GatewayMetrics
from glpi_gateway.store import StoreUnavailable
from tests.harness import sandbox_settings, start_gateway
from tests.helpers import ALFA, BETA, UNKNOWN

CREATED = "glpi_gateway_tickets_created_total"
QUEUED = "glpi_gateway_tickets_queued_total"
QUEUE_DEPTH = "glpi_gateway_queue_depth"
QUEUE_AGE = "glpi_gateway_queue_oldest_age_seconds"
DRAIN_DEADLINE = 60.0  # generous: a queue that never drains fails the test, a slow one does not
FAILED = "glpi_gateway_tickets_failed_total"
GLPI_SECONDS = "glpi_gateway_glpi_request_duration_seconds"
CACHE_HITS = "glpi_gateway_entity_cache_hits_total"
CACHE_MISSES = "glpi_gateway_entity_cache_misses_total"
METRICS_DIR_LOG = re.compile(r"métricas de todos os workers guardadas em ([^\s\"]+)")


def ticket(cnpj=ALFA, **overrides):
    return {
        "nome_cliente": "Maria Souza",
        "telefone_cliente": "(11) 99999-0000",
        "cnpj_cliente": cnpj,
        "anydesk_cliente": "123 456 789",
        "descricao_problema": "A impressora não imprime.",
        **overrides,
    }


def post_ticket(gateway, body) -> requests.Response:
    """On a new connection, so that either worker may take it."""
    return requests.post(f"{gateway.url}/criar-chamado", json=body, timeout=30)


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(gateway) -> dict[tuple[str, frozenset], float]:
    response = requests.get(f"{gateway.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(response.text)


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def metrics_dir(gateway) -> str:
    return METRICS_DIR_LOG.search(gateway.logs()).group(1)


def created_per_worker(directory: str) -> dict[str, float]:
    """Each worker's own count of created tickets, read from its file in the metrics directory."""
    counts = {}
    for path in glob.glob(os.path.join(directory, "counter_*.db")):
        if not os.path.getsize(path):
            continue  # a worker still starting: its file exists, prometheus_client has not sized it yet
        for metric in MultiProcessCollector.merge([path]):
            for sample in metric.samples:
                if sample.name == CREATED:
                    counts[path] = sample.value
    return counts


@pytest.fixture(scope="module")
def two_workers(sandbox, tmp_path_factory):
    """The gateway as shipped (no metrics setting at all) with two gunicorn workers."""
    process = start_gateway(tmp_path_factory.mktemp("metrics"), sandbox_settings(sandbox.url, WEB_CONCURRENCY="2"))
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


@pytest.mark.slow
def test_tickets_created_by_both_workers_are_all_counted_whichever_worker_answers_the_scrape(two_workers):
    directory = metrics_dir(two_workers)
    before = value(scrape(two_workers), CREATED)
    per_worker_before = created_per_worker(directory)
    sent = 0
    with ThreadPoolExecutor(max_workers=16) as pool:
        # Keep sending until both workers have created some: which worker accepts
        # a connection is up to the kernel, and a loaded machine favours one.
        while sent < 640:
            answers = list(pool.map(lambda _: post_ticket(two_workers, ticket()), range(16)))
            assert [answer.status_code for answer in answers] == [201] * 16, answers[0].text
            sent += 16
            per_worker = created_per_worker(directory)
            if sum(1 for path, count in per_worker.items() if count > per_worker_before.get(path, 0)) >= 2:
                break
        else:
            pytest.fail(f"one worker took all {sent} tickets: {per_worker}")

    assert sum(per_worker.values()) - sum(per_worker_before.values()) == sent
    scrapes = [value(scrape(two_workers), CREATED) for _ in range(6)]
    assert scrapes == [before + sent] * 6


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, codigo",
    [
        (ticket(UNKNOWN), "entidade_nao_encontrada"),
        (ticket("11.222.333/0001-82"), "dados_invalidos"),
        ({"nome_cliente": "Maria"}, "campos_obrigatorios_ausentes"),
    ],
)
def test_a_failed_ticket_counts_once_under_the_codigo_of_its_answer(two_workers, body, codigo):
    before = scrape(two_workers)
    answer = post_ticket(two_workers, body)
    assert answer.json()["codigo"] == codigo
    after = scrape(two_workers)
    assert value(after, FAILED, codigo=codigo) == value(before, FAILED, codigo=codigo) + 1
    assert value(after, CREATED) == value(before, CREATED)


@pytest.mark.slow
def test_glpi_down_without_the_queue_counts_as_glpi_indisponivel(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, QUEUE_WHEN_UNAVAILABLE="false"))
    sandbox.fault = "http500"
    assert post_ticket(gateway, ticket()).status_code == 503
    sandbox.fault = None
    assert value(scrape(gateway), FAILED, codigo="glpi_indisponivel") == 1


@pytest.mark.slow
def test_errors_outside_criar_chamado_are_not_counted_as_failed_tickets(two_workers):
    before = scrape(two_workers)
    assert requests.get(f"{two_workers.url}/nao-existe", timeout=30).status_code == 404
    assert requests.get(f"{two_workers.url}/criar-chamado", timeout=30).status_code == 405
    after = scrape(two_workers)
    failed = {key: count for key, count in after.items() if key[0] == FAILED}
    assert failed == {key: count for key, count in before.items() if key[0] == FAILED}


@pytest.mark.slow
def test_glpi_latency_histogram_counts_every_post_ticket(two_workers):
    before = scrape(two_workers)
    for _ in range(3):
        assert post_ticket(two_workers, ticket()).status_code == 201
    after = scrape(two_workers)
    post_ticket_labels = {"method": "POST", "endpoint": "Ticket"}
    assert (
        value(after, f"{GLPI_SECONDS}_count", **post_ticket_labels)
        == value(before, f"{GLPI_SECONDS}_count", **post_ticket_labels) + 3
    )
    assert value(after, f"{GLPI_SECONDS}_bucket", le="+Inf", **post_ticket_labels) == value(
        after, f"{GLPI_SECONDS}_count", **post_ticket_labels
    )
    assert value(after, f"{GLPI_SECONDS}_sum", **post_ticket_labels) > value(
        before, f"{GLPI_SECONDS}_sum", **post_ticket_labels
    )


@pytest.mark.slow
def test_glpi_endpoint_labels_never_carry_ids(two_workers):
    assert post_ticket(two_workers, ticket()).status_code == 201
    endpoints = {dict(labels)["endpoint"] for name, labels in scrape(two_workers) if name == f"{GLPI_SECONDS}_count"}
    assert {"initSession", "listSearchOptions/Entity", "search/Entity", "Ticket"} <= endpoints
    assert "ITILCategory/:id" in endpoints  # the startup check of GLPI_DEFAULT_CATEGORY_ID=1
    assert not any(re.search(r"\d", endpoint) for endpoint in endpoints), endpoints


@pytest.mark.slow
def test_the_second_ticket_for_a_cnpj_is_answered_by_the_entity_cache(two_workers):
    # BETA is used by no other test of this module: its first ticket is a cache miss in either worker.
    with requests.Session() as keep_alive:  # one connection, so one worker and its cache
        first = scrape(two_workers)
        assert keep_alive.post(f"{two_workers.url}/criar-chamado", json=ticket(BETA), timeout=30).status_code == 201
        second = scrape(two_workers)
        assert keep_alive.post(f"{two_workers.url}/criar-chamado", json=ticket(BETA), timeout=30).status_code == 201
        third = scrape(two_workers)
    assert (value(second, CACHE_MISSES), value(second, CACHE_HITS)) == (
        value(first, CACHE_MISSES) + 1,
        value(first, CACHE_HITS),
    )
    assert (value(third, CACHE_MISSES), value(third, CACHE_HITS)) == (
        value(second, CACHE_MISSES),
        value(second, CACHE_HITS) + 1,
    )


# --- the delivery queue -------------------------------------------------------------


@pytest.mark.slow
def test_queued_tickets_are_one_queue_depth_for_both_workers_and_count_as_created_or_failed_once_delivered(
    sandbox, launch
):
    gateway = launch(sandbox_settings(sandbox.url, WEB_CONCURRENCY="2"))
    before = scrape(gateway)
    assert (value(before, QUEUE_DEPTH), value(before, QUEUE_AGE)) == (0, 0)
    sandbox.fault = "http500"
    for body in (ticket(), ticket(), ticket(), ticket(UNKNOWN)):
        assert post_ticket(gateway, body).status_code == 202

    for samples in [scrape(gateway) for _ in range(6)]:  # on new connections: either worker answers
        assert [key for key in samples if key[0] in (QUEUE_DEPTH, QUEUE_AGE)] == [
            (QUEUE_DEPTH, frozenset()),
            (QUEUE_AGE, frozenset()),
        ]
        assert value(samples, QUEUE_DEPTH) == 4
        assert value(samples, QUEUE_AGE) > 0
        assert value(samples, QUEUED) == value(before, QUEUED) + 4
        assert value(samples, CREATED) == value(before, CREATED)
        assert value(samples, FAILED, codigo="entidade_nao_encontrada") == value(
            before, FAILED, codigo="entidade_nao_encontrada"
        )

    sandbox.fault = None
    deadline = time.monotonic() + DRAIN_DEADLINE
    while value(drained := scrape(gateway), QUEUE_DEPTH) or value(drained, CREATED) < value(before, CREATED) + 3:
        assert time.monotonic() < deadline, f"the queue was not delivered:\n{gateway.logs()}"
        time.sleep(0.2)
    assert (value(drained, QUEUE_DEPTH), value(drained, QUEUE_AGE)) == (0, 0)
    assert value(drained, CREATED) == value(before, CREATED) + 3
    assert (
        value(drained, FAILED, codigo="entidade_nao_encontrada")
        == value(before, FAILED, codigo="entidade_nao_encontrada") + 1
    )
    assert value(drained, QUEUED) == value(before, QUEUED) + 4


@pytest.mark.slow
def test_an_unreachable_store_leaves_out_only_the_queue_gauges(sandbox, launch, own_redis):
    server, url = own_redis
    gateway = launch(sandbox_settings(sandbox.url, REDIS_URL=url))
    assert gateway.post_ticket(ticket()).status_code == 201
    assert value(scrape(gateway), QUEUE_DEPTH) == 0
    server.kill()
    server.wait()
    samples = scrape(gateway)
    assert value(samples, CREATED) == 1
    assert not [key for key in samples if key[0] in (QUEUE_DEPTH, QUEUE_AGE)]
    assert '"event": "metricas_fila_ilegivel"' in gateway.logs()


# --- turning it off, and where the numbers are kept -------------------------------


@pytest.mark.slow
def test_metrics_enabled_false_removes_the_route(launch, sandbox):
    gateway = launch(sandbox_settings(sandbox.url, METRICS_ENABLED="false"))
    answer = gateway.get("/metrics")
    assert answer.status_code == 404
    assert answer.json()["codigo"] == "rota_nao_encontrada"


@pytest.mark.slow
def test_the_default_metrics_directory_is_created_empty_and_removed_at_exit(launch, sandbox):
    gateway = launch(sandbox_settings(sandbox.url))
    directory = metrics_dir(gateway)
    assert os.path.isdir(directory)
    assert gateway.post_ticket(ticket()).status_code == 201
    assert value(scrape(gateway), CREATED) == 1
    gateway.stop()
    assert not os.path.exists(directory)


@pytest.mark.slow
def test_a_configured_metrics_directory_is_created_wiped_at_start_and_kept(launch, sandbox, tmp_path):
    directory = tmp_path / "metricas"
    settings = sandbox_settings(sandbox.url, PROMETHEUS_MULTIPROC_DIR=str(directory))
    first = launch(settings)
    assert metrics_dir(first) == str(directory)
    assert first.post_ticket(ticket()).status_code == 201
    assert value(scrape(first), CREATED) == 1
    first.stop()
    (directory / "LEIA-ME.txt").write_text("não é do gateway")

    second = launch(settings)
    assert value(scrape(second), CREATED) == 0
    second.stop()
    assert (directory / "LEIA-ME.txt").exists()


@pytest.mark.slow
def test_an_unusable_metrics_directory_stops_the_start_naming_the_variable(launch, sandbox, tmp_path):
    not_a_directory = tmp_path / "arquivo"
    not_a_directory.write_text("")
    gateway = launch(sandbox_settings(sandbox.url, PROMETHEUS_MULTIPROC_DIR=str(not_a_directory)))
    assert gateway.exit_code not in (None, 0)
    assert "PROMETHEUS_MULTIPROC_DIR" in gateway.logs()


@pytest.mark.slow
def test_preloading_the_app_is_refused_at_start(launch, sandbox, tmp_path):
    # A preloaded app is built in the master before on_starting runs; the directory
    # only keeps that doomed master's files out of the working directory.
    gateway = launch(
        sandbox_settings(sandbox.url, GUNICORN_CMD_ARGS="--preload", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    )
    assert gateway.exit_code not in (None, 0)
    assert "preload" in gateway.logs()


# --- without gunicorn (python app.py) ------------------------------------------------


def test_a_single_process_keeps_its_metrics_in_its_own_registry(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics, other = GatewayMetrics(), GatewayMetrics()
    metrics.ticket_created()
    metrics.ticket_failed("erro_glpi")
    metrics.glpi_call("POST", "Ticket", 0.2)
    metrics.entity_cache_lookup(hit=True)
    metrics.entity_cache_lookup(hit=False)
    metrics.entity_cache_lookup(hit=False)
    samples = parse(metrics.exposition().decode())
    assert value(samples, CREATED) == 1
    assert value(samples, FAILED, codigo="erro_glpi") == 1
    assert value(samples, f"{GLPI_SECONDS}_bucket", method="POST", endpoint="Ticket", le="0.25") == 1
    assert value(samples, f"{GLPI_SECONDS}_bucket", method="POST", endpoint="Ticket", le="0.1") == 0
    assert (value(samples, CACHE_HITS), value(samples, CACHE_MISSES)) == (1, 2)
    assert value(parse(other.exposition().decode()), CREATED) == 0


def test_a_single_process_reads_the_queue_at_each_scrape(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    backlogs = iter([(2, 7.5), (0, 0.0)])
    metrics = GatewayMetrics(queue_backlog=lambda: next(backlogs))
    metrics.ticket_queued()
    first = parse(metrics.exposition().decode())
    assert (value(first, QUEUE_DEPTH), value(first, QUEUE_AGE), value(first, QUEUED)) == (2, 7.5, 1)
    second = parse(metrics.exposition().decode())
    assert (value(second, QUEUE_DEPTH), value(second, QUEUE_AGE)) == (0, 0)


def test_a_scrape_without_the_store_still_serves_the_other_metrics(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    def unavailable():
        raise StoreUnavailable("SQLite /data/gateway.sqlite3: disk I/O error")

    metrics = GatewayMetrics(queue_backlog=unavailable)
    metrics.ticket_created()
    samples = parse(metrics.exposition().decode())
    assert value(samples, CREATED) == 1
    assert not [key for key in samples if key[0] in (QUEUE_DEPTH, QUEUE_AGE)]


# --- the files of the workers ------------------------------------------------------------


def test_a_scrape_skips_the_file_of_a_worker_still_creating_it(monkeypatch, tmp_path):
    # prometheus_client creates a worker's file empty and sizes it a moment later: a scrape
    # in between used to fail (struct.error, a 500) instead of counting the other workers.
    running = MmapedDict(str(tmp_path / "counter_101.db"))
    running.write_value(mmap_key(CREATED.removesuffix("_total"), CREATED, [], [], "Chamados criados"), 3.0, 0.0)
    running.close()
    (tmp_path / "counter_102.db").touch()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert value(parse(GatewayMetrics().exposition().decode()), CREATED) == 3
