"""Uploads in bounded memory (REVIEW.md #2), over HTTP under real gunicorn.

The public form key gets fewer, smaller files of the safer types; each process handles at most
MULTIPART_MAX_IN_FLIGHT multipart requests (503 + Retry-After beyond); the files stay spooled
(never read whole) on their way to GLPI, so the workers' memory does not follow the uploads.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.harness import sandbox_settings, start_gateway
from tests.helpers import BETA, PDF, PNG, anexos, assert_error, body, docx, solved_challenge

pytestmark = pytest.mark.slow

FORM_KEY = secrets.token_urlsafe(32)
INTEGRATION_KEY = secrets.token_urlsafe(32)
KEYS = {"API_KEYS": f"formulario:{FORM_KEY},zabbix:{INTEGRATION_KEY}", "FORM_API_KEY_NAME": "formulario"}
MIB = 1024 * 1024


def post(gateway, key: str, files) -> requests.Response:
    return requests.post(
        f"{gateway.url}/criar-chamado",
        data=body(cnpj_cliente=BETA),
        files=files,
        headers={
            "X-API-Key": key,
            "Connection": "close",
            **(solved_challenge(gateway) if key == FORM_KEY else {}),
        },
        timeout=60,
    )


def big_png(size: int) -> bytes:
    return PNG + os.urandom(size - len(PNG))


@pytest.fixture(scope="module")
def keyed_gateway(sandbox, tmp_path_factory):

    process = start_gateway(tmp_path_factory.mktemp("uploads"), sandbox_settings(sandbox.url, **KEYS))
    assert process.exit_code is None, process.logs()
    yield process
    process.stop()


def test_the_public_form_key_takes_only_images_pdf_and_text(keyed_gateway):
    refused = post(keyed_gateway, FORM_KEY, anexos(("orçamento.docx", docx())))
    assert_error(refused, 400, "dados_invalidos")
    assert "orçamento.docx" in refused.json()["campos"]["anexos"]
    taken = post(keyed_gateway, INTEGRATION_KEY, anexos(("orçamento.docx", docx())))
    assert taken.status_code == 201, taken.text
    assert post(keyed_gateway, FORM_KEY, anexos(("a.png", PNG), ("b.pdf", PDF))).status_code == 201


def test_the_public_form_key_has_smaller_limits(keyed_gateway):
    four = anexos(*[(f"{n}.png", PNG) for n in range(4)])
    assert_error(post(keyed_gateway, FORM_KEY, four), 400, "dados_invalidos")
    assert post(keyed_gateway, INTEGRATION_KEY, four).status_code == 201

    three_mib = anexos(("grande.png", big_png(3 * MIB)))
    refused = post(keyed_gateway, FORM_KEY, three_mib)
    assert refused.status_code in (400, 413), refused.text
    assert post(keyed_gateway, INTEGRATION_KEY, three_mib).status_code == 201


def test_multipart_requests_beyond_the_cap_get_503_with_retry_after(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, MULTIPART_MAX_IN_FLIGHT="1", GUNICORN_THREADS="4"))
    sandbox.latency_ms = 1500  # the first upload stays in flight
    answers: list[requests.Response] = []
    first = threading.Thread(
        target=lambda: answers.append(
            requests.post(f"{gateway.url}/criar-chamado", data=body(), files=anexos(("a.png", PNG)), timeout=60)
        )
    )
    first.start()
    time.sleep(0.7)
    busy = requests.post(f"{gateway.url}/criar-chamado", data=body(), files=anexos(("b.png", PNG)), timeout=60)
    first.join()
    assert_error(busy, 503, "anexos_ocupado")
    assert int(busy.headers["Retry-After"]) > 0
    assert answers[0].status_code == 201, answers[0].text
    # JSON requests are not counted.
    sandbox.latency_ms = 0
    assert requests.post(f"{gateway.url}/criar-chamado", json=body(), timeout=30).status_code == 201


def worker_rss_mb(master_pid: int) -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != master_pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (OSError, ValueError):
            continue
    return total


def test_concurrent_large_uploads_do_not_grow_the_workers_memory_with_the_files(sandbox, launch):
    gateway = launch(sandbox_settings(sandbox.url, WEB_CONCURRENCY="1", GUNICORN_THREADS="8"))
    files = anexos(*[(f"{n}.png", big_png(5 * MIB - 4096)) for n in range(5)])  # 25 MB per request
    requests.post(f"{gateway.url}/criar-chamado", data=body(), files=anexos(("a.png", PNG)), timeout=60)
    baseline = worker_rss_mb(gateway.process.pid)
    sandbox.latency_ms = 300
    peak, statuses, done = baseline, [], threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, worker_rss_mb(gateway.process.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    senders = [
        threading.Thread(
            target=lambda: statuses.append(
                requests.post(f"{gateway.url}/criar-chamado", data=body(), files=files, timeout=120).status_code
            )
        )
        for _ in range(4)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    done.set()
    sampler.join()
    assert sorted(statuses) == [201] * 4, statuses
    # Read whole and copied for GLPI, 4 × 25 MB took ~120 MB more; spooled, a few MB.
    assert peak - baseline < 40, (baseline, peak)
