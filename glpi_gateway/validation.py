"""Validation of the `POST /criar-chamado` body into a `TicketRequest`.

Plain functions, no Flask: the error messages are part of the public contract
(Portuguese, keyed by the field names the forms send). `FIELDS` is the single
specification of the body: it drives both `validate_ticket_request` and the JSON
Schema that the OpenAPI document publishes (`ticket_request_schema`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from glpi_gateway.cnpj import is_valid_cnpj, normalize_cnpj

DEFAULT_URGENCY = 3
MAX_URGENCY = 5  # GLPI's scale: 1 (muito baixa) to 5 (muito alta)
NOT_TEXT = "deve ser um texto"
# The HTML5 definition of a valid e-mail address, plus a dot in the domain.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
# Invisible formatting characters (Unicode Cf): soft hyphen, Arabic letter mark, Mongolian vowel
# separator, zero-width ones, LRM/RLM, the bidi embeddings/overrides (U+202A-202E) and isolates
# (U+2066-2069), word joiner and invisible operators, BOM, interlinear annotation. The bidi ones
# can make "gnp.exe" read as "exe.png" ("Trojan Source"); attachments.py drops them from names too.
INVISIBLE_FORMAT_CHARS = r"\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb"
# Control and invisible formatting characters, dropped from every text.
_INVISIBLE_CHARS = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{INVISIBLE_FORMAT_CHARS}]")
_WHITESPACE_RUN = re.compile(r"\s+")
# A text that cleaning leaves empty (the JSON Schema form of "blank").
BLANK_PATTERN = rf"^(\s|{_INVISIBLE_CHARS.pattern})*$"
_NUMERIC_TEXT = r"[0-9]{1,10}"


class ValidationError(ValueError):
    """The body breaks the contract. `missing` lists absent fields, `invalid` maps field -> reason."""

    def __init__(self, missing: list[str] | None = None, invalid: dict[str, str] | None = None):
        self.missing = missing or []
        self.invalid = invalid or {}
        super().__init__(f"missing={self.missing} invalid={self.invalid}")


@dataclass(frozen=True)
class TextField:
    """A text field: trimmed, invisible characters dropped, blank means absent."""

    name: str
    description: str
    example: str
    max_length: int
    required: bool = False
    multiline: bool = False  # keep line breaks (otherwise whitespace runs become one space)
    rule: Callable[[str], object] | None = None  # extra check on the cleaned text: truthy when valid
    rule_message: str = ""
    format: str | None = None  # JSON Schema format, for the documentation

    def parse(self, value: object) -> str | None:
        """The clean text, None when absent or blank; ValueError(message) when invalid."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(NOT_TEXT)
        text = _clean_text(value, self.multiline)
        if not text:
            return None
        if len(text) > self.max_length:
            raise ValueError(f"deve ter no máximo {self.max_length} caracteres")
        if self.rule is not None and not self.rule(text):
            raise ValueError(self.rule_message)
        return text

    def json_schema(self) -> dict:
        text = {"type": "string", "maxLength": self.max_length}
        if self.format:
            text["format"] = self.format
        if not self.required:
            blank = {"type": "string", "pattern": BLANK_PATTERN, "description": "em branco: o mesmo que ausente"}
            text = {"anyOf": [text, blank, {"type": "null"}]}
        return {**text, "description": self.description, "examples": [self.example]}


@dataclass(frozen=True)
class IdField:
    """An optional integer given as a JSON number or a numeric text; blank means absent."""

    name: str
    description: str
    example: int
    maximum: int
    message: str
    default: int | None = None
    minimum: int = 1

    def parse(self, value: object) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.default
        if isinstance(value, str) and re.fullmatch(_NUMERIC_TEXT, value.strip()):
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool) and self.minimum <= value <= self.maximum:
            return value
        raise ValueError(self.message)

    def json_schema(self) -> dict:
        # `minimum`/`maximum` apply to numbers and `pattern` to texts: one schema covers both forms.
        schema = {
            "type": ["integer", "string", "null"],
            "minimum": self.minimum,
            "maximum": self.maximum,
            "pattern": rf"^\s*({_NUMERIC_TEXT})?\s*$",
            "description": self.description,
            "examples": [self.example],
        }
        if self.default is not None:
            schema["default"] = self.default
        return schema


