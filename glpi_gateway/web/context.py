"""Per-request state (one typed `RequestContext` in `flask.g`), its X-Request-ID and the one
log line every request leaves."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, has_request_context, request

from glpi_gateway.idempotency import HeldKey
from glpi_gateway.ratelimit import client_ip

# An X-Request-ID the gateway keeps; any other is replaced by a new one.
REQUEST_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
_SANE_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

log = logging.getLogger(__name__)


@dataclass
class RequestContext:
    """What the hooks, the routes and the error answers learn about one request."""

    request_id: str
    started: float
    client_ip: str
    api_key: str | None = None  # the name of the API key, never the key
    protocolo: str | None = None
    ticket_id: int | None = None
    queued: bool = False
    codigo: str | None = None  # of the error answer, when there was one
    glpi_calls: int = 0
    held_key: HeldKey | None = None  # the Idempotency-Key (given or implicit) claimed, not yet settled
    # The answer is a ticket's 201 whose protocol is remembered: a repeat is answered from the
    # protocol, so the key needs no stored answer (one store write less per ticket).
    answer_in_protocol: bool = False
    # Whether the caller may see details (/health's checks, 409's entity names): a private key,
    # or anyone in open mode (no API_KEYS), where everything is open anyway.
    sees_details: bool = False
    # Counts the request against its key's limit once it is a real ticket attempt (the form key).
    count_ticket_attempt: Callable[[], None] | None = None


def current() -> RequestContext:
    return g.ctx


def log_context() -> dict:
    """Fields every log line written while serving a request carries."""
    ctx = g.get("ctx") if has_request_context() else None
    return {"request_id": ctx.request_id} if ctx is not None else {}


def count_glpi_call() -> None:
    ctx = g.get("ctx") if has_request_context() else None
    if ctx is not None:
        ctx.glpi_calls += 1


def register_request_context(app: Flask, trusted_proxies: tuple) -> None:
    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.ctx = RequestContext(
            request_id=incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex,
            started=time.perf_counter(),
            client_ip=client_ip(
                request.remote_addr, ",".join(request.headers.getlist("X-Forwarded-For")), trusted_proxies
            ),
        )

    @app.after_request
    def finish_request(response: Response) -> Response:
        ctx = current()
        response.headers["X-Request-ID"] = ctx.request_id
        log.info(
            "%s %s -> %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "event": "pedido",
                "request_id": ctx.request_id,
                "api_key": ctx.api_key,
                "client_ip": ctx.client_ip,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - ctx.started) * 1000, 1),
                "glpi_calls": ctx.glpi_calls,
                "ticket_id": ctx.ticket_id,
                "protocolo": ctx.protocolo,
                "codigo": ctx.codigo,
            },
        )
        return response
