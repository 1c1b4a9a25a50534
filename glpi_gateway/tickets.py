"""The gateway's work: CNPJ -> GLPI entity -> ticket, with the GLPI-side checks and caches.

`TicketGateway` knows what a ticket request means; `GlpiClient` knows how to ask
GLPI. Nothing here knows about HTTP requests from the forms.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from config import Config
from glpi_client import GlpiAuthError, GlpiClient, GlpiError, GlpiNotFound, GlpiRequestError, GlpiUnavailable
from glpi_gateway.attachments import Attachment
from glpi_gateway.caching import SingleFlight, TtlCache
from glpi_gateway.cnpj import cnpj_search_pattern, normalize_cnpj
from glpi_gateway.follow import CLOSED_STATUS, ticket_view
from glpi_gateway.ticket_format import COMPLEMENT_MARK_LABEL, build_ticket_input, content_has_line
from glpi_gateway.validation import TicketRequest

log = logging.getLogger(__name__)

FIELDS_PLUGIN_TABLE_PREFIX = "glpi_plugin_fields_"
ENTITY_ID_COLUMN = 2
ENTITY_NAME_COLUMN = 1
TICKET_ID_COLUMN = 2
TICKET_CONTENT_COLUMN = 21
UNAVAILABLE_REASON = "GLPI indisponível"  # why a file was not sent, when that is why
# The ids the configuration may name, checked against GLPI: (itemtype, Config attribute, variable).
CONFIGURED_ITEMS = (
    ("ITILCategory", "glpi_default_category_id", "GLPI_DEFAULT_CATEGORY_ID"),
    ("User", "glpi_requester_user_id", "GLPI_REQUESTER_USER_ID"),
    ("RequestType", "glpi_request_type_id", "GLPI_REQUEST_TYPE_ID"),
)


class GatewaySetupError(RuntimeError):
    """The configuration contradicts what GLPI holds (a missing category, no CNPJ field…)."""


class EntityNotFound(LookupError):
    """No entity carries this CNPJ."""


class AmbiguousEntity(LookupError):
    """Several entities carry this CNPJ."""

    def __init__(self, cnpj: str, names: list[str]):
        super().__init__(f"{len(names)} entities carry CNPJ {cnpj}")
        self.names = names


class TicketRefused(Exception):
    """GLPI refused to create the ticket; `message` is GLPI's own words."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


class TicketGone(LookupError):
    """The ticket a protocol points at no longer exists in GLPI (deleted)."""


class TicketClosed(Exception):
    """The ticket is closed: GLPI would take a follow-up (API notes, 420), the gateway does not."""


class UnknownCategory(LookupError):
    """The request's `categoria` is not an ITIL category of this GLPI."""


@dataclass(frozen=True)
class Entity:
    id: int
    name: str


@dataclass(frozen=True)
class AttachmentReport:
    sent: list[tuple[str, int]]  # (file name, GLPI document id), uploaded or found already there
    failed: list[tuple[str, str]]  # (file name, why, in Portuguese): GLPI will not take it
    # Positions (in the list given) of the files not sent because GLPI became unavailable, and why:
    # they may be sent later (the first of them may have reached GLPI if `request_sent`).
    pending: list[int]
    pending_error: GlpiUnavailable | None = None


