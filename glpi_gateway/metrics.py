"""Prometheus metrics of the gateway, right whichever gunicorn worker answers the scrape.

Under gunicorn, gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at an empty directory
before any worker starts; prometheus_client then keeps each worker's values in files
there, and a scrape adds up the files of every worker, dead or alive. Without the
variable (`python app.py`, unit tests) the values live in this object's own registry.

Every label value comes from a closed set: `codigo` from the catalogue in error_answers.py and
the refusals of delivery.refusal_reason, `method` and `endpoint` from the GLPI client,
which writes ids as `:id`.

The queue's depth and oldest age are not kept per worker: the queue is shared (SQLite file
or Redis), so `QueueCollector`, registered on the registry of each scrape, reads it from the
store in the worker that answers, and each value appears once. A multiprocess Gauge would
instead keep one value per worker, as of whenever that worker last set it, and add them up
(or pick one) at scrape time.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from glpi_gateway.store import StoreUnavailable

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format that generate_latest writes

log = logging.getLogger(__name__)


class QueueCollector:
    """The delivery queue's depth and the age of its oldest ticket, read at each scrape.

    `backlog()` returns (depth, oldest age in seconds). When the store does not answer, the
    two gauges are left out of that scrape (the rest is still served) and the error is logged.
    """

    def __init__(self, backlog: Callable[[], tuple[int, float]]):
        self._backlog = backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth, oldest_age = self._backlog()
        except StoreUnavailable as error:
            log.warning(
                "métricas: fila não lida, o armazenamento está indisponível (%s)",
                error,
                extra={"event": "metricas_fila_ilegivel"},
            )
            return
        yield GaugeMetricFamily(
            "glpi_gateway_queue_depth", "Pedidos enfileirados à espera de entrega ao GLPI", value=depth
        )
        yield GaugeMetricFamily(
            "glpi_gateway_queue_oldest_age_seconds",
            "Há quantos segundos o pedido enfileirado mais antigo espera (0 com a fila vazia)",
            value=oldest_age,
        )


class WorkerFilesCollector:
    """The values in every worker's files, added up (prometheus_client's MultiProcessCollector),
    less the files still empty: a starting worker's file is created first and sized a moment
    later, and reading it empty would fail the whole scrape."""

    def __init__(self, directory: str):
        self._directory = directory

    def collect(self) -> Iterable[Metric]:
        files = [path for path in glob.glob(os.path.join(self._directory, "*.db")) if _has_content(path)]
        return MultiProcessCollector.merge(files, accumulate=True)


def _has_content(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except FileNotFoundError:
        return False


class GatewayMetrics:
    def __init__(self, queue_backlog: Callable[[], tuple[int, float]] | None = None) -> None:
        # prometheus_client chose its storage from this variable when it was imported;
        # read the same source (the process environment, not .env).
        self._multiproc_dir = os.environ.get(MULTIPROC_DIR_VARIABLE) or None
        self._registry = CollectorRegistry()
        self._tickets_created = Counter(
            "glpi_gateway_tickets_created",
            "Chamados criados no GLPI, na hora (201) ou depois pela fila",
            registry=self._registry,
        )
        self._tickets_queued = Counter(
            "glpi_gateway_tickets_queued",
            "Pedidos enfileirados com o GLPI indisponível (respostas 202)",
            registry=self._registry,
        )
        self._tickets_failed = Counter(
            "glpi_gateway_tickets_failed",
            "Pedidos a POST /criar-chamado respondidos com erro, e enfileirados que o GLPI recusou, por codigo",
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
        self._rate_limit_unchecked = Counter(
            "glpi_gateway_rate_limit_unchecked",
            "Pedidos que passaram sem o limite ser verificado (armazenamento lento ou fora), por escopo",
            ["scope"],
            registry=self._registry,
        )
        self._queue = QueueCollector(queue_backlog) if queue_backlog is not None else None
        if self._queue is not None:
            self._registry.register(self._queue)

    def ticket_created(self) -> None:
        self._tickets_created.inc()

    def ticket_queued(self) -> None:
        self._tickets_queued.inc()

    def ticket_failed(self, codigo: str) -> None:
        self._tickets_failed.labels(codigo=codigo).inc()

    def glpi_call(self, method: str, endpoint: str, seconds: float) -> None:
        self._glpi_seconds.labels(method=method, endpoint=endpoint).observe(seconds)

    def entity_cache_lookup(self, hit: bool) -> None:
        (self._entity_cache_hits if hit else self._entity_cache_misses).inc()

    def rate_limit_unchecked(self, scope: str) -> None:
        self._rate_limit_unchecked.labels(scope=scope).inc()

    def exposition(self) -> bytes:
        """One scrape, in the Prometheus text format: every worker's files added up, and the
        values only known at scrape time (the queue) read once, by this worker."""
        if self._multiproc_dir is None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        registry.register(WorkerFilesCollector(self._multiproc_dir))
        if self._queue is not None:
            registry.register(self._queue)
        return generate_latest(registry)
