"""GLPI's legacy REST API as the sandbox speaks it: requests and answers, errors, sessions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

API_PREFIX = "/apirest.php"
API_V1_PREFIX = "/api.php/v1"  # GLPI 11 also serves the legacy API here, and links to it
CONTROL_PREFIX = "/_sandbox/"
MAX_INPUT_VARS = 1000  # echoed in the Accept-Range header
NO_PERMISSION = "You don't have permission to perform this action."


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers or {})

    @classmethod
    def page(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), "text/html; charset=UTF-8")


class ApiError(Exception):
    """A GLPI error answer: `[code, message]`, with GLPI's documentation link when `doc`."""

    def __init__(self, status: int, code: str, message: str, doc: bool = False):
        super().__init__(message)
        self.status, self.code, self.message, self.doc = status, code, message, doc

    def response(self, api_url: str) -> Response:
        message = self.message
        if self.doc:
            message += f"; view documentation in your browser at {api_url}/#{self.code}"
        return Response.json(self.status, [self.code, message])


class AddRefused(Exception):
    """GLPI's add() refused one item; the message is what the API reports for it."""


def method_not_allowed() -> ApiError:
    return ApiError(405, "ERROR_METHOD_NOT_ALLOWED", "Method Not Allowed", doc=True)


def parse_range(value: Any, default: tuple[int, int]) -> tuple[int, int]:
    if value is None:
        return default
    match = re.fullmatch(r"(\d+)-(\d+)", value) if isinstance(value, str) else None
    if match is None:
        raise ApiError(400, "ERROR", "range must be in format : [start-end] with integers", doc=True)
    return int(match.group(1)), int(match.group(2))


def paged_response(itemtype_name: str, body: Any, start: int, count: int, total: int) -> Response:
    """A page of `count` items from `start` out of `total`: 206 when partial (LAB#46, #79)."""
    if start > total:
        raise ApiError(400, "ERROR_RANGE_EXCEED_TOTAL", f"Provided range exceed total count of data: {total}", doc=True)
    headers = {"Accept-Range": f"{itemtype_name} {MAX_INPUT_VARS}"}
    if total:  # no Content-Range header for an empty result (LAB#31)
        headers["Content-Range"] = f"{start}-{start + count - 1}/{total}"
    return Response.json(200 if count >= total else 206, body, headers)


@dataclass
class Session:
    user_id: int
    active_entity: int
    entities: frozenset[int]  # the entities the user could reach when the session was opened
    last_used: float
