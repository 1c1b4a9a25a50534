"""Who may call, from which browser origin and how often: the API keys, the public form key,
the CORS allowlist and the rate limits, as request hooks. OPEN_PATHS stay open."""

from __future__ import annotations

import logging

from flask import Flask, Response, request

from config import Config
from glpi_gateway.auth import ApiKeyRejected, ApiKeys, FormKeyOutOfScope, presented_key
from glpi_gateway.challenge import CHALLENGE_HEADER, SOLUTION_HEADER, FormChallenge
from glpi_gateway.cors import CorsPolicy, CrossSiteRefused, is_cross_site, is_preflight
from glpi_gateway.ratelimit import RateLimiter
from glpi_gateway.web.context import current

# Answered without a key and never limited: liveness/readiness probes and the customer's pages and
# their files (the pages themselves call /criar-chamado and /chamados/... like any client).
OPEN_PATHS = frozenset(
    {
        "/ping",
        "/health",
        "/formulario",
        "/formulario.js",
        "/formulario.css",
        "/formulario-desafio.js",
        "/formulario/desafio",
        "/acompanhar",
        "/acompanhar.js",
        "/openapi.json",
        "/docs",
    }
)
OPEN_PATH_PREFIXES = ("/docs/",)  # the Swagger UI files
# The views the form's public key may reach: opening a ticket and adding to it (each with a solved
# challenge), and following it (GET /chamados/<protocolo>: the protocol is the credential).
CREATE_TICKET_ENDPOINT = "criar_chamado"
LOOKUP_ENDPOINT = "consultar_chamado"
COMPLEMENT_ENDPOINT = "complementar_chamado"
FORM_ENDPOINTS = frozenset({CREATE_TICKET_ENDPOINT, LOOKUP_ENDPOINT, COMPLEMENT_ENDPOINT})

log = logging.getLogger(__name__)


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PATH_PREFIXES)


def register_access_hooks(
    app: Flask,
    cors: CorsPolicy,
    api_keys: ApiKeys,
    limiter: RateLimiter | None,
    form_key_name: str | None,
    challenge: FormChallenge,
) -> None:
    """Order matters: an allowed preflight is answered before anything else (browsers
    send no key with it), and the per-IP limit counts before the key check so that
    guessing keys is limited too. The form's key only opens, follows and adds to tickets; what it
    posts needs a solved challenge (challenge.py), and its per-key limit counts only ticket attempts.
    """

    @app.before_request
    def answer_preflight() -> Response | None:
        if is_preflight(request.method, request.headers) and cors.allows(request.headers.get("Origin")):
            return Response(status=204, headers=cors.preflight_headers(request.headers.get("Origin")))
        return None

    @app.before_request
    def check_access() -> None:
        ctx = current()
        if is_open_path(request.path):
            # Open paths answer anyone; a private key presented there still unlocks the details.
            ctx.sees_details = not api_keys.enabled or _private_key(api_keys, form_key_name) is not None
            return
        if limiter is not None:
            limiter.check_ip(ctx.client_ip)
        ctx.sees_details = not api_keys.enabled
        if api_keys.enabled:
            ctx.api_key = api_keys.identify(presented_key(request.headers))
            ctx.sees_details = ctx.api_key != form_key_name
            if ctx.api_key == form_key_name:
                if request.endpoint not in FORM_ENDPOINTS:
                    raise FormKeyOutOfScope()
                if request.endpoint == LOOKUP_ENDPOINT:
                    # No challenge: the 128-bit protocol is the credential, and the route limits lookups
                    # per IP. Nor the key's quota, shared by every visitor: it is for ticket attempts.
                    return
                if challenge.enabled:
                    challenge.check(request.headers.get(CHALLENGE_HEADER), request.headers.get(SOLUTION_HEADER))
                # The public key's quota is shared by every visitor: only requests that get as far
                # as a ticket count (the route calls this after validation), so cheap 403s and
                # 400s cannot use it up (REVIEW.md #8).
                if limiter is not None:
                    key_name = ctx.api_key
                    ctx.count_ticket_attempt = lambda: limiter.check_key(key_name)
            elif limiter is not None:
                limiter.check_key(ctx.api_key)
        elif is_cross_site(request.method, request.headers, request.host, cors):
            raise CrossSiteRefused()

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        if cors.enabled:
            response.headers.update(cors.response_headers(request.headers.get("Origin")))
            response.vary.add("Origin")
        return response


def _private_key(api_keys: ApiKeys, form_key_name: str | None) -> str | None:
    """The name of the private key the request presents, or None (no key, a wrong one, the form's)."""
    try:
        name = api_keys.identify(presented_key(request.headers))
    except ApiKeyRejected:
        return None
    return name if name != form_key_name else None


def warn_about_access(config: Config) -> None:
    """At start-up: say what is open to whom when the configuration leaves something open."""
    if not config.api_keys:
        log.warning(
            "ATENÇÃO: API_KEYS vazio: qualquer um que alcance este gateway pode abrir chamados no GLPI. "
            "Defina API_KEYS (nome:chave,...) antes de expor o gateway.",
            extra={"event": "acesso_aberto"},
        )
    elif config.form_api_key_name is None:
        log.info(
            "FORM_API_KEY_NAME vazio: o formulário de contato (/formulario, formulario.js) recebe 401",
            extra={"event": "formulario_sem_chave"},
        )
    elif config.rate_limit_per_ip is None:
        log.warning(
            "ATENÇÃO: a chave %r (FORM_API_KEY_NAME) é pública, vai no formulário; "
            "defina RATE_LIMIT_PER_IP para limitar quem a usa",
            config.form_api_key_name,
            extra={"event": "chave_publica_sem_limite"},
        )
