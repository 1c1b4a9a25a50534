"""GlpiSandbox: GLPI's state and its legacy REST API, served over HTTP."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from typing import Any

from .api import (API_PREFIX, API_V1_PREFIX, CONTROL_PREFIX, NO_PERMISSION, AddRefused, ApiError, Response, Session,
                  method_not_allowed, paged_response, parse_range)
from .php import (decode_html, encode_html, file_size_text, fold, is_digits, like_regex, mysql_number,
                  new_session_token, now_text, parse_php_query, php_int, php_key_path, php_uniqid, php_values,
                  plain_text, priority_level, sort_key)
from .searchoptions import (DOCUMENT_ITEM, FIELDS_OPTION_ID, FIELDS_TABLE, ITEMTYPES, ITILCATEGORY_OPTIONS,
                            TICKET_OPTIONS, TICKET_USER, Itemtype, entity_search_options)
from .server import SandboxServer

LIST_LIMIT = 15  # the user's list_limit preference: search pages default to 0-14
ITEMS_RANGE = (0, 49)  # default page of GET /<itemtype>
FAULTS = ("http500", "http503", "html", "redirect", "stall", "stall_after_create")
SEARCHTYPES = ("contains", "notcontains", "equals", "notequals")
NOT_ALLOWED_IP = "There isn't an active API client matching your IP address in the configuration"

# GLPI endpoints that exist but that the sandbox does not implement: 405 instead of a lie.
UNSUPPORTED_ENDPOINTS = frozenset({
    "getMyProfiles", "getActiveProfile", "changeActiveProfile", "getMyEntities", "getActiveEntities",
    "changeActiveEntities", "getFullSession", "getGlpiConfig", "getMultipleItems", "lostPassword",
})

# The extensions of GLPI 10's default document types (install/empty_data.php, glpi_documenttypes, all
# uploadable). Any other extension is dropped by the upload handler: "File x not found." (LAB#229).
DOCUMENT_EXTENSIONS = frozenset({
    "jpg", "jpeg", "png", "gif", "bmp", "psd", "tif", "aiff", "asf", "avi", "c", "rm", "mid", "mov", "mp3", "mpg",
    "ogg", "qt", "bz2", "ra", "ram", "doc", "djvu", "mng", "eps", "gz", "wav", "html", "swf", "pdf", "ppt", "ps",
    "wmv", "rtf", "sdd", "sdw", "sit", "ai", "sxi", "sxw", "dvi", "tgz", "txt", "rpm", "xls", "xml", "zip", "deb",
    "h", "pas", "sxc", "tex", "xcf", "odt", "ods", "odp", "otp", "ott", "ots", "odf", "odg", "otg", "odb", "oth",
    "odm", "odc", "odi", "docx", "xlsx", "pptx", "csv", "svg",
})
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
    "global_validation": 1, "slas_id_ttr": 0, "slas_id_tto": 0, "slalevels_id_ttr": 0,
    "time_to_resolve": None, "time_to_own": None, "begin_waiting_date": None, "sla_waiting_duration": 0,
    "ola_waiting_duration": 0, "olas_id_tto": 0, "olas_id_ttr": 0, "olalevels_id_ttr": 0,
    "ola_tto_begin_date": None, "ola_ttr_begin_date": None, "internal_time_to_resolve": None,
    "internal_time_to_own": None, "waiting_duration": 0, "close_delay_stat": 0, "solve_delay_stat": 0,
    "takeintoaccount_delay_stat": 0, "actiontime": 0, "is_deleted": 0, "locations_id": 0, "validation_percent": 0,
}

# Foreign keys GLPI turns into {"rel", "href"} links when not 0 (entities_id: always).
FOREIGN_KEYS = {
    "entities_id": "Entity", "users_id_lastupdater": "User", "users_id_recipient": "User",
    "requesttypes_id": "RequestType", "itilcategories_id": "ITILCategory", "locations_id": "Location",
    "tickets_id": "Ticket", "users_id": "User", "groups_id": "Group", "profiles_id": "Profile",
    "knowbaseitemcategories_id": "KnowbaseItemCategory", "documents_id": "Document",
}

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
   <meta charset="utf-8" />
   <title>GLPI - Authentication</title>
   <meta name="viewport" content="width=device-width, initial-scale=1" />
</head>
<body class="welcome-anonymous">
   <div class="page-anonymous">
      <form action="/front/login.php" method="post" autocomplete="off">
         <h2>Login to your account</h2>
         <input type="text" name="login_name" id="login_name" placeholder="Login" />
         <input type="password" name="login_password" id="login_password" placeholder="Password" />
         <button type="submit" name="submit">Sign in</button>
      </form>
   </div>
</body>
</html>
"""

MAINTENANCE_PAGE = "<html><head><title>503 Service Unavailable</title></head><body>Em manutenção</body></html>"
SERVER_ERROR_PAGE = """<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">
<html><head>
<title>500 Internal Server Error</title>
</head><body>
<h1>Internal Server Error</h1>
<p>The server encountered an internal error or misconfiguration and was unable to complete your request.</p>
</body></html>
"""


def endpoint_name(segments: list[str]) -> str:
    """How calls are counted: "initSession", "search/Entity", "Ticket", "Ticket/Ticket_User"..."""
    if not segments:
        return ""
    if segments[0] in ("search", "listSearchOptions") and len(segments) > 1:
        return f"{segments[0]}/{segments[1]}"
    if len(segments) >= 3:
        return f"{segments[0]}/{segments[2]}"
    return segments[0]


