"""A ticket's life after creation: its status and the dates that go with it, its actors, PUT Ticket/<id>.

What the recorded exchanges show, the same on GLPI 10 and 11 (LAB#400-425): the status is a number
(1 new, 2 processing/assigned, 3 processing/planned, 4 pending, 5 solved, 6 closed); assigning a
technician (`POST Ticket/<id>/Ticket_User` with type 2) moves a new ticket to 2 and takes it into
account (LAB#403-404); `PUT Ticket/<id> {"input": {"status": N}}` answers `[{"<id>": true, "message": ""}]`
and sets the date that goes with the status: begin_waiting_date for 4, solvedate for 5, closedate for 6
(LAB#411-419). The rules behind them are GLPI's own, read in its source (10.0.19:
CommonITILObject::prepareInputForUpdate() and pre_updateInDB(), Ticket::updateDateMod(),
CommonITILActor::prepareInputForAdd() and post_addItem(), API::updateItems()); where a rule goes
beyond what was recorded, its comment says "GLPI's source".
"""

from __future__ import annotations

from .api import NO_PERMISSION, AddRefused, ApiError, Response, Session, bad_array, create_items
from .base import SandboxBase
from .php import php_int, priority_level, seconds_between
from .searchoptions import ITEMTYPES
from .tickets import EMAIL, PRIORITY

NEW, ASSIGNED, PLANNED, WAITING, SOLVED, CLOSED = 1, 2, 3, 4, 5, 6
REQUESTER, ASSIGN, OBSERVER = 1, 2, 3  # Ticket_User.type (LAB#405)
SOLUTION_WAITING, SOLUTION_ACCEPTED, SOLUTION_REFUSED = 2, 3, 4  # ITILSolution.status (LAB#415)

# The ticket columns PUT Ticket/<id> changes in the sandbox; other columns it refuses to change rather
# than pretend, and keys that are no column are ignored, as GLPI ignores them.
UPDATABLE_COLUMNS = ("name", "content", "urgency", "impact", "type", "itilcategories_id", "requesttypes_id", "status")
ACTOR_INPUTS = ("_users_id_", "_groups_id_", "_suppliers_id_", "_actors", "_itil_")


