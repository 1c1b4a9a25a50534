"""Opening and checking sessions: GLPI's API client checks, App-Token, initSession, Session-Token."""

from __future__ import annotations

import base64
import binascii
import time
from email.message import Message

from .api import ApiError, Response, Session
from .base import SandboxBase
from .php import new_session_token

NOT_ALLOWED_IP = "There isn't an active API client matching your IP address in the configuration"


class SessionsMixin(SandboxBase):
    """Part of GlpiSandbox: the checks every API call goes through, and its sessions."""

    # --- public API for tests and benchmarks ------------------------------------------------

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
            raise ApiError(
                400,
                "ERROR_LOGIN_PARAMETERS_MISSING",
                "parameter(s) login, password or user_token are missing",
                doc=True,
            )
        if not user_token:  # a fresh GLPI disables login with credentials
            raise ApiError(
                400,
                "ERROR_LOGIN_WITH_CREDENTIALS_DISABLED",
                "usage of initSession resource with credentials is disabled",
            )
        user_id = self._user_tokens.get(user_token)
        if user_id is None:
            raise ApiError(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid")
        token = new_session_token()
        with self._lock:
            home, _ = self._reach[user_id]
            self._sessions[token] = Session(user_id, home, self._reachable(user_id), time.monotonic())
            self._users[user_id]["last_login"] = self._now()  # LAB#406
        return Response.json(200, {"session_token": token})

    def _session(self, params: dict, headers: Message) -> tuple[str, Session]:
        """The session named by the Session-Token header, else by `session_token` (LAB#240-242)."""
        token = headers.get("Session-Token", params.get("session_token"))
        if not (isinstance(token, str) and token):
            raise ApiError(400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing or empty", doc=True)
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
