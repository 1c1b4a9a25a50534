"""Thin client for GLPI's legacy REST API (`apirest.php`). It speaks GLPI and nothing else.

Every HTTP exchange goes through `GlpiClient._send`, which applies the timeout,
the App-Token and Session-Token headers, and turns GLPI's answers into return
values or a `GlpiError`. Sessions are handled inside: one per thread, opened on
first use, renewed when GLPI forgets it or when it gets old.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

if TYPE_CHECKING:  # only for the annotation of from_config: the client imports nothing of ours
    from config import Config

log = logging.getLogger(__name__)

# initSession answers with these codes when the credentials or the API client are wrong.
AUTH_ERROR_CODES = frozenset(
    {
        "ERROR_GLPI_LOGIN_USER_TOKEN",
        "ERROR_GLPI_LOGIN",
        "ERROR_WRONG_APP_TOKEN_PARAMETER",
        "ERROR_APP_TOKEN_PARAMETERS_MISSING",
        "ERROR_LOGIN_PARAMETERS_MISSING",
        "ERROR_LOGIN_WITH_CREDENTIALS_DISABLED",
        "ERROR_NOT_ALLOWED_IP",
    }
)
LIST_PAGE_SIZE = 1000
MAX_RETRY_AFTER = 3600
_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")

CallObserver = Callable[[str, str, int, float], None]


class GlpiError(Exception):
    """GLPI did not do what was asked. `code` is GLPI's error code (or ours), `status` the HTTP status."""

    def __init__(self, message: str, code: str = "ERROR", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class GlpiUnavailable(GlpiError):
    """GLPI unreachable, too slow, failing (5xx) or answering something that is not its JSON API.

    `request_sent` is True when the request may have reached GLPI and been processed
    (the answer was lost), so a non-idempotent call must not be re-sent blindly.
    `retry_after` is the delay in seconds GLPI (or its proxy) asked for, if any.
    """

    def __init__(
        self,
        message: str,
        code: str,
        status: int | None = None,
        request_sent: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message, code, status)
        self.request_sent = request_sent
        self.retry_after = retry_after


class GlpiAuthError(GlpiError):
    """GLPI refused the App-Token, the user token or the caller's IP."""


class GlpiSessionInvalid(GlpiError):
    """The session token expired or was killed (handled inside the client by re-opening once)."""


class GlpiNotFound(GlpiError):
    """The requested item does not exist (or is not visible to the API user)."""


class GlpiRequestError(GlpiError):
    """GLPI understood the request and refused it (any other `["ERROR_…", "message"]` answer)."""


@dataclass
class _Session:
    token: str
    opened_at: float


class GlpiClient:
    def __init__(
        self,
        base_url: str,
        user_token: str,
        app_token: str | None = None,
        timeout: float = 10.0,
        verify_tls: bool = True,
        session_max_age: float = 900.0,
        observer: CallObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._base_url = base_url.rstrip("/")
        self._user_token = user_token
        self._app_token = app_token
        self._timeout = timeout
        self._session_max_age = session_max_age
        self._observer = observer
        self._clock = clock
        self._http = _pooled_http_session(self._base_url, verify_tls)
        self._local = threading.local()
        self._open_tokens: set[str] = set()
        self._tokens_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, observer: CallObserver | None = None) -> GlpiClient:
        """The client for the GLPI that the environment (config.py) names."""
        return cls(
            config.glpi_url,
            user_token=config.glpi_user_token,
            app_token=config.glpi_app_token,
            timeout=config.glpi_timeout,
            verify_tls=config.glpi_verify_tls,
            session_max_age=config.glpi_session_max_age,
            observer=observer,
        )

    # --- GLPI endpoints -------------------------------------------------------

    def list_search_options(self, itemtype: str) -> dict[str, Any]:
        return self._call("GET", f"listSearchOptions/{itemtype}")

    def search(
        self,
        itemtype: str,
        criteria: list[dict[str, Any]],
        forcedisplay: tuple[int, ...] = (),
        rows: int = 50,
    ) -> list[dict[str, Any]]:
        """Rows of `search/<itemtype>` keyed by search-option id strings ([] when nothing matches)."""
        params: list[tuple[str, Any]] = []
        for index, criterion in enumerate(criteria):
            params.extend((f"criteria[{index}][{key}]", value) for key, value in criterion.items())
        params.extend((f"forcedisplay[{index}]", column) for index, column in enumerate(forcedisplay))
        params.append(("range", f"0-{rows - 1}"))
        body = self._call("GET", f"search/{itemtype}", params=params)
        # GLPI omits "data" entirely when nothing matched.
        return body.get("data", []) if isinstance(body, dict) else []

    def count(self, itemtype: str) -> int:
        """How many items of `itemtype` the API user sees (a one-row search: cheap)."""
        body = self._call("GET", f"search/{itemtype}", params={"range": "0-0"})
        total = body.get("totalcount") if isinstance(body, dict) else None
        if not isinstance(total, int) or isinstance(total, bool):
            raise GlpiUnavailable(f"GET search/{itemtype} answered without a totalcount", "UNEXPECTED_ANSWER")
        return total

    def get_item(self, itemtype: str, item_id: int) -> dict[str, Any]:
        return self._call("GET", f"{itemtype}/{int(item_id)}")

    def list_subitems(self, itemtype: str, item_id: int, subitemtype: str, rows: int = 1000) -> list[dict[str, Any]]:
        """`<itemtype>/<id>/<subitemtype>`, e.g. a ticket's follow-ups: the first `rows` of them
        ([] when there are none)."""
        try:
            body = self._call("GET", f"{itemtype}/{int(item_id)}/{subitemtype}", params={"range": f"0-{rows - 1}"})
        except GlpiRequestError as error:
            if error.code == "ERROR_RANGE_EXCEED_TOTAL":
                return []
            raise
        return body if isinstance(body, list) else []

    def list_items(self, itemtype: str) -> list[dict[str, Any]]:
        """Every item of `itemtype` visible to the API user, page by page."""
        items: list[dict[str, Any]] = []
        while True:
            start = len(items)
            try:
                page = self._call("GET", itemtype, params={"range": f"{start}-{start + LIST_PAGE_SIZE - 1}"})
            except GlpiRequestError as error:
                if error.code == "ERROR_RANGE_EXCEED_TOTAL":
                    return items
                raise
            items.extend(page)
            if len(page) < LIST_PAGE_SIZE:
                return items

    def create_item(self, itemtype: str, item_input: dict[str, Any]) -> int:
        """POST one item and return its id (read from the body, not the Location header).

        A session's entity rights are fixed when it is opened, so GLPI refuses
        (ERROR_GLPI_ADD, nothing created) a ticket for an entity created after
        that: such a refusal is retried once with a fresh session.
        """
        body = self._call("POST", itemtype, json={"input": item_input}, renew_on_refusal=True)
        return _created_id(body, itemtype)

    def upload_document(
        self,
        filename: str,
        content: bytes | IO[bytes],
        mime: str,
        itemtype: str,
        item_id: int,
        entity_id: int,
        comment: str | None = None,
    ) -> int:
        """POST one file as a Document attached to the item, and return the document's id.

        `comment` goes to the document's `comment` column, which GLPI keeps as sent (its `name` it
        may replace, as GLPI 10 does for a document linked to an item).

        Without `entities_id` GLPI files the document in the session's entity (the root),
        where the technicians of the item's entity cannot manage it. Some GLPI versions pass the
        manifest through PHP's stripcslashes() before decoding it, so it must hold no backslash:
        no \\u escapes here, and no quote or backslash in file names (attachments.clean_filename).

        `content` may be a seekable file: it is then streamed from its start, never copied into
        memory (requests would build the whole multipart body in memory from `files=`).
        """
        manifest = {
            "input": {
                "name": filename,
                "_filename": [filename],
                "itemtype": itemtype,
                "items_id": item_id,
                "entities_id": entity_id,
            }
        }
        if comment is not None:
            manifest["input"]["comment"] = comment
        manifest_text = json.dumps(manifest, ensure_ascii=False)
        if isinstance(content, bytes | bytearray):
            files: Any = [
                ("uploadManifest", (None, manifest_text, "application/json")),
                ("filename[0]", (filename, content, mime)),
            ]
        else:
            files = MultipartBody(manifest_text, filename, content, mime)
        return _created_id(self._call("POST", "Document", files=files), "Document")

    def check_login(self) -> None:
        """Open a new session for this thread now, so GLPI's verdict on the URL and tokens surfaces here."""
        session = self._live_session()
        if session is not None:
            self._discard(session)
        self._open_session()

    def close(self) -> None:
        """Kill every session this client opened (worker shutdown)."""
        with self._tokens_lock:
            tokens, self._open_tokens = self._open_tokens, set()
        for token in tokens:
            self._kill(token)

    # --- sessions -------------------------------------------------------------

    def _live_session(self) -> _Session | None:
        """This thread's session, or None when it has none or it is too old to trust."""
        session = getattr(self._local, "session", None)
        if session is not None and self._clock() - session.opened_at > self._session_max_age:
            self._discard(session)
            return None
        return session

    def _open_session(self) -> _Session:
        headers = {"Authorization": f"user_token {self._user_token}"}
        try:
            body = self._send("GET", "initSession", headers=headers)
        except (GlpiRequestError, GlpiSessionInvalid) as error:
            # Wrong tokens are 400/401 with AUTH_ERROR_CODES; "API disabled" is a bare
            # 400 ERROR. Any refusal of initSession means we cannot log in.
            raise GlpiAuthError(error.message, error.code, error.status) from None
        token = body.get("session_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise GlpiUnavailable("initSession answered without a session_token", "UNEXPECTED_ANSWER")
        session = _Session(token, self._clock())
        self._local.session = session
        with self._tokens_lock:
            self._open_tokens.add(token)
        return session

    def _discard(self, session: _Session) -> None:
        """Forget this thread's session and kill it in GLPI (best effort)."""
        self._local.session = None
        with self._tokens_lock:
            if session.token not in self._open_tokens:
                return
            self._open_tokens.discard(session.token)
        self._kill(session.token)

    def _kill(self, token: str) -> None:
        try:
            self._send("GET", "killSession", session_token=token)
        except GlpiError as error:
            log.info(
                "killSession falhou (%s); a sessão expira sozinha no GLPI",
                error.code,
                extra={"event": "sessao_glpi_nao_encerrada"},
            )

    # --- the single HTTP choke point ------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        params: Any = None,
        json: Any = None,
        renew_on_refusal: bool = False,
        files: Any = None,
    ) -> Any:
        """One authenticated call, replayed once with a new session when GLPI forgot ours."""
        session = self._live_session()
        opened_now = session is None
        if session is None:
            session = self._open_session()
        try:
            return self._send(method, path, params=params, json=json, files=files, session_token=session.token)
        except GlpiSessionInvalid:
            log.info("sessão do GLPI expirada; abrindo outra", extra={"event": "sessao_glpi_renovada"})
            self._forget(session)
        except GlpiRequestError as error:
            if opened_now or not (renew_on_refusal and error.code == "ERROR_GLPI_ADD"):
                raise
            log.info(
                "GLPI recusou %s %s com uma sessão antiga; repetindo com uma nova",
                method,
                path,
                extra={"event": "sessao_glpi_renovada"},
            )
            self._discard(session)
        session = self._open_session()
        return self._send(method, path, params=params, json=json, files=files, session_token=session.token)

    def _forget(self, session: _Session) -> None:
        self._local.session = None
        with self._tokens_lock:
            self._open_tokens.discard(session.token)

    def _send(
        self,
        method: str,
        path: str,
        params: Any = None,
        json: Any = None,
        session_token: str | None = None,
        headers: dict[str, str] | None = None,
        files: Any = None,
    ) -> Any:
        """`json` or `files` (multipart parts, as requests takes them) is the body."""
        headers = dict(headers or {})
        if self._app_token:
            headers["App-Token"] = self._app_token
        if session_token:
            headers["Session-Token"] = session_token
        endpoint = _NUMERIC_SEGMENT.sub("/:id", path)
        data = None
        if isinstance(files, MultipartBody):
            data, files = files.rewound(), None  # replayed whole when the session is renewed
            headers["Content-Type"] = data.content_type
        started = time.perf_counter()
        status = 0
        try:
            response = self._http.send(
                self._prepared(method, path, params=params, json=json, data=data, files=files, headers=headers),
                timeout=self._timeout,
                allow_redirects=False,
                proxies=self._http.proxies,
                verify=self._http.verify,
                stream=False,
                cert=None,
            )
            status = response.status_code
        except requests.ConnectTimeout:
            raise GlpiUnavailable(f"{method} {endpoint}: connection timed out", "TIMEOUT") from None
        except requests.ReadTimeout:
            raise GlpiUnavailable(
                f"{method} {endpoint}: no answer within {self._timeout:g}s", "TIMEOUT", request_sent=True
            ) from None
        except requests.exceptions.SSLError:
            raise GlpiUnavailable(f"{method} {endpoint}: TLS verification failed", "TLS_ERROR") from None
        except requests.ConnectionError as error:
            raise GlpiUnavailable(
                f"{method} {endpoint}: connection failed", "CONNECTION_FAILED", request_sent=_maybe_sent(error)
            ) from None
        finally:
            elapsed = time.perf_counter() - started
            log.debug(
                "GLPI %s %s -> %s em %.1f ms",
                method,
                endpoint,
                status or "sem resposta",
                elapsed * 1000,
                extra={"event": "chamada_glpi"},
            )
            if self._observer:
                self._observer(method, endpoint, status, elapsed)
        return _parse_answer(response, f"{method} {endpoint}")

    def _prepared(self, method: str, path: str, headers: dict[str, str], **body: Any) -> requests.PreparedRequest:
        """The request as Session.request would prepare it, without re-merging the session's fixed
        settings on every call: that merge was a quarter of the CPU of a call to GLPI (`make bench`)."""
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method,
            url=f"{self._base_url}/{path}",
            headers={**self._http.headers, **headers},
            cookies=self._http.cookies,  # a load balancer's sticky-session cookie, say
            **body,
        )
        return prepared


