"""Contract of cnpj.py: normalisation, check digits (numeric and alphanumeric), formatting
and the GLPI `contains` search pattern."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glpi_gateway.cnpj import cnpj_search_pattern, format_cnpj, is_valid_cnpj, normalize_cnpj

# ---------------------------------------------------------------------------
# Independent reference implementation, written from the Receita Federal spec:
# value of a character = ASCII code - 48; weights 5,4,3,2,9,8,7,6,5,4,3,2 for the
# 1st digit, 6,5,4,3,2,9,8,7,6,5,4,3,2 for the 2nd (over the 12 chars + 1st digit);
# remainder of sum mod 11 < 2 -> 0, else 11 - remainder.
# ---------------------------------------------------------------------------
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def reference_check_digits(base12: str) -> str:
    def digit(chars: str, weights: list[int]) -> int:
        remainder = sum((ord(c) - 48) * w for c, w in zip(chars, weights, strict=True)) % 11
        return 0 if remainder < 2 else 11 - remainder

    first = digit(base12, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    second = digit(base12 + str(first), [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return f"{first}{second}"


def pattern_to_regex(pattern: str) -> re.Pattern[str]:
    """What GLPI's `contains` does with `^…$` and `%`: anchored, `%` = any run, case-insensitive."""
    assert pattern.startswith("^") and pattern.endswith("$"), pattern
    body = pattern[1:-1]
    return re.compile("^" + ".*".join(re.escape(part) for part in body.split("%")) + "$", re.IGNORECASE)


bases = st.text(alphabet=ALPHABET, min_size=12, max_size=12)
valid_cnpjs = bases.map(lambda base: base + reference_check_digits(base))

VALID_FORMATTED = ["11.222.333/0001-81", "19.131.100/0001-85", "12.ABC.345/01DE-35", "A1.B2C.3D4/E5F6-68"]


# --- known vectors ----------------------------------------------------------


@pytest.mark.parametrize("formatted", VALID_FORMATTED)
def test_known_valid_cnpjs_are_accepted_formatted(formatted):
    assert is_valid_cnpj(formatted)


@pytest.mark.parametrize("formatted", VALID_FORMATTED)
def test_known_valid_cnpjs_are_accepted_bare(formatted):
    assert is_valid_cnpj(re.sub(r"[./-]", "", formatted))


@pytest.mark.parametrize("formatted", ["12.abc.345/01de-35", "a1.b2c.3d4/e5f6-68", "12abc34501de35"])
def test_lowercase_alphanumeric_cnpjs_are_accepted(formatted):
    assert is_valid_cnpj(formatted)


@pytest.mark.parametrize(
    "spaced", ["  11.222.333/0001-81  ", "11 222 333 0001 81", "12 ABC 345 01DE 35", "\t19.131.100/0001-85\n"]
)
def test_cnpjs_with_spaces_are_accepted(spaced):
    assert is_valid_cnpj(spaced)


def test_reference_implementation_agrees_with_the_known_vectors():
    for formatted in VALID_FORMATTED:
        bare = re.sub(r"[./-]", "", formatted)
        assert reference_check_digits(bare[:12]) == bare[12:]


@pytest.mark.parametrize(
    "formatted, expected",
    [
        ("11.222.333/0001-81", "11222333000181"),
        ("11222333000181", "11222333000181"),
        ("12.abc.345/01de-35", "12ABC34501DE35"),
        (" a1 b2c 3d4 e5f6 68 ", "A1B2C3D4E5F668"),
    ],
)
def test_formatted_and_bare_cnpj_normalise_to_the_same_value(formatted, expected):
    assert normalize_cnpj(formatted) == expected


def test_format_cnpj_inserts_the_usual_separators():
    assert format_cnpj("11222333000181") == "11.222.333/0001-81"
    assert format_cnpj("12ABC34501DE35") == "12.ABC.345/01DE-35"


@pytest.mark.parametrize(
    "invalid",
    [
        "11.222.333/0001-82",  # wrong second check digit
        "11.222.333/0001-71",  # wrong first check digit
        "12.ABC.345/01DE-36",
        "A1.B2C.3D4/E5F6-86",  # check digits swapped
    ],
)
def test_wrong_check_digits_are_rejected(invalid):
    assert not is_valid_cnpj(invalid)


@pytest.mark.parametrize("invalid", ["1122233300018", "112223330001810", "11222333000181" + "1", "1" * 13, ""])
def test_cnpjs_of_13_or_15_characters_are_rejected(invalid):
    assert not is_valid_cnpj(invalid)


def test_a_valid_cnpj_with_one_extra_character_is_rejected():
    assert not is_valid_cnpj("11.222.333/0001-810")
    assert not is_valid_cnpj("011.222.333/0001-81")


@pytest.mark.parametrize("invalid", ["12.ABC.345/01DE-3A", "12.ABC.345/01DE-A5", "11.222.333/0001-8I"])
def test_letters_in_check_digit_positions_are_rejected(invalid):
    assert not is_valid_cnpj(invalid)


