"""API keys: who is calling. Plain functions over header values, no Flask.

A presented key is compared with every configured key, in constant time and
without stopping at the first match, so neither the timing nor the order of the
keys tells an attacker how close a guess was or which key it hit. Digests are
compared rather than the keys themselves so that a key's length does not leak
either.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol


class ApiKeyRejected(Exception):
    """No valid key came with the request; `presented` says whether a key came at all."""

    def __init__(self, presented: bool):
        super().__init__("invalid API key" if presented else "missing API key")
        self.presented = presented


class HeaderLookup(Protocol):
    """What presented_key reads headers from: werkzeug's Headers (not a Mapping) or a plain dict."""

    def get(self, name: str, /) -> str | None: ...


def presented_key(headers: HeaderLookup) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-API-Key`; None when neither."""
    scheme, _, credentials = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return (headers.get("X-API-Key") or "").strip() or None


class ApiKeys:
    def __init__(self, keys: tuple[tuple[str, str], ...]):
        self._digests = [(name, _digest(key)) for name, key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: str | None) -> str:
        """The name of the key `presented`, or ApiKeyRejected."""
        if presented is None:
            raise ApiKeyRejected(presented=False)
        candidate = _digest(presented)
        found = None
        for name, digest in self._digests:
            if hmac.compare_digest(candidate, digest):
                found = name
        if found is None:
            raise ApiKeyRejected(presented=True)
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class FormKeyOutOfScope(Exception):
    """The form's key, public by nature, was used for something other than opening a ticket."""
