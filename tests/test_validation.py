"""Contract of validation.py: the `POST /criar-chamado` body becomes a TicketRequest or a ValidationError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glpi_gateway.validation import (
    DEFAULT_URGENCY,
    MAX_LENGTHS,
    REQUIRED_FIELDS,
    TicketRequest,
    ValidationError,
    validate_ticket_request,
)

VALID_BODY = {
    "nome_cliente": "Maria Silva",
    "telefone_cliente": "(11) 98765-4321",
    "cnpj_cliente": "11.222.333/0001-81",
    "anydesk_cliente": "123 456 789",
    "descricao_problema": "A impressora não imprime.",
}


def body(**changes):
    result = dict(VALID_BODY)
    for key, value in changes.items():
        if value is _ABSENT:
            result.pop(key, None)
        else:
            result[key] = value
    return result


_ABSENT = object()


def rejected(payload) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        validate_ticket_request(payload)
    return caught.value


# --- the happy path -------------------------------------------------------------


def test_a_complete_valid_body_gives_a_ticket_request_with_the_values():
    request = validate_ticket_request(body(email_cliente="maria@example.com", categoria=4, urgencia=5))
    assert request == TicketRequest(
        nome_cliente="Maria Silva",
        telefone_cliente="(11) 98765-4321",
        cnpj="11222333000181",
        anydesk_cliente="123 456 789",
        descricao_problema="A impressora não imprime.",
        email_cliente="maria@example.com",
        categoria=4,
        urgencia=5,
    )


@pytest.mark.parametrize(
    "typed, normalised",
    [
        ("11.222.333/0001-81", "11222333000181"),
        ("11222333000181", "11222333000181"),
        ("12.abc.345/01de-35", "12ABC34501DE35"),
        (" 12 ABC 345 01DE 35 ", "12ABC34501DE35"),
    ],
)
def test_the_returned_request_carries_the_normalised_cnpj(typed, normalised):
    assert validate_ticket_request(body(cnpj_cliente=typed)).cnpj == normalised


def test_extra_unknown_fields_are_ignored():
    request = validate_ticket_request(body(campo_desconhecido="x", outro={"a": [1, 2]}, cnpj="lixo"))
    assert request == validate_ticket_request(body())


# --- missing fields -------------------------------------------------------------


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
@pytest.mark.parametrize(
    "blank", [_ABSENT, None, "", "   ", "\t\n \r\n"], ids=["absent", "null", "empty", "spaces", "whitespace"]
)
def test_each_required_field_absent_null_or_blank_is_listed_as_missing(field, blank):
    error = rejected(body(**{field: blank}))
    assert error.missing == [field]
    assert error.invalid == {}


def test_all_missing_required_fields_are_listed_at_once_in_order():
    assert rejected({}).missing == list(REQUIRED_FIELDS)


def test_missing_fields_are_listed_in_contract_order_whatever_the_body_order():
    payload = {"anydesk_cliente": " ", "descricao_problema": "ok", "telefone_cliente": "1", "cnpj_cliente": None}
    assert rejected(payload).missing == ["nome_cliente", "cnpj_cliente", "anydesk_cliente"]


@pytest.mark.parametrize("field", ["nome_cliente", "telefone_cliente", "anydesk_cliente", "descricao_problema"])
def test_a_required_field_made_only_of_control_characters_is_listed_as_missing(field):
    assert rejected(body(**{field: "\x00\x01"})).missing == [field]


# --- shape and types ------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], [VALID_BODY], "texto", "", 42, 3.5, True, None], ids=repr)
def test_a_body_that_is_not_a_json_object_is_rejected(payload):
    error = rejected(payload)
    assert "corpo" in error.invalid


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
@pytest.mark.parametrize("wrong", [123, 1.5, True, ["a"], {"a": "b"}], ids=repr)
def test_a_required_field_that_is_not_text_is_invalid(field, wrong):
    error = rejected(body(**{field: wrong}))
    assert error.invalid.get(field) == "deve ser um texto"


@pytest.mark.parametrize("wrong", [123, ["a@b.com"], {"e": 1}, True])
def test_an_email_that_is_not_text_is_invalid(wrong):
    assert "email_cliente" in rejected(body(email_cliente=wrong)).invalid


def test_every_invalid_field_is_reported_at_once():
    error = rejected(
        body(nome_cliente=7, cnpj_cliente="11.222.333/0001-82", email_cliente="x", categoria="abc", urgencia=9)
    )
    assert set(error.invalid) == {"nome_cliente", "cnpj_cliente", "email_cliente", "categoria", "urgencia"}


# --- CNPJ -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cnpj", ["11.222.333/0001-82", "1122233300018", "11.222.333/0001-8A", "abc", "11@222.333/0001-81"]
)
def test_an_invalid_cnpj_is_rejected(cnpj):
    assert "cnpj_cliente" in rejected(body(cnpj_cliente=cnpj)).invalid


# --- length limits --------------------------------------------------------------


def _text_of_length(field: str, length: int) -> str:
    if field == "cnpj_cliente":
        return "11.222.333/0001-81" + "-" * (length - len("11.222.333/0001-81"))
    if field == "email_cliente":
        return "a" * (length - len("@example.com")) + "@example.com"
    return "x" * length


@pytest.mark.parametrize("field", sorted(MAX_LENGTHS))
def test_a_field_exactly_at_its_length_limit_is_accepted(field):
    value = _text_of_length(field, MAX_LENGTHS[field])
    request = validate_ticket_request(body(**{field: value}))
    attribute = "cnpj" if field == "cnpj_cliente" else field
    assert getattr(request, attribute)


@pytest.mark.parametrize("field", sorted(MAX_LENGTHS))
def test_a_field_one_character_over_its_length_limit_is_rejected(field):
    value = _text_of_length(field, MAX_LENGTHS[field] + 1)
    error = rejected(body(**{field: value}))
    assert str(MAX_LENGTHS[field]) in error.invalid[field]


def test_the_documented_length_limits():
    assert MAX_LENGTHS["nome_cliente"] == 255
    assert MAX_LENGTHS["descricao_problema"] == 10_000


def test_length_is_measured_after_trimming():
    request = validate_ticket_request(body(nome_cliente="  " + "x" * 255 + "  "))
    assert request.nome_cliente == "x" * 255


# --- e-mail ---------------------------------------------------------------------


@pytest.mark.parametrize("blank", [_ABSENT, None, "", "   "], ids=["absent", "null", "empty", "spaces"])
def test_email_is_optional_and_blank_means_none(blank):
    assert validate_ticket_request(body(email_cliente=blank)).email_cliente is None


@pytest.mark.parametrize("email", ["maria@example.com", "a.b+c@sub.example.com.br"])
def test_a_valid_email_is_kept(email):
    assert validate_ticket_request(body(email_cliente=email)).email_cliente == email


def test_email_is_trimmed():
    assert validate_ticket_request(body(email_cliente="  maria@example.com \n")).email_cliente == "maria@example.com"


@pytest.mark.parametrize(
    "email", ["maria", "maria@", "@example.com", "maria@example", "ma ria@example.com", "a@b@example.com"]
)
def test_an_invalid_email_is_rejected(email):
    assert "email_cliente" in rejected(body(email_cliente=email)).invalid


# --- categoria ------------------------------------------------------------------


@pytest.mark.parametrize("given_value, expected", [(7, 7), ("7", 7), (" 12 ", 12), (2**31 - 1, 2**31 - 1)])
def test_categoria_is_accepted_as_int_or_numeric_string(given_value, expected):
    assert validate_ticket_request(body(categoria=given_value)).categoria == expected


@pytest.mark.parametrize("absent", [_ABSENT, None, "", "  "], ids=["absent", "null", "empty", "spaces"])
def test_categoria_is_optional(absent):
    assert validate_ticket_request(body(categoria=absent)).categoria is None


@pytest.mark.parametrize(
    "wrong", [0, -1, "0", "-3", True, False, 1.5, 7.0, "abc", "7a", [7], {"id": 7}, 2**31], ids=repr
)
def test_categoria_that_is_not_a_positive_integer_is_rejected(wrong):
    assert "categoria" in rejected(body(categoria=wrong)).invalid


# --- urgencia -------------------------------------------------------------------


@pytest.mark.parametrize("urgency", [1, 2, 3, 4, 5])
def test_urgencia_from_1_to_5_is_accepted(urgency):
    assert validate_ticket_request(body(urgencia=urgency)).urgencia == urgency


def test_urgencia_as_numeric_string_is_accepted():
    assert validate_ticket_request(body(urgencia="5")).urgencia == 5


@pytest.mark.parametrize("wrong", [0, 6, -1, 100, "0", "6", True, 2.0, "alta"], ids=repr)
def test_urgencia_outside_1_to_5_or_not_an_integer_is_rejected(wrong):
    assert "urgencia" in rejected(body(urgencia=wrong)).invalid


@pytest.mark.parametrize("absent", [_ABSENT, None, ""], ids=["absent", "null", "empty"])
def test_urgencia_defaults_to_3(absent):
    assert DEFAULT_URGENCY == 3
    assert validate_ticket_request(body(urgencia=absent)).urgencia == 3


# --- text cleaning --------------------------------------------------------------


def test_surrounding_whitespace_is_trimmed_from_every_text_field():
    request = validate_ticket_request(
        {
            "nome_cliente": "  Maria  ",
            "telefone_cliente": "\t11 9999 ",
            "cnpj_cliente": " 11.222.333/0001-81 ",
            "anydesk_cliente": " 123 ",
            "descricao_problema": "\n\n  Não liga \n\n",
        }
    )
    assert (request.nome_cliente, request.telefone_cliente, request.anydesk_cliente, request.descricao_problema) == (
        "Maria",
        "11 9999",
        "123",
        "Não liga",
    )


def test_description_keeps_line_breaks_and_turns_crlf_and_cr_into_lf():
    request = validate_ticket_request(body(descricao_problema="linha 1\r\nlinha 2\rlinha 3\n\nlinha 5"))
    assert request.descricao_problema == "linha 1\nlinha 2\nlinha 3\n\nlinha 5"


@pytest.mark.parametrize("field", ["nome_cliente", "telefone_cliente", "anydesk_cliente"])
def test_single_line_fields_collapse_newlines_and_whitespace_runs_into_one_space(field):
    request = validate_ticket_request(body(**{field: "ab\r\ncd\n\n\tef   gh"}))
    assert getattr(request, field) == "ab cd ef gh"


def test_control_characters_are_removed_from_text_fields():
    request = validate_ticket_request(body(nome_cliente="Ma\x00ria\x07", descricao_problema="a\x00b\x1bc\nd"))
    assert request.nome_cliente == "Maria"
    assert request.descricao_problema == "abc\nd"


# --- robustness -----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from([*REQUIRED_FIELDS, "email_cliente", "categoria", "urgencia"])
plausible_values = st.one_of(
    json_values,
    st.sampled_from(list(VALID_BODY.values()) + ["maria@example.com", "3", "  ", "\x00"]),
)
bodies_near_the_contract = st.builds(
    lambda base, changes: {**base, **changes},
    st.sampled_from([{}, VALID_BODY]),
    st.dictionaries(field_names | st.text(max_size=5), plausible_values, max_size=8),
)


@settings(max_examples=300)
@given(st.one_of(json_values, bodies_near_the_contract))
def test_any_json_value_gives_a_ticket_request_or_a_validation_error_and_nothing_else(payload):
    try:
        result = validate_ticket_request(payload)
    except ValidationError as error:
        assert error.missing or error.invalid
    else:
        assert isinstance(result, TicketRequest)


# Bidi embeddings/overrides/isolates and other invisible formatting characters ("Trojan Source").
INVISIBLE_FORMATTING = ["\u061c", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067"]
INVISIBLE_FORMATTING += ["\u2068", "\u2069", "\u180e", "\u00ad", "\u2062"]


@pytest.mark.parametrize("char", INVISIBLE_FORMATTING)
def test_bidi_and_invisible_formatting_characters_are_removed_from_every_text(char):
    clean = validate_ticket_request(
        body(
            nome_cliente=f"Bob{char}gnp.exe",
            anydesk_cliente=f"123{char} 456",
            descricao_problema=f"linha{char}\nRTL{char}fim",
        )
    )
    assert clean.nome_cliente == "Bobgnp.exe"
    assert clean.anydesk_cliente == "123 456"
    assert clean.descricao_problema == "linha\nRTLfim"
    assert char not in repr(clean)
