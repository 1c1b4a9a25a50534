"""The contact form: a page for direct links and iframes, and its script and stylesheet, which
another site can also load to inject the form (docs/formulario.md)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_from_directory

from config import Config
from glpi_gateway.attachments import upload_limits
from glpi_gateway.challenge import FormChallenge

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Where formulario.js holds the form's key; the gateway writes the key of FORM_API_KEY_NAME there.
FORM_KEY_PLACEHOLDER = "/* FORM_API_KEY */ null"
# Where formulario.js holds the limits it checks attachments against (attachment_limits).
ATTACHMENT_LIMITS_PLACEHOLDER = "/* ATTACHMENT_LIMITS */ null"
# The page and the script depend on the configuration (frame-ancestors, the form's key): browsers
# revalidate them on every load (304 while unchanged) and shared caches do not keep them.
FORM_CACHE_CONTROL = "private, no-cache"
# The form page loads only its own script and stylesheet and talks only to this gateway.
FORM_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors {frame_ancestors}"
)


def attachment_limits(config: Config) -> dict[str, object]:
    """What the form checks files against before sending them, as the server will check them: the
    form key's limits when the form carries one, everybody's otherwise (an open gateway)."""
    limits = upload_limits(config, public_form=config.form_api_key_name is not None)
    return {"maxCount": limits.max_count, "maxBytes": limits.max_bytes, "extensions": limits.extensions}


def form_script(config: Config, template: str | None = None) -> bytes:
    """formulario.js with this configuration written into its placeholders (each must be there once)."""
    if template is None:
        template = (STATIC_DIR / "formulario.js").read_text(encoding="utf-8")
    values = {
        FORM_KEY_PLACEHOLDER: config.form_api_key,
        ATTACHMENT_LIMITS_PLACEHOLDER: attachment_limits(config),
    }
    for placeholder, value in values.items():
        if template.count(placeholder) != 1:
            raise RuntimeError(f"formulario.js deve ter {placeholder!r} exatamente uma vez")
        template = template.replace(placeholder, json.dumps(value))
    return template.encode("utf-8")


def form_blueprint(config: Config, challenge: FormChallenge) -> Blueprint:
    form = Blueprint("formulario", __name__)
    page_csp = FORM_PAGE_CSP.format(frame_ancestors=config.form_frame_ancestors)
    script = form_script(config)
    script_etag = hashlib.sha256(script).hexdigest()

    def asset(name: str, max_age: int | None = None) -> Response:
        response = send_from_directory(STATIC_DIR, name, max_age=max_age)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @form.get("/formulario")
    def page() -> Response:
        response = asset("formulario.html")
        response.headers["Cache-Control"] = FORM_CACHE_CONTROL
        response.headers["Content-Security-Policy"] = page_csp
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @form.get("/formulario.js")
    def script_file() -> Response:
        response = Response(script, mimetype="text/javascript")
        response.set_etag(script_etag)
        response.headers["Cache-Control"] = FORM_CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        # make_conditional returns self, but Werkzeug annotates it as its own Response class.
        response.make_conditional(request)
        return response

    @form.get("/formulario.css")
    def stylesheet() -> Response:
        return asset("formulario.css", max_age=300)

    @form.get("/formulario-desafio.js")
    def challenge_solver() -> Response:
        """The Web Worker that solves the challenge off the page's main thread."""
        return asset("formulario-desafio.js", max_age=300)

    @form.get("/formulario/desafio")
    def new_challenge() -> Response:
        issued = challenge.issue()
        response = jsonify(
            desafio=issued.token,
            dificuldade=issued.difficulty,
            expira_em=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued.expires_at)),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return form
