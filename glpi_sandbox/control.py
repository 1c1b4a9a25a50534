"""Steering the sandbox: fault injection, and the control endpoints under /_sandbox/.

Faults stand for what lies between a client and GLPI (a proxy, a web server, a slow or lost
answer); the control endpoints let a benchmark or a test in another process read the call
counters and change the faults, the latency and the entities.
"""

from __future__ import annotations

import json
import re

from .api import Response
from .base import SandboxBase

FAULTS = ("http500", "http503", "html", "redirect", "stall", "stall_after_create")

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


class ControlMixin(SandboxBase):
    """Part of GlpiSandbox: its faults, and the endpoints a process outside it uses to steer it."""

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

    def _fault_for(self, endpoint: str) -> str | None:
        """The fault a call to `endpoint` (as endpoint_name() names it) suffers, if any."""
        return self._fault if self.fault_endpoints is None or endpoint in self.fault_endpoints else None

    def _fault_answer(self, fault: str | None, route: str, query: str, api_url: str) -> Response | None:
        """What answers in GLPI's place under `fault`; None: GLPI answers ("stall": late, "stall_after_create":
        late after doing the work; the caller waits)."""
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
        return None

    # --- control endpoints -----------------------------------------------------------------------

    def _control(self, method: str, route: str, body: bytes) -> Response:
        """Endpoints under /_sandbox/ for a benchmark or test running in another process.

        GET stats; POST reset-calls; POST expire-sessions; POST config {"latency_ms", "fault",
        "fault_endpoints", "stall_seconds", "retry_after_seconds"}; POST entities {"name", "cnpj",
        "parent_id"} -> {"id"}; GET tickets/<id>. They are not counted as API calls and have no latency.

        The technician's side of a ticket, with GLPI's effects on it (timeline.py, lifecycle.py), by
        `users_id` or else the technician (`technician_id`: user 10 "tecnico" in the demo data):
        POST tickets/<id>/followups {"content", "is_private"} -> {"id"}; GET tickets/<id>/followups;
        POST tickets/<id>/solutions {"content"} -> {"id"}; POST tickets/<id>/status {"status"} -> the
        ticket; POST tickets/<id>/actors {"type": 2 by default, assigned} -> {"id"}.
        """
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            if (method, route) == ("GET", "stats"):
                with self._lock:
                    calls = {
                        f"{call_method} {endpoint}": count
                        for (call_method, endpoint), count in sorted(self._calls.items())
                    }
                    return Response.json(
                        200, {"calls": calls, "total": sum(calls.values()), "tickets": len(self.tickets)}
                    )
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
            match = re.fullmatch(r"tickets/(\d+)(?:/([a-z]+))?", route)
            if match:
                with self._lock:
                    ticket = self.tickets.get(int(match.group(1)))
                    if ticket is None:
                        return Response.json(404, {"error": "no such ticket"})
                    answer = self._control_ticket(method, ticket, match.group(2), payload)
                if answer is not None:
                    return answer
        except (ValueError, TypeError) as error:
            return Response.json(400, {"error": str(error)})
        return Response.json(404, {"error": f"unknown control endpoint {method} /_sandbox/{route}"})

    def _control_ticket(self, method: str, ticket: dict, part: str | None, payload: dict) -> Response | None:
        """tickets/<id>[/<part>]: read a ticket, or act on it as the technician would; None: no such endpoint."""
        users_id = payload.get("users_id")
        if users_id is not None and not isinstance(users_id, int):
            raise ValueError('"users_id" must be a user id')
        if (method, part) == ("GET", None):
            return Response.json(200, ticket)
        if (method, part) == ("GET", "followups"):
            rows = [row for row in self.followups.values() if row["items_id"] == ticket["id"]]
            return Response.json(200, rows)
        if (method, part) in (("POST", "followups"), ("POST", "solutions")):
            if not isinstance(payload.get("content"), str):
                raise ValueError('"content" is required')
            if part == "solutions":
                return Response.json(201, {"id": self.add_solution(ticket["id"], payload["content"], users_id)})
            is_private = bool(payload.get("is_private", False))
            return Response.json(201, {"id": self.add_followup(ticket["id"], payload["content"], is_private, users_id)})
        if (method, part) == ("POST", "status"):
            if not isinstance(payload.get("status"), int):
                raise ValueError('"status" is required: 1 to 6')
            self.set_ticket_status(ticket["id"], payload["status"], users_id)
            return Response.json(200, ticket)
        if (method, part) == ("POST", "actors"):
            actor_type = payload.get("type", 2)
            if actor_type not in (1, 2, 3):
                raise ValueError('"type" must be 1 (requester), 2 (assigned) or 3 (observer)')
            return Response.json(201, {"id": self.add_actor(ticket["id"], users_id, actor_type)})
        return None

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
        return {
            "latency_ms": self.latency_ms,
            "stall_seconds": self.stall_seconds,
            "fault": self.fault,
            "retry_after_seconds": self.retry_after_seconds,
            "fault_endpoints": None if self.fault_endpoints is None else sorted(self.fault_endpoints),
        }
