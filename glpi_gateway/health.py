"""Readiness: can this worker create tickets right now? The checks behind GET /health."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from glpi_client import GlpiClient, GlpiError
from glpi_gateway.caching import SingleFlight, TtlCache
from glpi_gateway.errors import describe_glpi_error
from glpi_gateway.store import StoreUnavailable
from glpi_gateway.tickets import GatewaySetupError, TicketGateway

log = logging.getLogger(__name__)


class Readiness:
    """Is this worker ready to create tickets? The checks behind GET /health.

    The GLPI checks cost a GLPI call, so their result is kept `cache_ttl` seconds and concurrent
    polls share one probe: a load balancer polling /health does not hammer GLPI. The queue check
    reads the store through `queue_backlog()` (depth, oldest age in seconds), cached the same way;
    it fails once the oldest queued ticket has waited more than `queue_max_age` seconds.
    """

    def __init__(
        self,
        gateway: TicketGateway,
        client: GlpiClient,
        cache_ttl: float,
        queue_backlog: Callable[[], tuple[int, float]],
        queue_max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._gateway = gateway
        self._client = client
        self._cache_ttl = cache_ttl
        self._queue_backlog = queue_backlog
        self._queue_max_age = queue_max_age
        self._cache: TtlCache[dict[str, dict[str, Any]]] = TtlCache(clock)
        self._probes = SingleFlight()

    def checks(self) -> dict[str, dict[str, Any]]:
        """{name: {"ok": bool, "detalhe": why not, ...}}; the configuration was validated at start-up."""
        glpi = self._cached("glpi", self._probe_glpi)
        queue = self._cached("fila", self._probe_queue)
        return {"configuracao": {"ok": True}, **glpi, **queue}

    def _cached(self, name: str, probe: Callable[[], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        def probe_and_keep() -> dict[str, dict[str, Any]]:
            # Kept before the flight ends, so that a poll arriving right after it finds the result.
            result = probe()
            self._cache.put(name, result, self._cache_ttl)
            return result

        cached = self._cache.get(name)
        return cached if cached is not None else self._probes.do(name, probe_and_keep)

    def _probe_queue(self) -> dict[str, dict[str, Any]]:
        try:
            depth, oldest_age = self._queue_backlog()
        except StoreUnavailable as error:
            log.error("health: a fila não pôde ser lida: %s", error, extra={"event": "health_fila_ilegivel"})
            return {"fila": {"ok": False, "detalhe": "o armazenamento da fila (DATA_DIR ou REDIS_URL) não respondeu"}}
        check: dict[str, Any] = {"ok": oldest_age <= self._queue_max_age}
        if not check["ok"]:
            check["detalhe"] = (
                f"o pedido mais antigo da fila espera há {oldest_age:.0f} s, "
                f"mais que HEALTH_QUEUE_MAX_AGE ({self._queue_max_age:g} s)"
            )
        check.update(enfileirados=depth, mais_antigo_segundos=round(oldest_age, 1))
        return {"fila": check}

    def _probe_glpi(self) -> dict[str, dict[str, Any]]:
        try:
            self._client.count("Entity")
        except GlpiError as error:
            log.warning(
                "health: a sessão do GLPI falhou (%s)", error.code, extra={"event": "health_sessao_glpi_falhou"}
            )
            session = {"ok": False, "detalhe": describe_glpi_error(error)}
            setup = (
                {"ok": True}
                if self._gateway.is_set_up
                else {"ok": False, "detalhe": "pendentes: dependem de uma sessão no GLPI"}
            )
        else:
            session = {"ok": True}
            setup = self._probe_setup()
        return {"sessao_glpi": session, "verificacoes_partida": setup}

    def _probe_setup(self) -> dict[str, Any]:
        try:
            self._gateway.check_setup()
        except GatewaySetupError as error:
            log.error(
                "health: configuração incompatível com o GLPI: %s", error, extra={"event": "configuracao_incompativel"}
            )
            return {"ok": False, "detalhe": "configuração incompatível com o GLPI; rode python app.py doctor"}
        except GlpiError as error:
            return {"ok": False, "detalhe": describe_glpi_error(error)}
        return {"ok": True}
