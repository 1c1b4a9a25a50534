"""Whether GLPI may e-mail the address a caller typed in `email_cliente` (no open mail relay).

GLPI notifies a ticket's requester at `alternative_email`: new ticket, follow-ups,
solution, with a title and body the caller wrote. Without a limit, anyone holding
the public form key could make the company's GLPI mail any address. So each
recipient may get notifications for at most EMAIL_NOTIFY_LIMIT tickets per window
(counted in the store, so every worker and instance shares the count); beyond it,
or when the store cannot count, the e-mail still goes into the ticket content but
GLPI is not asked to notify it. Keys listed in EMAIL_NOTIFY_UNLIMITED_KEYS (never
the form key) skip the limit: they belong to systems the operator trusts.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from config import RateLimit
from glpi_gateway.store import Store, StoreUnavailable
from glpi_gateway.validation import TicketRequest

log = logging.getLogger(__name__)


class EmailNotifyPolicy:
    def __init__(self, store: Store, limit: RateLimit | None, unlimited_keys: tuple[str, ...] = ()):
        self._store = store
        self._limit = limit  # None: notifications off for every caller outside unlimited_keys
        self._unlimited = frozenset(unlimited_keys)

    def apply(self, request: TicketRequest, api_key: str | None) -> TicketRequest:
        """The request with `notificar_email` decided for this caller (counts one notification)."""
        if not request.email_cliente:
            return request
        if api_key is not None and api_key in self._unlimited:
            return replace(request, notificar_email=True)
        return replace(request, notificar_email=self._within_limit(request.email_cliente))

    def _within_limit(self, email: str) -> bool:
        if self._limit is None:
            return False
        # The store keeps a digest, not the address: no customer e-mail at rest in the counters.
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        try:
            refused = (
                self._store.count_hit(
                    f"email:{self._limit.window_seconds}:{digest}", self._limit.window_seconds, self._limit.limit
                )
                is not None
            )
        except StoreUnavailable as error:
            log.warning(
                "notificação por e-mail não enviada: contador por destinatário indisponível: %s",
                error,
                extra={"event": "notificacao_email_sem_contador"},
            )
            return False
        if refused:
            log.info(
                "notificação por e-mail não enviada: destinatário acima de %s (o e-mail fica só no conteúdo)",
                self._limit,
                extra={"event": "notificacao_email_limitada"},
            )
            return False
        return True
