"""CNPJ rules: normalisation, check digits (numeric and alphanumeric) and the GLPI search pattern.

Since 2026 the Receita Federal issues alphanumeric CNPJs: 12 characters [0-9A-Z]
followed by 2 numeric check digits. Each character is worth its ASCII code
minus 48, so the numeric CNPJ is the special case of the same rule.
"""

from __future__ import annotations

import re

CNPJ_LENGTH = 14
_SEPARATORS = re.compile(r"[\s./\-\u2010-\u2015]")  # also Unicode dashes and spaces pasted from documents
_SHAPE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_FIRST_WEIGHTS = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_SECOND_WEIGHTS = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def normalize_cnpj(value: str) -> str:
    """Drop the usual separators (. / - and spaces, Unicode ones too) and upper-case the rest."""
    return _SEPARATORS.sub("", value).upper()


def _check_digit(characters: str, weights: tuple[int, ...]) -> int:
    total = sum((ord(char) - 48) * weight for char, weight in zip(characters, weights, strict=True))
    remainder = total % 11
    return 0 if remainder < 2 else 11 - remainder


def is_valid_cnpj(value: str) -> bool:
    """True when `value`, once normalised, is a CNPJ with correct check digits."""
    # Checked before upper-casing, which maps ſ and ı onto S and I.
    if not _SEPARATORS.sub("", value).isascii():
        return False
    cnpj = normalize_cnpj(value)
    if not _SHAPE.fullmatch(cnpj):
        return False
    first = _check_digit(cnpj[:12], _FIRST_WEIGHTS)
    second = _check_digit(cnpj[:12] + str(first), _SECOND_WEIGHTS)
    return cnpj[12:] == f"{first}{second}"


def format_cnpj(cnpj: str) -> str:
    """`11222333000181` -> `11.222.333/0001-81` (expects a normalised CNPJ)."""
    return f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"


def cnpj_search_pattern(cnpj: str) -> str:
    """GLPI `contains` value that finds a normalised CNPJ stored bare or formatted.

    GLPI turns `contains` into SQL LIKE, where `%` matches any run of characters
    and `^`/`$` anchor the value, so `^11%222%333%0001%81$` finds both
    `11.222.333/0001-81` and `11222333000181` but not the branch `.../0002-62`.
    The caller still compares each row's normalised value exactly.
    """
    return f"^{cnpj[:2]}%{cnpj[2:5]}%{cnpj[5:8]}%{cnpj[8:12]}%{cnpj[12:]}$"