class MultipartBody:
    """A Document upload's multipart body read on demand: the manifest, then the file from its stream.

    requests sends a body with `read` in blocks and takes its length from `__len__`, so the
    file goes from its spool (memory or a temporary file) to the socket, never copied whole.
    """

    def __init__(self, manifest: str, filename: str, stream: IO[bytes], mime: str) -> None:
        boundary = os.urandom(16).hex()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        quoted = filename.replace("\r", "").replace("\n", "").replace('"', "%22")
        self._head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="uploadManifest"\r\n'
            f"Content-Type: application/json\r\n\r\n{manifest}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="filename[0]"; filename="{quoted}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._stream = stream
        stream.seek(0, os.SEEK_END)
        self._size = stream.tell()
        self._parts: list[Any] = []

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def rewound(self) -> MultipartBody:
        self._stream.seek(0)
        self._parts = [self._head, self._stream, self._tail]
        return self

    def read(self, size: int = -1) -> bytes:
        chunks: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        while self._parts and (wanted is None or wanted > 0):
            part = self._parts[0]
            if isinstance(part, bytes):
                piece = part if wanted is None else part[:wanted]
                rest = part[len(piece) :]
                if rest:
                    self._parts[0] = rest
                else:
                    self._parts.pop(0)
            else:
                piece = part.read() if wanted is None else part.read(wanted)
                if not piece or (wanted is not None and len(piece) < wanted):
                    self._parts.pop(0)
            chunks.append(piece)
            if wanted is not None:
                wanted -= len(piece)
        return b"".join(chunks)


