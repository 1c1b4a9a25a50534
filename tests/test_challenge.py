"""challenge.py: a form submission with the public key needs a fresh, signed, unexpired proof of
work of the configured difficulty, good once across every process sharing the store."""

from __future__ import annotations

import hashlib

import pytest

from glpi_gateway.challenge import (
    ChallengeRefused,
    FormChallenge,
    challenge_secret,
    issue,
    leading_zero_bits,
    solve,
    verify,
)
from glpi_gateway.store.sqlite import SqliteStore

SECRET = challenge_secret((("formulario", "form-key-0123456789abcdefghijklmnopqrstu"),))
NOW = 1_800_000_000.0


def solved(difficulty: int = 8, ttl: int = 600) -> tuple[str, str]:
    challenge = issue(SECRET, difficulty, ttl, NOW)
    return challenge.token, solve(challenge.token, difficulty)


def refusal(token: str | None, solution: str | None, min_difficulty: int = 8, now: float = NOW) -> str:
    with pytest.raises(ChallengeRefused) as refused:
        verify(SECRET, token, solution, min_difficulty, now)
    return refused.value.reason


def test_a_solved_challenge_is_accepted():
    token, solution = solved()
    assert verify(SECRET, token, solution, 8, NOW).difficulty == 8


@pytest.mark.parametrize("token, solution", [(None, "1"), ("", "1"), ("x", None)])
def test_a_missing_challenge_or_solution_is_refused(token, solution):
    assert "desafio resolvido" in refusal(token, solution)


def test_an_expired_challenge_is_refused():
    token, solution = solved(ttl=60)
    assert refusal(token, solution, now=NOW + 60) == "desafio expirado"


def test_a_tampered_challenge_is_refused():
    token, solution = solved()
    nonce, expires, difficulty, signature = token.split(".")
    later = f"{nonce}.{int(expires) + 3600}.{difficulty}.{signature}"
    assert refusal(later, solution) == "desafio com assinatura inválida"
    other_secret = issue(challenge_secret((("outra", "chave-0123456789abcdefghijklmnop"),)), 8, 600, NOW)
    assert refusal(other_secret.token, solve(other_secret.token, 8)) == "desafio com assinatura inválida"


def test_an_easier_challenge_than_required_is_refused():
    token, solution = solved(difficulty=4)
    assert refusal(token, solution, min_difficulty=8) == "desafio mais fácil que o exigido"


def test_a_wrong_solution_is_refused():
    token, solution = solved(difficulty=12)
    wrong = next(
        str(n) for n in range(10_000) if leading_zero_bits(hashlib.sha256(f"{token}:{n}".encode()).digest()) < 12
    )
    assert refusal(token, wrong, min_difficulty=12) == "solução errada"


@pytest.mark.parametrize("solution", ["-1", "1e3", "9" * 17, " 1"])
def test_a_malformed_solution_is_refused(solution):
    token, _ = solved()
    assert refusal(token, solution) == "desafio malformado"


def test_leading_zero_bits_counts_bits_not_bytes():
    assert leading_zero_bits(bytes([0, 0x10, 0xFF])) == 11
    assert leading_zero_bits(bytes([0x80])) == 0
    assert leading_zero_bits(bytes(4)) == 32


def test_the_secret_follows_the_configured_keys():
    assert challenge_secret((("a", "k1"),)) == challenge_secret((("a", "k1"),))
    assert challenge_secret((("a", "k1"),)) != challenge_secret((("a", "k2"),))


def test_a_solution_is_good_once_even_from_another_process(tmp_path):
    first = FormChallenge(SECRET, 8, 600, SqliteStore(str(tmp_path)), clock=lambda: NOW)
    second = FormChallenge(SECRET, 8, 600, SqliteStore(str(tmp_path)), clock=lambda: NOW)
    challenge = first.issue()
    solution = solve(challenge.token, 8)
    first.check(challenge.token, solution)
    with pytest.raises(ChallengeRefused, match="já usado"):
        second.check(challenge.token, solution)


def test_difficulty_zero_turns_the_challenge_off(tmp_path):
    assert not FormChallenge(SECRET, 0, 600, SqliteStore(str(tmp_path))).enabled