class GlpiSandbox:
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
        self.fault_endpoints: set[str] | None = None
        self.stall_seconds = 30.0
        self.retry_after_seconds = 120
        self.tickets: dict[int, dict] = {}
        self._last_ticket_id = 0
        self.ticket_users: list[dict] = []  # Ticket_User rows (requesters), as GLPI lists them
        self.documents: dict[int, dict] = {}
        self.document_items: list[dict] = []  # Document_Item rows: which document is attached to what
        self.document_files: dict[int, bytes] = {}  # document id -> the bytes uploaded
        self.document_extensions = set(DOCUMENT_EXTENSIONS)  # GLPI's uploadable document types
        self.url: str | None = None
        self._fault: str | None = None
        self._lock = threading.RLock()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._sessions: dict[str, Session] = {}
        self._stopping = threading.Event()
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._created = now_text()
        self._entities: dict[int, dict] = {}
        self._fields_rows: dict[int, dict] = {}  # entity id -> {"id": row id, "value": CNPJ}
        self._users: dict[int, dict] = {}
        self._reach: dict[int, tuple[int, bool]] = {}  # user id -> (entity, recursive)
        self._categories: dict[int, dict] = {}
        self._request_types: dict[int, dict] = {}
        self._seed(seed)
        self._user_tokens = dict(user_tokens if user_tokens is not None else {"sandbox-user-token": 7})
        unknown = sorted(set(self._user_tokens.values()) - set(self._users))
        if unknown:
            raise ValueError(f"user_tokens name unknown users {unknown}; known: {sorted(self._users)}")
        self._listed_options = {"Entity": entity_search_options(fields_option_id, extra_search_options),
                                "Ticket": TICKET_OPTIONS, "ITILCategory": ITILCATEGORY_OPTIONS}
        self._search_options = {
            itemtype: {key: option for key, option in options.items() if key.isdigit()}
            for itemtype, options in self._listed_options.items()
        }

    # --- seed data -------------------------------------------------------------------------

    def _seed(self, seed: str) -> None:
        self._entities[0] = self._entity_record(0, "Root entity", None)
        for name, cnpj in (("Cliente Alfa", "11.222.333/0001-81"), ("Cliente Beta", "11444777000161"),
                           ("Cliente Gama", "12.ABC.345/01DE-35"), ("Cliente Alfa Filial", "11.222.333/0002-62"),
                           ("Cliente Sem CNPJ", None)):
            self.add_entity(name, cnpj)
        for user_id, name, realname, firstname, reach in (
            (2, "glpi", None, None, (0, True)),
            (7, "api", "Integração", "Serviço Flask", (0, True)),
            (8, "joao.solicitante", "Solicitante", "João", (0, True)),
            (9, "api_restrito", "Restrito", "API", (1, False)),
        ):
            self._users[user_id] = self._user_record(user_id, name, realname, firstname)
            self._reach[user_id] = reach
        self._categories[1] = self._category_record(1, "Suporte Técnico")
        self._request_types[1] = self._request_type_record(1, "Helpdesk", helpdesk_default=True)
        self._request_types[7] = self._request_type_record(7, "Portal Flask")
        if seed == "demo":
            self.add_entity("Cliente Delta", "a1b2c3d4e5f668")  # A1.B2C.3D4/E5F6-68, stored bare in lower case
            self.add_entity("Cliente Duplicado Matriz", "19.131.100/0001-85")  # the same CNPJ on two entities
            self.add_entity("Cliente Duplicado Cópia", "19131100000185")
            self._categories[2] = self._category_record(2, "Rede")
            self._categories[3] = self._category_record(3, "Impressoras")

    def _entity_record(self, entity_id: int, name: str, parent_id: int | None) -> dict:
        parent = self._entities.get(parent_id) if parent_id is not None else None
        now = now_text()
        return {
            "id": entity_id, "name": name, "entities_id": parent_id,
            "completename": f"{parent['completename']} > {name}" if parent else name,
            "comment": None, "level": parent["level"] + 1 if parent else 1, "registration_number": None,
            "address": None, "postcode": None, "town": None, "state": None, "country": None,
            "website": None, "phonenumber": None, "fax": None, "email": None,
            "date_mod": now, "date_creation": now,
        }

    def _user_record(self, user_id: int, name: str, realname: str | None, firstname: str | None) -> dict:
        return {
            "id": user_id, "name": name, "phone": None, "phone2": None, "mobile": None,
            "realname": realname, "firstname": firstname, "locations_id": 0, "language": None,
            "is_active": 1, "comment": None, "auths_id": 0, "authtype": 1, "last_login": None,
            "date_mod": self._created, "is_deleted": 0, "profiles_id": 0, "entities_id": 0,
            "date_creation": self._created,
        }

    def _category_record(self, category_id: int, name: str) -> dict:
        return {
            "id": category_id, "entities_id": 0, "is_recursive": 1, "itilcategories_id": 0, "name": name,
            "completename": name, "comment": None, "level": 1, "knowbaseitemcategories_id": 0, "users_id": 0,
            "groups_id": 0, "code": "", "ancestors_cache": "[]", "sons_cache": None, "is_helpdeskvisible": 1,
            "tickettemplates_id_incident": 0, "tickettemplates_id_demand": 0, "changetemplates_id": 0,
            "problemtemplates_id": 0, "is_incident": 1, "is_request": 1, "is_problem": 1, "is_change": 1,
            "date_mod": self._created, "date_creation": self._created,
        }

    def _request_type_record(self, type_id: int, name: str, helpdesk_default: bool = False) -> dict:
        return {
            "id": type_id, "name": name, "is_helpdesk_default": int(helpdesk_default),
            "is_followup_default": int(helpdesk_default), "is_mail_default": 0, "is_mailfollowup_default": 0,
            "is_active": 1, "is_ticketheader": 1, "is_itilfollowup": 1, "comment": None,
            "date_mod": self._created, "date_creation": self._created,
        }

    # --- public API for tests and benchmarks ------------------------------------------------

    def add_entity(self, name: str, cnpj: str | None = None, parent_id: int = 0) -> int:
        """Create an entity (with a Fields row when `cnpj` is given) and return its id.

        Sessions opened before cannot create tickets in it (their rights were fixed at
        initSession, LAB#306) but do find it by search (LAB#305).
        """
        with self._lock:
            if parent_id not in self._entities:
                raise ValueError(f"no entity {parent_id}")
            entity_id = max(self._entities) + 1
            self._entities[entity_id] = self._entity_record(entity_id, name, parent_id)
            if cnpj is not None:
                self.set_entity_cnpj(entity_id, cnpj)
            return entity_id

    def set_entity_cnpj(self, entity_id: int, cnpj: str) -> None:
        """What `PUT Entity/<id> {"input": {"cnpjfield": ...}}` does: set or create the Fields row."""
        with self._lock:
            if entity_id not in self._entities:
                raise ValueError(f"no entity {entity_id}")
            row = self._fields_rows.get(entity_id)
            if row is None:
                row_id = max((row["id"] for row in self._fields_rows.values()), default=0) + 1
                row = self._fields_rows[entity_id] = {"id": row_id}
            row["value"] = cnpj

    @property
    def fault(self) -> str | None:
        """None, or one of FAULTS, applied to `fault_endpoints` (every API endpoint when None).

        "http500": a 500 HTML error page; "http503": a proxy's 503 maintenance page with
        `Retry-After: retry_after_seconds`; "html": 200 with GLPI's login page (a proxy or a wrong
        URL); "redirect": 301 to the same path over https (a web server forcing TLS); "stall": wait
        `stall_seconds`, then answer; "stall_after_create": do the work (create
        the ticket), then wait `stall_seconds` before answering -- an answer lost after the fact.
        """
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"fault must be None or one of {FAULTS}")
        self._fault = value

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """API calls so far, keyed by (method, endpoint): ("GET", "search/Entity"), ("POST", "Ticket")..."""
        with self._lock:
            return Counter(self._calls)

    def call_count(self, endpoint: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(count for (call_method, call_endpoint), count in self._calls.items()
                       if endpoint in (None, call_endpoint) and method in (None, call_method))

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def expire_sessions(self) -> int:
        """Forget every session, as PHP's garbage collector does; returns how many there were."""
        with self._lock:
            expired = len(self._sessions)
            self._sessions.clear()
            return expired

    def session_tokens(self) -> list[str]:
        """The tokens of the open sessions (a test can check that none leaks)."""
        with self._lock:
            return list(self._sessions)

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
        bound_host, bound_port = self._server.server_address[:2]
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
        self._thread.join()
        self._server = self._thread = None

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    # --- HTTP entry points (called by the request handler) -----------------------------------

    def handle(self, method: str, target: str, headers: Message, body: bytes, origin: str,
               client_ip: str = "127.0.0.1") -> Response:
        path, _, query = target.partition("?")
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX):].strip("/"), body)
        # GLPI 11 also serves the legacy API under /api.php/v1, and its links and docs point there.
        prefixes = (API_PREFIX, API_V1_PREFIX) if self.version == 11 else (API_PREFIX,)
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return self._api(method, path[len(prefix):], query, headers, body, origin + prefixes[-1],
                                 client_ip)
        return Response(404, b"Not Found", "text/plain; charset=UTF-8")

    def _api(self, method: str, route: str, query: str, headers: Message, body: bytes, api_url: str,
             client_ip: str) -> Response:
        segments = [segment for segment in route.split("/") if segment]
        endpoint = endpoint_name(segments)
        with self._lock:
            self._calls[(method, endpoint)] += 1
        self._pause(self.latency_ms / 1000)
        fault = self._fault if self.fault_endpoints is None or endpoint in self.fault_endpoints else None
        if fault == "http500":
            return Response.page(500, SERVER_ERROR_PAGE)
        if fault == "http503":
            unavailable = Response.page(503, MAINTENANCE_PAGE)
            unavailable.headers["Retry-After"] = str(self.retry_after_seconds)
            return unavailable
        if fault == "html":
            return Response.page(200, LOGIN_PAGE)
        if fault == "redirect":
            target = f"https://{api_url.split('://', 1)[1]}{route}" + (f"?{query}" if query else "")
            return Response(301, b"", "text/html; charset=UTF-8", {"Location": target})
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
            raise ApiError(400, "ERROR_JSON_PAYLOAD_FORBIDDEN",
                           "GET Request should not have json payload (http body)", doc=True)
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
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
        files = [part for part in parts if part.get_filename() is not None]
        if not files:  # what PHP leaves when the body was over post_max_size
            raise ApiError(400, "ERROR_UPLOAD_FILE_TOO_BIG_POST_MAX_SIZE", "The file seems too big")
        manifest = next((part.get_payload(decode=True) for part in parts
                         if part.get_param("name", header="content-disposition") == "uploadManifest"
                         and part.get_filename() is None), b"")
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
            return Response.json(200, self._render(itemtype, item, headers, api_url))
        if method == "GET" and len(rest) == 2 and (itemtype.name, rest[1]) == ("Ticket", "Ticket_User"):
            return self._get_ticket_users(session, rest[0], params, headers, api_url)
        if method == "GET" and len(rest) == 2 and (itemtype.name, rest[1]) == ("Ticket", "Document_Item"):
            return self._get_ticket_documents(session, rest[0], params, headers, api_url)
        if method == "POST" and not rest and itemtype.name == "Ticket":
            return self._create_tickets(session, params, headers, api_url)
        if method == "POST" and not rest and itemtype.name == "Document" and "_uploads" in params:
            return self._create_document(session, params, headers, api_url)
        raise method_not_allowed()

    @staticmethod
    def _itemtype(name: str) -> Itemtype:
        itemtype = ITEMTYPES.get(name)
        if itemtype is None:
            raise ApiError(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
                           "resource not found or not an instance of CommonDBTM", doc=True)
        return itemtype

    # --- authentication ----------------------------------------------------------------------

    def _check_api_client(self, client_ip: str) -> None:
        """GLPI's checks before the App-Token: the API is on, and an API client matches REMOTE_ADDR."""
        if not self.api_enabled:
            raise ApiError(400, "ERROR", "API disabled")
        if self.allowed_ips is not None and client_ip not in self.allowed_ips:
            raise ApiError(400, "ERROR_NOT_ALLOWED_IP", f"{NOT_ALLOWED_IP} ({client_ip})")

    def _check_app_token(self, params: dict, headers: Message) -> None:
        """Runs first on every endpoint, before the session check (LAB#19, #19b)."""
        sent = headers.get("App-Token", params.get("app_token", ""))
        sent = sent if isinstance(sent, str) else ""
        if sent == (self.app_token or ""):
            return
        if sent:  # also when the API client has no App-Token at all
            raise ApiError(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong", doc=True)
        raise ApiError(400, "ERROR_APP_TOKEN_PARAMETERS_MISSING", "missing parameter app_token", doc=True)

    def _init_session(self, params: dict, headers: Message) -> Response:
        user_token = params.get("user_token")
        login, password = params.get("login"), params.get("password")
        authorization = "" if self.drops_authorization else headers.get("Authorization", "")
        if "user_token" in authorization:
            words = authorization.split(" ")
            user_token = words[1] if len(words) > 1 else ""
        elif authorization.startswith("Basic "):
            try:
                login, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                login = password = None
        user_token = user_token if isinstance(user_token, str) else ""
        if not user_token and not (login and password):
            raise ApiError(400, "ERROR_LOGIN_PARAMETERS_MISSING",
                           "parameter(s) login, password or user_token are missing", doc=True)
        if not user_token:  # a fresh GLPI disables login with credentials
            raise ApiError(400, "ERROR_LOGIN_WITH_CREDENTIALS_DISABLED",
                           "usage of initSession resource with credentials is disabled")
        user_id = self._user_tokens.get(user_token)
        if user_id is None:
            raise ApiError(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid")
        token = new_session_token()
        with self._lock:
            home, _ = self._reach[user_id]
            self._sessions[token] = Session(user_id, home, self._reachable(user_id), time.monotonic())
        return Response.json(200, {"session_token": token})

    def _session(self, params: dict, headers: Message) -> tuple[str, Session]:
        """The session named by the Session-Token header, else by `session_token` (LAB#240-242)."""
        token = headers.get("Session-Token", params.get("session_token"))
        if not (isinstance(token, str) and token):
            raise ApiError(400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing or empty",
                           doc=True)
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session and self.session_max_idle is not None and now - session.last_used > self.session_max_idle:
                del self._sessions[token]
                session = None
            if session is None:
                raise ApiError(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
            session.last_used = now
            return token, session

    def _reachable(self, user_id: int) -> frozenset[int]:
        """The entities the user's authorization reaches now: its entity, and the sub-entities if recursive."""
        home, recursive = self._reach[user_id]
        reached = {home}
        if recursive:
            pending = [home]
            while pending:
                parent = pending.pop()
                children = [eid for eid, entity in self._entities.items() if entity["entities_id"] == parent]
                reached.update(children)
                pending.extend(children)
        return frozenset(reached)

    # --- reading items -----------------------------------------------------------------------

    def _collection(self, itemtype: Itemtype) -> dict[int, dict]:
        return {
            "Ticket": self.tickets, "Entity": self._entities, "ITILCategory": self._categories,
            "User": self._users, "RequestType": self._request_types, "Document": self.documents,
        }[itemtype.name]

    def _visible(self, itemtype: Itemtype, item: dict, entities: frozenset[int]) -> bool:
        if itemtype.name == "Entity":
            return item["id"] in entities
        if itemtype.name == "Ticket":
            return item["entities_id"] in entities and not item["is_deleted"]
        if itemtype.name in ("Document", "Document_Item"):  # never recursive here: only their own entity
            return item["entities_id"] in entities
        if itemtype.name == "ITILCategory":  # a recursive category is seen from its sub-entities
            return item["entities_id"] in entities or bool(
                item["is_recursive"] and any(item["entities_id"] in self._ancestors(eid) for eid in entities))
        return True

    def _ancestors(self, entity_id: int) -> set[int]:
        ancestors = set()
        parent = self._entities[entity_id]["entities_id"] if entity_id in self._entities else None
        while parent is not None:
            ancestors.add(parent)
            parent = self._entities[parent]["entities_id"]
        return ancestors

    def _readable_item(self, session: Session, itemtype: Itemtype, raw_id: str) -> dict:
        with self._lock:
            item = self._collection(itemtype).get(int(raw_id)) if is_digits(raw_id) else None
            if item is None:
                raise ApiError(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
            if not self._visible(itemtype, item, session.entities):
                raise ApiError(403, "ERROR_RIGHT_MISSING", NO_PERMISSION)
            return dict(item)

    def _render(self, itemtype: Itemtype, item: dict, headers: Message, api_url: str) -> dict:
        """An item as GET returns it, with its links; GLPI 10 text stays encoded (LAB#51, #252)."""
        if self._unsanitized(headers):
            item = {key: decode_html(value) if isinstance(value, str) else value for key, value in item.items()}
        links = [
            {"rel": FOREIGN_KEYS[key], "href": f"{api_url}/{FOREIGN_KEYS[key]}/{value}"}
            for key, value in item.items()
            if key in FOREIGN_KEYS and value is not None and (value != 0 or key == "entities_id")
        ]
        if "itemtype" in item and "items_id" in item:  # a relation links to its item second (LAB#222)
            links.insert(1, {"rel": item["itemtype"], "href": f"{api_url}/{item['itemtype']}/{item['items_id']}"})
        links += [{"rel": sub, "href": f"{api_url}/{itemtype.name}/{item['id']}/{sub}/"} for sub in itemtype.sub_links]
        return {**item, "links": links} if links else item

    def _get_items(self, session: Session, itemtype: Itemtype, params: dict, headers: Message,
                   api_url: str) -> Response:
        start, end = parse_range(params.get("range"), ITEMS_RANGE)
        with self._lock:
            items = [dict(item) for item in self._collection(itemtype).values()
                     if self._visible(itemtype, item, session.entities)]
        sort = params.get("sort")
        sort = sort if isinstance(sort, str) and items and sort in items[0] else "id"
        items.sort(key=lambda item: sort_key(item[sort]), reverse=params.get("order") == "DESC")
        page = [self._render(itemtype, item, headers, api_url) for item in items[start:end + 1]]
        return paged_response(itemtype.name, page, start, len(page), len(items))

    def _get_ticket_users(self, session: Session, raw_id: str, params: dict, headers: Message,
                          api_url: str) -> Response:
        ticket = self._readable_item(session, ITEMTYPES["Ticket"], raw_id)
        start, end = parse_range(params.get("range"), ITEMS_RANGE)
        with self._lock:
            rows = [dict(row) for row in self.ticket_users if row["tickets_id"] == ticket["id"]]
        page = [self._render(TICKET_USER, row, headers, api_url) for row in rows[start:end + 1]]
        return paged_response(TICKET_USER.name, page, start, len(page), len(rows))

    def _get_ticket_documents(self, session: Session, raw_id: str, params: dict, headers: Message,
                              api_url: str) -> Response:
        """Ticket/<id>/Document_Item: only the links in the session's entities (LAB#267, #271)."""
        ticket = self._readable_item(session, ITEMTYPES["Ticket"], raw_id)
        start, end = parse_range(params.get("range"), ITEMS_RANGE)
        with self._lock:
            rows = [dict(row) for row in self.document_items
                    if (row["itemtype"], row["items_id"]) == ("Ticket", ticket["id"])
                    and self._visible(DOCUMENT_ITEM, row, session.entities)]
        page = [self._render(DOCUMENT_ITEM, row, headers, api_url) for row in rows[start:end + 1]]
        return paged_response(DOCUMENT_ITEM.name, page, start, len(page), len(rows))

    def _download(self, document: dict) -> Response:
        """Document/<id>?alt=media: the file itself (LAB#224)."""
        with self._lock:
            content = self.document_files[document["id"]]
        name = document["filename"]
        raw_name = name.encode("utf-8").decode("latin-1")  # PHP writes the UTF-8 bytes as they are
        return Response(200, content, document["mime"], {
            "Content-Disposition": f'filename="{raw_name}"; filename*=utf-8\'\'{urllib.parse.quote(name)}',
            "Cache-Control": "private",
        })

    # --- search ------------------------------------------------------------------------------

    def _search(self, session: Session, itemtype: Itemtype, params: dict) -> Response:
        """`search/<itemtype>`: GLPI's search engine on the sandbox's data (notes §4)."""
        options = self._search_options[itemtype.name]
        criteria = php_values(params.get("criteria", []))
        self._validate_criteria(criteria, options)
        start, end = parse_range(params.get("range"), (0, LIST_LIMIT - 1))
        sort = str(params.get("sort", "1"))
        sort = sort if sort in options else "1"
        order = "DESC" if params.get("order") == "DESC" else "ASC"
        columns = ["1", *(["80"] if itemtype.entity_column else []),
                   *map(str, php_values(params.get("forcedisplay", []))), *self._criteria_fields(criteria), sort]
        columns = [column for column in dict.fromkeys(columns) if column in options]
        with self._lock:
            # Search sees what the user's authorization reaches now, including entities created
            # after the session was opened (LAB#305).
            reachable = self._reachable(session.user_id)
            found = [item for _, item in sorted(self._collection(itemtype).items())
                     if self._visible(itemtype, item, reachable) and self._matches(itemtype, item, criteria)]
            found.sort(key=lambda item: sort_key(self._cell(itemtype, item, options[sort])[0]),
                       reverse=order == "DESC")
            # Presence flags: GLPI tests them with isset(), so "withindexes=false" turns it on.
            keys = {column: options[column]["uid"] if "uid_cols" in params else column for column in columns}
            rows = [(item["id"], {keys[column]: self._cell(itemtype, item, options[column])[0] for column in columns})
                    for item in found[start:end + 1]]
        total = len(found)
        answer: dict[str, Any] = {"totalcount": total, "count": len(rows), "sort": [sort], "order": [order]}
        if rows:  # GLPI only sets "data" inside its row loop (LAB#31)
            answer["data"] = ({str(item_id): row for item_id, row in rows} if "withindexes" in params
                              else [row for _, row in rows])
        answer["content-range"] = f"{start}-{start + len(rows) - 1}/{total}"
        return paged_response(itemtype.name, answer, start, len(rows), total)

    def _validate_criteria(self, criteria: list, options: dict) -> None:
        for criterion in criteria:
            if isinstance(criterion, dict) and "criteria" in criterion:
                self._validate_criteria(php_values(criterion["criteria"]), options)
                continue
            if not isinstance(criterion, dict) or not {"field", "searchtype", "value"} <= criterion.keys() or \
                    isinstance(criterion["value"], (dict, list)):
                raise ApiError(400, "ERROR", "Malformed search criteria", doc=True)
            criterion["field"] = str(criterion["field"])
            criterion["value"] = str(criterion["value"])
            if criterion["field"] not in options:
                raise ApiError(400, "ERROR", "Bad field ID in search criteria", doc=True)
            if options[criterion["field"]]["nosearch"]:
                raise ApiError(400, "ERROR", "Forbidden field ID in search criteria", doc=True)
            if criterion["searchtype"] not in SEARCHTYPES:
                raise ApiError(400, "ERROR", f"searchtype {criterion['searchtype']!r} is not supported by the "
                                             f"GLPI sandbox (supported: {', '.join(SEARCHTYPES)})", doc=True)

    def _criteria_fields(self, criteria: list) -> list[str]:
        fields = []
        for criterion in criteria:
            if "criteria" in criterion:
                fields += self._criteria_fields(php_values(criterion["criteria"]))
            else:
                fields.append(criterion["field"])
        return fields

    def _matches(self, itemtype: Itemtype, item: dict, criteria: list) -> bool:
        """Criteria joined by their links with SQL precedence: NOT, then AND, then OR (LAB#207, #208)."""
        terms = []  # OR-separated groups of AND-ed results
        for criterion in criteria:
            if "criteria" in criterion:
                result = self._matches(itemtype, item, php_values(criterion["criteria"]))
            else:
                result = self._criterion_matches(itemtype, item, criterion)
            if result is None:  # an empty value adds no condition (LAB#49b)
                continue
            link = str(criterion.get("link", "AND")).upper()
            if link.endswith("NOT"):
                result = not result
            if not terms or link.startswith("OR"):
                terms.append([result])
            else:
                terms[-1].append(result)
        return not terms or any(all(group) for group in terms)

    def _criterion_matches(self, itemtype: Itemtype, item: dict, criterion: dict) -> bool | None:
        option = self._search_options[itemtype.name][criterion["field"]]
        searchtype, value = criterion["searchtype"], criterion["value"]
        if value == "":
            return None
        cell, joined_id = self._cell(itemtype, item, option)
        if searchtype in ("equals", "notequals"):
            if option["table"] != itemtype.table:
                # On another table GLPI compares the joined row's id, not the text: for the Fields
                # option that is the plugin's row id (LAB#35, #101, #102).
                equal = joined_id is not None and joined_id == mysql_number(value)
            elif isinstance(cell, int):
                equal = cell == mysql_number(value)
            else:
                equal = cell is not None and fold(str(cell)).rstrip() == fold(value).rstrip()
            return equal if searchtype == "equals" else not equal
        negate = searchtype == "notcontains"
        if option["datatype"] == "number" and re.fullmatch(r"\s*\d+\s*", value):
            return (cell != int(value)) if negate else (cell == int(value))
        if value in ("NULL", "null"):  # IS NULL OR = ''  /  IS NOT NULL OR = ''
            return cell is not None if negate else cell in (None, "")
        regex = like_regex(value, encode_ampersand=self.version == 10)
        if regex is None:
            return None
        found = cell is not None and regex.fullmatch(fold(str(cell))) is not None
        return not found if negate else found  # notcontains keeps rows without a value (LAB#206)

    def _cell(self, itemtype: Itemtype, item: dict, option: dict) -> tuple[Any, int | None]:
        """(value shown in the column, id of the row the value comes from) for a search option."""
        table, column = option["table"], option["field"]
        if table == itemtype.table:
            return item.get(column), item["id"]
        if table == FIELDS_TABLE and itemtype.name == "Entity":
            row = self._fields_rows.get(item["id"])
            return (row["value"], row["id"]) if row else (None, None)
        joined = {"glpi_entities": (self._entities, "entities_id"),
                  "glpi_itilcategories": (self._categories, "itilcategories_id")}.get(table)
        if joined is None:
            return None, None
        records, key = joined
        record = records.get(item.get(key))
        return (record.get(column), record["id"]) if record else (None, None)

    # --- creating tickets ----------------------------------------------------------------------

    def _create_tickets(self, session: Session, params: dict, headers: Message, api_url: str) -> Response:
        """POST /Ticket: an `input` object creates one ticket, a list several (notes §5)."""
        payload = params.get("input")
        bulk = isinstance(payload, list)
        inputs = payload if bulk else [payload]
        if not inputs or not all(isinstance(fields, dict) for fields in inputs):
            raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects", doc=True)
        results = []
        for fields in inputs:
            try:
                ticket_id = self._add_ticket(session, fields)
            except AddRefused as refusal:
                results.append({"id": False, "message": str(refusal)})
            else:
                results.append({"id": ticket_id, "message": self._added_message(ticket_id, headers)})
        created = [result["id"] for result in results if result["id"] is not False]
        if not bulk:
            if not created:
                return Response.json(400, ["ERROR_GLPI_ADD", results[0]["message"]])
            return Response.json(201, results[0], {"location": f"{api_url}/Ticket/{created[0]}"})
        if len(created) == len(results):
            return Response.json(201, results, {"link": ",".join(f"{api_url}/Ticket/{tid}" for tid in created)})
        code = "ERROR_GLPI_PARTIAL_ADD" if created else "ERROR_GLPI_ADD"
        return Response.json(207 if created else 400, [code, results])

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
            now = now_text()
            self.tickets[ticket_id] = {
                "id": ticket_id, "entities_id": entity_id, "name": self._stored(name), "date": now,
                "closedate": None, "solvedate": None, "takeintoaccountdate": None, "date_mod": now,
                "users_id_lastupdater": session.user_id, "status": 1,
                "users_id_recipient": session.user_id,  # whatever the client sent (LAB#66)
                "requesttypes_id": php_int(fields.get("requesttypes_id", 1)), "content": self._stored(content),
                "urgency": urgency, "impact": impact, "priority": PRIORITY[urgency][impact],
                "itilcategories_id": php_int(fields.get("itilcategories_id", 0)),  # not checked (LAB#60b)
                "type": php_int(fields.get("type", 1)),  # not checked either (LAB#111)
                **TICKET_FIXED_COLUMNS, "date_creation": now,
            }
            for user_id, use_notification, email in requesters:
                self.ticket_users.append({
                    "id": len(self.ticket_users) + 1, "tickets_id": ticket_id, "users_id": user_id, "type": 1,
                    "use_notification": use_notification, "alternative_email": email,
                })
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

    # --- documents ----------------------------------------------------------------------------

    def _create_document(self, session: Session, params: dict, headers: Message, api_url: str) -> Response:
        """POST /Document as multipart: one document from the first uploaded file, linked to the item
        the manifest names, in the manifest's `entities_id` or else the session's entity (notes §8)."""
        fields = params.get("input")
        if not isinstance(fields, dict):
            raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects", doc=True)
        uploads = [(f"{php_uniqid()}{name}", name, content_type, content)
                   for name, content_type, content in params["_uploads"]]
        if not uploads:
            raise ApiError(400, "ERROR", "the GLPI sandbox only takes files sent in the filename[] field")
        try:
            document_id = self._add_document(session, fields, uploads[0])
        except AddRefused as refusal:
            return Response.json(400, ["ERROR_GLPI_ADD", str(refusal)])
        origin = re.sub(r"/(apirest\.php|api\.php/v1)$", "", api_url)
        upload_result = [{
            "name": stored, "size": len(content), "type": content_type, "url": f"{origin}/files/{stored}",
            "deleteUrl": f"{api_url}?filenam={stored}", "deleteType": "DELETE", "prefix": stored[:-len(name)],
            "display": name, "filesize": file_size_text(len(content)),
            "id": f"docfilename{secrets.randbelow(2**31)}",
        } for stored, name, content_type, content in uploads if self._uploadable(name)]
        name = self.documents[document_id]["name"]
        if self._unsanitized(headers):
            name = decode_html(name)
        answer = {"id": document_id, "message": f"Item successfully added: {name}",  # no "(id)" here (LAB#221)
                  "upload_result": {"filename": upload_result}}
        return Response.json(201, answer, {"location": f"{api_url}/Document/{document_id}"})

    def _uploadable(self, filename: str) -> bool:
        return "." in filename and filename.rsplit(".", 1)[1].lower() in self.document_extensions

    def _add_document(self, session: Session, fields: dict, upload: tuple[str, str, str, bytes]) -> int:
        _, filename, _, content = upload
        with self._lock:
            entity_id = php_int(fields["entities_id"]) if "entities_id" in fields else session.active_entity
            if entity_id not in self._entities or entity_id not in session.entities:
                raise AddRefused(NO_PERMISSION)
            name = self._text(fields.get("name"))
            item = None
            if "itemtype" in fields or "items_id" in fields:
                item = self.tickets.get(php_int(fields.get("items_id")))
                # Not recorded: a link to an item the user cannot see is refused like an unseen entity.
                if fields.get("itemtype") != "Ticket" or item is None or \
                        not self._visible(ITEMTYPES["Ticket"], item, session.entities):
                    raise AddRefused(NO_PERMISSION)
                name = f"Document: Ticket - {decode_html(item['name'])}"  # GLPI names it after the item (LAB#221)
            if not self._uploadable(filename):  # the upload handler dropped the file (LAB#229)
                raise AddRefused(f"File {filename} not found.")
            document_id = max(self.documents, default=0) + 1
            sha1 = hashlib.sha1(content).hexdigest()
            extension = filename.rpartition(".")[2].upper()
            now = now_text()
            self.documents[document_id] = {
                "id": document_id, "entities_id": entity_id, "is_recursive": 0, "name": self._stored(name),
                "filename": filename, "filepath": f"{extension}/{sha1[:2]}/{sha1[2:]}.{extension}",
                "documentcategories_id": 0, "mime": mimetypes.guess_type(filename)[0] or "application/octet-stream",
                "date_mod": now, "comment": None, "is_deleted": 0, "link": None, "users_id": session.user_id,
                "tickets_id": 0, "sha1sum": sha1, "is_blacklisted": 0,
                "tag": f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{php_uniqid()}", "date_creation": now,
            }
            self.document_files[document_id] = content
            if item is not None:  # the link takes the document's entity, not the ticket's (LAB#222, #267)
                self.document_items.append({
                    "id": len(self.document_items) + 1, "documents_id": document_id, "items_id": item["id"],
                    "itemtype": "Ticket", "entities_id": entity_id, "is_recursive": 0, "date_mod": now,
                    "users_id": session.user_id, "timeline_position": 1, "date_creation": now, "date": None,
                })
            return document_id

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

    def _added_message(self, ticket_id: int, headers: Message) -> str:
        name = self.tickets[ticket_id]["name"]
        if self._unsanitized(headers):
            name = decode_html(name)
        return f"Item successfully added: {name or f'Ticket - ID {ticket_id}'} ({ticket_id})"

    # --- control endpoints -----------------------------------------------------------------------

    def _control(self, method: str, route: str, body: bytes) -> Response:
        """Endpoints under /_sandbox/ for a benchmark or test running in another process.

        GET stats; POST reset-calls; POST expire-sessions; POST config {"latency_ms", "fault",
        "fault_endpoints", "stall_seconds", "retry_after_seconds"}; POST entities {"name", "cnpj", "parent_id"} -> {"id"};
        GET tickets/<id>. They are not counted as API calls and have no latency.
        """
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            if (method, route) == ("GET", "stats"):
                with self._lock:
                    calls = {f"{call_method} {endpoint}": count
                             for (call_method, endpoint), count in sorted(self._calls.items())}
                    return Response.json(200, {"calls": calls, "total": sum(calls.values()),
                                               "tickets": len(self.tickets)})
            if (method, route) == ("POST", "reset-calls"):
                self.reset_calls()
                return Response.json(200, {"calls": {}})
            if (method, route) == ("POST", "expire-sessions"):
                return Response.json(200, {"expired": self.expire_sessions()})
            if (method, route) == ("POST", "config"):
                return Response.json(200, self._configure(payload))
            if (method, route) == ("POST", "entities"):
                if not isinstance(payload.get("name"), str):
                    raise ValueError('"name" is required')
                entity_id = self.add_entity(payload["name"], payload.get("cnpj"), int(payload.get("parent_id", 0)))
                return Response.json(201, {"id": entity_id})
            match = re.fullmatch(r"tickets/(\d+)", route)
            if method == "GET" and match:
                with self._lock:
                    ticket = self.tickets.get(int(match.group(1)))
                    if ticket is None:
                        return Response.json(404, {"error": "no such ticket"})
                    return Response.json(200, ticket)
        except (ValueError, TypeError) as error:
            return Response.json(400, {"error": str(error)})
        return Response.json(404, {"error": f"unknown control endpoint {method} /_sandbox/{route}"})

    def _configure(self, settings: dict) -> dict:
        """Check every setting, then apply them all."""
        latency_ms = float(settings.get("latency_ms", self.latency_ms))
        stall_seconds = float(settings.get("stall_seconds", self.stall_seconds))
        retry_after_seconds = int(settings.get("retry_after_seconds", self.retry_after_seconds))
        fault = settings.get("fault", self.fault)
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be null or one of {FAULTS}")
        endpoints = settings.get("fault_endpoints", self.fault_endpoints)
        if endpoints is not None and not all(isinstance(endpoint, str) for endpoint in endpoints):
            raise ValueError("fault_endpoints must be null or a list of endpoints")
        self.latency_ms, self.stall_seconds, self.fault = latency_ms, stall_seconds, fault
        self.retry_after_seconds = retry_after_seconds
        self.fault_endpoints = None if endpoints is None else set(endpoints)
        return {"latency_ms": self.latency_ms, "stall_seconds": self.stall_seconds, "fault": self.fault,
                "retry_after_seconds": self.retry_after_seconds,
                "fault_endpoints": None if self.fault_endpoints is None else sorted(self.fault_endpoints)}
