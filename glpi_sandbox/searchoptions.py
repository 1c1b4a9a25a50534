"""The search options GLPI lists for each itemtype (listSearchOptions), and the itemtypes themselves."""

from __future__ import annotations

from dataclasses import dataclass

FIELDS_OPTION_ID = 76666  # 76665 + the Fields field's id: 76666 in the lab (LAB#20)
FIELDS_TABLE = "glpi_plugin_fields_entitydadosfiscais"
FIELDS_COLUMN = "cnpjfield"

TEXT_SEARCH = ["contains", "notcontains"]
TREE_SEARCH = ["contains", "notcontains", "equals", "notequals", "under", "notunder"]
DATE_SEARCH = ["equals", "notequals", "lessthan", "morethan", "contains", "notcontains"]


def _option(name: str, table: str, column: str, datatype: str, searchtypes: list[str], uid: str) -> dict:
    """A search option as listSearchOptions shows it (LAB#20)."""
    return {
        "name": name,
        "table": table,
        "field": column,
        "datatype": datatype,
        "nosearch": False,
        "nodisplay": False,
        "available_searchtypes": searchtypes,
        "uid": uid,
    }


# Group headers are {"name": ...} objects keyed by a word (Appendix B of the API notes).
ENTITY_OPTIONS = {
    "common": {"name": "Characteristics"},
    "1": _option("Complete name", "glpi_entities", "completename", "itemlink", TREE_SEARCH, "Entity.completename"),
    "2": _option("ID", "glpi_entities", "id", "number", TEXT_SEARCH, "Entity.id"),
    "14": _option("Name", "glpi_entities", "name", "itemlink", TREE_SEARCH, "Entity.name"),
    "3": _option("Address", "glpi_entities", "address", "text", TEXT_SEARCH, "Entity.address"),
    "4": _option("Website", "glpi_entities", "website", "string", TEXT_SEARCH, "Entity.website"),
    "5": _option("Phone", "glpi_entities", "phonenumber", "string", TEXT_SEARCH, "Entity.phonenumber"),
    "6": _option("Email", "glpi_entities", "email", "email", TEXT_SEARCH, "Entity.email"),
    "16": _option("Comments", "glpi_entities", "comment", "text", TEXT_SEARCH, "Entity.comment"),
    "70": _option(
        "Administrative number",
        "glpi_entities",
        "registration_number",
        "string",
        TEXT_SEARCH,
        "Entity.registration_number",
    ),
    "plugins": {"name": "Plugins"},
}

TICKET_OPTIONS = {
    "common": {"name": "Characteristics"},
    "1": _option("Title", "glpi_tickets", "name", "itemlink", TEXT_SEARCH, "Ticket.name"),
    "21": _option("Description", "glpi_tickets", "content", "text", TEXT_SEARCH, "Ticket.content"),
    "2": _option("ID", "glpi_tickets", "id", "number", TEXT_SEARCH, "Ticket.id"),
    "12": _option("Status", "glpi_tickets", "status", "specific", ["equals"], "Ticket.status"),
    "10": _option("Urgency", "glpi_tickets", "urgency", "specific", ["equals"], "Ticket.urgency"),
    "11": _option("Impact", "glpi_tickets", "impact", "specific", ["equals"], "Ticket.impact"),
    "3": _option("Priority", "glpi_tickets", "priority", "specific", ["equals"], "Ticket.priority"),
    "15": _option("Opening date", "glpi_tickets", "date", "datetime", DATE_SEARCH, "Ticket.date"),
    "19": _option("Last update", "glpi_tickets", "date_mod", "datetime", DATE_SEARCH, "Ticket.date_mod"),
    "7": _option(
        "Category", "glpi_itilcategories", "completename", "dropdown", TREE_SEARCH, "Ticket.ITILCategory.completename"
    ),
    "80": _option("Entity", "glpi_entities", "completename", "dropdown", TREE_SEARCH, "Ticket.Entity.completename"),
}

ITILCATEGORY_OPTIONS = {
    "common": {"name": "Characteristics"},
    "1": _option(
        "Complete name", "glpi_itilcategories", "completename", "itemlink", TREE_SEARCH, "ITILCategory.completename"
    ),
    "2": _option("ID", "glpi_itilcategories", "id", "number", TEXT_SEARCH, "ITILCategory.id"),
    "14": _option("Name", "glpi_itilcategories", "name", "itemlink", TREE_SEARCH, "ITILCategory.name"),
    "80": _option(
        "Entity", "glpi_entities", "completename", "dropdown", TREE_SEARCH, "ITILCategory.Entity.completename"
    ),
}


def entity_search_options(fields_option_id: int | None, extra_search_options: dict[int | str, dict] | None) -> dict:
    """Entity's options: the standard ones, the Fields plugin's CNPJ (None: the API profile has no
    right on the Fields container) and any others a test adds."""
    entity_options = dict(ENTITY_OPTIONS)
    if fields_option_id is not None:
        entity_options[str(fields_option_id)] = _option(
            "Dados Fiscais - CNPJ",
            FIELDS_TABLE,
            FIELDS_COLUMN,
            "string",
            TEXT_SEARCH,
            "Entity.PluginFieldsEntitydadosfiscai.cnpjfield",
        )
    for option_id, option in (extra_search_options or {}).items():
        entity_options[str(option_id)] = {"nosearch": False, "nodisplay": False, **option}
    return entity_options


@dataclass(frozen=True)
class Itemtype:
    """What the sandbox knows of a GLPI itemtype."""

    name: str
    table: str
    entity_column: bool = False  # its items belong to an entity: search adds column 80 by default
    sub_links: tuple[str, ...] = ()  # relations GLPI lists as links of every item


ITEMTYPES = {
    itemtype.name: itemtype
    for itemtype in (
        Itemtype(
            "Ticket",
            "glpi_tickets",
            entity_column=True,
            sub_links=(
                "Document_Item",
                "TicketTask",
                "TicketValidation",
                "TicketCost",
                "Problem_Ticket",
                "Change_Ticket",
                "Item_Ticket",
                "ITILSolution",
                "ITILFollowup",
                "Ticket_User",
                "Group_Ticket",
                "Supplier_Ticket",
            ),
        ),
        Itemtype("Entity", "glpi_entities", sub_links=("Document_Item",)),
        Itemtype("ITILCategory", "glpi_itilcategories", entity_column=True),
        Itemtype("User", "glpi_users", sub_links=("Document_Item",)),
        Itemtype("RequestType", "glpi_requesttypes"),
        Itemtype("Document", "glpi_documents", sub_links=("Document_Item",)),
        Itemtype("ITILFollowup", "glpi_itilfollowups", sub_links=("Document_Item",)),
        Itemtype("ITILSolution", "glpi_itilsolutions", sub_links=("Document_Item",)),
        Itemtype("Ticket_User", "glpi_tickets_users"),
    )
}
TICKET_USER = ITEMTYPES["Ticket_User"]
DOCUMENT_ITEM = Itemtype("Document_Item", "glpi_documents_items")  # only reachable as Ticket/<id>/Document_Item