class TicketGateway:
    def __init__(
        self,
        config: Config,
        client: GlpiClient,
        clock: Callable[[], float] = time.monotonic,
        entity_cache_observer: Callable[[bool], None] | None = None,
    ):
        """`entity_cache_observer(hit)` is told whether each CNPJ lookup was answered by the cache."""
        self._config = config
        self._client = client
        self._entity_cache_observer = entity_cache_observer
        self._entities: TtlCache[Entity | bool] = TtlCache(clock)  # False caches a miss
        self._categories: TtlCache[frozenset[int]] = TtlCache(clock)
        self._lookups = SingleFlight()
        self._views: TtlCache[dict[str, Any]] = TtlCache(clock)
        self._setup_lock = threading.Lock()
        self._cnpj_option_id: int | None = None

    @property
    def is_set_up(self) -> bool:
        return self._cnpj_option_id is not None

    def check_setup_at_start(self) -> None:
        """A definite misconfiguration stops start-up (GatewaySetupError propagates); an
        unreachable GLPI or refused tokens do not: the checks run again on first contact."""
        try:
            self.check_setup()
        except GlpiAuthError as error:
            log.warning(
                "GLPI recusou as credenciais na partida (%s); verificações adiadas",
                error.code,
                extra={"event": "verificacao_adiada"},
            )
        except GlpiUnavailable as error:
            log.warning(
                "GLPI indisponível na partida (%s); verificações adiadas",
                error,
                extra={"event": "verificacao_adiada"},
            )

    def check_setup(self) -> None:
        """Run the checks that need GLPI, once they succeed.

        Raises GatewaySetupError when GLPI definitely contradicts the configuration,
        or a GlpiError when GLPI cannot be asked right now (try again later).
        """
        if self.is_set_up:
            return
        with self._setup_lock:
            if self.is_set_up:
                return
            option_id = self._resolve_cnpj_option()
            for itemtype, setting, variable in CONFIGURED_ITEMS:
                self.check_configured_item(itemtype, getattr(self._config, setting), variable)
            self._cnpj_option_id = option_id
            log.info(
                "verificações do GLPI aprovadas; opção de busca do CNPJ %s",
                option_id,
                extra={"event": "verificacao_aprovada"},
            )

    def create_ticket(self, request: TicketRequest, extra_lines: tuple[tuple[str, str], ...] = ()) -> int:
        self.check_setup()
        if request.categoria is not None:
            self._check_category(request.categoria)
        entity = self.find_entity(request.cnpj)
        ticket = build_ticket_input(
            request,
            entity_id=entity.id,
            category_id=request.categoria or self._config.glpi_default_category_id,
            requester_user_id=self._config.glpi_requester_user_id,
            request_type_id=self._config.glpi_request_type_id,
            extra_lines=extra_lines,
        )
        try:
            ticket_id = self._client.create_item("Ticket", ticket)
        except GlpiRequestError as error:
            raise TicketRefused(error.message, error.status or 400) from error
        log.info("chamado %s criado na entidade %s", ticket_id, entity.id, extra={"event": "chamado_criado"})
        return ticket_id

    def attach_files(
        self,
        ticket_id: int,
        attachments: Sequence[Attachment],
        comments: Sequence[str] | None = None,
        adopt: bool = False,
    ) -> AttachmentReport:
        """Upload each file as a GLPI document of the ticket, in the ticket's entity.

        The entity is read from the ticket (GLPI's business rules may have moved it). A file
        GLPI refuses is reported and the others still go; once GLPI is unavailable the rest are
        left pending without trying, so the customer does not wait a timeout per file.

        `comments[i]` marks document i (its `comment`). With `adopt`, a document of the ticket
        already carrying a file's mark is taken as that file's, not uploaded again: an earlier
        attempt may have uploaded it and lost the answer.
        """
        if not attachments:
            return AttachmentReport([], [], [])
        sent: list[tuple[str, int]] = []
        failed: list[tuple[str, str]] = []
        try:
            entity_id = int(self._client.get_item("Ticket", ticket_id)["entities_id"])
            present = self.marked_documents(ticket_id) if adopt and comments else {}
        except GlpiError as error:
            log.warning(
                "chamado %s ilegível, os anexos não foram enviados: %s",
                ticket_id,
                error.code,
                extra={"event": "anexos_nao_enviados"},
            )
            if isinstance(error, GlpiUnavailable):
                return AttachmentReport([], [], list(range(len(attachments))), error)
            return AttachmentReport([], [(a.filename, _upload_failure(error)) for a in attachments], [])
        for position, attachment in enumerate(attachments):
            comment = comments[position] if comments else None
            if comment in present:
                log.info(
                    "anexo %r do chamado %s já estava no GLPI (documento %s): adotado, não reenviado",
                    attachment.filename,
                    ticket_id,
                    present[comment],
                    extra={"event": "documento_adotado"},
                )
                sent.append((attachment.filename, present[comment]))
                continue
            try:
                document_id = self._client.upload_document(
                    attachment.filename,
                    attachment.content,
                    attachment.file_type.mime,
                    "Ticket",
                    ticket_id,
                    entity_id,
                    comment=comment,
                )
            except GlpiError as error:
                log.warning(
                    "anexo %r do chamado %s falhou: %s %s",
                    attachment.filename,
                    ticket_id,
                    error.code,
                    error.message,
                    extra={"event": "anexo_falhou"},
                )
                if isinstance(error, GlpiUnavailable):
                    pending = list(range(position, len(attachments)))
                    return self._reported(ticket_id, AttachmentReport(sent, failed, pending, error))
                failed.append((attachment.filename, _upload_failure(error)))
            else:
                sent.append((attachment.filename, document_id))
        return self._reported(ticket_id, AttachmentReport(sent, failed, []))

    @staticmethod
    def _reported(ticket_id: int, report: AttachmentReport) -> AttachmentReport:
        log.info(
            "chamado %s: %d anexo(s) enviado(s), %d recusado(s), %d pendente(s)",
            ticket_id,
            len(report.sent),
            len(report.failed),
            len(report.pending),
            extra={"event": "anexos_enviados"},
        )
        return report

    def marked_documents(self, ticket_id: int) -> dict[str, int]:
        """{comment: document id} of the ticket's documents that carry a comment (the oldest of
        each comment): how a document uploaded with a mark is found again."""
        found: dict[str, int] = {}
        for link in self._client.list_subitems("Ticket", ticket_id, "Document_Item"):
            if link.get("itemtype") != "Ticket" or not isinstance(link.get("documents_id"), int):
                continue
            document = self._client.get_item("Document", link["documents_id"])
            comment = document.get("comment")
            if isinstance(comment, str) and comment:
                found.setdefault(html.unescape(comment), int(document["id"]))
        return found

    def find_ticket_with_line(self, label: str, value: str) -> int | None:
        """The ticket whose content carries the line `label: value` written through `extra_lines`
        (the oldest if several), or None. `value` must be plain letters and digits: it is searched
        with GLPI's `contains`, where `%`, `^` and `$` mean something."""
        rows = self._client.search(
            "Ticket",
            [{"field": TICKET_CONTENT_COLUMN, "searchtype": "contains", "value": value}],
            forcedisplay=(TICKET_ID_COLUMN, TICKET_CONTENT_COLUMN),
        )
        ids = [
            int(row[str(TICKET_ID_COLUMN)])
            for row in rows
            if isinstance(row.get(str(TICKET_CONTENT_COLUMN)), str)
            and content_has_line(row[str(TICKET_CONTENT_COLUMN)], label, value)
        ]
        return min(ids) if ids else None

    def follow_ticket(self, ticket_id: int) -> dict[str, Any]:
        """What the customer may read of ticket `ticket_id` (follow.ticket_view), at most
        GLPI_FOLLOW_CACHE_TTL seconds old: a page refreshed in a loop costs GLPI three calls per
        ticket in that time, asked once for all concurrent callers. TicketGone when GLPI no longer
        has it."""
        key = str(ticket_id)
        view = self._views.get(key)
        if view is None:
            view = self._lookups.do(f"follow:{key}", lambda: self._fetch_view(ticket_id))
        return view

    def add_complement(self, ticket_id: int, content: str, mark: str | None = None, adopt: bool = False) -> int:
        """Add the customer's follow-up `content` (HTML, built by build_complement_content with the
        complement's id `mark`) to the ticket, public, and return its id. With `adopt` (an earlier
        attempt may have posted it and lost the answer), a follow-up of the ticket already carrying
        the mark is returned instead of posting again. Read fresh first: TicketClosed when the ticket
        is closed, TicketGone when it no longer exists."""
        try:
            ticket = self._client.get_item("Ticket", ticket_id)
        except GlpiNotFound:
            raise TicketGone(ticket_id) from None
        if adopt and mark:
            for followup in self._client.list_subitems("Ticket", ticket_id, "ITILFollowup"):
                stored = followup.get("content")
                if isinstance(stored, str) and content_has_line(stored, COMPLEMENT_MARK_LABEL, mark):
                    log.info(
                        "complemento %s já estava no chamado %s (acompanhamento %s): adotado, não reenviado",
                        mark,
                        ticket_id,
                        followup["id"],
                        extra={"event": "complemento_adotado"},
                    )
                    return int(followup["id"])
        if int(ticket.get("status") or 0) == CLOSED_STATUS:
            raise TicketClosed(ticket_id)
        followup_id = self._client.create_item(
            "ITILFollowup", {"itemtype": "Ticket", "items_id": ticket_id, "content": content, "is_private": 0}
        )
        self._views.discard(str(ticket_id))
        log.info(
            "complemento %s do cliente acrescentado ao chamado %s",
            followup_id,
            ticket_id,
            extra={"event": "complemento_acrescentado"},
        )
        return followup_id

    def _fetch_view(self, ticket_id: int) -> dict[str, Any]:
        try:
            ticket = self._client.get_item("Ticket", ticket_id)
        except GlpiNotFound:
            raise TicketGone(ticket_id) from None
        followups = self._client.list_subitems("Ticket", ticket_id, "ITILFollowup")
        solutions = self._client.list_subitems("Ticket", ticket_id, "ITILSolution")
        view = ticket_view(ticket, followups, solutions)
        if self._config.glpi_follow_cache_ttl > 0:
            self._views.put(str(ticket_id), view, self._config.glpi_follow_cache_ttl)
        return view

    def find_entity(self, cnpj: str) -> Entity:
        """The one entity whose CNPJ field equals `cnpj` (normalised), however it is stored: from the
        cache, else fetched once for all concurrent callers and cached (a miss too, briefly)."""
        self.check_setup()
        cached = self._entities.get(cnpj)
        if self._entity_cache_observer:
            self._entity_cache_observer(cached is not None)
        if cached is None:
            cached = self._lookups.do(f"entity:{cnpj}", lambda: self._fetch_and_cache_entity(cnpj))
        if isinstance(cached, Entity):
            return cached
        raise EntityNotFound(cnpj)

    def _fetch_and_cache_entity(self, cnpj: str) -> Entity | bool:
        option_id = self._cnpj_option_id
        assert option_id is not None  # only find_entity calls this, after check_setup() set it for good
        try:
            entity = self.fetch_entity_uncached(cnpj, option_id)
        except EntityNotFound:
            self._entities.put(cnpj, False, self._config.glpi_entity_negative_cache_ttl)
            return False
        self._entities.put(cnpj, entity, self._config.glpi_entity_cache_ttl)
        return entity

    def fetch_entity_uncached(self, cnpj: str, option_id: int) -> Entity:
        """Ask GLPI now (no cache) for the one entity whose CNPJ search option `option_id` holds `cnpj`."""
        rows = self._client.search(
            "Entity",
            [{"field": option_id, "searchtype": "contains", "value": cnpj_search_pattern(cnpj)}],
            forcedisplay=(ENTITY_ID_COLUMN, ENTITY_NAME_COLUMN, option_id),
        )
        matches = [row for row in rows if _row_cnpj(row, option_id) == cnpj]
        if len(matches) > 1:
            names = sorted(html.unescape(str(row.get(str(ENTITY_NAME_COLUMN), ""))) for row in matches)
            raise AmbiguousEntity(cnpj, names)
        if not matches:
            raise EntityNotFound(cnpj)
        row = matches[0]
        return Entity(int(row[str(ENTITY_ID_COLUMN)]), html.unescape(str(row.get(str(ENTITY_NAME_COLUMN), ""))))

    def _check_category(self, category_id: int) -> None:
        if category_id == self._config.glpi_default_category_id:
            return
        known = self._categories.get("all")
        if known is None:
            known = self._lookups.do("categories", self._load_categories)
        if category_id not in known:
            raise UnknownCategory(category_id)

    def _load_categories(self) -> frozenset[int]:
        ids = frozenset(int(item["id"]) for item in self._client.list_items("ITILCategory") if "id" in item)
        self._categories.put("all", ids, self._config.glpi_entity_cache_ttl)
        return ids

    def _resolve_cnpj_option(self) -> int:
        return pick_cnpj_option(fields_plugin_options(self._client.list_search_options("Entity")), self._config)

    def check_configured_item(self, itemtype: str, item_id: int | None, variable: str) -> None:
        """GatewaySetupError when `variable` names an `itemtype` that GLPI does not have (None: not set)."""
        if item_id is None:
            return
        try:
            self._client.get_item(itemtype, item_id)
        except GlpiNotFound:
            raise GatewaySetupError(f"{variable}={item_id}: não existe {itemtype} {item_id} no GLPI") from None
        except GlpiRequestError as error:
            # e.g. ERROR_RIGHT_MISSING: the API profile may create tickets without reading users.
            log.warning(
                "%s=%s não pôde ser conferido no GLPI (%s)",
                variable,
                item_id,
                error.code,
                extra={"event": "configuracao_nao_conferida"},
            )


