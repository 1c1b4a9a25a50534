"""Reading items and lists: GET /<itemtype>, /<itemtype>/<id> and a ticket's sub-items, as GLPI renders them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email.message import Message

from .api import NO_PERMISSION, ApiError, Response, Session, paged_response, parse_range
from .base import SandboxBase
from .php import decode_html, is_digits, php_flag, sort_key
from .searchoptions import DOCUMENT_ITEM, ITEMTYPES, Itemtype
from .versions import ticket_sub_links

ITEMS_RANGE = (0, 49)  # default page of GET /<itemtype>
TICKET_SUBITEMS = {  # what GET Ticket/<id>/<name> lists
    name: ITEMTYPES.get(name, DOCUMENT_ITEM)
    for name in ("Ticket_User", "Document_Item", "ITILFollowup", "ITILSolution")
}
# What GET <itemtype>/<id> can add to an item (notes §2 of GLPI's API doc); the sandbox adds none.
WITH_OPTIONS = tuple(
    f"with_{name}"
    for name in (
        "devices disks softwares connections networkports infocoms contracts documents tickets problems changes "
        "notes logs"
    ).split()
)
PROFILES = {4: "Super-Admin"}  # the lab's API user's profile (LAB#10, #406)

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
    "users_id_editor": "User",
    "users_id_approval": "User",
    "solutiontypes_id": "SolutionType",
    "itilfollowups_id": "ITILFollowup",
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

    def _check_item_options(self, params: dict) -> None:
        """GET <itemtype>/<id> options the sandbox does not reproduce are refused, not ignored."""
        for option in WITH_OPTIONS:
            if php_flag(params.get(option, False)):
                raise ApiError(400, "ERROR", f"{option} is not implemented by the GLPI sandbox")

    def _render(
        self, itemtype: Itemtype, item: dict, headers: Message, api_url: str, params: dict | None = None
    ) -> dict:
        """An item as GET returns it: GLPI 10 text stays encoded (LAB#51, #252); each foreign key that is
        set, and the item a relation points to, gives a link (LAB#51, #222, #409) unless `get_hateoas=false`
        (LAB#422); `expand_dropdowns=true` puts names in their place (LAB#52, #421)."""
        params = params or {}
        hateoas = php_flag(params.get("get_hateoas", True))
        expand = php_flag(params.get("expand_dropdowns", False))
        rendered = dict(item)
        links = []
        for key, value in item.items():
            target = item.get("itemtype") if key == "items_id" else FOREIGN_KEYS.get(key)
            if not (isinstance(target, str) and isinstance(value, int)):
                continue
            if value > 0 or (key == "entities_id" and value == 0):
                links.append({"rel": target, "href": f"{api_url}/{target}/{value}"})
                if expand:
                    rendered[key] = self._stored(self._dropdown_name(target, value))
        if self._unsanitized(headers):
            rendered = {key: decode_html(value) if isinstance(value, str) else value for key, value in rendered.items()}
        sub_links = itemtype.sub_links
        if itemtype.name == "Ticket":
            sub_links = ticket_sub_links(sub_links, self.version)
        links += [{"rel": sub, "href": f"{api_url}/{itemtype.name}/{item['id']}/{sub}/"} for sub in sub_links]
        return {**rendered, "links": links} if links and hateoas else rendered

    def _dropdown_name(self, itemtype_name: str, item_id: int) -> str:
        """What Dropdown::getDropdownName() shows for an id: the complete name of a tree (entity,
        category), a user's login, an item's name; "" when there is none (GLPI's source)."""
        if itemtype_name == "Profile":
            return PROFILES.get(item_id, "")
        itemtype = ITEMTYPES.get(itemtype_name)
        record = self._collection(itemtype).get(item_id) if itemtype is not None else None
        if record is None:
            return ""
        return str(record.get("completename") or record.get("name") or "")

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

    def _get_ticket_subitems(
        self, session: Session, raw_id: str, subitem: Itemtype, params: dict, headers: Message, api_url: str
    ) -> Response:
        """Ticket/<id>/<subitem>: its actors (LAB#405), follow-ups, public and private (LAB#409),
        solutions (LAB#415), and the document links in the session's entities (LAB#267, #271)."""
        ticket = self._readable_item(session, ITEMTYPES["Ticket"], raw_id)
        rows: Iterable[dict]
        if subitem.name == "Ticket_User":
            rows, keep = self.ticket_users, lambda row: row["tickets_id"] == ticket["id"]
        elif subitem.name == "Document_Item":
            rows = self.document_items

            def keep(row: dict) -> bool:
                return (row["itemtype"], row["items_id"]) == ("Ticket", ticket["id"]) and self._visible(
                    DOCUMENT_ITEM, row, session.entities
                )
        else:
            rows = (self.followups if subitem.name == "ITILFollowup" else self.solutions).values()
            keep = lambda row: (row["itemtype"], row["items_id"]) == ("Ticket", ticket["id"])  # noqa: E731
        return self._paged_list(subitem, rows, keep, params, headers, api_url)

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
        page = [self._render(itemtype, row, headers, api_url, params) for row in kept[start : end + 1]]
        return paged_response(itemtype.name, page, start, len(page), len(kept))
