"""The benchmark's baseline: the original app's flow, never part of the product.

Per ticket it opens a GLPI session, searches the CNPJ, posts the ticket and kills the
session: four GLPI round trips, each on a new connection (plain `requests.get/post`).
Validation and the ticket's text reuse the gateway's modules, so the only difference
measured is how GLPI is called. Served by `bench.py` under the same gunicorn settings
as the gateway: `gunicorn "bench.naive_app:create_app()"`.
"""

from __future__ import annotations

import requests
from flask import Flask, Response, jsonify, request

from config import load_config
from glpi_gateway.cnpj import cnpj_search_pattern
from glpi_gateway.ticket_format import build_ticket_input
from glpi_gateway.validation import validate_ticket_request

ENTITY_ID_COLUMN = 2


def create_app() -> Flask:
    config = load_config()
    base = config.glpi_url.rstrip("/")
    app_headers = {"App-Token": config.glpi_app_token} if config.glpi_app_token else {}
    timeout = config.glpi_timeout
    option = config.glpi_cnpj_field_id
    if option is None:
        raise SystemExit("the naive baseline needs GLPI_CNPJ_FIELD_ID")
    app = Flask(__name__)

    @app.get("/ping")
    def ping() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.post("/criar-chamado")
    def criar_chamado() -> tuple[Response, int]:
        ticket_request = validate_ticket_request(request.get_json())
        login = requests.get(
            f"{base}/initSession",
            headers={**app_headers, "Authorization": f"user_token {config.glpi_user_token}"},
            timeout=timeout,
        )
        headers = {**app_headers, "Session-Token": login.json()["session_token"]}
        try:
            found = requests.get(
                f"{base}/search/Entity",
                params={
                    "criteria[0][field]": str(option),
                    "criteria[0][searchtype]": "contains",
                    "criteria[0][value]": cnpj_search_pattern(ticket_request.cnpj),
                    "forcedisplay[0]": str(ENTITY_ID_COLUMN),
                },
                headers=headers,
                timeout=timeout,
            ).json()
            rows = found.get("data", [])
            if len(rows) != 1:
                return jsonify(erro="Entidade não encontrada para o CNPJ informado"), 404
            ticket = build_ticket_input(
                ticket_request,
                entity_id=int(rows[0][str(ENTITY_ID_COLUMN)]),
                category_id=ticket_request.categoria or config.glpi_default_category_id,
                requester_user_id=config.glpi_requester_user_id,
                request_type_id=config.glpi_request_type_id,
            )
            created = requests.post(f"{base}/Ticket", json={"input": ticket}, headers=headers, timeout=timeout)
            return jsonify(ticket_id=created.json()["id"]), 201
        finally:
            requests.get(f"{base}/killSession", headers=headers, timeout=timeout)

    return app
