"""CORS for browser forms: an allowlist of exact origins, nothing else.

Only an allowed origin ever gets CORS headers, and it gets itself back, never
`*`. No `Access-Control-Allow-Credentials` is sent: the API takes no cookies, and
a key a form sets in `Authorization` or `X-API-Key` is an ordinary request header
that the preflight allows.
"""

from __future__ import annotations

from typing import Protocol

from glpi_gateway.auth import HeaderLookup

ALLOWED_METHODS = "GET, POST"
ALLOWED_HEADERS = "Content-Type, Authorization, X-API-Key, Idempotency-Key, X-Request-ID, X-Desafio, X-Desafio-Solucao"
EXPOSED_HEADERS = "X-Request-ID, Retry-After, Location, Idempotent-Replayed"
PREFLIGHT_MAX_AGE_SECONDS = 600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CrossSiteRefused(Exception):
    """Open mode: a browser sent a state-changing request from a site not in CORS_ORIGINS."""


class CorsPolicy:
    def __init__(self, origins: tuple[str, ...]):
        self._origins = frozenset(origins)

    @property
    def enabled(self) -> bool:
        return bool(self._origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin in self._origins

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for any answer to `origin` (empty when it is not allowed)."""
        if origin is None or not self.allows(origin):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED_HEADERS}

    def preflight_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for the answer to a preflight (OPTIONS) from `origin` (empty when it is not allowed)."""
        if not self.allows(origin):
            return {}
        return {
            **self.response_headers(origin),
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        }


class HeaderNames(Protocol):
    """Anything that says whether it has a header: werkzeug's Headers (not a Mapping) or a plain dict."""

    def __contains__(self, name: str, /) -> bool: ...


def is_preflight(method: str, headers: HeaderNames) -> bool:
    return method == "OPTIONS" and "Origin" in headers and "Access-Control-Request-Method" in headers


def is_cross_site(method: str, headers: HeaderLookup, host: str, cors: CorsPolicy) -> bool:
    """Whether a browser sent this state-changing request from another site that CORS_ORIGINS
    does not allow. A `multipart/form-data` POST needs no preflight, so without API keys any
    page could open tickets through its visitors' browsers (REVIEW.md #9). Clients that are not
    browsers send neither `Sec-Fetch-Site` nor `Origin` and pass."""
    if method in SAFE_METHODS:
        return False
    origin = headers.get("Origin")
    if origin is not None and cors.allows(origin.lower()):
        return False
    fetch_site = (headers.get("Sec-Fetch-Site") or "").lower()
    if fetch_site in ("same-origin", "none"):
        return False
    if fetch_site in ("cross-site", "same-site"):
        return True
    if origin is None:
        return False
    # An Origin without Sec-Fetch-Site (older browsers): same host (any scheme, as a TLS proxy
    # may stand in front) is the gateway's own form; anything else, `null` included, is not.
    return origin.lower().partition("://")[2] != host.lower()
