"""The contact form (formulario.js) checks fields with the server's rules: the same limits,
required fields, e-mail rule and CNPJ check-digit weights as validation.FIELDS and cnpj.py, and
the attachment limits and types the gateway writes into it from its configuration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config import load_config
from glpi_gateway import attachments, cnpj, validation
from glpi_gateway.validation import MAX_LENGTHS, REQUIRED_FIELDS
from glpi_gateway.web import form
from glpi_gateway.web.form import form_script

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


# --- attachments: the limits the gateway writes into the script ------------------------------


MINIMAL = {"GLPI_URL": "https://glpi.example.com/apirest.php", "GLPI_USER_TOKEN": "user-token-secret-123"}


def served_limits(**environ: str) -> dict:
    """The attachment limits in formulario.js as the gateway serves it with this configuration."""
    config = load_config({**MINIMAL, **environ}, env_file=None)
    found = re.search(r"var attachmentLimits = (.*);", form_script(config).decode("utf-8"))
    assert found
    return json.loads(found[1])


def test_the_script_carries_the_servers_attachment_limits_and_types():
    limits = served_limits(ATTACHMENTS_MAX_COUNT="3", ATTACHMENTS_MAX_BYTES="123456")
    assert limits["maxCount"] == 3 and limits["maxBytes"] == 123456
    assert limits["extensions"] == [ext for file_type in attachments.ALLOWED_TYPES for ext in file_type.extensions]
    defaults = served_limits()
    assert (defaults["maxCount"], defaults["maxBytes"]) == (5, 5 * 1024 * 1024)


def test_the_template_holds_each_placeholder_once_and_a_missing_one_stops_the_gateway():
    for placeholder in (form.FORM_KEY_PLACEHOLDER, form.ATTACHMENT_LIMITS_PLACEHOLDER):
        assert SCRIPT.count(placeholder) == 1, placeholder
    config = load_config(dict(MINIMAL), env_file=None)
    with pytest.raises(RuntimeError, match="ATTACHMENT_LIMITS"):
        form_script(config, SCRIPT.replace(form.ATTACHMENT_LIMITS_PLACEHOLDER, "null"))
