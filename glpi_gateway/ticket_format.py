"""What the technician reads: the ticket's title and content, built from a TicketRequest.

GLPI shows `content` as rich text. GLPI 10 stores input HTML-entity-encoded and
GLPI 11 stores it raw, and in both the renderer treats content that holds a real
tag as HTML. So the content is HTML we build ourselves, with every customer value
escaped exactly once and wrapped in real tags: the technician then sees exactly
what was typed (`<b>` as text, `&` once, line breaks kept). The title is shown as
plain text, so it is sent unescaped.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from glpi_gateway.cnpj import format_cnpj
from glpi_gateway.validation import TicketRequest

TITLE_MAX_LENGTH = 80
_ELLIPSIS = "…"


def build_ticket_title(request: TicketRequest) -> str:
    """`<customer name> - <first line of the description>`, cut near 80 characters."""
    first_line = next((line.strip() for line in request.descricao_problema.splitlines() if line.strip()), "")
    title = f"{request.nome_cliente} - {first_line}"
    if len(title) <= TITLE_MAX_LENGTH:
        return title
    cut = title[: TITLE_MAX_LENGTH - len(_ELLIPSIS)]
    last_space = cut.rfind(" ")
    word_cut_in_half = title[len(cut)] != " "
    if word_cut_in_half and last_space > TITLE_MAX_LENGTH // 2:
        cut = cut[:last_space]
    return cut.rstrip(" -,.;:") + _ELLIPSIS


def build_ticket_content(request: TicketRequest, extra_lines: tuple[tuple[str, str], ...] = ()) -> str:
    """HTML content: one labelled line per customer field, then the description.

    `extra_lines` are further (label, value) pairs added after the customer's
    fields, e.g. the gateway's protocol id.
    """
    lines = [
        ("Nome", request.nome_cliente),
        ("Telefone", request.telefone_cliente),
        ("CNPJ", format_cnpj(request.cnpj)),
        ("AnyDesk", request.anydesk_cliente),
    ]
    if request.email_cliente:
        lines.append(("E-mail", request.email_cliente))
    if request.origem:
        lines.append(("Origem", request.origem))
    lines.extend(extra_lines)
    header = "<br>".join(_labelled_line(label, value) for label, value in lines)
    description = "<br>".join(escape(line) for line in request.descricao_problema.split("\n"))
    return f"<p>{header}</p><p><strong>Descrição:</strong><br>{description}</p>"


COMPLEMENT_LABEL = "Complemento do cliente"
# The line that marks a complement's follow-up with the complement's id, so that a follow-up whose
# answer was lost is found again (tickets.add_complement) instead of being posted twice.
COMPLEMENT_MARK_LABEL = "Protocolo do complemento"
COMPLEMENT_ID_PATTERN = re.compile(r"c-[0-9a-f]{32}")  # the id written after COMPLEMENT_MARK_LABEL


def build_complement_content(message: str, author: str, origin: str | None = None, mark: str | None = None) -> str:
    """A customer's follow-up, as the technician reads it: who wrote it (and through which API
    key, and the complement's id `mark`), then the message, every value escaped once like a
    ticket's content."""
    header = _labelled_line(COMPLEMENT_LABEL, author)
    if origin:
        header += "<br>" + _labelled_line("Origem", origin)
    if mark:
        header += "<br>" + _labelled_line(COMPLEMENT_MARK_LABEL, mark)
    body = "<br>".join(escape(line) for line in message.split("\n"))
    return f"<p>{header}</p><p>{body}</p>"


def content_has_line(stored_content: str, label: str, value: str) -> bool:
    """Whether a ticket's content, as GLPI returns it, carries the line `label: value` that
    `build_ticket_content` wrote. GLPI 10 returns it entity-encoded, GLPI 11 as sent; the same
    words typed by the customer are escaped once more and never match."""
    line = _labelled_line(label, value) + "<"  # the next tag ends the value: no prefix matches
    glpi10_line = line.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")
    return line in stored_content or glpi10_line in stored_content


def _labelled_line(label: str, value: str) -> str:
    return f"<strong>{escape(label)}:</strong> {escape(value)}"


def build_ticket_input(
    request: TicketRequest,
    entity_id: int,
    category_id: int | None,
    requester_user_id: int | None,
    request_type_id: int | None,
    extra_lines: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """The `input` of POST /Ticket. Only fields with a value are sent: GLPI accepts empty
    or unknown values silently and files the ticket somewhere nobody looks."""
    ticket: dict[str, Any] = {
        "entities_id": entity_id,
        "name": build_ticket_title(request),
        "content": build_ticket_content(request, extra_lines),
        "urgency": request.urgencia,
    }
    if category_id is not None:
        ticket["itilcategories_id"] = category_id
    if request_type_id is not None:
        ticket["requesttypes_id"] = request_type_id
    notify = bool(request.email_cliente) and request.notificar_email
    if requester_user_id is not None or notify:
        ticket["_users_id_requester"] = requester_user_id or 0
    if notify:
        ticket["_users_id_requester_notif"] = {"use_notification": 1, "alternative_email": request.email_cliente}
    return ticket
