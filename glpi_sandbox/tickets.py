"""Creating tickets: POST /Ticket, one or a list, with GLPI's silent corrections and the requesters it keeps."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from .api import NO_PERMISSION, AddRefused, Response, Session, create_items
from .base import SandboxBase
from .php import decode_html, php_int, php_values, plain_text, priority_level
from .versions import TICKET_COLUMNS_10_ONLY, TICKET_COLUMNS_11, added_message

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# GLPI's default priority matrix: PRIORITY[urgency][impact].
PRIORITY = {
    1: {1: 1, 2: 1, 3: 2, 4: 2, 5: 2},
    2: {1: 1, 2: 2, 3: 2, 4: 3, 5: 3},
    3: {1: 2, 2: 2, 3: 3, 4: 4, 5: 4},
    4: {1: 2, 2: 3, 3: 4, 4: 4, 5: 5},
    5: {1: 2, 2: 3, 3: 4, 4: 5, 5: 5},
}

# Columns of a new ticket that the API does not let a client set, in GLPI's column order.
TICKET_FIXED_COLUMNS = {
    "global_validation": 1,
    "slas_id_ttr": 0,
    "slas_id_tto": 0,
    "slalevels_id_ttr": 0,
    "time_to_resolve": None,
    "time_to_own": None,
    "begin_waiting_date": None,
    "sla_waiting_duration": 0,
    "ola_waiting_duration": 0,
    "olas_id_tto": 0,
    "olas_id_ttr": 0,
    "olalevels_id_ttr": 0,
    "ola_tto_begin_date": None,
    "ola_ttr_begin_date": None,
    "internal_time_to_resolve": None,
    "internal_time_to_own": None,
    "waiting_duration": 0,
    "close_delay_stat": 0,
    "solve_delay_stat": 0,
    "takeintoaccount_delay_stat": 0,
    "actiontime": 0,
    "is_deleted": 0,
    "locations_id": 0,
    "validation_percent": 0,
}


class TicketsMixin(SandboxBase):
    """Part of GlpiSandbox: POST /Ticket."""

    def _create_tickets(self, session: Session, params: dict, headers: Message, api_url: str) -> Response:
        """POST /Ticket: an `input` object creates one ticket, a list several (notes §5)."""

        def add(fields: dict) -> tuple[int, str]:
            ticket_id = self._add_ticket(session, fields)
            return ticket_id, self._added_message(ticket_id, headers)

        return create_items("Ticket", params, add, api_url)

    def _add_ticket(self, session: Session, fields: dict) -> int:
        """GLPI's Ticket::add() for one input, with its silent corrections (notes §6)."""
        requesters = self._requesters(fields)
        content = self._text(fields.get("content")).replace("\r\n", "\n")
        name = self._text(fields.get("name")) or plain_text(content)[:70]
        urgency, impact = priority_level(fields.get("urgency")), priority_level(fields.get("impact"))
        with self._lock:
            entity_id = php_int(fields["entities_id"]) if "entities_id" in fields else session.active_entity
            # Rights were fixed at initSession: a newer entity is refused like a missing one (LAB#61, #306).
            if entity_id not in self._entities or entity_id not in session.entities:
                raise AddRefused(NO_PERMISSION)
            self._last_ticket_id += 1
            ticket_id = self._last_ticket_id
            now = self._now()
            self.tickets[ticket_id] = {
                "id": ticket_id,
                "entities_id": entity_id,
                "name": self._stored(name),
                "date": now,
                "closedate": None,
                "solvedate": None,
                "takeintoaccountdate": None,
                "date_mod": now,
                "users_id_lastupdater": session.user_id,
                "status": 1,
                "users_id_recipient": session.user_id,  # whatever the client sent (LAB#66)
                "requesttypes_id": php_int(fields.get("requesttypes_id", 1)),
                "content": self._stored(content),
                "urgency": urgency,
                "impact": impact,
                "priority": PRIORITY[urgency][impact],
                "itilcategories_id": php_int(fields.get("itilcategories_id", 0)),  # not checked (LAB#60b)
                "type": php_int(fields.get("type", 1)),  # not checked either (LAB#111)
                **{
                    column: value
                    for column, value in TICKET_FIXED_COLUMNS.items()
                    if self.version == 10 or column not in TICKET_COLUMNS_10_ONLY
                },
                "date_creation": now,
                **(TICKET_COLUMNS_11 if self.version == 11 else {}),
            }
            for user_id, use_notification, email in requesters:
                self.ticket_users.append(
                    {
                        "id": len(self.ticket_users) + 1,
                        "tickets_id": ticket_id,
                        "users_id": user_id,
                        "type": 1,
                        "use_notification": use_notification,
                        "alternative_email": email,
                    }
                )
            return ticket_id

    def _requesters(self, fields: dict) -> list[tuple[int, int, str]]:
        """(user id, use_notification, alternative_email) of each requester GLPI would keep.

        `_users_id_requester` is an id or a list; `_users_id_requester_notif` holds scalars or
        lists parallel to it (LAB#54-57, #93). Unknown users are dropped (LAB#62b); user 0 with an
        e-mail is an e-mail-only requester. An invalid e-mail refuses the whole ticket.
        """
        if "_users_id_requester" not in fields:
            return []
        requested = fields["_users_id_requester"]
        single = not isinstance(requested, (list, dict))
        notif = fields.get("_users_id_requester_notif")
        notif = notif if isinstance(notif, dict) else {}

        def setting(key: str, index: int, default: Any) -> Any:
            value = notif.get(key, default)
            if isinstance(value, (list, dict)):
                values = php_values(value)
                return values[index] if index < len(values) else default
            return value if single else default  # scalars only go with a single requester

        for email in php_values(notif.get("alternative_email", [])):
            if isinstance(email, str) and email and not EMAIL.fullmatch(email):
                raise AddRefused(f"Invalid email address {email}")
        requesters = []
        for index, raw_id in enumerate(php_values(requested)):
            user_id = php_int(raw_id)
            email = self._text(setting("alternative_email", index, ""))
            if (user_id == 0 and email) or user_id in self._users:
                requesters.append((user_id, php_int(setting("use_notification", index, 1)), email))
        return requesters

    def _added_message(self, ticket_id: int, headers: Message) -> str:
        name = self.tickets[ticket_id]["name"]
        if self._unsanitized(headers):
            name = decode_html(name)
        return added_message(name or f"Ticket - ID {ticket_id}", ticket_id, self.version)