def fields_plugin_options(search_options: dict[str, Any]) -> dict[int, str]:
    """The Fields-plugin search options in a `listSearchOptions` answer: {option id: name}."""
    return {
        int(key): str(option.get("name", ""))
        for key, option in search_options.items()
        if key.isdigit()
        and isinstance(option, dict)
        and str(option.get("table", "")).startswith(FIELDS_PLUGIN_TABLE_PREFIX)
    }


def pick_cnpj_option(fields_options: dict[int, str], config: Config) -> int:
    """The CNPJ option among `fields_options`: GLPI_CNPJ_FIELD_ID, else the one labelled GLPI_CNPJ_FIELD_LABEL.

    Raises GatewaySetupError listing every option when there is no single answer.
    """
    listing = "; ".join(f"{key} = {name!r}" for key, name in sorted(fields_options.items())) or "nenhum"
    configured = config.glpi_cnpj_field_id
    if configured is not None:
        if configured not in fields_options:
            raise GatewaySetupError(
                f"GLPI_CNPJ_FIELD_ID={configured} não é um campo do plugin Fields em Entidade. "
                f"Campos do plugin Fields encontrados: {listing}"
            )
        return configured
    label = config.glpi_cnpj_field_label.casefold()
    candidates = [key for key, name in fields_options.items() if name.rsplit(" - ", 1)[-1].strip().casefold() == label]
    if len(candidates) == 1:
        return candidates[0]
    problem = "nenhum campo" if not candidates else f"{len(candidates)} campos"
    raise GatewaySetupError(
        f"{problem} do plugin Fields em Entidade com o rótulo {config.glpi_cnpj_field_label!r} "
        f"(GLPI_CNPJ_FIELD_LABEL). Campos encontrados: {listing}. "
        "Defina GLPI_CNPJ_FIELD_ID com o id certo ou ajuste GLPI_CNPJ_FIELD_LABEL."
    )


def _upload_failure(error: GlpiError) -> str:
    """Why GLPI did not take an attachment, for the customer."""
    if isinstance(error, GlpiUnavailable):
        return UNAVAILABLE_REASON
    if isinstance(error, GlpiAuthError):
        return "o GLPI recusou as credenciais do gateway"
    if isinstance(error, GlpiRequestError):
        return f"o GLPI recusou o arquivo: {error.message}"
    return f"erro do GLPI ({error.code})"


def _row_cnpj(row: dict[str, Any], option_id: int) -> str | None:
    value = row.get(str(option_id))
    return normalize_cnpj(html.unescape(value)) if isinstance(value, str) else None
