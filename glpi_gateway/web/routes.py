"""The service routes: /ping, /health, /debug, and the API document at /openapi.json and /docs.

The API's own routes live beside this: tickets.py (POST /criar-chamado) and follow.py
(GET /chamados/<protocolo> and its complements); app.create_app() registers all three.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, jsonify, send_from_directory

from config import Config
from glpi_gateway.health import Readiness
from glpi_gateway.web.access import is_open_path
from glpi_gateway.web.context import current
from glpi_gateway.web.openapi import SWAGGER_UI_DIR, build_document

PING_TEXT = "App Flask está ativo!"
DOCS_PAGE = (Path(__file__).resolve().parent / "static" / "docs.html").read_text(encoding="utf-8")


def api_document(metrics: bool = True) -> dict:
    """The OpenAPI document of this app; without `metrics` (METRICS_ENABLED=false) there is no /metrics."""
    return build_document(PING_TEXT, is_open_path, metrics)


def register_routes(app: Flask, readiness: Readiness, config: Config) -> None:
    document = api_document(metrics=config.metrics_enabled)

    @app.get("/ping")
    def ping() -> Response:
        return Response(PING_TEXT, mimetype="text/plain")

    @app.get("/health")
    def health() -> Response:
        checks = readiness.checks()
        ready = all(check["ok"] for check in checks.values())
        if current().sees_details:
            response = jsonify(status="ok" if ready else "indisponivel", checks=checks)
        else:  # the public form key and callers without a key: the status only (REVIEW.md #13)
            response = jsonify(status="ok" if ready else "indisponivel")
        response.status_code = 200 if ready else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/debug")
    def debug() -> Response:
        raise RuntimeError("/debug: erro proposital para testar o tratamento de erros")

    @app.get("/openapi.json")
    def openapi_document() -> Response:
        # Unsorted keys: the document lists fields and answers in contract order.
        return Response(app.json.dumps(document, sort_keys=False), mimetype="application/json")

    @app.get("/docs")
    def docs() -> Response:
        return _not_framed(Response(DOCS_PAGE, mimetype="text/html"))

    @app.get("/docs/<path:arquivo>")
    def docs_asset(arquivo: str) -> Response:
        return _not_framed(send_from_directory(SWAGGER_UI_DIR, arquivo))


def _not_framed(response: Response) -> Response:
    """No other site may frame the API docs (clickjacking on "Try it out"), nor sniff their types."""
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
