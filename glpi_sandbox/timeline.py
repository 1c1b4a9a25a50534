"""A ticket's timeline: follow-ups (ITILFollowup) and solutions (ITILSolution), and what they do to the ticket.

Recorded (LAB#230-235 and #400-425; the same on GLPI 11 but for the text, LAB11#231, #409, #415):
`POST ITILFollowup` or `POST Ticket/<id>/ITILFollowup` with `itemtype`, `items_id` and `content` answers
201 `{"id", "message": ""}`; without `items_id` it is refused as a rights failure, the URL's id is not
used (LAB#234). A follow-up has `is_private` (0 or 1) and its author in `users_id`; the API user lists
private ones too (LAB#409). Its `timeline_position` is 4 (right) when its author is assigned to the
ticket and 1 (left) otherwise (LAB#231, #409). `POST ITILSolution` answers "Item successfully added:
<id>" and solves the ticket; the solution waits for approval, status 2 (LAB#413-415). A follow-up on a
solved or closed ticket is accepted and changes nothing when its author is not the requester
(LAB#416-417, #420-421). GLPI 10 returns the text HTML-encoded, GLPI 11 as stored (versions.py).

From GLPI's source (10.0.19: ITILFollowup, ITILSolution, Glpi\\Features\\ParentStatus,
CommonITILObject::needReopen() and getTimelinePosition()), not recorded: a follow-up without content is
refused; `users_id` in the input names another author; a requester's follow-up on a pending, solved
or closed ticket reopens it (to 2 when someone is assigned, else 1) and refuses the solution;
`pending: 1` makes the ticket pending and `pending: 0` reopens it; `add_close` (a requester approving
the solution) closes a solved ticket and accepts the solution, `add_reopen` refuses it and reopens; a
solution for a solved ticket is refused, for a closed one too.
"""

from __future__ import annotations

from .api import NO_PERMISSION, AddRefused, Response, Session, create_items
from .lifecycle import (
    ASSIGN,
    ASSIGNED,
    CLOSED,
    NEW,
    REQUESTER,
    SOLUTION_ACCEPTED,
    SOLUTION_WAITING,
    SOLVED,
    WAITING,
    LifecycleMixin,
)
from .php import php_flag, php_int
from .searchoptions import ITEMTYPES

TIMELINE_LEFT, TIMELINE_RIGHT = 1, 4
NO_DESCRIPTION = "You can't add a followup without description"
ALREADY_SOLVED = "The item is already solved, did anyone pushed a solution before you?"


