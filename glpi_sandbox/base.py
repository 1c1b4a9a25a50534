"""The state every part of GlpiSandbox shares, declared once with its types.

GlpiSandbox is assembled from mixins (records, sessions, search, items, control...) that all read and
write the same state, which `GlpiSandbox.__init__` (sandbox.py) sets up. Each mixin inherits from
SandboxBase, so that the type checker knows what `self` holds in every one of them; the few methods
one mixin calls on another are declared here too, for the type checker only (at run time the mixin
that defines them answers). How GLPI stores and returns text, which every part needs, is here as well.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from email.message import Message
from typing import TYPE_CHECKING, Any

from .api import Session
from .php import DATETIME_FORMAT, encode_html
from .searchoptions import Itemtype

if TYPE_CHECKING:
    from .server import SandboxServer


class SandboxBase:
    """What a GlpiSandbox holds: GLPI's configuration and records, the sessions, the faults, the server."""

    # --- GLPI's configuration (Setup > General > API) and version --------------------------------
    app_token: str | None
    api_enabled: bool
    allowed_ips: set[str] | None  # None: the API client matches every address
    drops_authorization: bool  # a web server that does not hand the Authorization header to PHP
    version: int  # 10 or 11
    session_max_idle: float | None
    technician_id: int  # who plays the technician in the public API and the control endpoints
    clock: Callable[[], float]  # the sandbox's time, in seconds since the epoch: time.time unless a test sets it

    # --- what lies between a client and GLPI (control.py) ----------------------------------------
    latency_ms: float
    stall_seconds: float
    retry_after_seconds: int
    fault_endpoints: set[str] | None
    _fault: str | None

    # --- GLPI's records ---------------------------------------------------------------------------
    tickets: dict[int, dict]
    _last_ticket_id: int
    ticket_users: list[dict]  # Ticket_User rows: the actors of each ticket, as GLPI lists them
    followups: dict[int, dict]  # ITILFollowup rows
    solutions: dict[int, dict]  # ITILSolution rows
    documents: dict[int, dict]
    document_items: list[dict]  # Document_Item rows: which document is attached to what
    document_files: dict[int, bytes]  # document id -> the bytes uploaded
    document_extensions: set[str]  # GLPI's uploadable document types
    _entities: dict[int, dict]
    _fields_rows: dict[int, dict]  # entity id -> {"id": row id, "value": CNPJ}
    _users: dict[int, dict]
    _reach: dict[int, tuple[int, bool]]  # user id -> (entity, recursive)
    _categories: dict[int, dict]
    _request_types: dict[int, dict]
    _created: str  # when the sandbox was made: the date of the seed records

    # --- the API: sessions, options, call counters -------------------------------------------------
    _user_tokens: dict[str, int]
    _sessions: dict[str, Session]
    _listed_options: dict[str, dict]
    _search_options: dict[str, dict]
    _calls: Counter[tuple[str, str]]
    _lock: threading.RLock

    # --- the HTTP server ----------------------------------------------------------------------------
    url: str | None
    _stopping: threading.Event
    _server: SandboxServer | None
    _thread: threading.Thread | None

    if TYPE_CHECKING:  # defined by one mixin, called from others

        def _collection(self, itemtype: Itemtype) -> dict[int, dict]: ...

        def _visible(self, itemtype: Itemtype, item: dict, entities: frozenset[int]) -> bool: ...

        def _reachable(self, user_id: int) -> frozenset[int]: ...

        def add_entity(self, name: str, cnpj: str | None = None, parent_id: int = 0) -> int: ...

        def reset_calls(self) -> None: ...

        def expire_sessions(self) -> int: ...

        def add_followup(
            self, ticket_id: int, content: str, is_private: bool = False, users_id: int | None = None
        ) -> int: ...

        def add_solution(self, ticket_id: int, content: str, users_id: int | None = None) -> int: ...

        def set_ticket_status(self, ticket_id: int, status: int, users_id: int | None = None) -> None: ...

        def add_actor(self, ticket_id: int, users_id: int | None = None, actor_type: int = 2) -> int: ...

    def _now(self) -> str:
        """The current time by the sandbox's clock, as GLPI writes dates: "2026-12-03 06:41:53"."""
        return time.strftime(DATETIME_FORMAT, time.localtime(self.clock()))

    # --- text as GLPI stores and returns it -----------------------------------------------------

    @staticmethod
    def _text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else ""
        return str(value) if isinstance(value, (str, int, float)) else ""

    def _unsanitized(self, headers: Message) -> bool:
        """GLPI 10 decodes the text it returns when the request says `X-GLPI-Sanitized-Content: false`."""
        return self.version == 10 and headers.get("X-GLPI-Sanitized-Content", "").lower() == "false"

    def _stored(self, text: str) -> str:
        """GLPI 10 stores text HTML-encoded; GLPI 11 stores it as sent."""
        return encode_html(text) if self.version == 10 else text
