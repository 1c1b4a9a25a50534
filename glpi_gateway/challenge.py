"""The contact form's proof of work: a self-hosted, cookie-free challenge that keeps bots away
from the public form key without bothering people.

The gateway issues a signed, expiring challenge (`GET /formulario/desafio`); the form solves it
in the background while the person types (formulario-desafio.js): it looks for a number whose
SHA-256 together with the challenge starts with `difficulty` zero bits, about 2**difficulty
hashes. `POST /criar-chamado` with the form's key carries the challenge and the number; the
gateway checks the signature, the expiry, the difficulty and the hash, and that the challenge
was not used before (in the store, so across processes and instances). Checking costs one
HMAC, one SHA-256 and one counter in the store; solving costs the browser ~2**difficulty hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from glpi_gateway.store import Store

CHALLENGE_HEADER = "X-Desafio"
SOLUTION_HEADER = "X-Desafio-Solucao"
HONEYPOT_FIELD = "website"  # invisible in the form: people leave it empty, form-filling bots do not
TOKEN_PATTERN = re.compile(r"(?P<nonce>[0-9a-f]{32})\.(?P<expires>\d{1,12})\.(?P<difficulty>\d{1,2})\.[0-9a-f]{64}")
SOLUTION_PATTERN = re.compile(r"\d{1,16}")


class ChallengeRefused(Exception):
    """The request needed a solved challenge and did not bring a good one; `reason` is pt-BR."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class HoneypotFilled(Exception):
    """The field that only bots fill came filled."""


@dataclass(frozen=True)
class Challenge:
    token: str
    nonce: str
    expires_at: int
    difficulty: int


def challenge_secret(api_keys: tuple[tuple[str, str], ...]) -> bytes:
    """The signing key: derived from the configured API keys, so every process and instance of
    one deployment shares it with no extra setting, and it changes when the keys do."""
    material = "\n".join(f"{name}:{key}" for name, key in sorted(api_keys))
    return hashlib.sha256(b"glpi-gateway/desafio\n" + material.encode("utf-8", "surrogatepass")).digest()


def issue(secret: bytes, difficulty: int, ttl_seconds: int, now: float) -> Challenge:
    nonce = secrets.token_hex(16)
    expires_at = int(now) + ttl_seconds
    unsigned = f"{nonce}.{expires_at}.{difficulty}"
    return Challenge(f"{unsigned}.{_signature(secret, unsigned)}", nonce, expires_at, difficulty)


def verify(secret: bytes, token: str | None, solution: str | None, min_difficulty: int, now: float) -> Challenge:
    """The challenge `token` if `solution` solves it and it is still valid, else ChallengeRefused.
    Whether it was used before is the caller's to check (see `Challenge.nonce`)."""
    if not token or not solution:
        raise ChallengeRefused("o envio não trouxe o desafio resolvido")
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None or not SOLUTION_PATTERN.fullmatch(solution):
        raise ChallengeRefused("desafio malformado")
    unsigned, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature, _signature(secret, unsigned)):
        raise ChallengeRefused("desafio com assinatura inválida")
    challenge = Challenge(token, match["nonce"], int(match["expires"]), int(match["difficulty"]))
    if challenge.expires_at <= now:
        raise ChallengeRefused("desafio expirado")
    if challenge.difficulty < min_difficulty:
        raise ChallengeRefused("desafio mais fácil que o exigido")
    if leading_zero_bits(hashlib.sha256(f"{token}:{solution}".encode("ascii")).digest()) < challenge.difficulty:
        raise ChallengeRefused("solução errada")
    return challenge


def solve(token: str, difficulty: int) -> str:
    """What the form does, in Python: for tests and benchmarks."""
    counter = 0
    while leading_zero_bits(hashlib.sha256(f"{token}:{counter}".encode("ascii")).digest()) < difficulty:
        counter += 1
    return str(counter)


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def _signature(secret: bytes, unsigned: str) -> str:
    return hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).hexdigest()


class FormChallenge:
    """Issues challenges and checks solutions, each usable once across every process that shares
    the store (counted with the store's rate-limit counters, which expire by themselves)."""

    def __init__(
        self, secret: bytes, difficulty: int, ttl_seconds: int, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.difficulty = difficulty
        self._secret = secret
        self._ttl = ttl_seconds
        self._store = store
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.difficulty > 0

    def issue(self) -> Challenge:
        return issue(self._secret, self.difficulty, self._ttl, self._clock())

    def check(self, token: str | None, solution: str | None) -> None:
        now = self._clock()
        challenge = verify(self._secret, token, solution, self.difficulty, now)
        lifetime = max(1, challenge.expires_at - int(now))
        used_before = self._store.count_hit(f"desafio:{challenge.nonce}", lifetime, 1) is not None
        if used_before:
            raise ChallengeRefused("desafio já usado: peça outro")
