"""`make bench-uploads`: the workers' memory under concurrent maximum-size uploads (REVIEW.md #2).

Starts the GLPI sandbox (with latency, so uploads stay in flight) and the gateway under gunicorn
as the Docker image does, then sends `--uploads` concurrent `POST /criar-chamado` with
`ATTACHMENTS_MAX_COUNT` files of `ATTACHMENTS_MAX_BYTES` each (PNG signature plus random bytes),
with the public form key or an integration key. Prints the workers' RSS before, at the peak
(sampled every 50 ms) and after, and the answers (201, 503 `anexos_ocupado`, ...).

    .venv/bin/python bench/upload_memory.py                 # integration key, the largest uploads
    .venv/bin/python bench/upload_memory.py --form-key      # the public form key's limits
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.bench import HOST, serve, start_sandbox
from glpi_gateway.challenge import solve

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
FIELDS = {
    "nome_cliente": "Maria Souza",
    "telefone_cliente": "(11) 91234-5678",
    "cnpj_cliente": "11.222.333/0001-81",
    "anydesk_cliente": "123 456 789",
    "descricao_problema": "Segue o print do erro.",
}


def fields(number: int) -> dict[str, str]:
    """Request `number`'s form fields: another customer's each, or the dedupe window (DEDUPE_WINDOW_SECONDS)
    would answer identical requests from the first one (409 while it is still being sent)."""
    return {**FIELDS, "descricao_problema": f"{FIELDS['descricao_problema']} (pedido {number})"}


def challenge_headers(port: int) -> dict[str, str]:
    issued = requests.get(f"http://{HOST}:{port}/formulario/desafio", timeout=10).json()
    return {"X-Desafio": issued["desafio"], "X-Desafio-Solucao": solve(issued["desafio"], issued["dificuldade"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=32)
    parser.add_argument("--form-key", action="store_true", help="send with the public form key")
    parser.add_argument("--latency-ms", type=float, default=1500.0)
    parser.add_argument("--in-flight", default="", help="MULTIPART_MAX_IN_FLIGHT (empty: the default)")
    args = parser.parse_args(argv)

    form_key, integration_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    count, size = (3, 2 * 1024 * 1024) if args.form_key else (5, 5 * 1024 * 1024)
    key = form_key if args.form_key else integration_key
    files = [("anexos", (f"print-{n}.png", PNG + os.urandom(size - len(PNG)), "image/png")) for n in range(count)]
    sandbox = start_sandbox(0)
    try:
        with tempfile.TemporaryDirectory(prefix="upload-memory-") as log_dir:
            server = serve(
                "app:create_app()",
                sandbox,
                Path(log_dir),
                {
                    "API_KEYS": f"formulario:{form_key},zabbix:{integration_key}",
                    "FORM_API_KEY_NAME": "formulario",
                    "MULTIPART_MAX_IN_FLIGHT": args.in_flight,
                },
            )
            url = f"http://{HOST}:{server.port}/criar-chamado"
            try:
                headers = {"X-API-Key": integration_key}
                for number in range(2):  # warm up: sessions, caches, one upload per worker
                    requests.post(url, data=fields(-1 - number), files=files[:1], headers=headers, timeout=60)
                requests.post(
                    f"{sandbox.api_url.rsplit('/', 1)[0]}/_sandbox/config", json={"latency_ms": args.latency_ms}
                )
                before = sum(server.worker_rss_mb())
                peak, done = before, threading.Event()
                statuses: collections.Counter[str] = collections.Counter()

                def sample() -> None:
                    nonlocal peak
                    while not done.wait(0.05):
                        peak = max(peak, sum(server.worker_rss_mb()))

                # The form key's posts carry a solved challenge each, as the form sends them.
                proofs = [
                    {"X-API-Key": key, **(challenge_headers(server.port) if key == form_key else {})}
                    for _ in range(args.uploads)
                ]

                def send(number: int, headers: dict[str, str]) -> None:
                    try:
                        response = requests.post(url, data=fields(number), files=files, headers=headers, timeout=300)
                        code = response.json().get("codigo", "") if response.status_code >= 400 else ""
                        statuses[f"{response.status_code} {code}".strip()] += 1
                    except requests.RequestException as error:
                        statuses[type(error).__name__] += 1

                sampler = threading.Thread(target=sample)
                sampler.start()
                started = time.perf_counter()
                senders = [threading.Thread(target=send, args=item) for item in enumerate(proofs)]
                for sender in senders:
                    sender.start()
                for sender in senders:
                    sender.join()
                elapsed = time.perf_counter() - started
                done.set()
                sampler.join()
                after = sum(server.worker_rss_mb())
            finally:
                server.stop()
    finally:
        sandbox.stop()
    body_mb = sum(len(content) for _, (_, content, _) in files) / 1e6
    print(
        f"{args.uploads} envios simultâneos de {count} × {size // (1024 * 1024)} MiB ({body_mb:.1f} MB), "
        f"chave {'do formulário' if args.form_key else 'de integração'}, latência do GLPI {args.latency_ms:g} ms"
    )
    print(f"RSS dos workers (soma): antes {before:.0f} MB, pico {peak:.0f} MB, depois {after:.0f} MB")
    print(f"respostas: {dict(statuses)} em {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
