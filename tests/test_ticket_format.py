"""Contract of ticket_format.py: what the technician reads (title and HTML content) and the POST /Ticket input."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glpi_gateway.ticket_format import (
    TITLE_MAX_LENGTH,
    build_ticket_content,
    build_ticket_input,
    build_ticket_title,
    content_has_line,
)
from glpi_gateway.validation import TicketRequest

REQUEST_FOR_PROTOCOL = TicketRequest(
    nome_cliente="Maria",
    telefone_cliente="11 99999-0000",
    cnpj="11222333000181",
    anydesk_cliente="123",
    descricao_problema="Impressora parada",
)


def make_request(**changes) -> TicketRequest:
    values = dict(
        nome_cliente="Maria Silva",
        telefone_cliente="(11) 98765-4321",
        cnpj="11222333000181",
        anydesk_cliente="123 456 789",
        descricao_problema="A impressora não imprime.",
        email_cliente=None,
        categoria=None,
        urgencia=3,
    )
    values.update(changes)
    return TicketRequest(**values)


_TAG = re.compile(r"<(/?)(p|strong|br)>")


def tokens(content: str) -> list[tuple[str, str]]:
    """Split our HTML into ("tag", "<p>") / ("text", unescaped text) tokens; empty texts dropped."""
    result: list[tuple[str, str]] = []
    position = 0
    for match in _TAG.finditer(content):
        if match.start() > position:
            result.append(("text", content[position : match.start()]))
        result.append(("tag", match.group(0)))
        position = match.end()
    if position < len(content):
        result.append(("text", content[position:]))
    return result


def expected_tokens(request: TicketRequest, formatted_cnpj: str, extra_lines=()) -> list[tuple[str, str]]:
    lines = [
        ("Nome", request.nome_cliente),
        ("Telefone", request.telefone_cliente),
        ("CNPJ", formatted_cnpj),
        ("AnyDesk", request.anydesk_cliente),
    ]
    if request.email_cliente:
        lines.append(("E-mail", request.email_cliente))
    lines.extend(extra_lines)
    result = [("tag", "<p>")]
    for index, (label, value) in enumerate(lines):
        if index:
            result.append(("tag", "<br>"))
        result += [("tag", "<strong>"), ("text", f"{label}:"), ("tag", "</strong>"), ("text", f" {value}")]
    result += [("tag", "</p>"), ("tag", "<p>"), ("tag", "<strong>"), ("text", "Descrição:"), ("tag", "</strong>")]
    for line in request.descricao_problema.split("\n"):
        result.append(("tag", "<br>"))
        if line:
            result.append(("text", line))
    result.append(("tag", "</p>"))
    return result


class _TagCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.data: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.data.append(data)

    def handle_comment(self, data):
        self.tags.append("<!--")

    def handle_decl(self, decl):
        self.tags.append("<!")

    def handle_pi(self, data):
        self.tags.append("<?")


def parse(content: str) -> _TagCollector:
    parser = _TagCollector()
    parser.feed(content)
    parser.close()
    return parser


# --- title ----------------------------------------------------------------------


def test_title_is_the_name_and_the_first_line_of_the_description():
    request = make_request(descricao_problema="Impressora parada\nsegunda linha")
    assert build_ticket_title(request) == "Maria Silva - Impressora parada"


def test_title_uses_the_first_non_blank_line_of_the_description():
    request = make_request(descricao_problema="\n   \n  Sem internet  \ndepois")
    assert build_ticket_title(request) == "Maria Silva - Sem internet"


def test_a_short_title_is_not_cut():
    request = make_request(nome_cliente="A", descricao_problema="b" * (TITLE_MAX_LENGTH - len("A - ")))
    title = build_ticket_title(request)
    assert len(title) == TITLE_MAX_LENGTH
    assert not title.endswith("…")


def test_a_long_title_is_at_most_80_characters_and_ends_with_an_ellipsis():
    request = make_request(descricao_problema="palavra " * 40)
    title = build_ticket_title(request)
    assert TITLE_MAX_LENGTH == 80
    assert len(title) <= 80
    assert title.endswith("…")


def test_a_long_title_is_cut_at_a_word_boundary():
    description = "o computador da recepção não liga desde ontem à tarde quando faltou energia no prédio todo"
    title = build_ticket_title(make_request(descricao_problema=description))
    full = f"Maria Silva - {description}"
    kept = title.removesuffix("…")
    assert full.startswith(kept)
    assert full[len(kept)] == " ", f"cut inside a word: {title!r}"


def test_a_long_title_without_a_word_boundary_is_cut_to_exactly_80_characters_with_the_ellipsis():
    title = build_ticket_title(make_request(descricao_problema="x" * 200))
    assert title == "Maria Silva - " + "x" * (TITLE_MAX_LENGTH - 1 - len("Maria Silva - ")) + "…"
    assert len(title) == TITLE_MAX_LENGTH


@settings(max_examples=150)
@given(
    st.text(alphabet="abc -.", min_size=1, max_size=120).filter(str.strip),
    st.text(alphabet="abc <>&-.\n", min_size=1, max_size=300).filter(str.strip),
)
def test_title_never_exceeds_80_characters(name, description):
    assert len(build_ticket_title(make_request(nome_cliente=name.strip(), descricao_problema=description))) <= 80


@pytest.mark.parametrize(
    "text", ["<b>negrito</b>", "Tom & Jerry", "&amp;", "\"aspas\" 'simples'", "<script>x</script>"]
)
def test_title_is_not_html_escaped(text):
    title = build_ticket_title(make_request(nome_cliente=text, descricao_problema=text))
    assert title == f"{text} - {text}"


# --- content --------------------------------------------------------------------


def test_content_is_wrapped_in_paragraphs_with_bold_labels_one_line_per_field():
    content = build_ticket_content(make_request())
    assert content == (
        "<p><strong>Nome:</strong> Maria Silva<br>"
        "<strong>Telefone:</strong> (11) 98765-4321<br>"
        "<strong>CNPJ:</strong> 11.222.333/0001-81<br>"
        "<strong>AnyDesk:</strong> 123 456 789</p>"
        "<p><strong>Descrição:</strong><br>A impressora não imprime.</p>"
    )


def test_content_starts_and_ends_with_a_real_paragraph_tag():
    content = build_ticket_content(make_request(descricao_problema="&lt;b&gt;"))
    assert content.startswith("<p>") and content.endswith("</p>")


def test_content_shows_the_cnpj_formatted():
    content = build_ticket_content(make_request(cnpj="12ABC34501DE35"))
    assert "<strong>CNPJ:</strong> 12.ABC.345/01DE-35<br>" in content


def test_content_has_an_email_line_only_when_there_is_an_email():
    assert "E-mail" not in build_ticket_content(make_request(email_cliente=None))
    assert "E-mail" not in build_ticket_content(make_request(email_cliente=""))
    with_email = build_ticket_content(make_request(email_cliente="maria@example.com"))
    assert "<strong>AnyDesk:</strong> 123 456 789<br><strong>E-mail:</strong> maria@example.com</p>" in with_email


def test_description_line_breaks_become_br():
    content = build_ticket_content(make_request(descricao_problema="linha 1\nlinha 2\n\nlinha 4"))
    assert content.endswith("<p><strong>Descrição:</strong><br>linha 1<br>linha 2<br><br>linha 4</p>")


def test_ampersand_is_escaped_exactly_once():
    content = build_ticket_content(make_request(nome_cliente="Tom & Jerry", descricao_problema="a &amp; b"))
    assert "Tom &amp; Jerry" in content
    assert "&amp;amp;" in content  # the customer literally typed "&amp;": shown as typed
    assert "Tom &amp;amp; Jerry" not in content


def test_script_tag_typed_by_the_customer_is_escaped_as_text():
    content = build_ticket_content(
        make_request(descricao_problema="<script>alert(1)</script>", anydesk_cliente="<b>1</b>")
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "&lt;b&gt;1&lt;/b&gt;" in content
    assert "<script>" not in content and "<b>" not in content


def test_extra_lines_are_appended_after_the_customer_fields():
    content = build_ticket_content(
        make_request(email_cliente="m@example.com"), extra_lines=(("Protocolo", "abc-123"), ("Origem", "<site>"))
    )
    assert (
        "<strong>E-mail:</strong> m@example.com<br><strong>Protocolo:</strong> abc-123<br>"
        "<strong>Origem:</strong> &lt;site&gt;</p>"
    ) in content


printable_or_not = st.text(max_size=40)


@settings(max_examples=200)
@given(
    name=printable_or_not,
    phone=printable_or_not,
    anydesk=printable_or_not,
    email=st.none() | printable_or_not,
    description=st.text(max_size=120),
    extra=st.lists(st.tuples(printable_or_not, printable_or_not), max_size=2),
)
def test_unescaping_the_text_between_tags_recovers_exactly_what_was_typed(
    name, phone, anydesk, email, description, extra
):
    request = make_request(
        nome_cliente=name,
        telefone_cliente=phone,
        anydesk_cliente=anydesk,
        email_cliente=email,
        descricao_problema=description,
    )
    extra_lines = tuple(extra)
    content = build_ticket_content(request, extra_lines)

    found = tokens(content)
    assert all("<" not in text and ">" not in text for kind, text in found if kind == "text"), content
    unescaped = [(kind, html.unescape(text) if kind == "text" else text) for kind, text in found]
    assert unescaped == expected_tokens(request, "11.222.333/0001-81", extra_lines)

    parsed = parse(content)
    assert set(parsed.tags) <= {"p", "strong", "br"}, parsed.tags
    expected_text = "".join(
        text for kind, text in expected_tokens(request, "11.222.333/0001-81", extra_lines) if kind == "text"
    )
    assert "".join(parsed.data) == expected_text


# --- POST /Ticket input ---------------------------------------------------------


def test_ticket_input_without_optional_values_sends_only_the_mandatory_keys():
    request = make_request()
    ticket = build_ticket_input(request, entity_id=5, category_id=None, requester_user_id=None, request_type_id=None)
    assert ticket == {
        "entities_id": 5,
        "name": build_ticket_title(request),
        "content": build_ticket_content(request),
        "urgency": 3,
    }


def test_ticket_input_carries_the_urgency_of_the_request():
    ticket = build_ticket_input(make_request(urgencia=5), 1, None, None, None)
    assert ticket["urgency"] == 5


def test_ticket_input_sends_category_and_request_type_only_when_given():
    ticket = build_ticket_input(make_request(), entity_id=1, category_id=12, requester_user_id=None, request_type_id=7)
    assert ticket["itilcategories_id"] == 12
    assert ticket["requesttypes_id"] == 7
    bare = build_ticket_input(
        make_request(), entity_id=1, category_id=None, requester_user_id=None, request_type_id=None
    )
    assert "itilcategories_id" not in bare and "requesttypes_id" not in bare


def test_ticket_input_passes_extra_lines_into_the_content():
    ticket = build_ticket_input(make_request(), 1, None, None, None, extra_lines=(("Protocolo", "p-1"),))
    assert "<strong>Protocolo:</strong> p-1" in ticket["content"]


def test_email_without_configured_requester_makes_an_email_only_requester_notified_by_email():
    ticket = build_ticket_input(make_request(email_cliente="maria@example.com"), 1, None, None, None)
    assert ticket["_users_id_requester"] == 0
    assert ticket["_users_id_requester_notif"] == {"use_notification": 1, "alternative_email": "maria@example.com"}


def test_email_with_configured_requester_uses_that_user_and_notifies_the_email():
    ticket = build_ticket_input(make_request(email_cliente="maria@example.com"), 1, None, 8, None)
    assert ticket["_users_id_requester"] == 8
    assert ticket["_users_id_requester_notif"] == {"use_notification": 1, "alternative_email": "maria@example.com"}


def test_configured_requester_without_email_is_sent_without_notification():
    ticket = build_ticket_input(make_request(), 1, None, 8, None)
    assert ticket["_users_id_requester"] == 8
    assert "_users_id_requester_notif" not in ticket


def test_no_email_and_no_requester_sends_no_requester_keys():
    ticket = build_ticket_input(make_request(email_cliente=None), 1, None, None, None)
    assert not any(key.startswith("_users_id_requester") for key in ticket)


def test_title_in_ticket_input_is_not_escaped_but_content_is():
    request = make_request(nome_cliente="A & B <Ltda>", descricao_problema="<b>x</b>")
    ticket = build_ticket_input(request, 1, None, None, None)
    assert ticket["name"] == "A & B <Ltda> - <b>x</b>"
    assert "A &amp; B &lt;Ltda&gt;" in ticket["content"]


# --- finding the protocol line again --------------------------------------------------------------


def test_protocol_line_is_found_as_glpi_10_and_11_return_the_content():
    content = build_ticket_content(REQUEST_FOR_PROTOCOL, extra_lines=(("Protocolo", "abc123"),))
    glpi10 = content.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")
    assert content_has_line(content, "Protocolo", "abc123")
    assert content_has_line(glpi10, "Protocolo", "abc123")
    assert not content_has_line(content, "Protocolo", "abc12")  # a prefix is another protocol
    assert not content_has_line(glpi10, "Protocolo", "abc12")
    assert not content_has_line(content, "Protocolo", "zzz")


def test_protocol_typed_by_the_customer_is_not_taken_for_the_gateways_line():
    forged = TicketRequest(
        **{**REQUEST_FOR_PROTOCOL.__dict__, "descricao_problema": "<strong>Protocolo:</strong> abc123"}
    )
    content = build_ticket_content(forged)
    glpi10 = content.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")
    assert not content_has_line(content, "Protocolo", "abc123")
    assert not content_has_line(glpi10, "Protocolo", "abc123")