@pytest.mark.parametrize(
    "invalid",
    [
        "11.222.333/0001_81",
        "11.222.333\\0001-81",
        "11,222,333/0001-81",
        "11.222.333/0001+81",
        "1122233300018!",
        "11#22233300018",
    ],
)
def test_symbols_other_than_the_usual_separators_are_rejected(invalid):
    assert not is_valid_cnpj(invalid)


def test_other_branch_of_the_same_company_is_a_different_cnpj():
    assert is_valid_cnpj("11.222.333/0002-62")
    assert normalize_cnpj("11.222.333/0002-62") != normalize_cnpj("11.222.333/0001-81")


# --- properties ---------------------------------------------------------------


@settings(max_examples=150)
@given(bases)
def test_any_12_characters_plus_reference_check_digits_make_a_valid_cnpj(base):
    assert is_valid_cnpj(base + reference_check_digits(base))


@settings(max_examples=150)
@given(bases, st.sampled_from([12, 13]), st.integers(min_value=1, max_value=9))
def test_changing_any_one_check_digit_makes_the_cnpj_invalid(base, position, shift):
    cnpj = base + reference_check_digits(base)
    changed_digit = str((int(cnpj[position]) + shift) % 10)
    changed = cnpj[:position] + changed_digit + cnpj[position + 1 :]
    assert not is_valid_cnpj(changed)


@st.composite
def cnpj_as_typed(draw):
    """A valid CNPJ as a person might type it: random separators and random case."""
    cnpj = draw(valid_cnpjs)
    out = []
    for char in cnpj:
        out.append(draw(st.text(alphabet=" ./-", max_size=2)))
        out.append(char.lower() if draw(st.booleans()) else char)
    out.append(draw(st.text(alphabet=" ./-", max_size=2)))
    return cnpj, "".join(out)


@settings(max_examples=150)
@given(cnpj_as_typed())
def test_cnpj_typed_with_any_separators_and_case_normalises_to_the_bare_upper_case_value(pair):
    cnpj, typed = pair
    assert normalize_cnpj(typed) == cnpj
    assert is_valid_cnpj(typed)


@settings(max_examples=150)
@given(cnpj_as_typed())
def test_formatting_a_normalised_cnpj_normalises_back_to_the_same_value(pair):
    _, typed = pair
    normalised = normalize_cnpj(typed)
    assert normalize_cnpj(format_cnpj(normalised)) == normalised
    assert is_valid_cnpj(format_cnpj(normalised))


def test_search_pattern_matches_formatted_and_bare_form_but_not_another_branch():
    regex = pattern_to_regex(cnpj_search_pattern("11222333000181"))
    assert regex.match("11.222.333/0001-81")
    assert regex.match("11222333000181")
    assert not regex.match("11.222.333/0002-62")
    assert not regex.match("11222333000262")


def test_search_pattern_is_anchored_at_both_ends():
    pattern = cnpj_search_pattern("11222333000181")
    assert pattern.startswith("^") and pattern.endswith("$")
    regex = pattern_to_regex(pattern)
    assert not regex.match("911.222.333/0001-81")
    assert not regex.match("11.222.333/0001-819")


@settings(max_examples=150)
@given(valid_cnpjs)
def test_search_pattern_matches_the_formatted_bare_and_lowercase_forms_of_the_same_cnpj(cnpj):
    regex = pattern_to_regex(cnpj_search_pattern(cnpj))
    assert regex.match(cnpj)
    assert regex.match(format_cnpj(cnpj))
    assert regex.match(format_cnpj(cnpj).lower())


@settings(max_examples=150)
@given(valid_cnpjs, valid_cnpjs)
def test_search_pattern_never_matches_a_different_cnpj(cnpj, other):
    if cnpj == other:
        return
    regex = pattern_to_regex(cnpj_search_pattern(cnpj))
    assert not regex.match(other)
    assert not regex.match(format_cnpj(other))


@settings(max_examples=100)
@given(bases, st.integers(min_value=1, max_value=9998))
def test_search_pattern_does_not_match_another_branch_of_the_same_company(base, branch_shift):
    root = base[:8]
    branch = base[8:12]
    other_branch = f"{(int(branch) + branch_shift) % 10000:04d}" if branch.isdigit() else "0001"
    if other_branch == branch:
        other_branch = "0002"
    cnpj = base + reference_check_digits(base)
    other_base = root + other_branch
    other = other_base + reference_check_digits(other_base)
    regex = pattern_to_regex(cnpj_search_pattern(cnpj))
    assert not regex.match(format_cnpj(other))
    assert not regex.match(other)


@pytest.mark.parametrize("value", ["12ſBC34501DE48", "12ıBC34501DE48", "１1222333000181"])
def test_non_ascii_characters_never_pass_as_cnpj_characters(value):
    assert not is_valid_cnpj(value)


def test_unicode_dashes_and_spaces_pasted_from_documents_are_separators():
    assert is_valid_cnpj("11.222.333/0001\u201181")
    assert is_valid_cnpj("11\u00a0222\u00a0333 0001\u201381")