def _created_id(body: Any, itemtype: str) -> int:
    """The id in a 201 answer to POST <itemtype>."""
    item_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        raise GlpiUnavailable(f"POST {itemtype} answered without an id", "UNEXPECTED_ANSWER", request_sent=True)
    return item_id


def _parse_answer(response: requests.Response, what: str) -> Any:
    status = response.status_code
    if status >= 500:
        raise GlpiUnavailable(
            f"{what}: HTTP {status}",
            "SERVER_ERROR",
            status,
            request_sent=True,
            retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
        )
    if 300 <= status < 400:
        location = response.headers.get("Location", "?")
        raise GlpiUnavailable(
            f"{what}: redirected (HTTP {status}) to {location}", "REDIRECTED", status, request_sent=True
        )
    try:
        body = response.json()
    except ValueError:
        content_type = response.headers.get("Content-Type", "?")
        raise GlpiUnavailable(
            f"{what}: HTTP {status} with a non-JSON answer ({content_type}); is GLPI_URL the apirest.php URL?",
            "NOT_JSON",
            status,
            request_sent=True,
        ) from None
    if status < 300:
        return body
    code, message = _error_code_and_message(body)
    if code == "ERROR_SESSION_TOKEN_INVALID":
        raise GlpiSessionInvalid(message, code, status)
    if code in AUTH_ERROR_CODES:
        raise GlpiAuthError(message, code, status)
    if code == "ERROR_ITEM_NOT_FOUND" or status == 404:
        raise GlpiNotFound(message, code, status)
    raise GlpiRequestError(message, code, status)


