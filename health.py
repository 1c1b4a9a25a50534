"""Readiness: can this worker create tickets right now? The checks behind GET /health."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from gateway import GatewaySetupError, SingleFlight, TicketGateway, TtlCache
from glpi_client import GlpiAuthError, GlpiClient, GlpiError, GlpiUnavailable
from logging_setup import LOGGER_NAME

UNAVAILABLE_DETAILS = {
    "TIMEOUT": "o GLPI não respondeu a tempo",
    "CONNECTION_FAILED": "não foi possível conectar ao GLPI",
    "TLS_ERROR": "o certificado TLS do GLPI não foi aceito",
    "SERVER_ERROR": "o GLPI respondeu com erro interno",
    "NOT_JSON": "o GLPI respondeu algo que não é a API REST (verifique GLPI_URL)",
    "REDIRECTED": "o GLPI redirecionou a chamada (verifique GLPI_URL)",
}

log = logging.getLogger(LOGGER_NAME)


class Readiness:
    """Is this worker ready to create tickets? The checks behind GET /health.

    The GLPI checks cost a GLPI call, so their result is kept `cache_ttl` seconds and concurrent
    polls share one probe: a load balancer polling /health does not hammer GLPI. Another check
    (a queue backlog, say) is one more entry in `checks()`.
    """

    def __init__(self, gateway: TicketGateway, client: GlpiClient, cache_ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self._gateway = gateway
        self._client = client
        self._cache_ttl = cache_ttl
        self._cache: TtlCache[dict[str, dict[str, Any]]] = TtlCache(clock)
        self._probes = SingleFlight()

    def checks(self) -> dict[str, dict[str, Any]]:
        """{name: {"ok": bool, "detalhe": why not}}; the configuration was validated at start-up."""
        glpi = self._cache.get("glpi")
        if glpi is None:
            glpi = self._probes.do("glpi", self._probe_glpi)
        return {"configuracao": {"ok": True}, **glpi}

    def _probe_glpi(self) -> dict[str, dict[str, Any]]:
        try:
            self._client.count("Entity")
        except GlpiError as error:
            log.warning("health: GLPI session check failed (%s)", error.code)
            session = {"ok": False, "detalhe": describe_glpi_error(error)}
            setup = {"ok": True} if self._gateway.is_set_up else {
                "ok": False, "detalhe": "pendentes: dependem de uma sessão no GLPI"}
        else:
            session = {"ok": True}
            setup = self._probe_setup()
        result = {"sessao_glpi": session, "verificacoes_partida": setup}
        self._cache.put("glpi", result, self._cache_ttl)
        return result

    def _probe_setup(self) -> dict[str, Any]:
        try:
            self._gateway.check_setup()
        except GatewaySetupError as error:
            log.error("health: configuração incompatível com o GLPI: %s", error)
            return {"ok": False, "detalhe": "configuração incompatível com o GLPI; rode python app.py doctor"}
        except GlpiError as error:
            return {"ok": False, "detalhe": describe_glpi_error(error)}
        return {"ok": True}


def describe_glpi_error(error: GlpiError) -> str:
    if isinstance(error, GlpiUnavailable):
        return UNAVAILABLE_DETAILS.get(error.code, "resposta inesperada do GLPI")
    if isinstance(error, GlpiAuthError):
        return f"o GLPI recusou as credenciais ({error.code})"
    return f"o GLPI recusou a consulta ({error.code})"
