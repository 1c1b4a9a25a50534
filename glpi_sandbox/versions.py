"""What GLPI 11 answers differently from GLPI 10, in one place.

The sandbox answers as GLPI 10.0.12 or as GLPI 11.0.6 (`GlpiSandbox(version=...)`). The differences,
as recorded when the GLPI 10 transcripts were replayed against a GLPI 11 (tests/transcripts-11/,
summarised in its _DIFFERENCES.md, cited as LAB11#N):

- Text: GLPI 10 stores `<`, `>`, `&` HTML-encoded and returns them so, unless asked with
  `X-GLPI-Sanitized-Content: false`; GLPI 11 stores and returns text as sent and ignores that header
  (LAB11#51, #251-#255). Dropdown names (`expand_dropdowns`) follow the text (LAB11#52, #421).
  That part lives in base.py (`_stored`, `_unsanitized`) and php.py (`encode_html`).
- The message of a 201 answer: GLPI 10 "Item successfully added: <stored name> (<id>)"; GLPI 11
  "Item successfully added: <name>", the name escaped once more with named entities (LAB11#50, #250,
  #261).
- Links, `Location` and the documentation link of an error point to `/api.php/v1` in GLPI 11, which
  also serves the legacy API there (sandbox.py, `api_url`).
- Search: `"sort"` is `[0]` (an integer) and the default order is by id; GLPI 10 said `["1"]` and
  sorted by the complete name (LAB11#30, #45). Every listed option also offers `empty` (LAB11#20, #22).
- Records: a ticket has `tickettemplates_id` and `externalid` but no `validation_percent`, and links to
  its Ticket_Ticket (LAB11#51); a category's `ancestors_cache` is null (LAB11#210).
- Documents keep the manifest's name; GLPI 10 named them after the ticket (LAB11#221, #223). Sizes are
  written "1.03 KiB" (GLPI 10: "Kio"), the upload's deleteUrl is `/index.php?filenam=…`, and a download
  says `Cache-Control: must-revalidate, private` (LAB11#221, #224).
"""

from __future__ import annotations

import re

# Columns GLPI 10 has on a ticket and GLPI 11 does not, and those GLPI 11 adds after date_creation.
TICKET_COLUMNS_10_ONLY = ("validation_percent",)
TICKET_COLUMNS_11 = {"tickettemplates_id": 0, "externalid": None}

FILE_SIZE_UNITS = {10: ("o", "Kio", "Mio", "Gio", "Tio"), 11: ("B", "KiB", "MiB", "GiB", "TiB")}
DOWNLOAD_CACHE_CONTROL = {10: "private", 11: "must-revalidate, private"}


def added_message(name: str, item_id: int, version: int) -> str:
    """The message of a 201 answer for an item named `name` (as GLPI returns the name) with id `item_id`."""
    if version == 10:
        return f"Item successfully added: {name} ({item_id})"
    return f"Item successfully added: {escape_html(name)}"


def escape_html(text: str) -> str:
    """How GLPI 11 escapes a name in a message: `&`, `<`, `>` as named entities (LAB11#253, #261).

    Quotes are escaped too, as PHP's htmlspecialchars() does by default; no recording has a quote in a name.
    """
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#039;")
    )


def listed_searchtypes(searchtypes: list[str], version: int) -> list[str]:
    """An option's `available_searchtypes`: GLPI 11 adds `empty`, before `under` where there is one (LAB11#20)."""
    if version == 10:
        return searchtypes
    position = searchtypes.index("under") if "under" in searchtypes else len(searchtypes)
    return [*searchtypes[:position], "empty", *searchtypes[position:]]


def listed_options(options: dict, version: int) -> dict:
    """listSearchOptions/<itemtype> as the version lists the sandbox's options."""
    return {
        key: {**option, "available_searchtypes": listed_searchtypes(option["available_searchtypes"], version)}
        if "available_searchtypes" in option
        else option
        for key, option in options.items()
    }


def search_sort(sort: str, explicit: bool, version: int) -> list:
    """The `sort` key of a search answer: GLPI 10 echoes the option id as text, GLPI 11 as a number, and
    0 when the client sent none (LAB11#30). An explicit sort on GLPI 11 was not recorded."""
    if version == 10:
        return [sort]
    return [int(sort)] if explicit else [0]


def ticket_sub_links(sub_links: tuple[str, ...], version: int) -> tuple[str, ...]:
    """The relations a ticket links to: GLPI 11 adds Ticket_Ticket after Change_Ticket (LAB11#51)."""
    if version == 10 or "Change_Ticket" not in sub_links:
        return sub_links
    position = sub_links.index("Change_Ticket") + 1
    return (*sub_links[:position], "Ticket_Ticket", *sub_links[position:])


def upload_delete_url(api_url: str, stored_name: str, version: int) -> str:
    """The `deleteUrl` of an uploaded file (LAB#221, LAB11#221)."""
    if version == 10:
        return f"{api_url}?filenam={stored_name}"
    origin = re.sub(r"/(apirest\.php|api\.php/v1)$", "", api_url)
    return f"{origin}/index.php?filenam={stored_name}"
