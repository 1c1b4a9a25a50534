"""The HTTP face of the gateway: Flask hooks, routes, the contact form and the API document.

app.create_app() registers each part, in this order (hooks run in registration order,
after-request hooks in reverse): context.py (per-request state and its log line), access.py
(keys, CORS, limits), routes.py (/ping, /health, the API document), tickets.py (opening a
ticket), follow.py (looking it up and adding to it), observe.py (ticket counters and /metrics),
form.py (the contact form) and errors.py (every failure as a JSON answer).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from glpi_client import GlpiClient
from glpi_gateway.delivery import DeliveryWorker
from glpi_gateway.store import Store
from glpi_gateway.tickets import TicketGateway

EXTENSION = "glpi_gateway"


@dataclass(frozen=True)
class Services:
    """What an app holds beyond its routes, for the process that serves it (gunicorn.conf.py)."""

    glpi_client: GlpiClient
    gateway: TicketGateway
    store: Store
    delivery_worker: DeliveryWorker

    def start(self) -> None:
        """Per worker process, after the fork: the delivery worker (the store's lease lets one drain)."""
        self.delivery_worker.start()

    def stop(self, timeout: float) -> None:
        """After the last request: finish the delivery under way, then end the GLPI sessions so
        they do not linger until PHP's garbage collection."""
        self.delivery_worker.stop(timeout=timeout)
        self.glpi_client.close()


def services(app: Flask) -> Services:
    return app.extensions[EXTENSION]
