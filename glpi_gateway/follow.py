"""What a customer may read of their ticket: GLPI's state, dates and public conversation, as plain text.

Only what GLPI marks public goes out: follow-ups with `is_private` 0 and solutions (GLPI has no
private solution); never tasks, never private follow-ups, never who in the team wrote what
(internal names and e-mails stay inside): every author is "Equipe de suporte". GLPI stores rich
text as HTML, entity-encoded by GLPI 10 and raw by GLPI 11 (API notes, 409-410); it is turned
into plain text here, so a client shows it as text and never as HTML.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from glpi_gateway.ticket_format import COMPLEMENT_ID_PATTERN, COMPLEMENT_LABEL, COMPLEMENT_MARK_LABEL

SUPPORT_TEAM = "Equipe de suporte"
CUSTOMER = "Cliente"
# How a follow-up the customer sent through the gateway (build_complement_content) reads as text.
_COMPLEMENT_PREFIX = f"{COMPLEMENT_LABEL}:"
_COMPLEMENT_MARK = re.compile(rf"^{re.escape(COMPLEMENT_MARK_LABEL)}: ({COMPLEMENT_ID_PATTERN.pattern})$", re.MULTILINE)
# GLPI's ticket statuses (API notes, 402).
STATUS_LABELS = {
    1: "Novo",
    2: "Em atendimento (atribuído)",
    3: "Em atendimento (planejado)",
    4: "Pendente",
    5: "Solucionado",
    6: "Fechado",
}
CLOSED_STATUS = 6
REFUSED_SOLUTION = 4  # an ITILSolution's own status: 2 waiting approval, 3 accepted, 4 refused (415)
_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def glpi_text(stored: object) -> str:
    """GLPI rich text as the customer reads it: plain text, tags gone, entities decoded once.

    GLPI 10 returns `<`, `>` and `&` as `&#60;`, `&#62;`, `&#38;`, so its text never holds a
    raw `<`; GLPI 11 returns the HTML as stored. Text without a raw `<` is decoded once first,
    which turns GLPI 10's answer into GLPI 11's."""
    if not isinstance(stored, str):
        return ""
    markup = stored if "<" in stored else html.unescape(stored)
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def glpi_date(value: object) -> str | None:
    """GLPI's `YYYY-MM-DD HH:MM:SS` (the server's local time) as `YYYY-MM-DDTHH:MM:SS`; None when unset."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().replace(" ", "T", 1)


def complement_message(text: str) -> str | None:
    """The customer's message in a follow-up sent through the gateway (build_complement_content), as
    plain text, without the header paragraph (who wrote it, the origin, the complement's id); None
    when `text` is not such a follow-up."""
    if not text.startswith(_COMPLEMENT_PREFIX):
        return None
    return text.partition("\n\n")[2]


def _followup(date: object, text: str) -> dict[str, Any]:
    """A public follow-up: the customer's own (sent through the gateway, with its complement's id
    when it was queued) or the team's."""
    message = complement_message(text)
    if message is None:
        return {"tipo": "acompanhamento", "autor": SUPPORT_TEAM, "data": glpi_date(date), "texto": text}
    followup = {"tipo": "acompanhamento", "autor": CUSTOMER, "data": glpi_date(date), "texto": message}
    mark = _COMPLEMENT_MARK.search(text.partition("\n\n")[0])
    if mark:
        followup["complemento"] = mark.group(1)
    return followup


def mark_delivered_messages(complements: list[dict[str, Any]], view: dict[str, Any]) -> None:
    """Set `mensagem_entregue` on each complement still listed as waiting whose follow-up GLPI already
    shows (its files are what still waits), so that the customer does not read the message twice."""
    delivered = {message.get("complemento") for message in view["conversa"]}
    for complement in complements:
        if complement["complemento"] in delivered:
            complement["mensagem_entregue"] = True


def ticket_view(ticket: dict[str, Any], followups: list[dict[str, Any]], solutions: list[dict[str, Any]]) -> dict:
    """The `chamado` member of GET /chamados/<protocolo>: GLPI's ticket as the customer may see it."""
    status = int(ticket.get("status") or 0)
    messages = [
        _followup(item.get("date"), glpi_text(item.get("content")))
        for item in followups
        if not int(item.get("is_private") or 0)
    ]
    messages += [
        {
            "tipo": "solucao",
            "autor": SUPPORT_TEAM,
            "data": glpi_date(item.get("date_creation")),
            "texto": glpi_text(item.get("content")),
        }
        for item in solutions
        if int(item.get("status") or 0) != REFUSED_SOLUTION
    ]
    messages.sort(key=lambda message: message["data"] or "")
    return {
        "numero": int(ticket["id"]),
        "status": STATUS_LABELS.get(status, "Desconhecido"),
        "status_codigo": status,
        "aberto_em": glpi_date(ticket.get("date")),
        "atualizado_em": glpi_date(ticket.get("date_mod")),
        "solucionado_em": glpi_date(ticket.get("solvedate")),
        "fechado_em": glpi_date(ticket.get("closedate")),
        "conversa": messages,
    }
