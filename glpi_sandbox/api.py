"""GLPI's legacy REST API as the sandbox speaks it: requests and answers, errors, sessions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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


def bad_array() -> ApiError:
    return ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects", doc=True)


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


def create_items(itemtype_name: str, params: dict, add: Callable[[dict], tuple[int, str]], api_url: str) -> Response:
    """POST /<itemtype>: an `input` object adds one item, a list several, each with `add`, which returns
    (id, message) or raises AddRefused (notes §5; LAB#50, #73, #74, #107).

    One item: 201 {"id", "message"} with a `location` header, or 400 ["ERROR_GLPI_ADD", message].
    A list: 201 with the list of results and a `link` header; 207 ["ERROR_GLPI_PARTIAL_ADD", results]
    when some failed, 400 ["ERROR_GLPI_ADD", results] when all did.
    """
    payload = params.get("input")
    bulk = isinstance(payload, list)
    inputs: list[Any] = payload if isinstance(payload, list) else [payload]
    if not inputs or not all(isinstance(fields, dict) for fields in inputs):
        raise bad_array()
    results: list[dict[str, Any]] = []
    for fields in inputs:
        try:
            item_id, message = add(fields)
        except AddRefused as refusal:
            results.append({"id": False, "message": str(refusal)})
        else:
            results.append({"id": item_id, "message": message})
    created = [result["id"] for result in results if result["id"] is not False]
    if not bulk:
        if not created:
            return Response.json(400, ["ERROR_GLPI_ADD", results[0]["message"]])
        return Response.json(201, results[0], {"location": f"{api_url}/{itemtype_name}/{created[0]}"})
    if len(created) == len(results):
        return Response.json(201, results, {"link": ",".join(f"{api_url}/{itemtype_name}/{i}" for i in created)})
    code = "ERROR_GLPI_PARTIAL_ADD" if created else "ERROR_GLPI_ADD"
    return Response.json(207 if created else 400, [code, results])


@dataclass
class Session:
    user_id: int
    active_entity: int
    entities: frozenset[int]  # the entities the user could reach when the session was opened
    last_used: float
