"""Reading items and lists: GET /<itemtype>, /<itemtype>/<id> and a ticket's sub-items, as GLPI renders them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email.message import Message

from .api import NO_PERMISSION, ApiError, Response, Session, paged_response, parse_range
from .base import SandboxBase
from .php import decode_html, is_digits, sort_key
from .searchoptions import DOCUMENT_ITEM, ITEMTYPES, TICKET_USER, Itemtype
from .versions import ticket_sub_links

ITEMS_RANGE = (0, 49)  # default page of GET /<itemtype>

# Foreign keys GLPI turns into {"rel", "href"} links when not 0 (entities_id: always).
FOREIGN_KEYS = {
    "entities_id": "Entity",
    "users_id_lastupdater": "User",
    "users_id_recipient": "User",
    "requesttypes_id": "RequestType",
    "itilcategories_id": "ITILCategory",
    "locations_id": "Location",
    "tickets_id": "Ticket",
    "users_id": "User",
    "groups_id": "Group",
    "profiles_id": "Profile",
    "knowbaseitemcategories_id": "KnowbaseItemCategory",
    "documents_id": "Document",
}


class ItemsMixin(SandboxBase):
    """Part of GlpiSandbox: GET of items, of lists and of a ticket's sub-items."""

    # --- reading items -----------------------------------------------------------------------

    def _readable_item(self, session: Session, itemtype: Itemtype, raw_id: str) -> dict:
        with self._lock:
            item = self._collection(itemtype).get(int(raw_id)) if is_digits(raw_id) else None
            if item is None:
                raise ApiError(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
            if not self._visible(itemtype, item, session.entities):
                raise ApiError(403, "ERROR_RIGHT_MISSING", NO_PERMISSION)
            return dict(item)

    def _render(self, itemtype: Itemtype, item: dict, headers: Message, api_url: str) -> dict:
        """An item as GET returns it, with its links; GLPI 10 text stays encoded (LAB#51, #252)."""
        if self._unsanitized(headers):
            item = {key: decode_html(value) if isinstance(value, str) else value for key, value in item.items()}
        links = [
            {"rel": FOREIGN_KEYS[key], "href": f"{api_url}/{FOREIGN_KEYS[key]}/{value}"}
            for key, value in item.items()
            if key in FOREIGN_KEYS and value is not None and (value != 0 or key == "entities_id")
        ]
        if "itemtype" in item and "items_id" in item:  # a relation links to its item second (LAB#222)
            links.insert(1, {"rel": item["itemtype"], "href": f"{api_url}/{item['itemtype']}/{item['items_id']}"})
        sub_links = (
            ticket_sub_links(itemtype.sub_links, self.version) if itemtype.name == "Ticket" else itemtype.sub_links
        )
        links += [{"rel": sub, "href": f"{api_url}/{itemtype.name}/{item['id']}/{sub}/"} for sub in sub_links]
        return {**item, "links": links} if links else item

    def _get_items(
        self, session: Session, itemtype: Itemtype, params: dict, headers: Message, api_url: str
    ) -> Response:
        """GET /<itemtype>: the items the session sees, sorted by the `sort` column (else by id)."""
        return self._paged_list(
            itemtype,
            self._collection(itemtype).values(),
            lambda item: self._visible(itemtype, item, session.entities),
            params,
            headers,
            api_url,
            sortable=True,
        )

    def _get_ticket_users(
        self, session: Session, raw_id: str, params: dict, headers: Message, api_url: str
    ) -> Response:
        """Ticket/<id>/Ticket_User: the ticket's requesters."""
        ticket = self._readable_item(session, ITEMTYPES["Ticket"], raw_id)
        return self._paged_list(
            TICKET_USER, self.ticket_users, lambda row: row["tickets_id"] == ticket["id"], params, headers, api_url
        )

    def _get_ticket_documents(
        self, session: Session, raw_id: str, params: dict, headers: Message, api_url: str
    ) -> Response:
        """Ticket/<id>/Document_Item: only the links in the session's entities (LAB#267, #271)."""
        ticket = self._readable_item(session, ITEMTYPES["Ticket"], raw_id)
        return self._paged_list(
            DOCUMENT_ITEM,
            self.document_items,
            lambda row: (
                (row["itemtype"], row["items_id"]) == ("Ticket", ticket["id"])
                and self._visible(DOCUMENT_ITEM, row, session.entities)
            ),
            params,
            headers,
            api_url,
        )

    def _paged_list(
        self,
        itemtype: Itemtype,
        rows: Iterable[dict],
        keep: Callable[[dict], bool],
        params: dict,
        headers: Message,
        api_url: str,
        sortable: bool = False,
    ) -> Response:
        """A list answer: the `range` (default ITEMS_RANGE) of the `rows` that `keep` accepts, copied
        under the lock, sorted by the `sort` column (else by id) when `sortable`, rendered with links."""
        start, end = parse_range(params.get("range"), ITEMS_RANGE)
        with self._lock:
            kept = [dict(row) for row in rows if keep(row)]
        if sortable:
            sort = params.get("sort")
            sort = sort if isinstance(sort, str) and kept and sort in kept[0] else "id"
            kept.sort(key=lambda row: sort_key(row[sort]), reverse=params.get("order") == "DESC")
        page = [self._render(itemtype, row, headers, api_url) for row in kept[start : end + 1]]
        return paged_response(itemtype.name, page, start, len(page), len(kept))
