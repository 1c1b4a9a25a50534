"""Documents: POST /Document as multipart (an uploaded file, linked to a ticket) and the file's download."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import secrets
import urllib.parse
from email.message import Message

from .api import NO_PERMISSION, AddRefused, ApiError, Response, Session
from .base import SandboxBase
from .php import decode_html, file_size_text, php_int, php_uniqid
from .searchoptions import ITEMTYPES
from .versions import DOWNLOAD_CACHE_CONTROL, FILE_SIZE_UNITS, escape_html, upload_delete_url

# The extensions of GLPI 10's default document types (install/empty_data.php, glpi_documenttypes, all
# uploadable). Any other extension is dropped by the upload handler: "File x not found." (LAB#229).
DOCUMENT_EXTENSIONS = frozenset(
    """
    jpg jpeg png gif bmp psd tif aiff asf avi c rm mid mov mp3 mpg ogg qt bz2 ra ram doc djvu mng eps gz
    wav html swf pdf ppt ps wmv rtf sdd sdw sit ai sxi sxw dvi tgz txt rpm xls xml zip deb h pas sxc tex
    xcf odt ods odp otp ott ots odf odg otg odb oth odm odc odi docx xlsx pptx csv svg
    """.split()
)


class DocumentsMixin(SandboxBase):
    """Part of GlpiSandbox: POST /Document and Document/<id>?alt=media."""

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
                "Cache-Control": DOWNLOAD_CACHE_CONTROL[self.version],
            },
        )

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
                "deleteUrl": upload_delete_url(api_url, stored, self.version),
                "deleteType": "DELETE",
                "prefix": stored[: -len(name)],
                "display": name,
                "filesize": file_size_text(len(content), FILE_SIZE_UNITS[self.version]),
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
            # GLPI 10 adds no "(id)" here (LAB#221); GLPI 11 escapes the name as for any item (LAB11#221).
            "message": f"Item successfully added: {name if self.version == 10 else escape_html(name)}",
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
                if self.version == 10:  # GLPI 10 names it after the item (LAB#221), GLPI 11 keeps it (LAB11#221)
                    name = f"Document: Ticket - {decode_html(item['name'])}"
            if not self._uploadable(filename):  # the upload handler dropped the file (LAB#229)
                raise AddRefused(f"File {filename} not found.")
            document_id = max(self.documents, default=0) + 1
            sha1 = hashlib.sha1(content).hexdigest()
            extension = filename.rpartition(".")[2].upper()
            now = self._now()
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
                # A plain column: stored as sent (GLPI 10 HTML-encodes it like any text), null when not.
                "comment": self._stored(self._text(fields["comment"])) if "comment" in fields else None,
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
