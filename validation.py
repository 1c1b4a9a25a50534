"""Validation of the `POST /criar-chamado` body into a `TicketRequest`.

Plain functions, no Flask: the error messages are part of the public contract
(Portuguese, keyed by the field names the forms send).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cnpj import is_valid_cnpj, normalize_cnpj

REQUIRED_FIELDS = (
    "nome_cliente",
    "telefone_cliente",
    "cnpj_cliente",
    "anydesk_cliente",
    "descricao_problema",
)
MAX_LENGTHS = {
    "nome_cliente": 255,
    "telefone_cliente": 40,
    "cnpj_cliente": 32,
    "anydesk_cliente": 64,
    "descricao_problema": 10_000,
    "email_cliente": 254,
}
URGENCY_RANGE = range(1, 6)
DEFAULT_URGENCY = 3
# The HTML5 definition of a valid e-mail address, plus a dot in the domain.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
# Control and invisible formatting characters, dropped from every text.
_INVISIBLE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2060\ufeff]")
_WHITESPACE_RUN = re.compile(r"\s+")
_POSITIVE_INT = re.compile(r"[0-9]{1,10}")


class ValidationError(ValueError):
    """The body breaks the contract. `missing` lists absent fields, `invalid` maps field -> reason."""

    def __init__(self, missing: list[str] | None = None, invalid: dict[str, str] | None = None):
        self.missing = missing or []
        self.invalid = invalid or {}
        super().__init__(f"missing={self.missing} invalid={self.invalid}")


@dataclass(frozen=True)
class TicketRequest:
    nome_cliente: str
    telefone_cliente: str
    cnpj: str  # normalised: 14 characters, upper case, no separators
    anydesk_cliente: str
    descricao_problema: str
    email_cliente: str | None = None
    categoria: int | None = None
    urgencia: int = DEFAULT_URGENCY
    origem: str | None = None  # name of the API key that sent it (set by the app, not the body)


def validate_ticket_request(body: object) -> TicketRequest:
    """Check a decoded JSON body and return the clean request, or raise ValidationError."""
    if not isinstance(body, dict):
        raise ValidationError(invalid={"corpo": "o corpo deve ser um objeto JSON"})

    text = {
        name: _clean_text(body[name], multiline=name == "descricao_problema")
        for name in (*REQUIRED_FIELDS, "email_cliente")
        if isinstance(body.get(name), str)
    }
    missing = [name for name in REQUIRED_FIELDS if body.get(name) is None or text.get(name) == ""]
    if missing:
        raise ValidationError(missing=missing)

    invalid: dict[str, str] = {}
    for name in (*REQUIRED_FIELDS, "email_cliente"):
        if name not in text:
            if body.get(name) is not None:
                invalid[name] = "deve ser um texto"
        elif len(text[name]) > MAX_LENGTHS[name]:
            invalid[name] = f"deve ter no máximo {MAX_LENGTHS[name]} caracteres"

    if "cnpj_cliente" in text and not is_valid_cnpj(text["cnpj_cliente"]):
        invalid.setdefault("cnpj_cliente", "CNPJ inválido (verifique os dígitos)")
    email = text.get("email_cliente") or None
    if email is not None and not _EMAIL.fullmatch(email):
        invalid.setdefault("email_cliente", "e-mail inválido")

    try:
        categoria = _optional_positive_int(body.get("categoria"))
    except ValueError:
        invalid["categoria"] = "deve ser o número de uma categoria do GLPI"
        categoria = None
    try:
        urgencia = _optional_positive_int(body.get("urgencia"))
        if urgencia is not None and urgencia not in URGENCY_RANGE:
            raise ValueError(urgencia)
    except ValueError:
        invalid["urgencia"] = "deve ser um número de 1 a 5"
        urgencia = None

    if invalid:
        raise ValidationError(invalid=invalid)
    return TicketRequest(
        nome_cliente=text["nome_cliente"],
        telefone_cliente=text["telefone_cliente"],
        cnpj=normalize_cnpj(text["cnpj_cliente"]),
        anydesk_cliente=text["anydesk_cliente"],
        descricao_problema=text["descricao_problema"],
        email_cliente=email,
        categoria=categoria,
        urgencia=urgencia or DEFAULT_URGENCY,
    )


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean_text(value: str, multiline: bool) -> str:
    """Trim and drop invisible characters; keep line breaks only in the description."""
    if multiline:
        lines = (_INVISIBLE_CHARS.sub("", line.replace("\t", " ")) for line in value.splitlines())
        return "\n".join(lines).strip()
    return _WHITESPACE_RUN.sub(" ", _INVISIBLE_CHARS.sub("", value)).strip()


def _optional_positive_int(value: object) -> int | None:
    """An id given as integer or numeric string; None when absent; ValueError otherwise."""
    if _is_blank(value):
        return None
    if isinstance(value, str) and _POSITIVE_INT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
        return value
    raise ValueError(value)
