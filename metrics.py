"""Prometheus metrics of the gateway, right whichever gunicorn worker answers the scrape.

Under gunicorn, gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at an empty directory
before any worker starts; prometheus_client then keeps each worker's values in files
there, and a scrape adds up the files of every worker, dead or alive. Without the
variable (`python app.py`, unit tests) the values live in this object's own registry.

Every label value comes from a closed set: `codigo` from the error answers in app.py,
`method` and `endpoint` from the GLPI client, which writes ids as `:id`.
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format that generate_latest writes


class GatewayMetrics:
    def __init__(self) -> None:
        # prometheus_client chose its storage from this variable when it was imported;
        # read the same source (the process environment, not .env).
        self._multiproc_dir = os.environ.get(MULTIPROC_DIR_VARIABLE) or None
        self._registry = CollectorRegistry()
        self._tickets_created = Counter(
            "glpi_gateway_tickets_created", "Chamados criados no GLPI", registry=self._registry
        )
        self._tickets_failed = Counter(
            "glpi_gateway_tickets_failed",
            "Pedidos a POST /criar-chamado respondidos com erro, por codigo",
            ["codigo"],
            registry=self._registry,
        )
        self._glpi_seconds = Histogram(
            "glpi_gateway_glpi_request_duration_seconds",
            "Duração das chamadas à API do GLPI (com ou sem resposta), por método e endpoint",
            ["method", "endpoint"],
            registry=self._registry,
        )
        self._entity_cache_hits = Counter(
            "glpi_gateway_entity_cache_hits",
            "Buscas de CNPJ respondidas pelo cache de entidades (inclui CNPJ sabidamente sem entidade)",
            registry=self._registry,
        )
        self._entity_cache_misses = Counter(
            "glpi_gateway_entity_cache_misses",
            "Buscas de CNPJ que não estavam no cache de entidades",
            registry=self._registry,
        )

    def ticket_created(self) -> None:
        self._tickets_created.inc()

    def ticket_failed(self, codigo: str) -> None:
        self._tickets_failed.labels(codigo=codigo).inc()

    def glpi_call(self, method: str, endpoint: str, seconds: float) -> None:
        self._glpi_seconds.labels(method=method, endpoint=endpoint).observe(seconds)

    def entity_cache_lookup(self, hit: bool) -> None:
        (self._entity_cache_hits if hit else self._entity_cache_misses).inc()

    def exposition(self) -> bytes:
        """One scrape, in the Prometheus text format.

        Values that are only known at scrape time (the queue's depth and oldest item
        age, once there is a queue) belong in a collector registered on the registry
        built here, so that they are read once per scrape and not summed per worker.
        """
        if self._multiproc_dir is None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._multiproc_dir)
        return generate_latest(registry)