FIELDS: tuple[TextField | IdField, ...] = (
    TextField("nome_cliente", "Nome de quem pede o atendimento.", "Maria Souza", 255, required=True),
    TextField("telefone_cliente", "Telefone para retorno, em qualquer formato.", "(11) 99999-0000", 40, required=True),
    TextField(
        "cnpj_cliente",
        "CNPJ do cliente, com ou sem pontuação, numérico ou alfanumérico; os dígitos verificadores são "
        "conferidos. Escolhe a entidade do GLPI onde o chamado é aberto.",
        "11.222.333/0001-81",
        32,
        required=True,
        rule=is_valid_cnpj,
        rule_message="CNPJ inválido (verifique os dígitos)",
    ),
    TextField("anydesk_cliente", "Código do AnyDesk para acesso remoto.", "123 456 789", 64, required=True),
    TextField(
        "descricao_problema",
        "Descrição do problema; as quebras de linha são mantidas. A primeira linha vai para o título do chamado.",
        "A impressora não imprime.\nJá reiniciei.",
        10_000,
        required=True,
        multiline=True,
    ),
    TextField(
        "email_cliente",
        "E-mail do cliente; o GLPI o notifica como requerente do chamado.",
        "maria@example.com",
        254,
        rule=_EMAIL.fullmatch,
        rule_message="e-mail inválido",
        format="email",
    ),
    IdField(
        "categoria",
        "Id de uma categoria ITIL do GLPI; sem ela, vale GLPI_DEFAULT_CATEGORY_ID. "
        "Com a chave pública do formulário, só uma das de FORM_CATEGORIES.",
        2,
        2**31 - 1,
        "deve ser o número de uma categoria do GLPI",
    ),
    IdField(
        "urgencia",
        "Urgência do chamado, de 1 (muito baixa) a 5 (muito alta); com a chave pública do formulário, "
        "até FORM_MAX_URGENCY (padrão 3).",
        3,
        MAX_URGENCY,
        f"deve ser um número de 1 a {MAX_URGENCY}",
        default=DEFAULT_URGENCY,
    ),
)
REQUIRED_FIELDS = tuple(field.name for field in FIELDS if isinstance(field, TextField) and field.required)
MAX_LENGTHS = {field.name: field.max_length for field in FIELDS if isinstance(field, TextField)}
# The customer's follow-up message (POST /chamados/<protocolo>/complemento) and who wrote it.
COMPLEMENT_MAX_LENGTH = 5000
COMPLEMENT_AUTHOR_MAX_LENGTH = 100


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
    # Whether GLPI may e-mail email_cliente (set by the app, glpi_gateway/notify.py, not the body).
    notificar_email: bool = True


def validate_ticket_request(body: object) -> TicketRequest:
    """Check a decoded JSON body and return the clean request, or raise ValidationError."""
    if not isinstance(body, dict):
        raise ValidationError(invalid={"corpo": "o corpo deve ser um objeto JSON"})

    values: dict[str, object] = {}
    invalid: dict[str, str] = {}
    for field in FIELDS:
        try:
            values[field.name] = field.parse(body.get(field.name))
        except ValueError as error:
            invalid[field.name] = str(error)
    missing = [name for name in REQUIRED_FIELDS if name not in invalid and values[name] is None]
    if missing:
        raise ValidationError(missing=missing)
    if invalid:
        raise ValidationError(invalid=invalid)
    # Past both checks every required text is a str and `urgencia` an int (it has a default); an absent
    # optional field is None, and is left out here, so `.get` gives it back as None.
    texts = {name: value for name, value in values.items() if isinstance(value, str)}
    numbers = {name: value for name, value in values.items() if isinstance(value, int)}
    return TicketRequest(
        nome_cliente=texts["nome_cliente"],
        telefone_cliente=texts["telefone_cliente"],
        cnpj=normalize_cnpj(texts["cnpj_cliente"]),
        anydesk_cliente=texts["anydesk_cliente"],
        descricao_problema=texts["descricao_problema"],
        email_cliente=texts.get("email_cliente"),
        categoria=numbers.get("categoria"),
        urgencia=numbers["urgencia"],
    )


def ticket_request_schema() -> dict:
    """JSON Schema (2020-12) of the `POST /criar-chamado` body, from `FIELDS`."""
    return {
        "type": "object",
        "description": "Espaços nas pontas e caracteres invisíveis são removidos antes das verificações; "
        "um campo em branco vale como ausente. Campos desconhecidos são ignorados.",
        "required": list(REQUIRED_FIELDS),
        "properties": {field.name: field.json_schema() for field in FIELDS},
    }


def ticket_request_example() -> dict:
    """A valid body made of the fields' examples."""
    return {field.name: field.example for field in FIELDS}


def _clean_text(value: str, multiline: bool) -> str:
    """Trim and drop invisible characters; keep line breaks only in the description."""
    if multiline:
        lines = (_INVISIBLE_CHARS.sub("", line.replace("\t", " ")) for line in value.splitlines())
        return "\n".join(lines).strip()
    return _WHITESPACE_RUN.sub(" ", _INVISIBLE_CHARS.sub("", value)).strip()