def _error_code_and_message(body: Any) -> tuple[str, str]:
    """GLPI errors are `["ERROR_CODE", "message"]`; bulk errors carry a list as message."""
    if isinstance(body, list) and len(body) == 2 and isinstance(body[0], str):
        message = body[1] if isinstance(body[1], str) else str(body[1])
        return body[0], message
    return "ERROR", str(body)[:300]


def _retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After given in seconds, capped at MAX_RETRY_AFTER; dates and nonsense are ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return float(min(int(value.strip()), MAX_RETRY_AFTER))


def _maybe_sent(error: requests.ConnectionError) -> bool:
    """A refused or unresolvable connection never carried the request; a reset one may have."""
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return not isinstance(reason, NewConnectionError)


def _pooled_http_session(base_url: str, verify_tls: bool) -> requests.Session:
    """Keep-alive connection pool. Only a failed connect is retried (nothing was sent):
    a request whose answer was lost may have been processed.

    The proxy (HTTPS_PROXY, NO_PROXY...) and CA bundle (REQUESTS_CA_BUNDLE) variables
    are read once, here: with trust_env requests scans the whole environment on every
    call, a quarter of the CPU of each call to GLPI (`make bench`, README "Desempenho").
    """
    # respect_retry_after_header off: a 503 with Retry-After is GlpiUnavailable with its
    # retry_after, not a RetryError (urllib3 would otherwise raise it, or sleep, by itself).
    retry = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0, respect_retry_after_header=False)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=retry)
    http = requests.Session()
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    http.headers["User-Agent"] = "glpi-ticket-gateway"
    http.trust_env = False
    http.proxies = requests.utils.get_environ_proxies(base_url)
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    http.verify = (ca_bundle or True) if verify_tls else False
    return http