class TimelineMixin(LifecycleMixin):
    """Part of GlpiSandbox: POST ITILFollowup and ITILSolution, and the public API to answer as the technician."""

    # --- public API for tests: the technician's side ---------------------------------------------

    def add_followup(self, ticket_id: int, content: str, is_private: bool = False, users_id: int | None = None) -> int:
        """Add a follow-up to a ticket as `users_id` (default: the technician) would through the API,
        with the same effects on the ticket. Returns its id; ValueError when GLPI would refuse it."""
        with self._lock:
            ticket = self._known_ticket(ticket_id)
            user_id = self._known_user(users_id)
            try:
                return self._add_followup(user_id, ticket, {"content": content, "is_private": int(is_private)})
            except AddRefused as refusal:
                raise ValueError(str(refusal)) from None

    def add_solution(self, ticket_id: int, content: str, users_id: int | None = None) -> int:
        """Solve a ticket as `users_id` (default: the technician) would with POST ITILSolution."""
        with self._lock:
            ticket = self._known_ticket(ticket_id)
            user_id = self._known_user(users_id)
            try:
                return self._add_solution(user_id, ticket, {"content": content})
            except AddRefused as refusal:
                raise ValueError(str(refusal)) from None

    # --- the API ----------------------------------------------------------------------------------

    def _parent_ticket(self, session: Session, fields: dict) -> dict:
        """The ticket an input's `itemtype`/`items_id` name, if the session may read it (LAB#234)."""
        ticket = self.tickets.get(php_int(fields.get("items_id"))) if fields.get("itemtype") == "Ticket" else None
        if ticket is None or not self._visible(ITEMTYPES["Ticket"], ticket, session.entities):
            raise AddRefused(NO_PERMISSION)
        return ticket

    def _create_followups(self, session: Session, params: dict, api_url: str) -> Response:
        def add(fields: dict) -> tuple[int, str]:
            return self._add_followup(session.user_id, self._parent_ticket(session, fields), fields), ""

        return create_items("ITILFollowup", params, add, api_url)

    def _create_solutions(self, session: Session, params: dict, api_url: str) -> Response:
        def add(fields: dict) -> tuple[int, str]:
            ticket = self._parent_ticket(session, fields)
            if ticket["status"] == CLOSED:  # nobody may solve a closed ticket (GLPI's source)
                raise AddRefused(NO_PERMISSION)
            solution_id = self._add_solution(session.user_id, ticket, fields)
            return solution_id, f"Item successfully added: {solution_id}"  # LAB#413, LAB11#413

        return create_items("ITILSolution", params, add, api_url)

    # --- follow-ups ---------------------------------------------------------------------------------

    def _add_followup(self, acting_user: int, ticket: dict, fields: dict) -> int:
        content = self._text(fields.get("content")).replace("\r\n", "\n")
        close, reopen = "add_close" in fields, "add_reopen" in fields
        if not content and not close and not reopen:
            raise AddRefused(NO_DESCRIPTION)
        if reopen and not content:
            raise AddRefused("If you want to reopen this item, you must specify a reason")
        author = php_int(fields["users_id"]) if "users_id" in fields else acting_user
        with self._lock:
            followup_id = max(self.followups, default=0) + 1
            now = self._now()
            self.followups[followup_id] = {
                "id": followup_id,
                "itemtype": "Ticket",
                "items_id": ticket["id"],
                "date": now,
                "users_id": author,
                "users_id_editor": 0,
                "content": self._stored(content or "Solution approved"),
                "is_private": php_int(fields.get("is_private", 0)),
                "requesttypes_id": php_int(fields.get("requesttypes_id", 0)),
                "date_mod": now,
                "date_creation": now,
                "timeline_position": self._timeline_position(ticket["id"], author),
                "sourceitems_id": 0,
                "sourceof_items_id": 0,
            }
            self._touch(ticket, acting_user, take_into_account=True)
            self._update_parent_status(acting_user, ticket, fields, close=close, reopen=reopen)
            return followup_id

    def _timeline_position(self, ticket_id: int, user_id: int) -> int:
        """Right when the author is assigned and not a requester, else left (LAB#231, #409)."""
        roles = self._actor_types(ticket_id, user_id)
        return TIMELINE_RIGHT if ASSIGN in roles and REQUESTER not in roles else TIMELINE_LEFT

    def _update_parent_status(self, acting_user: int, ticket: dict, fields: dict, close: bool, reopen: bool) -> None:
        """What a new follow-up does to the ticket's status (GLPI's source; LAB#417, #421: nothing, when
        the author is not a requester)."""
        if close and ticket["status"] == SOLVED:  # the requester approves the solution
            self._change_status(ticket, CLOSED, acting_user)
            self._judge_last_solution(ticket["id"], SOLUTION_ACCEPTED, acting_user)
        target, pending = ticket["status"], False
        if "pending" in fields:
            pending = php_flag(fields["pending"])
            if pending:
                target = WAITING
            else:
                reopen = True
        elif not close and self._requester_answers(ticket, acting_user):
            reopen = True
        if reopen and not pending and ticket["status"] in (CLOSED, SOLVED, WAITING):
            assigned = any(row["tickets_id"] == ticket["id"] and row["type"] == ASSIGN for row in self.ticket_users)
            self._change_status(ticket, ASSIGNED if assigned else NEW, acting_user)
        elif target != ticket["status"]:
            self._change_status(ticket, target, acting_user)

    def _requester_answers(self, ticket: dict, user_id: int) -> bool:
        """CommonITILObject::needReopen(): a requester who is not assigned writes on a waiting,
        solved or closed ticket."""
        roles = self._actor_types(ticket["id"], user_id)
        return ticket["status"] in (CLOSED, SOLVED, WAITING) and REQUESTER in roles and ASSIGN not in roles

    # --- solutions ----------------------------------------------------------------------------------

    def _add_solution(self, acting_user: int, ticket: dict, fields: dict) -> int:
        with self._lock:
            if ticket["status"] == SOLVED:
                raise AddRefused(ALREADY_SOLVED)
            if ticket["status"] == CLOSED:
                raise AddRefused(NO_PERMISSION)
            solution_id = max(self.solutions, default=0) + 1
            now = self._now()
            self.solutions[solution_id] = {
                "id": solution_id,
                "itemtype": "Ticket",
                "items_id": ticket["id"],
                "solutiontypes_id": php_int(fields.get("solutiontypes_id", 0)),
                "solutiontype_name": None,
                "content": self._stored(self._text(fields.get("content")).replace("\r\n", "\n")),
                "date_creation": now,
                "date_mod": now,
                "date_approval": None,
                "users_id": php_int(fields["users_id"]) if "users_id" in fields else acting_user,
                "user_name": None,
                "users_id_editor": 0,
                "users_id_approval": 0,
                "user_name_approval": None,
                "status": SOLUTION_WAITING,  # the lab's entities do not close solved tickets at once (LAB#415)
                "itilfollowups_id": None,
            }
            self._change_status(ticket, SOLVED, acting_user)
            return solution_id
