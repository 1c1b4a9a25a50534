"""The customer's pages: the contact form and the page that follows a ticket by its protocol
(/acompanhar), for direct links and iframes, and their scripts and stylesheet, which another site
can also load to inject them (docs/formulario.md, docs/acompanhar.md)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_from_directory

from config import Config
from glpi_gateway.attachments import upload_limits
from glpi_gateway.challenge import FormChallenge

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Where each page script takes comum.js, the part both share (inside the script's own function).
SHARED_PLACEHOLDER = "/* COMUM */"
# Where a page script holds the form's key; the gateway writes the key of FORM_API_KEY_NAME there.
FORM_KEY_PLACEHOLDER = "/* FORM_API_KEY */ null"
# Where each page script holds the limits it checks attachments against (attachment_limits).
ATTACHMENT_LIMITS_PLACEHOLDER = "/* ATTACHMENT_LIMITS */ null"
# The pages and the scripts depend on the configuration (frame-ancestors, the form's key): browsers
# revalidate them on every load (304 while unchanged) and shared caches do not keep them.
FORM_CACHE_CONTROL = "private, no-cache"
# The pages load only their own script and stylesheet and talk only to this gateway.
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
    """formulario.js as served: with comum.js and this configuration written into its placeholders."""
    values = {FORM_KEY_PLACEHOLDER: config.form_api_key, ATTACHMENT_LIMITS_PLACEHOLDER: attachment_limits(config)}
    return _page_script("formulario.js", template, values)


def follow_script(config: Config, template: str | None = None) -> bytes:
    """acompanhar.js as served: with comum.js, the form's key and the attachment limits written into its
    placeholders."""
    values = {FORM_KEY_PLACEHOLDER: config.form_api_key, ATTACHMENT_LIMITS_PLACEHOLDER: attachment_limits(config)}
    return _page_script("acompanhar.js", template, values)


def _page_script(name: str, template: str | None, values: Mapping[str, object]) -> bytes:
    """A page script with comum.js and each value (as JSON) in its placeholder; each must be there once."""
    if template is None:
        template = (STATIC_DIR / name).read_text(encoding="utf-8")
    replacements = {
        SHARED_PLACEHOLDER: (STATIC_DIR / "comum.js").read_text(encoding="utf-8"),
        **{placeholder: json.dumps(value) for placeholder, value in values.items()},
    }
    for placeholder, text in replacements.items():
        if template.count(placeholder) != 1:
            raise RuntimeError(f"{name} deve ter {placeholder!r} exatamente uma vez")
        template = template.replace(placeholder, text)
    return template.encode("utf-8")


def form_blueprint(config: Config, challenge: FormChallenge) -> Blueprint:
    form = Blueprint("formulario", __name__)
    page_csp = FORM_PAGE_CSP.format(frame_ancestors=config.form_frame_ancestors)
    scripts = {"formulario.js": form_script(config), "acompanhar.js": follow_script(config)}
    script_etags = {name: hashlib.sha256(script).hexdigest() for name, script in scripts.items()}

    def asset(name: str, max_age: int | None = None) -> Response:
        response = send_from_directory(STATIC_DIR, name, max_age=max_age)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def page(name: str) -> Response:
        response = asset(name)
        response.headers["Cache-Control"] = FORM_CACHE_CONTROL
        response.headers["Content-Security-Policy"] = page_csp
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def page_script(name: str) -> Response:
        response = Response(scripts[name], mimetype="text/javascript")
        response.set_etag(script_etags[name])
        response.headers["Cache-Control"] = FORM_CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.make_conditional(request)
        return response

    @form.get("/formulario")
    def form_page() -> Response:
        return page("formulario.html")

    @form.get("/formulario.js")
    def form_page_script() -> Response:
        return page_script("formulario.js")

    @form.get("/acompanhar")
    def follow_page() -> Response:
        """Follows a ticket by its protocol, typed or from ?protocolo= (the form's success link)."""
        return page("acompanhar.html")

    @form.get("/acompanhar.js")
    def follow_page_script() -> Response:
        return page_script("acompanhar.js")

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
