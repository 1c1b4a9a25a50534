"""GlpiSandbox: GLPI's state and its legacy REST API, served over HTTP.

The class is assembled from mixins, one per concern (the package docstring lists them), that share
the state set up here in `__init__`. This module keeps what every call goes through: reading the
request, counting it, routing it; and the server's lifecycle.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from typing import Any

from .api import API_PREFIX, API_V1_PREFIX, CONTROL_PREFIX, ApiError, Response, method_not_allowed
from .control import ControlMixin
from .documents import DOCUMENT_EXTENSIONS, DocumentsMixin
from .items import TICKET_SUBITEMS, ItemsMixin
from .php import parse_php_query, php_key_path
from .records import RecordsMixin
from .search import SearchMixin
from .searchoptions import (
    FIELDS_OPTION_ID,
    ITEMTYPES,
    ITILCATEGORY_OPTIONS,
    TICKET_OPTIONS,
    Itemtype,
    entity_search_options,
)
from .server import SandboxServer
from .sessions import SessionsMixin
from .tickets import TicketsMixin
from .timeline import TimelineMixin
from .versions import listed_options

# GLPI endpoints that exist but that the sandbox does not implement: 405 instead of a lie.
UNSUPPORTED_ENDPOINTS = frozenset(
    {
        "getMyProfiles",
        "getActiveProfile",
        "changeActiveProfile",
        "getMyEntities",
        "getActiveEntities",
        "changeActiveEntities",
        "getFullSession",
        "getGlpiConfig",
        "getMultipleItems",
        "lostPassword",
    }
)


def endpoint_name(segments: list[str]) -> str:
    """How calls are counted: "initSession", "search/Entity", "Ticket", "Ticket/Ticket_User"..."""
    if not segments:
        return ""
    if segments[0] in ("search", "listSearchOptions") and len(segments) > 1:
        return f"{segments[0]}/{segments[1]}"
    if len(segments) >= 3:
        return f"{segments[0]}/{segments[2]}"
    return segments[0]


class GlpiSandbox(
    RecordsMixin, SessionsMixin, SearchMixin, ItemsMixin, TicketsMixin, TimelineMixin, DocumentsMixin, ControlMixin
):
    """GLPI's state (entities, users, tickets, sessions), its legacy REST API and an HTTP server.

    `seed="demo"` adds demonstration data to the lab's (`seed="lab"`: exactly the entities,
    category and users of the recorded lab). Entity rights: user 7 (api) and 2 (glpi) reach every
    entity, user 9 (api_restrito) only entity 1, as in the lab. Uploaded documents are in `documents`,
    their bytes in `document_files` and their links to tickets in `document_items`; GLPI's uploadable
    extensions are `document_extensions` (its defaults: no .log, no .webp), which a test may change.
    """

    def __init__(
        self,
        app_token: str | None = "sandbox-app-token",
        user_tokens: dict[str, int] | None = None,
        version: int = 10,
        latency_ms: float = 0.0,
        session_max_idle: float | None = None,
        seed: str = "demo",
        fields_option_id: int | None = FIELDS_OPTION_ID,
        extra_search_options: dict[int | str, dict] | None = None,
        api_enabled: bool = True,
        allowed_ips: set[str] | None = None,
        drops_authorization: bool = False,
    ):
        if version not in (10, 11):
            raise ValueError("version must be 10 or 11")
        if seed not in ("demo", "lab"):
            raise ValueError('seed must be "demo" or "lab"')
        self.app_token = app_token
        # GLPI's own switches (Setup > General > API): the API itself, and the IP ranges of its
        # API clients (None: a client matches every address).
        self.api_enabled = api_enabled
        self.allowed_ips = allowed_ips
        # A web server (Apache with CGI/FastCGI) that does not hand the Authorization header to PHP.
        self.drops_authorization = drops_authorization
        self.version = version
        self.latency_ms = latency_ms
        self.session_max_idle = session_max_idle
        self.fault_endpoints = None
        self.stall_seconds = 30.0
        self.retry_after_seconds = 120
        self.tickets = {}
        self._last_ticket_id = 0
        self.ticket_users = []
        self.followups = {}
        self.solutions = {}
        self.documents = {}
        self.document_items = []
        self.document_files = {}
        self.document_extensions = set(DOCUMENT_EXTENSIONS)  # GLPI's uploadable document types
        self.url = None
        self._fault = None
        self._lock = threading.RLock()
        self._calls = Counter()
        self._sessions = {}
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.clock = time.time
        self._created = self._now()
        self._entities = {}
        self._fields_rows = {}
        self._users = {}
        self._reach = {}
        self._categories = {}
        self._request_types = {}
        self._seed(seed)
        self._user_tokens = dict(user_tokens if user_tokens is not None else {"sandbox-user-token": 7})
        unknown = sorted(set(self._user_tokens.values()) - set(self._users))
        if unknown:
            raise ValueError(f"user_tokens name unknown users {unknown}; known: {sorted(self._users)}")
        self._listed_options = {
            itemtype: listed_options(options, version)
            for itemtype, options in (
                ("Entity", entity_search_options(fields_option_id, extra_search_options)),
                ("Ticket", TICKET_OPTIONS),
                ("ITILCategory", ITILCATEGORY_OPTIONS),
            )
        }
        self._search_options = {
            itemtype: {key: option for key, option in options.items() if key.isdigit()}
            for itemtype, options in self._listed_options.items()
        }

    # --- call counters (public API for tests and benchmarks) --------------------------------

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """API calls so far, keyed by (method, endpoint): ("GET", "search/Entity"), ("POST", "Ticket")..."""
        with self._lock:
            return Counter(self._calls)

    def call_count(self, endpoint: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                count
                for (call_method, call_endpoint), count in self._calls.items()
                if endpoint in (None, call_endpoint) and method in (None, call_method)
            )

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # --- server lifecycle --------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> str:
        """Serve in a background thread; returns the API URL, e.g. http://127.0.0.1:8088/apirest.php.

        With `tls` (a server-side context holding a certificate) it serves https.
        """
        if self._server is not None:
            raise RuntimeError("the sandbox is already started")
        self._stopping.clear()
        self._server = SandboxServer((host, port), self)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(  # stop() waits up to one poll interval for the loop to notice
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="glpi-sandbox", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = self._server.bound_address()
        self.url = f"{'https' if tls else 'http'}://{bound_host}:{bound_port}{API_PREFIX}"
        return self.url

    def stop(self) -> None:
        """Stop serving: stalled answers are cut short and open connections closed."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    # --- HTTP entry points (called by the request handler) -----------------------------------

    def handle(
        self, method: str, target: str, headers: Message, body: bytes, origin: str, client_ip: str = "127.0.0.1"
    ) -> Response:
        path, _, query = target.partition("?")
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX) :].strip("/"), body)
        # GLPI 11 also serves the legacy API under /api.php/v1, and its links and docs point there.
        prefixes = (API_PREFIX, API_V1_PREFIX) if self.version == 11 else (API_PREFIX,)
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return self._api(method, path[len(prefix) :], query, headers, body, origin + prefixes[-1], client_ip)
        return Response(404, b"Not Found", "text/plain; charset=UTF-8")

    def _api(
        self, method: str, route: str, query: str, headers: Message, body: bytes, api_url: str, client_ip: str
    ) -> Response:
        segments = [segment for segment in route.split("/") if segment]
        endpoint = endpoint_name(segments)
        with self._lock:
            self._calls[(method, endpoint)] += 1
        self._pause(self.latency_ms / 1000)
        fault = self._fault_for(endpoint)
        fault_answer = self._fault_answer(fault, route, query, api_url)
        if fault_answer is not None:
            return fault_answer
        if fault == "stall":
            self._pause(self.stall_seconds)
        try:
            params = self._parameters(method, query, headers, body)
            self._check_api_client(client_ip)
            response = self._route(method, segments, params, headers, api_url)
        except ApiError as error:
            response = error.response(api_url)
        if fault == "stall_after_create":
            self._pause(self.stall_seconds)
        return response

    def _parameters(self, method: str, query: str, headers: Message, body: bytes) -> dict[str, Any]:
        """Query string, then body, merged as GLPI does (its first check, LAB#71)."""
        params = parse_php_query(query)
        if not body.strip():
            return params
        if method == "GET":
            raise ApiError(
                400, "ERROR_JSON_PAYLOAD_FORBIDDEN", "GET Request should not have json payload (http body)", doc=True
            )
        content_type = headers.get("Content-Type", "application/json")  # GLPI assumes JSON
        if "multipart/form-data" in content_type:
            params.update(self._multipart_parameters(content_type, body))
        elif "application/x-www-form-urlencoded" in content_type:
            params.update(parse_php_query(body.decode("utf-8", errors="replace")))
        elif "application/json" in content_type:
            try:
                decoded = json.loads(body.decode("utf-8"))
            except ValueError:
                raise ApiError(400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid") from None
            if isinstance(decoded, dict):
                params.update(decoded)
        return params

    @staticmethod
    def _multipart_parameters(content_type: str, body: bytes) -> dict[str, Any]:
        """A multipart body as GLPI reads it: the `uploadManifest` JSON's keys become parameters and the
        files of the `filename` field go to `_uploads` as (name, content type, bytes) (notes §8)."""
        message = BytesParser(policy=HTTP_POLICY).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        parts = list(message.iter_parts()) if message.is_multipart() else []
        files = [part for part in parts if part.get_filename() is not None]
        if not files:  # what PHP leaves when the body was over post_max_size
            raise ApiError(400, "ERROR_UPLOAD_FILE_TOO_BIG_POST_MAX_SIZE", "The file seems too big")
        manifest = next(
            (
                part.get_payload(decode=True)
                for part in parts
                if part.get_param("name", header="content-disposition") == "uploadManifest"
                and part.get_filename() is None
            ),
            None,
        )
        if not isinstance(manifest, bytes):  # no manifest part, or one that is not a plain field
            manifest = b""
        try:
            params = json.loads(manifest.decode("utf-8"))
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise ApiError(400, "ERROR_JSON_PAYLOAD_INVALID", "JSON payload seems not valid")
        params["_uploads"] = [
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b"")
            for part in files
            if php_key_path(str(part.get_param("name", header="content-disposition") or ""))[:1] == ["filename"]
        ]
        return params

    def _route(self, method: str, segments: list[str], params: dict, headers: Message, api_url: str) -> Response:
        self._check_app_token(params, headers)
        if not segments:
            raise ApiError(400, "ERROR_RESOURCE_MISSING", "resource is missing", doc=True)
        name, rest = segments[0], segments[1:]
        if name == "initSession":
            return self._init_session(params, headers)
        token, session = self._session(params, headers)
        if name == "killSession":
            with self._lock:
                self._sessions.pop(token, None)
            return Response.json(200, True)
        if name in ("search", "listSearchOptions"):
            if not rest:
                raise ApiError(400, "ERROR_RESOURCE_MISSING", "resource is missing", doc=True)
            itemtype = self._itemtype(rest[0])
            if itemtype.name not in self._search_options:
                raise method_not_allowed()
            if name == "search":
                return self._search(session, itemtype, params)
            return Response.json(200, self._listed_options[itemtype.name])
        if name in UNSUPPORTED_ENDPOINTS:
            raise method_not_allowed()
        itemtype = self._itemtype(name)
        if method == "GET" and not rest:
            return self._get_items(session, itemtype, params, headers, api_url)
        if method == "GET" and len(rest) == 1:
            item = self._readable_item(session, itemtype, rest[0])
            if itemtype.name == "Document" and params.get("alt") == "media":
                return self._download(item)
            self._check_item_options(params)
            return Response.json(200, self._render(itemtype, item, headers, api_url, params))
        if method == "GET" and len(rest) == 2 and itemtype.name == "Ticket" and rest[1] in TICKET_SUBITEMS:
            return self._get_ticket_subitems(session, rest[0], TICKET_SUBITEMS[rest[1]], params, headers, api_url)
        if method in ("PUT", "PATCH") and len(rest) <= 1 and itemtype.name == "Ticket":
            return self._update_tickets(session, rest[0] if rest else None, params)
        if method == "POST" and len(rest) in (0, 2):
            # POST Ticket/<id>/ITILFollowup adds what the input says: GLPI does not use the URL's id (LAB#234).
            created = self._itemtype(rest[1]) if rest else itemtype
            if created.name == "Ticket" and not rest:
                return self._create_tickets(session, params, headers, api_url)
            if created.name == "Document" and not rest and "_uploads" in params:
                return self._create_document(session, params, headers, api_url)
            if created.name == "ITILFollowup":
                return self._create_followups(session, params, api_url)
            if created.name == "ITILSolution":
                return self._create_solutions(session, params, api_url)
            if created.name == "Ticket_User":
                return self._create_actors(session, params, api_url)
        raise method_not_allowed()

    @staticmethod
    def _itemtype(name: str) -> Itemtype:
        itemtype = ITEMTYPES.get(name)
        if itemtype is None:
            raise ApiError(
                400,
                "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
                "resource not found or not an instance of CommonDBTM",
                doc=True,
            )
        return itemtype
