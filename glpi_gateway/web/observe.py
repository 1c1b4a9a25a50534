"""What the metrics learn from each request: the outcome of every ticket attempt, and /metrics."""

from __future__ import annotations

from flask import Flask, Response, request

from glpi_gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from glpi_gateway.metrics import GatewayMetrics
from glpi_gateway.store import CREATED
from glpi_gateway.web.access import CREATE_TICKET_ENDPOINT
from glpi_gateway.web.context import current


def register_metrics(app: Flask, metrics: GatewayMetrics, expose: bool) -> None:
    @app.after_request
    def count_ticket_outcome(response: Response) -> Response:
        # request.endpoint is None when routing failed (404/405): not a ticket attempt.
        if request.endpoint == CREATE_TICKET_ENDPOINT:
            ctx = current()
            if ctx.ticket_id is not None:
                metrics.ticket_created()
            elif ctx.queued:
                metrics.ticket_queued()
            elif ctx.codigo:
                metrics.ticket_failed(ctx.codigo)
        return response

    if expose:

        @app.get("/metrics")
        def prometheus_metrics() -> Response:
            return Response(metrics.exposition(), content_type=METRICS_CONTENT_TYPE)


def count_delivery(metrics: GatewayMetrics, state: str, codigo: str | None) -> None:
    """A queued ticket delivered later counts like one answered at once: created, or failed by codigo."""
    if state == CREATED:
        metrics.ticket_created()
    elif codigo is not None:  # always, for FAILED: the worker passes its refusal's codigo
        metrics.ticket_failed(codigo)