class LifecycleMixin(SandboxBase):
    """Part of GlpiSandbox: status changes, actors, PUT Ticket/<id>, and the public API to play the technician."""

    # --- public API for tests: the technician's side ---------------------------------------------

    def set_ticket_status(self, ticket_id: int, status: int, users_id: int | None = None) -> None:
        """Change a ticket's status as `users_id` (default: the technician) would with PUT Ticket/<id>."""
        with self._lock:
            ticket = self._known_ticket(ticket_id)
            self._change_status(ticket, status, self._known_user(users_id))

    def add_actor(self, ticket_id: int, users_id: int | None = None, actor_type: int = ASSIGN) -> int:
        """Add an actor to a ticket as POST Ticket_User does, by that user: by default the technician
        assigns himself (LAB#403). Returns the Ticket_User id; ValueError when GLPI would refuse it."""
        with self._lock:
            ticket = self._known_ticket(ticket_id)
            user_id = self._known_user(users_id)
            try:
                return self._add_actor(user_id, ticket, {"users_id": user_id, "type": actor_type})
            except AddRefused as refusal:
                raise ValueError(f"GLPI refuses this actor: {str(refusal) or 'already an actor'}") from None

    def _known_ticket(self, ticket_id: int) -> dict:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise ValueError(f"no ticket {ticket_id}")
        return ticket

    def _known_user(self, users_id: int | None) -> int:
        user_id = self.technician_id if users_id is None else users_id
        if user_id not in self._users:
            raise ValueError(f"no user {user_id}; known: {sorted(self._users)}")
        return user_id

    # --- PUT Ticket/<id> ----------------------------------------------------------------------------

    def _update_tickets(self, session: Session, raw_id: str | None, params: dict) -> Response:
        """PUT Ticket[/<id>]: one `input` object (its id from the URL when it has none) or a list (LAB#411)."""
        if "input" not in params:
            raise bad_array()
        payload = params["input"]
        bulk = isinstance(payload, list)
        if isinstance(payload, dict):
            inputs = [payload if "id" in payload or raw_id is None else {**payload, "id": raw_id}]
        elif isinstance(payload, list):
            inputs = payload
        else:
            raise bad_array()
        for fields in inputs:  # check everything before changing anything
            if isinstance(fields, dict):
                self._check_ticket_update(fields)
        results: list = []
        failed = 0
        with self._lock:
            for fields in inputs:
                if not isinstance(fields, dict) or "id" not in fields:
                    results.append([])  # GLPI answers an empty array for an input without id
                    continue
                ticket = self.tickets.get(php_int(fields["id"]))
                if ticket is None:  # GLPI's source: counted as failed, left out of the answer
                    failed += 1
                    continue
                if not self._visible(ITEMTYPES["Ticket"], ticket, session.entities):
                    failed += 1
                    results.append({str(ticket["id"]): False, "message": NO_PERMISSION})
                    continue
                self._update_ticket(session.user_id, ticket, fields)
                results.append({str(ticket["id"]): True, "message": ""})
        if not bulk:
            if failed:  # a missing ticket leaves no message: GLPI answers null (GLPI's source)
                message = results[0]["message"] if results else None
                return Response.json(400, ["ERROR_GLPI_UPDATE", message])
            return Response.json(200, results)
        if failed and failed == len(inputs):
            return Response.json(400, ["ERROR_GLPI_UPDATE", results])
        if failed:
            return Response.json(207, ["ERROR_GLPI_PARTIAL_UPDATE", results])
        return Response.json(200, results)

    @staticmethod
    def _check_ticket_update(fields: dict) -> None:
        for key in fields:
            if key.startswith(ACTOR_INPUTS):
                raise ApiError(400, "ERROR", f"the GLPI sandbox does not take {key}: add actors with POST Ticket_User")
            if key in ("id", *UPDATABLE_COLUMNS) or key.startswith("_"):
                continue
            if key in TICKET_COLUMNS:
                raise ApiError(400, "ERROR", f"the GLPI sandbox does not update a ticket's {key}")

    def _update_ticket(self, user_id: int, ticket: dict, fields: dict) -> None:
        changes: dict = {}
        for key in ("name", "content"):
            if key in fields:
                changes[key] = self._stored(self._text(fields[key]).replace("\r\n", "\n"))
        for key in ("type", "itilcategories_id", "requesttypes_id"):
            if key in fields:
                changes[key] = php_int(fields[key])
        if "urgency" in fields or "impact" in fields:  # priority follows them
            urgency = priority_level(fields.get("urgency", ticket["urgency"]))
            impact = priority_level(fields.get("impact", ticket["impact"]))
            changes.update(urgency=urgency, impact=impact, priority=PRIORITY[urgency][impact])
        with self._lock:
            changed = {key: value for key, value in changes.items() if ticket[key] != value}
            ticket.update(changed)
            if changed:
                ticket["date_mod"], ticket["users_id_lastupdater"] = self._now(), user_id
            if "status" in fields:
                self._change_status(ticket, php_int(fields["status"]), user_id)

    # --- status -----------------------------------------------------------------------------------

    def _change_status(self, ticket: dict, status: int, user_id: int) -> None:
        """What GLPI does when a ticket's status changes (LAB#411-419; GLPI's source for the rest)."""
        old = ticket["status"]
        if status == old:
            return
        now = self._now()
        ticket["status"] = status
        if status not in (SOLVED, CLOSED) and ticket["solvedate"] is not None:
            ticket["solvedate"], ticket["solve_delay_stat"] = None, 0
        if status != CLOSED and ticket["closedate"] is not None:
            ticket["closedate"], ticket["close_delay_stat"] = None, 0
        # Leaving the waiting (pending or solved) state adds the time spent waiting.
        back_from_waiting = (
            old == WAITING or (old == SOLVED and status != CLOSED) or (old == CLOSED and status not in (SOLVED, CLOSED))
        )
        if ticket["begin_waiting_date"] is not None and back_from_waiting:
            ticket["waiting_duration"] += max(0, seconds_between(ticket["begin_waiting_date"], now))
            ticket["begin_waiting_date"] = None
        if status in (WAITING, SOLVED):  # LAB#412, #414
            ticket["begin_waiting_date"] = now
        if status == SOLVED:  # LAB#414
            solvedate = max(now, ticket["date"])
            ticket["solvedate"], ticket["solve_delay_stat"] = solvedate, self._delay(ticket, solvedate)
        if status == CLOSED:  # LAB#419; closing an unsolved ticket solves it at the same time
            closedate = max(now, ticket["date"])
            ticket["closedate"], ticket["close_delay_stat"] = closedate, self._delay(ticket, closedate)
            if ticket["solvedate"] is None:
                ticket["solvedate"], ticket["solve_delay_stat"] = closedate, self._delay(ticket, closedate)
        if old in (SOLVED, CLOSED) and status not in (SOLVED, CLOSED):  # reopened: the solution is refused
            self._judge_last_solution(ticket["id"], SOLUTION_REFUSED, user_id)
        ticket["date_mod"], ticket["users_id_lastupdater"] = now, user_id

    @staticmethod
    def _delay(ticket: dict, until: str) -> int:
        """Seconds from the opening to `until`, less the time spent waiting (no calendar)."""
        return max(0, seconds_between(ticket["date"], until) - ticket["waiting_duration"])

    def _judge_last_solution(self, ticket_id: int, status: int, user_id: int) -> None:
        solutions = [
            row for row in self.solutions.values() if (row["itemtype"], row["items_id"]) == ("Ticket", ticket_id)
        ]
        if solutions:
            last = max(solutions, key=lambda row: (row["date_creation"], row["id"]))
            last.update(status=status, users_id_approval=user_id, date_approval=self._now())

    def _touch(self, ticket: dict, user_id: int, take_into_account: bool) -> None:
        """Ticket::updateDateMod(): the ticket was changed by `user_id`; the first time someone other
        than a requester acts on it (a technician's follow-up, an assignment), it is taken into account
        (LAB#404: takeintoaccountdate, and the delay in seconds, at least 1)."""
        now = self._now()
        if take_into_account and not ticket["takeintoaccount_delay_stat"]:
            roles = self._actor_types(ticket["id"], user_id)
            if ASSIGN in roles or REQUESTER not in roles:
                ticket["takeintoaccount_delay_stat"] = max(1, seconds_between(ticket["date"], now))
                ticket["takeintoaccountdate"] = now
        ticket["date_mod"], ticket["users_id_lastupdater"] = now, user_id

    # --- actors (Ticket_User) ---------------------------------------------------------------------------

    def _actor_types(self, ticket_id: int, user_id: int) -> set[int]:
        return {
            row["type"] for row in self.ticket_users if (row["tickets_id"], row["users_id"]) == (ticket_id, user_id)
        }

    def _create_actors(self, session: Session, params: dict, api_url: str) -> Response:
        """POST Ticket_User or Ticket/<id>/Ticket_User: the input names the ticket; the URL's is not used."""

        def add(fields: dict) -> tuple[int, str]:
            ticket = self.tickets.get(php_int(fields.get("tickets_id")))
            if ticket is None or not self._visible(ITEMTYPES["Ticket"], ticket, session.entities):
                raise AddRefused(NO_PERMISSION)
            return self._add_actor(session.user_id, ticket, fields), ""  # no message (LAB#403)

        return create_items("Ticket_User", params, add, api_url)

    def _add_actor(self, acting_user: int, ticket: dict, fields: dict) -> int:
        """CommonITILActor: an unknown user or one already in that role is refused without a message, an
        invalid e-mail with one (GLPI's source); then the ticket is touched, and taken into account and
        moved from new to assigned when the actor is assigned (LAB#403-405)."""
        user_id, actor_type = php_int(fields.get("users_id", 0)), php_int(fields.get("type", REQUESTER))
        email = self._text(fields.get("alternative_email", ""))
        with self._lock:
            if user_id > 0 and (user_id not in self._users or actor_type in self._actor_types(ticket["id"], user_id)):
                raise AddRefused("")
            if email and not EMAIL.fullmatch(email):
                raise AddRefused("Invalid email address")
            row_id = len(self.ticket_users) + 1
            self.ticket_users.append(
                {
                    "id": row_id,
                    "tickets_id": ticket["id"],
                    "users_id": user_id,
                    "type": actor_type,
                    "use_notification": php_int(fields.get("use_notification", 1)),
                    "alternative_email": email,
                }
            )
            self._touch(ticket, acting_user, take_into_account=actor_type == ASSIGN)
            if actor_type == ASSIGN and ticket["status"] == NEW:
                self._change_status(ticket, ASSIGNED, acting_user)
            return row_id


# Every column of a ticket, GLPI 10's and 11's: keys PUT may not silently ignore.
TICKET_COLUMNS = frozenset(
    """
    id entities_id name date closedate solvedate takeintoaccountdate date_mod users_id_lastupdater status
    users_id_recipient requesttypes_id content urgency impact priority itilcategories_id type global_validation
    slas_id_ttr slas_id_tto slalevels_id_ttr time_to_resolve time_to_own begin_waiting_date sla_waiting_duration
    ola_waiting_duration olas_id_tto olas_id_ttr olalevels_id_ttr ola_tto_begin_date ola_ttr_begin_date
    internal_time_to_resolve internal_time_to_own waiting_duration close_delay_stat solve_delay_stat
    takeintoaccount_delay_stat actiontime is_deleted locations_id validation_percent date_creation
    tickettemplates_id externalid
    """.split()
)
