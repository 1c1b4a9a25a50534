"""Contract of cors.py: only allowlisted origins get CORS headers, and they get themselves back."""

from __future__ import annotations

from glpi_gateway.cors import CorsPolicy, is_preflight

SITE = "https://www.exemplo.com.br"
POLICY = CorsPolicy((SITE, "http://localhost:8080"))


def test_an_allowed_origin_gets_itself_back_and_the_exposed_headers():
    headers = POLICY.response_headers(SITE)
    assert headers["Access-Control-Allow-Origin"] == SITE
    exposed = {name.strip() for name in headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-ID", "Retry-After", "Location"} <= exposed
    assert "Access-Control-Allow-Credentials" not in headers


def test_a_preflight_from_an_allowed_origin_names_methods_headers_and_max_age():
    headers = POLICY.preflight_headers(SITE)
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "authorization", "x-api-key", "idempotency-key", "x-request-id"} <= allowed
    assert int(headers["Access-Control-Max-Age"]) > 0


def test_other_origins_get_no_cors_headers_at_all():
    for origin in (
        None,
        "",
        "https://evil.example",
        "https://www.exemplo.com.br.evil.example",
        "null",
        "https://www.exemplo.com.br/",
        "*",
    ):
        assert POLICY.response_headers(origin) == {}
        assert POLICY.preflight_headers(origin) == {}


def test_no_origins_configured_means_cors_is_off():
    assert CorsPolicy(()).enabled is False
    assert CorsPolicy(()).response_headers(SITE) == {}


def test_a_preflight_is_an_options_request_with_origin_and_requested_method():
    assert is_preflight("OPTIONS", {"Origin": SITE, "Access-Control-Request-Method": "POST"})
    assert not is_preflight("OPTIONS", {"Origin": SITE})
    assert not is_preflight("POST", {"Origin": SITE, "Access-Control-Request-Method": "POST"})
