"""The contact form (formulario.js) checks fields with the server's rules: the same limits,
required fields, e-mail rule and CNPJ check-digit weights as validation.FIELDS and cnpj.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from glpi_gateway import cnpj, validation
from glpi_gateway.validation import MAX_LENGTHS, REQUIRED_FIELDS

SCRIPT = (Path(__file__).resolve().parent.parent / "glpi_gateway" / "web" / "static" / "formulario.js").read_text(
    encoding="utf-8"
)
FORM_FIELDS = {
    match["server"]: match
    for match in re.finditer(
        r'server: "(?P<server>\w+)".*?required: (?P<required>true|false).*?maxlength="(?P<maxlength>\d+)"',
        SCRIPT,
        re.DOTALL,
    )
}


def js_array(name: str) -> tuple[int, ...]:
    found = re.search(rf"var {name} = \[([\d, ]+)\];", SCRIPT)
    assert found, name
    return tuple(int(number) for number in found[1].split(","))


def test_the_form_has_every_text_field_of_the_server():
    assert set(FORM_FIELDS) == set(MAX_LENGTHS)


@pytest.mark.parametrize("name", sorted(MAX_LENGTHS))
def test_the_form_limits_each_field_to_the_servers_maximum(name):
    assert int(FORM_FIELDS[name]["maxlength"]) == MAX_LENGTHS[name]


@pytest.mark.parametrize("name", sorted(MAX_LENGTHS))
def test_the_form_requires_exactly_the_servers_required_fields(name):
    assert (FORM_FIELDS[name]["required"] == "true") == (name in REQUIRED_FIELDS)


def test_the_form_checks_e_mail_with_the_servers_rule():
    found = re.search(r"var EMAIL = /\^(.*)\$/;", SCRIPT)
    assert found
    assert found[1].replace("\\/", "/") == validation._EMAIL.pattern


def test_the_form_checks_cnpj_digits_with_the_servers_weights():
    assert js_array("FIRST_WEIGHTS") == cnpj._FIRST_WEIGHTS
    assert js_array("SECOND_WEIGHTS") == cnpj._SECOND_WEIGHTS
