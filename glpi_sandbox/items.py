"""Reading, listing and creating items: tickets with their requesters, and documents attached to them."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterable
from email.message import Message
from typing import Any

from .api import NO_PERMISSION, AddRefused, ApiError, Response, Session, paged_response, parse_range
from .base import SandboxBase
from .php import (
    decode_html,
    encode_html,
    file_size_text,
    is_digits,
    now_text,
    php_int,
    php_uniqid,
    php_values,
    plain_text,
    priority_level,
    sort_key,
)
from .searchoptions import DOCUMENT_ITEM, ITEMTYPES, TICKET_USER, Itemtype

ITEMS_RANGE = (0, 49)  # default page of GET /<itemtype>

# The extensions of GLPI 10's default document types (install/empty_data.php, glpi_documenttypes, all
# uploadable). Any other extension is dropped by the upload handler: "File x not found." (LAB#229).
DOCUMENT_EXTENSIONS = frozenset(
    {
        "jpg",
        "jpeg",
        "png",
        "gif",
        "bmp",
        "psd",
        "tif",
        "aiff",
        "asf",
        "avi",
        "c",
        "rm",
        "mid",
        "mov",
        "mp3",
        "mpg",
        "ogg",
        "qt",
        "bz2",
        "ra",
        "ram",
        "doc",
        "djvu",
        "mng",
        "eps",
        "gz",
        "wav",
        "html",
        "swf",
        "pdf",
        "ppt",
        "ps",
        "wmv",
        "rtf",
        "sdd",
        "sdw",
        "sit",
        "ai",
        "sxi",
        "sxw",
        "dvi",
        "tgz",
        "txt",
        "rpm",
        "xls",
        "xml",
        "zip",
        "deb",
        "h",
        "pas",
        "sxc",
        "tex",
        "xcf",
        "odt",
        "ods",
        "odp",
        "otp",
        "ott",
        "ots",
        "odf",
        "odg",
        "otg",
        "odb",
        "oth",
        "odm",
        "odc",
        "odi",
        "docx",
        "xlsx",
        "pptx",
        "csv",
        "svg",
    }
)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# GLPI's default priority matrix: PRIORITY[urgency][impact].
PRIORITY = {
    1: {1: 1, 2: 1, 3: 2, 4: 2, 5: 2},
    2: {1: 1, 2: 2, 3: 2, 4: 3, 5: 3},
    3: {1: 2, 2: 2, 3: 3, 4: 4, 5: 4},
    4: {1: 2, 2: 3, 3: 4, 4: 4, 5: 5},
    5: {1: 2, 2: 3, 3: 4, 4: 5, 5: 5},
}

# Columns of a new ticket that the API does not let a client set, in GLPI's column order.
TICKET_FIXED_COLUMNS = {
    "global_validation": 1,
    "slas_id_ttr": 0,
    "slas_id_tto": 0,
    "slalevels_id_ttr": 0,
    "time_to_resolve": None,
    "time_to_own": None,
    "begin_waiting_date": None,
    "sla_waiting_duration": 0,
    "ola_waiting_duration": 0,
    "olas_id_tto": 0,
    "olas_id_ttr": 0,
    "olalevels_id_ttr": 0,
    "ola_tto_begin_date": None,
    "ola_ttr_begin_date": None,
    "internal_time_to_resolve": None,
    "internal_time_to_own": None,
    "waiting_duration": 0,
    "close_delay_stat": 0,
    "solve_delay_stat": 0,
    "takeintoaccount_delay_stat": 0,
    "actiontime": 0,
    "is_deleted": 0,
    "locations_id": 0,
    "validation_percent": 0,
}

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
    """Part of GlpiSandbox: GET of items and lists, POST /Ticket and POST /Document."""

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
        links += [{"rel": sub, "href": f"{api_url}/{itemtype.name}/{item['id']}/{sub}/"} for sub in itemtype.sub_links]
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

    def _download(self, document: dict) -> Response:
        """Document/<id>?alt=media: the file itself (LAB#224)."""
        with self._lock:
            content = self.document_files[document["id"]]
        name = document["filename"]
        raw_name = name.encode("utf-8").decode("latin-1")  # PHP writes the UTF-8 bytes as they are
        return Response(
            200,
            content,
            document["mime"],
            {
                "Content-Disposition": f"filename=\"{raw_name}\"; filename*=utf-8''{urllib.parse.quote(name)}",
                "Cache-Control": "private",
            },
        )

    # --- creating tickets ----------------------------------------------------------------------

    def _create_tickets(self, session: Session, params: dict, headers: Message, api_url: str) -> Response:
        """POST /Ticket: an `input` object creates one ticket, a list several (notes §5)."""
        payload = params.get("input")
        bulk = isinstance(payload, list)
        inputs: list[Any] = payload if isinstance(payload, list) else [payload]
        if not inputs or not all(isinstance(fields, dict) for fields in inputs):
            raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects", doc=True)
        results = []
        for fields in inputs:
            try:
                ticket_id = self._add_ticket(session, fields)
            except AddRefused as refusal:
                results.append({"id": False, "message": str(refusal)})
            else:
                results.append({"id": ticket_id, "message": self._added_message(ticket_id, headers)})
        created = [result["id"] for result in results if result["id"] is not False]
        if not bulk:
            if not created:
                return Response.json(400, ["ERROR_GLPI_ADD", results[0]["message"]])
            return Response.json(201, results[0], {"location": f"{api_url}/Ticket/{created[0]}"})
        if len(created) == len(results):
            return Response.json(201, results, {"link": ",".join(f"{api_url}/Ticket/{tid}" for tid in created)})
        code = "ERROR_GLPI_PARTIAL_ADD" if created else "ERROR_GLPI_ADD"
        return Response.json(207 if created else 400, [code, results])

    def _add_ticket(self, session: Session, fields: dict) -> int:
        """GLPI's Ticket::add() for one input, with its silent corrections (notes §6)."""
        requesters = self._requesters(fields)
        content = self._text(fields.get("content")).replace("\r\n", "\n")
        name = self._text(fields.get("name")) or plain_text(content)[:70]
        urgency, impact = priority_level(fields.get("urgency")), priority_level(fields.get("impact"))
        with self._lock:
            entity_id = php_int(fields["entities_id"]) if "entities_id" in fields else session.active_entity
            # Rights were fixed at initSession: a newer entity is refused like a missing one (LAB#61, #306).
            if entity_id not in self._entities or entity_id not in session.entities:
                raise AddRefused(NO_PERMISSION)
            self._last_ticket_id += 1
            ticket_id = self._last_ticket_id
            now = now_text()
            self.tickets[ticket_id] = {
                "id": ticket_id,
                "entities_id": entity_id,
                "name": self._stored(name),
                "date": now,
                "closedate": None,
                "solvedate": None,
                "takeintoaccountdate": None,
                "date_mod": now,
                "users_id_lastupdater": session.user_id,
                "status": 1,
                "users_id_recipient": session.user_id,  # whatever the client sent (LAB#66)
                "requesttypes_id": php_int(fields.get("requesttypes_id", 1)),
                "content": self._stored(content),
                "urgency": urgency,
                "impact": impact,
                "priority": PRIORITY[urgency][impact],
                "itilcategories_id": php_int(fields.get("itilcategories_id", 0)),  # not checked (LAB#60b)
                "type": php_int(fields.get("type", 1)),  # not checked either (LAB#111)
                **TICKET_FIXED_COLUMNS,
                "date_creation": now,
            }
            for user_id, use_notification, email in requesters:
                self.ticket_users.append(
                    {
                        "id": len(self.ticket_users) + 1,
                        "tickets_id": ticket_id,
                        "users_id": user_id,
                        "type": 1,
                        "use_notification": use_notification,
                        "alternative_email": email,
                    }
                )
            return ticket_id

    def _requesters(self, fields: dict) -> list[tuple[int, int, str]]:
        """(user id, use_notification, alternative_email) of each requester GLPI would keep.

        `_users_id_requester` is an id or a list; `_users_id_requester_notif` holds scalars or
        lists parallel to it (LAB#54-57, #93). Unknown users are dropped (LAB#62b); user 0 with an
        e-mail is an e-mail-only requester. An invalid e-mail refuses the whole ticket.
        """
        if "_users_id_requester" not in fields:
            return []
        requested = fields["_users_id_requester"]
        single = not isinstance(requested, (list, dict))
        notif = fields.get("_users_id_requester_notif")
        notif = notif if isinstance(notif, dict) else {}

        def setting(key: str, index: int, default: Any) -> Any:
            value = notif.get(key, default)
            if isinstance(value, (list, dict)):
                values = php_values(value)
                return values[index] if index < len(values) else default
            return value if single else default  # scalars only go with a single requester

        for email in php_values(notif.get("alternative_email", [])):
            if isinstance(email, str) and email and not EMAIL.fullmatch(email):
                raise AddRefused(f"Invalid email address {email}")
        requesters = []
        for index, raw_id in enumerate(php_values(requested)):
            user_id = php_int(raw_id)
            email = self._text(setting("alternative_email", index, ""))
            if (user_id == 0 and email) or user_id in self._users:
                requesters.append((user_id, php_int(setting("use_notification", index, 1)), email))
        return requesters

    # --- documents ----------------------------------------------------------------------------

    def _create_document(self, session: Session, params: dict, headers: Message, api_url: str) -> Response:
        """POST /Document as multipart: one document from the first uploaded file, linked to the item
        the manifest names, in the manifest's `entities_id` or else the session's entity (notes §8)."""
        fields = params.get("input")
        if not isinstance(fields, dict):
            raise ApiError(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects", doc=True)
        uploads = [
            (f"{php_uniqid()}{name}", name, content_type, content) for name, content_type, content in params["_uploads"]
        ]
        if not uploads:
            raise ApiError(400, "ERROR", "the GLPI sandbox only takes files sent in the filename[] field")
        try:
            document_id = self._add_document(session, fields, uploads[0])
        except AddRefused as refusal:
            return Response.json(400, ["ERROR_GLPI_ADD", str(refusal)])
        origin = re.sub(r"/(apirest\.php|api\.php/v1)$", "", api_url)
        upload_result = [
            {
                "name": stored,
                "size": len(content),
                "type": content_type,
                "url": f"{origin}/files/{stored}",
                "deleteUrl": f"{api_url}?filenam={stored}",
                "deleteType": "DELETE",
                "prefix": stored[: -len(name)],
                "display": name,
                "filesize": file_size_text(len(content)),
                "id": f"docfilename{secrets.randbelow(2**31)}",
            }
            for stored, name, content_type, content in uploads
            if self._uploadable(name)
        ]
        name = self.documents[document_id]["name"]
        if self._unsanitized(headers):
            name = decode_html(name)
        answer = {
            "id": document_id,
            "message": f"Item successfully added: {name}",  # no "(id)" here (LAB#221)
            "upload_result": {"filename": upload_result},
        }
        return Response.json(201, answer, {"location": f"{api_url}/Document/{document_id}"})

    def _uploadable(self, filename: str) -> bool:
        return "." in filename and filename.rsplit(".", 1)[1].lower() in self.document_extensions

    def _add_document(self, session: Session, fields: dict, upload: tuple[str, str, str, bytes]) -> int:
        _, filename, _, content = upload
        with self._lock:
            entity_id = php_int(fields["entities_id"]) if "entities_id" in fields else session.active_entity
            if entity_id not in self._entities or entity_id not in session.entities:
                raise AddRefused(NO_PERMISSION)
            name = self._text(fields.get("name"))
            item = None
            if "itemtype" in fields or "items_id" in fields:
                item = self.tickets.get(php_int(fields.get("items_id")))
                # Not recorded: a link to an item the user cannot see is refused like an unseen entity.
                if (
                    fields.get("itemtype") != "Ticket"
                    or item is None
                    or not self._visible(ITEMTYPES["Ticket"], item, session.entities)
                ):
                    raise AddRefused(NO_PERMISSION)
                name = f"Document: Ticket - {decode_html(item['name'])}"  # GLPI names it after the item (LAB#221)
            if not self._uploadable(filename):  # the upload handler dropped the file (LAB#229)
                raise AddRefused(f"File {filename} not found.")
            document_id = max(self.documents, default=0) + 1
            sha1 = hashlib.sha1(content).hexdigest()
            extension = filename.rpartition(".")[2].upper()
            now = now_text()
            self.documents[document_id] = {
                "id": document_id,
                "entities_id": entity_id,
                "is_recursive": 0,
                "name": self._stored(name),
                "filename": filename,
                "filepath": f"{extension}/{sha1[:2]}/{sha1[2:]}.{extension}",
                "documentcategories_id": 0,
                "mime": mimetypes.guess_type(filename)[0] or "application/octet-stream",
                "date_mod": now,
                "comment": None,
                "is_deleted": 0,
                "link": None,
                "users_id": session.user_id,
                "tickets_id": 0,
                "sha1sum": sha1,
                "is_blacklisted": 0,
                "tag": f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{php_uniqid()}",
                "date_creation": now,
            }
            self.document_files[document_id] = content
            if item is not None:  # the link takes the document's entity, not the ticket's (LAB#222, #267)
                self.document_items.append(
                    {
                        "id": len(self.document_items) + 1,
                        "documents_id": document_id,
                        "items_id": item["id"],
                        "itemtype": "Ticket",
                        "entities_id": entity_id,
                        "is_recursive": 0,
                        "date_mod": now,
                        "users_id": session.user_id,
                        "timeline_position": 1,
                        "date_creation": now,
                        "date": None,
                    }
                )
            return document_id

    # --- text as GLPI stores and returns it -----------------------------------------------------

    @staticmethod
    def _text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else ""
        return str(value) if isinstance(value, (str, int, float)) else ""

    def _unsanitized(self, headers: Message) -> bool:
        """GLPI 10 decodes the text it returns when the request says `X-GLPI-Sanitized-Content: false`."""
        return self.version == 10 and headers.get("X-GLPI-Sanitized-Content", "").lower() == "false"

    def _stored(self, text: str) -> str:
        """GLPI 10 stores text HTML-encoded; GLPI 11 stores it as sent."""
        return encode_html(text) if self.version == 10 else text

    def _added_message(self, ticket_id: int, headers: Message) -> str:
        name = self.tickets[ticket_id]["name"]
        if self._unsanitized(headers):
            name = decode_html(name)
        return f"Item successfully added: {name or f'Ticket - ID {ticket_id}'} ({ticket_id})"
